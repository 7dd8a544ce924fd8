//! What each step does: its operation, through the providers' traits, with the waits some need
//! (a partner source Salesforce registers after a relay exists, a state change settling) and the
//! values steps hand on to later ones.

use crate::Failure;
use crate::run::{Run, StepError};
use crate::wait::Slot;
use relayform_provider::ErrorKind;
use relayform_provider::act::{
    AccountApi, AccountAt, Feedback, Forwarding, Made, Op, OrgApi, OrgObject, Ref, STATUS_ERROR,
    Step,
};
use std::sync::Arc;
use std::time::Instant;

type StepResult = Result<String, StepError>;

pub(crate) async fn run_step(run: &Run, step: &Step, slot: &mut Slot) -> StepResult {
    match &step.op {
        Op::Nothing(words) => Ok(words.clone()),
        Op::Refuse(why) => Err(why.clone().into()),
        Op::Create {
            org,
            object,
            what,
            record,
        } => {
            let created = run.org(org)?.create(object).await?;
            if let Some((made, relay)) = record {
                run.record(*made, relay, &created.id);
            }
            Ok(adopted(format!("{what} created"), created.adopted))
        }
        Op::Update {
            org,
            id,
            object,
            done,
        } => {
            let id = run.resolve(id)?;
            run.org(org)?.update(&id, object).await?;
            Ok(done.clone())
        }
        Op::Delete {
            org,
            kind,
            id,
            name,
        } => {
            run.org(org)?.delete(*kind, id).await?;
            Ok(format!("{} {name} deleted", kind.noun()))
        }
        Op::CreateRelay {
            org,
            relay,
            object,
            stored,
        } => {
            let api = run.org(org)?;
            let created = api.create(&OrgObject::Relay(object.clone())).await?;
            // What a PATCH must repeat: what was created, or what the adopted relay holds.
            let def = if created.adopted {
                let mut def = api.relay(&created.id).await?;
                def.name = stored.name.clone();
                def
            } else {
                stored.clone()
            };
            run.defs.lock().expect("defs").insert(relay.clone(), def);
            run.record(Made::RelayId, relay, &created.id);
            run.touch(&created.id);
            Ok(adopted(
                format!("relay {} created (stopped)", object.name),
                created.adopted,
            ))
        }
        Op::PatchRelay {
            org,
            relay,
            id,
            base,
            recovery,
            state,
            done,
        } => {
            let id = run.resolve(id)?;
            let mut def = run
                .defs
                .lock()
                .expect("defs")
                .get(relay)
                .cloned()
                .or_else(|| base.clone())
                .ok_or_else(|| format!("the relay `{relay}` does not exist"))?;
            if let Some(r) = recovery {
                def.recovery = *r;
            }
            if let Some(s) = state {
                def.state = *s;
            }
            let api = run.org(org)?;
            api.update(&id, &OrgObject::Relay(def.clone())).await?;
            run.touch(&id);
            run.defs.lock().expect("defs").insert(relay.clone(), def);
            if let Some(state) = state {
                let status = state.reported();
                run.wait_for(
                    slot,
                    &step.name,
                    &format!("relay `{relay}` to report {status}"),
                    || async {
                        let f = run.relay_feedback(org, &id).await?;
                        match f.status.as_deref() {
                            Some(s) if s == status => Ok(Some(())),
                            Some(STATUS_ERROR) => Err(in_error(&f).into()),
                            _ => Ok(None),
                        }
                    },
                )
                .await?;
            }
            Ok(done.clone())
        }
        Op::DeleteRelay {
            org,
            id,
            name,
            partner,
        } => {
            let mut note = None;
            if let Some(p) = partner {
                let src = &p.source;
                if p.moved {
                    note = Some(match run.connect.account(&p.at).await? {
                        None => format!(
                            "its old partner bus {src} in account {}, {} is left: the spec has no credentials for that account",
                            p.at.account_id, p.at.region
                        ),
                        Some(aws) => {
                            aws.delete_forwarding(src, &p.rule, &p.target_id).await?;
                            aws.delete_bus(src).await?;
                            format!("its old partner bus {src} in {} deleted", p.at.region)
                        }
                    });
                } else if p.has_rule || p.has_bus {
                    let aws = run.account(&p.at).await?;
                    if p.has_rule {
                        aws.delete_forwarding(src, &p.rule, &p.target_id).await?;
                    }
                    if p.has_bus {
                        aws.delete_bus(src).await?;
                        note = Some(format!("its old partner bus {src} deleted"));
                    }
                }
            }
            run.org(org)?
                .delete(relayform_provider::act::ObjectKind::Relay, id)
                .await?;
            Ok(match note {
                Some(n) => format!("relay {name} deleted; {n}"),
                None => format!("relay {name} deleted"),
            })
        }
        Op::Associate {
            org,
            at,
            relay,
            relay_id,
            tags,
        } => {
            let id = run.resolve(relay_id)?;
            let aws = run.account(at).await?;
            // Salesforce names the source first (RemoteResource); AWS shows it some time later, and
            // until then creating the bus for it is "not found": still pending, not a failure.
            let src = run
                .wait_for(
                    slot,
                    &step.name,
                    &format!("the partner event source of relay `{relay}` (Salesforce registers it, then AWS shows it)"),
                    || async {
                        let f = run.relay_feedback(org, &id).await?;
                        let Some(src) = f.remote_resource.clone() else {
                            if f.status.as_deref() == Some(STATUS_ERROR) {
                                return Err(in_error(&f).into());
                            }
                            return Ok(None);
                        };
                        match aws.associate(&src, tags).await {
                            Ok(()) => Ok(Some(src)),
                            Err(err) if err.kind == ErrorKind::NotFound => Ok(None),
                            Err(err) => Err(err.into()),
                        }
                    },
                )
                .await?;
            run.record(Made::Source, relay, &src);
            Ok(format!("partner event source {src} associated"))
        }
        Op::Forward {
            at,
            source,
            rule,
            target_id,
            destination_arn,
            role_arn,
            tags,
        } => {
            let bus = run.resolve(source)?;
            run.account(at)
                .await?
                .put_forwarding(&Forwarding {
                    bus: bus.clone(),
                    rule: rule.clone(),
                    target_id: target_id.clone(),
                    destination_arn: destination_arn.clone(),
                    role_arn: role_arn.clone(),
                    tags: tags.clone(),
                })
                .await?;
            Ok(format!("rule {rule} on {bus} → {destination_arn}"))
        }
        Op::DeleteForwarding {
            at,
            bus,
            rule,
            target_id,
        } => {
            run.account(at)
                .await?
                .delete_forwarding(bus, rule, target_id)
                .await?;
            Ok(format!("rule {rule} removed from {bus}"))
        }
        Op::DeleteBus { at, bus } => {
            run.account(at).await?.delete_bus(bus).await?;
            Ok(format!("partner bus {bus} deleted"))
        }
        Op::PutRole { at, role } => {
            run.account(at).await?.put_role(role).await?;
            Ok(format!("role {} created", role.name))
        }
        Op::SetRolePolicies {
            at,
            name,
            trust,
            policy,
        } => {
            let aws = run.account(at).await?;
            if let Some(trust) = trust {
                aws.set_trust(name, trust).await?;
            }
            if let Some((policy_name, doc)) = policy {
                aws.set_role_policy(name, policy_name, doc).await?;
            }
            Ok(format!("role {name} policies set"))
        }
        Op::DeleteRole {
            at,
            name,
            policy_name,
        } => {
            run.account(at)
                .await?
                .delete_role(name, policy_name)
                .await?;
            Ok(format!("role {name} deleted"))
        }
        Op::AllowSender {
            at,
            bus,
            bus_arn,
            sender,
            sid,
        } => {
            run.account(at)
                .await?
                .allow_sender(bus, sender, sid)
                .await?;
            Ok(format!(
                "{bus_arn} now lets account {sender} put events on it ({sid})"
            ))
        }
        Op::RemoveStatement { at, bus, sid } => {
            run.account(at).await?.remove_statement(bus, sid).await?;
            Ok(format!(
                "statement {sid} removed from bus {bus} ({})",
                at.region
            ))
        }
    }
}

