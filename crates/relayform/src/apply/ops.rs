//! What each step does: its calls to Salesforce and AWS (through the providers' `ops`).

use super::*;

pub(super) async fn run_step(ctx: &Ctx, step: &Step, slot: &mut Slot) -> StepResult {
    match step.half {
        Half::Teardown => teardown(ctx, step).await,
        Half::Build => build(ctx, step, slot).await,
        Half::Fingerprint => record_fingerprint(ctx, step).await,
    }
}

pub(super) async fn record_fingerprint(ctx: &Ctx, step: &Step) -> StepResult {
    let a = &step.change.address;
    let relay = relay_of(a);
    let label = step
        .change
        .fields
        .iter()
        .find(|f| f.field == "label")
        .and_then(|f| f.after.clone())
        .ok_or("no label to record")?;
    let Desired::Channel {
        name, channel_type, ..
    } = ctx.desired(a)?
    else {
        return Err(format!("{a} is not a channel").into());
    };
    let org = &ctx.spec.relays[relay].org.value;
    sf::update(
        ctx.org_of(a)?,
        "PlatformEventChannel",
        &ctx.channel_id(relay)?,
        &ctx.in_org(org, &names::channel_full_name(name)),
        sf::channel_definition(channel_type.as_str(), &label),
    )
    .await
    .map_err(e)?;
    Ok(format!("label {label:?}"))
}

/// A provider error as a step failure, its kind kept.
pub(super) fn e(err: relayform_provider::Error) -> Failure {
    Failure {
        kind: Some(err.kind),
        message: err.to_string(),
    }
}

/// Removes a replaced relay's forwarding rule and partner bus. They are where its named credential
/// pointed (`arn:aws:<REGION>:<account>`), which may be another region or account than the spec's now;
/// returns a note when they are somewhere relayform has no credentials for.
pub(super) async fn remove_partner_side(
    ctx: &Ctx,
    relay: &str,
    address: &Address,
) -> Result<Option<String>, Failure> {
    let Some(seen) = ctx.observed_relay(relay) else {
        return Ok(None);
    };
    let Some(src) = seen.remote_resource.clone() else {
        return Ok(None);
    };
    let r = &ctx.spec.relays[relay];
    let spec_account = &ctx.spec.aws_accounts[&r.aws_account.value];
    let old = seen
        .destination
        .as_deref()
        .and_then(|d| d.strip_prefix("callout:"))
        .and_then(|nc| {
            ctx.observed
                .orgs
                .get(&r.org.value)?
                .named_credentials
                .iter()
                .find(|n| sf::same_reference(nc, &n.name))?
                .endpoint
                .clone()
        })
        .and_then(|ep| {
            let rest = ep.strip_prefix("arn:aws:")?;
            let (region, account) = rest.split_once(':')?;
            Some((region.to_lowercase(), account.to_owned()))
        });
    let moved = old.filter(|(region, account)| {
        *region != spec_account.region.value || *account != spec_account.account_id.value
    });
    if let Some((region, account)) = moved {
        let Some(t) = ctx.conn.targets.get(&account) else {
            return Ok(Some(format!(
                "its old partner bus {src} in account {account}, {region} is left: the spec has no credentials for that account"
            )));
        };
        let aws = Aws::connect(
            &relayform_aws::Target {
                region: region.clone(),
                ..t.clone()
            },
            None,
        )
        .await;
        aws_ops::delete_forwarding(&aws, &src, FORWARD_RULE, FORWARD_TARGET)
            .await
            .map_err(e)?;
        aws_ops::delete_bus(&aws, &src).await.map_err(e)?;
        return Ok(Some(format!(
            "its old partner bus {src} in {region} deleted"
        )));
    }
    let Some(acct) = ctx.observed.accounts.get(&r.aws_account.value) else {
        return Ok(None);
    };
    let aws = ctx.account_of(address)?;
    if acct
        .rules
        .iter()
        .any(|x| x.bus == src && x.name == FORWARD_RULE)
    {
        aws_ops::delete_forwarding(aws, &src, FORWARD_RULE, FORWARD_TARGET)
            .await
            .map_err(e)?;
    }
    if acct.buses.iter().any(|b| b.name == src) {
        aws_ops::delete_bus(aws, &src).await.map_err(e)?;
        return Ok(Some(format!("its old partner bus {src} deleted")));
    }
    Ok(None)
}

pub(super) async fn teardown(ctx: &Ctx, step: &Step) -> StepResult {
    let a = &step.change.address;
    let relay = relay_of(a);
    match a.kind {
        Kind::Forwarding => {
            let Some(src) = ctx
                .observed_relay(relay)
                .and_then(|r| r.remote_resource.clone())
            else {
                return Ok("already gone".into());
            };
            aws_ops::delete_forwarding(ctx.account_of(a)?, &src, FORWARD_RULE, FORWARD_TARGET)
                .await
                .map_err(e)?;
            Ok(format!("rule {FORWARD_RULE} removed from {src}"))
        }
        Kind::Association => {
            let Some(src) = ctx
                .observed_relay(relay)
                .and_then(|r| r.remote_resource.clone())
            else {
                return Ok("already gone".into());
            };
            aws_ops::delete_bus(ctx.account_of(a)?, &src)
                .await
                .map_err(e)?;
            Ok(format!("partner bus {src} deleted"))
        }
        Kind::Relay => {
            let Some(seen) = ctx.observed_relay(relay) else {
                return Ok("already gone".into());
            };
            let mut note = None;
            if step.change.action == Action::Replace {
                // The old partner source goes with the relay; its bus and rule would be left over.
                note = remove_partner_side(ctx, relay, a).await?;
            }
            sf::delete(ctx.org_of(a)?, "EventRelayConfig", &seen.id)
                .await
                .map_err(e)?;
            Ok(match note {
                Some(n) => format!("relay {} deleted; {n}", seen.name),
                None => format!("relay {} deleted", seen.name),
            })
        }
        Kind::RelayState => Ok("nothing to do".into()),
        Kind::Channel => {
            let r = &ctx.spec.relays[relay];
            let o = ctx.observed.orgs.get(&r.org.value);
            let Some(ch) = o.and_then(|o| o.channels.iter().find(|c| c.name == r.names.channel))
            else {
                return Ok("already gone".into());
            };
            sf::delete(ctx.org_of(a)?, "PlatformEventChannel", &ch.id)
                .await
                .map_err(e)?;
            Ok(format!(
                "channel {} deleted",
                names::channel_full_name(&ch.name)
            ))
        }
        Kind::ChannelMember => {
            let r = &ctx.spec.relays[relay];
            let event = a.key.split_once('/').map(|(_, e)| e).unwrap_or_default();
            let o = ctx.observed.orgs.get(&r.org.value);
            let member = o.and_then(|o| {
                let ch = o.channels.iter().find(|c| c.name == r.names.channel)?;
                o.members.iter().find(|m| {
                    m.channel_id.as_deref() == Some(ch.id.as_str())
                        && m.event
                            .as_deref()
                            .is_some_and(|x| relayform_plan::diff::same_name(x, event))
                })
            });
            let Some(m) = member else {
                return Ok("already gone".into());
            };
            sf::delete(ctx.org_of(a)?, "PlatformEventChannelMember", &m.id)
                .await
                .map_err(e)?;
            Ok(format!("member {} deleted", m.name))
        }
        Kind::NamedCredential => {
            let (org, name) = a.key.split_once('/').unwrap_or_default();
            let Some(nc) = ctx
                .observed
                .orgs
                .get(org)
                .and_then(|o| o.named_credentials.iter().find(|n| n.name == name))
            else {
                return Ok("already gone".into());
            };
            sf::delete(ctx.org_of(a)?, "NamedCredential", &nc.id)
                .await
                .map_err(e)?;
            Ok(format!("named credential {name} deleted"))
        }
        Kind::BusPolicy => {
            // `<account>/<region>/<bus>/<sender>`
            let parts: Vec<&str> = a.key.split('/').collect();
            let [account, region, bus, sender] = parts[..] else {
                return Err(format!("{a} is not a bus policy address").into());
            };
            let sid = format!("relayform-{sender}");
            let aws = ctx.account_in_region(account, region).await?;
            aws_ops::remove_bus_permission(&aws, bus, &sid)
                .await
                .map_err(e)?;
            Ok(format!("statement {sid} removed from bus {bus} ({region})"))
        }
        Kind::Role => {
            let name = a.key.split_once('/').map(|(_, n)| n).unwrap_or_default();
            aws_ops::delete_role(ctx.account_of(a)?, name, ROLE_POLICY)
                .await
                .map_err(e)?;
            Ok(format!("role {name} deleted"))
        }
    }
}

/// A relay Salesforce reports in error, in its words.
pub(super) fn in_error(f: &sf::Feedback) -> String {
    format!(
        "Salesforce reports the relay in error: {}: {}\nhint: the relay's feedback in Setup (Event Relays) says more; an unknown AWS account or region in its named credential is the usual cause. Fix it and run apply again",
        f.error_code.as_deref().unwrap_or("(no code)"),
        f.error_message.as_deref().unwrap_or("(no message)")
    )
}