/// A relay Salesforce reports in error, in its words (its error code kept).
fn in_error(f: &Feedback) -> Failure {
    Failure {
        code: f.error_code.clone(),
        ..Failure::new(
            None,
            &format!(
                "Salesforce reports the relay in error: {}: {}\nhint: the relay's feedback in Setup (Event Relays) says more; an unknown AWS account or region in its named credential is the usual cause. Fix it and run apply again",
                f.error_code.as_deref().unwrap_or("(no code)"),
                f.error_message.as_deref().unwrap_or("(no message)")
            ),
        )
    }
}

fn adopted(what: String, adopted: bool) -> String {
    if adopted {
        format!("{what} (it existed already and matches the spec: adopted)")
    } else {
        what
    }
}

impl Run {
    pub(crate) fn org(&self, org: &str) -> Result<Arc<dyn OrgApi>, StepError> {
        self.connect.org(org).map_err(StepError::from)
    }

    async fn account(&self, at: &AccountAt) -> Result<Arc<dyn AccountApi>, StepError> {
        self.connect
            .account(at)
            .await?
            .ok_or_else(|| format!("no connection to {at}").into())
    }

    fn record(&self, made: Made, relay: &str, value: &str) {
        self.made
            .lock()
            .expect("made")
            .insert((made, relay.to_owned()), value.to_owned());
    }

    fn touch(&self, relay_id: &str) {
        self.touched
            .lock()
            .expect("touched")
            .insert(relay_id.to_owned(), Instant::now());
    }

    /// What an earlier step of this run recorded, else what the refresh saw.
    fn resolve(&self, r: &Ref) -> Result<String, StepError> {
        if let Some(key) = &r.made
            && let Some(v) = self.made.lock().expect("made").get(key)
        {
            return Ok(v.clone());
        }
        r.seen.clone().ok_or_else(|| r.missing.clone().into())
    }
}