pub(super) fn adopted(what: String, adopted: bool) -> String {
    if adopted {
        format!("{what} (it existed already and matches the spec: adopted)")
    } else {
        what
    }
}

pub(super) async fn build(ctx: &Ctx, step: &Step, slot: &mut Slot) -> StepResult {
    let a = &step.change.address;
    let action = step.change.action;
    let after = |f: &str| {
        step.change
            .fields
            .iter()
            .find(|x| x.field == f)
            .and_then(|x| x.after.clone())
    };
    match ctx.desired(a)?.clone() {
        Desired::Role {
            name,
            trust,
            permission,
            destination_arn,
            ..
        } => {
            let aws = ctx.account_of(a)?;
            if action == Action::Update {
                if after("trust_policy").is_some() {
                    aws_ops::update_trust(aws, &name, &trust.to_string())
                        .await
                        .map_err(e)?;
                }
                if after("permission_policy").is_some() {
                    aws_ops::put_role_policy(aws, &name, ROLE_POLICY, &permission.to_string())
                        .await
                        .map_err(e)?;
                }
                Ok(format!("role {name} policies set"))
            } else {
                aws_ops::put_role(
                    aws,
                    &name,
                    &trust.to_string(),
                    ROLE_POLICY,
                    &permission.to_string(),
                    &aws_ops::Tags::for_role(&destination_arn),
                )
                .await
                .map_err(e)?;
                Ok(format!("role {name} created"))
            }
        }
        Desired::BusPolicy {
            account,
            region,
            bus,
            bus_arn,
            sender,
            statement_id,
        } => {
            let aws = ctx.account_in_region(&account, &region).await?;
            aws_ops::put_bus_permission(&aws, &bus, &sender, &statement_id)
                .await
                .map_err(e)?;
            Ok(format!(
                "{bus_arn} now lets account {sender} put events on it ({statement_id})"
            ))
        }
        Desired::NamedCredential {
            org,
            name,
            endpoint,
        } => {
            let client = ctx.org_of(a)?;
            if action == Action::Update {
                let id = ctx
                    .observed
                    .orgs
                    .get(&org)
                    .and_then(|o| o.named_credentials.iter().find(|n| n.name == name))
                    .map(|n| n.id.clone())
                    .ok_or_else(|| format!("the named credential {name} is gone"))?;
                let label = ctx
                    .observed
                    .orgs
                    .get(&org)
                    .and_then(|o| o.named_credentials.iter().find(|n| n.name == name))
                    .and_then(|n| n.label.clone())
                    .unwrap_or_else(|| name.clone());
                sf::update(
                    client,
                    "NamedCredential",
                    &id,
                    &ctx.in_org(&org, &name),
                    sf::named_credential_definition(&label, &endpoint),
                )
                .await
                .map_err(e)?;
                return Ok(format!("named credential {name} → {endpoint}"));
            }
            let (_, was) = sf::create_or_adopt(client, &sf::named_credential(&name, &endpoint))
                .await
                .map_err(e)?;
            Ok(adopted(format!("named credential {name} created"), was))
        }
        Desired::Channel {
            name, channel_type, ..
        } => {
            let relay = relay_of(a);
            let (id, was) = sf::create_or_adopt(
                ctx.org_of(a)?,
                &sf::channel(
                    &name,
                    channel_type.as_str(),
                    &relayform_plan::diff::unfinished_label(relay),
                ),
            )
            .await
            .map_err(e)?;
            ctx.channel_ids
                .lock()
                .expect("ids")
                .insert(relay.to_owned(), id);
            Ok(adopted(
                format!("channel {} created", names::channel_full_name(&name)),
                was,
            ))
        }
        Desired::ChannelMember {
            name,
            channel,
            event,
            ..
        } => {
            let (_, was) =
                sf::create_or_adopt(ctx.org_of(a)?, &sf::channel_member(&name, &channel, &event))
                    .await
                    .map_err(e)?;
            Ok(adopted(format!("member {name} ({event}) created"), was))
        }
        Desired::Relay {
            org,
            name,
            channel,
            named_credential,
            error_recovery,
        } => {
            let relay = relay_of(a).to_owned();
            // The fingerprint is recorded last (see `Half::Fingerprint`); until then, no fingerprint.
            let label = relayform_plan::diff::unfinished_label(&relay);
            let client = ctx.org_of(a)?;
            if action == Action::Update {
                if after("error_recovery").is_some() {
                    ctx.patch_relay(a, &relay, |d| {
                        d.relay_option = recovery_option(error_recovery).to_owned();
                    })
                    .await?;
                }
                return Ok(format!("relay {name} updated"));
            }
            let new = sf::relay(
                &name,
                &label,
                &channel,
                &named_credential,
                recovery_option(error_recovery),
            );
            let (id, was) = sf::create_or_adopt(client, &new).await.map_err(e)?;
            // What a PATCH must repeat: what was created, or what the adopted relay holds.
            let def = if was {
                sf::RelayDefinition::read(client, &id).await.map_err(e)?
            } else {
                sf::RelayDefinition {
                    label: label.clone(),
                    channel: ctx.in_org(&org, &names::channel_full_name(&channel)),
                    destination: format!("callout:{}", ctx.in_org(&org, &named_credential)),
                    relay_option: recovery_option(error_recovery).to_owned(),
                    state: "STOP".into(),
                }
            };
            ctx.relay_defs
                .lock()
                .expect("defs")
                .insert(relay.clone(), def);
            ctx.relay_ids
                .lock()
                .expect("ids")
                .insert(relay.clone(), id.clone());
            Ok(adopted(format!("relay {name} created (stopped)"), was))
        }
        Desired::Association { relay, .. } => {
            let id = ctx.relay_id(&relay)?;
            let step_name = step.name();
            let aws = ctx.account_of(a)?;
            let tags = aws_ops::Tags::for_relay(&relay, &ctx.spec.relays[&relay].org.value);
            // Salesforce names the source first (RemoteResource); AWS shows it some time later, and
            // until then CreateEventBus for it is "not found": still pending, not a failure.
            let src = ctx
                .wait_for(
                    slot,
                    &step_name,
                    &format!("the partner event source of relay `{relay}` (Salesforce registers it, then AWS shows it)"),
                    || async {
                        let f = ctx.relay_feedback(&relay, &id).await?;
                        let Some(src) = f.remote_resource.clone() else {
                            if f.status.as_deref() == Some("ERROR") {
                                return Err(in_error(&f).into());
                            }
                            return Ok(None);
                        };
                        match aws_ops::associate(aws, &src, &tags).await {
                            Ok(()) => Ok(Some(src)),
                            Err(err) if err.kind == relayform_provider::ErrorKind::NotFound => {
                                Ok(None)
                            }
                            Err(err) => Err(e(err).into()),
                        }
                    },
                )
                .await?;
            ctx.sources
                .lock()
                .expect("sources")
                .insert(relay, src.clone());
            Ok(format!("partner event source {src} associated"))
        }
        Desired::Forwarding {
            relay,
            destination_arn,
            role,
            account,
        } => {
            let src = ctx
                .sources
                .lock()
                .expect("sources")
                .get(&relay)
                .cloned()
                .or_else(|| {
                    ctx.observed_relay(&relay)
                        .and_then(|r| r.remote_resource.clone())
                })
                .ok_or_else(|| format!("the partner source of relay `{relay}` is not known"))?;
            let acct = &ctx.spec.aws_accounts[&account];
            let partition = relayform_spec::rules::partition(&acct.region).unwrap_or("aws");
            let role_arn = format!("arn:{partition}:iam::{}:role/{role}", acct.account_id.value);
            aws_ops::put_forwarding(
                ctx.account_of(a)?,
                &aws_ops::Forwarding {
                    bus: &src,
                    rule: FORWARD_RULE,
                    target_id: FORWARD_TARGET,
                    destination_arn: &destination_arn,
                    role_arn: &role_arn,
                    tags: &aws_ops::Tags::for_relay(&relay, &ctx.spec.relays[&relay].org.value),
                },
            )
            .await
            .map_err(e)?;
            Ok(format!("rule {FORWARD_RULE} on {src} → {destination_arn}"))
        }
        Desired::RelayState { relay, state, .. } => {
            let id = ctx.relay_id(&relay)?;
            let want = admin_state(state);
            ctx.patch_relay(a, &relay, |d| d.state = want.to_owned())
                .await?;
            let status = match state {
                RelayState::Running => "RUNNING",
                RelayState::Paused => "PAUSED",
                RelayState::Stopped => "STOPPED",
            };
            let step_name = step.name();
            ctx.wait_for(
                slot,
                &step_name,
                &format!("relay `{relay}` to report {status}"),
                || async {
                    let f = ctx.relay_feedback(&relay, &id).await?;
                    match f.status.as_deref() {
                        Some(s) if s == status => Ok(Some(())),
                        Some("ERROR") => Err(in_error(&f).into()),
                        _ => Ok(None),
                    }
                },
            )
            .await?;
            Ok(format!(
                "relay {} is {status}",
                ctx.spec.relays[&relay].names.relay
            ))
        }
    }
}
