//! The changes apply makes in an account and region, one resource at a time.
//!
//! Every operation converges: a create that finds the resource already there adopts it (and then sets
//! what it must), a delete that finds it gone is done. So a run that failed half-way, or whose response
//! was lost, is simply run again.

use crate::{Aws, Error, ErrorKind};
use aws_sdk_eventbridge::types::Target as EbTarget;

pub use relayform_provider::act::{DESTINATION_TAG, MANAGED_BY, ORG_TAG, RELAY_TAG, Tags};

fn iam_tags(tags: &Tags) -> Vec<aws_sdk_iam::types::Tag> {
    tags.pairs()
        .filter_map(|(k, v)| {
            aws_sdk_iam::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .ok()
        })
        .collect()
}

pub(crate) fn event_tags(tags: &Tags) -> Vec<aws_sdk_eventbridge::types::Tag> {
    tags.pairs()
        .filter_map(|(k, v)| {
            aws_sdk_eventbridge::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .ok()
        })
        .collect()
}

fn gone_is_done(r: Result<(), Error>) -> Result<(), Error> {
    match r {
        Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Creates the forwarding role with its trust policy, inline permission policy and tags, or brings
/// an existing role of that name to the policies.
pub async fn put_role(
    aws: &Aws,
    name: &str,
    trust: &str,
    policy_name: &str,
    policy: &str,
    tags: &Tags,
) -> Result<(), Error> {
    let created = aws
        .iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust)
        .description(
            "Lets EventBridge forward Salesforce events to the destination bus (relayform)",
        )
        .set_tags(Some(iam_tags(tags)))
        .send()
        .await
        .map_err(|e| aws.classify("iam:CreateRole", &e));
    match created {
        Ok(_) => {}
        Err(e) if e.kind == ErrorKind::Conflict => update_trust(aws, name, trust).await?,
        Err(e) => return Err(e),
    }
    put_role_policy(aws, name, policy_name, policy).await
}

pub async fn update_trust(aws: &Aws, name: &str, trust: &str) -> Result<(), Error> {
    aws.iam
        .update_assume_role_policy()
        .role_name(name)
        .policy_document(trust)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| aws.classify("iam:UpdateAssumeRolePolicy", &e))
}

pub async fn put_role_policy(
    aws: &Aws,
    name: &str,
    policy_name: &str,
    policy: &str,
) -> Result<(), Error> {
    aws.iam
        .put_role_policy()
        .role_name(name)
        .policy_name(policy_name)
        .policy_document(policy)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| aws.classify("iam:PutRolePolicy", &e))
}

/// Deletes the role: its inline policy first (IAM refuses to delete a role that has one).
pub async fn delete_role(aws: &Aws, name: &str, policy_name: &str) -> Result<(), Error> {
    gone_is_done(
        aws.iam
            .delete_role_policy()
            .role_name(name)
            .policy_name(policy_name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws.classify("iam:DeleteRolePolicy", &e)),
    )?;
    gone_is_done(
        aws.iam
            .delete_role()
            .role_name(name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws.classify("iam:DeleteRole", &e)),
    )
}

/// Associates a partner event source: creates its event bus (same name), tagged. An existing bus
/// for the source is adopted.
pub async fn associate(aws: &Aws, source: &str, tags: &Tags) -> Result<(), Error> {
    let created = aws
        .events
        .create_event_bus()
        .name(source)
        .event_source_name(source)
        .set_tags(Some(event_tags(tags)))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| aws.classify("events:CreateEventBus", &e));
    match created {
        Err(e) if e.kind == ErrorKind::Conflict => Ok(()),
        other => other,
    }
}

/// Deletes a partner event bus (the association). EventBridge refuses while the bus has rules: a
/// rule that is still there after relayform removed its own is someone else's, and is never removed
/// for them.
pub async fn delete_bus(aws: &Aws, bus: &str) -> Result<(), Error> {
    gone_is_done(
        aws.events
            .delete_event_bus()
            .name(bus)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                let e = aws.classify("events:DeleteEventBus", &e);
                if e.code.as_deref() == Some("ValidationException")
                    && e.message.to_lowercase().contains("rule")
                {
                    Error {
                        message: format!(
                            "{}\nhint: the partner bus {bus} has rules that relayform did not make; it leaves them alone, so delete or move them yourself and run again",
                            e.message
                        ),
                        ..e
                    }
                } else {
                    e
                }
            }),
    )
}

/// The forwarding of a partner bus to a destination bus: a rule matching every Salesforce event, with
/// one target through the role.
#[derive(Debug, Clone)]
pub struct Forwarding<'a> {
    pub bus: &'a str,
    pub rule: &'a str,
    pub target_id: &'a str,
    pub destination_arn: &'a str,
    pub role_arn: &'a str,
    pub tags: &'a Tags,
}

/// The rule's pattern: every event on the partner bus (they all come from Salesforce).
pub const FORWARD_PATTERN: &str = r#"{"source":[{"prefix":"aws.partner/salesforce.com"}]}"#;

/// Puts the rule and its target (both calls are idempotent).
pub async fn put_forwarding(aws: &Aws, f: &Forwarding<'_>) -> Result<(), Error> {
    let target = target(f.target_id, f.destination_arn, Some(f.role_arn))?;
    put_rule_and_target(
        aws,
        f.bus,
        f.rule,
        Some("Forwards Salesforce events to the destination bus (relayform)"),
        target,
        f.tags,
    )
    .await
    .map_err(|e| receiver_refused(e, f))
}

/// A rule target: an id, an ARN and, for a bus in another account or region, the role to send with.
pub(crate) fn target(id: &str, arn: &str, role_arn: Option<&str>) -> Result<EbTarget, Error> {
    EbTarget::builder()
        .id(id)
        .arn(arn)
        .set_role_arn(role_arn.map(str::to_owned))
        .build()
        .map_err(|e| {
            Error::new(
                crate::SYSTEM,
                ErrorKind::Rejected,
                "events:PutTargets",
                e.to_string(),
            )
        })
}

/// `PutRule` matching every Salesforce event on `bus`, then `PutTargets` with `target`; a target
/// EventBridge refuses in the answer (`FailedEntryCount`) is an error too.
pub(crate) async fn put_rule_and_target(
    aws: &Aws,
    bus: &str,
    rule: &str,
    description: Option<&str>,
    target: EbTarget,
    tags: &Tags,
) -> Result<(), Error> {
    aws.events
        .put_rule()
        .name(rule)
        .event_bus_name(bus)
        .event_pattern(FORWARD_PATTERN)
        .set_description(description.map(str::to_owned))
        .set_tags(Some(event_tags(tags)))
        .send()
        .await
        .map_err(|e| aws.classify("events:PutRule", &e))?;
    let out = aws
        .events
        .put_targets()
        .rule(rule)
        .event_bus_name(bus)
        .targets(target)
        .send()
        .await
        .map_err(|e| aws.classify("events:PutTargets", &e))?;
    if out.failed_entry_count() > 0 {
        let why = out
            .failed_entries()
            .iter()
            .map(|x| {
                format!(
                    "{}: {}",
                    x.error_code().unwrap_or("?"),
                    x.error_message().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        return Err(Error::new(
            crate::SYSTEM,
            ErrorKind::Rejected,
            "events:PutTargets",
            why,
        ));
    }
    Ok(())
}

/// EventBridge refuses a target on a bus in another account or region whose resource policy does not
/// allow the sender: that is about the receiving bus's policy, not about relayform's credentials.
fn receiver_refused(e: Error, f: &Forwarding<'_>) -> Error {
    if e.operation != "events:PutTargets" || e.code.as_deref() != Some("AccessDeniedException") {
        return e;
    }
    let account = f
        .role_arn
        .split(':')
        .nth(4)
        .unwrap_or("the relay's account");
    Error {
        kind: ErrorKind::Rejected,
        message: format!(
            "{}\nhint: the destination bus {} must allow account {account} to put events on it (its resource policy); relayform adds that statement when the spec has credentials for the destination's account, otherwise the plan shows the statement to add",
            e.message, f.destination_arn
        ),
        ..e
    }
}

/// Adds (or replaces) the statement `sid` on a bus's resource policy, letting `sender` put events on
/// it.
pub async fn put_bus_permission(
    aws: &Aws,
    bus: &str,
    sender: &str,
    sid: &str,
) -> Result<(), Error> {
    aws.events
        .put_permission()
        .event_bus_name(bus)
        .action("events:PutEvents")
        .principal(sender)
        .statement_id(sid)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| aws.classify("events:PutPermission", &e))
}

/// Removes the statement `sid` from a bus's resource policy; one already gone counts as removed.
pub async fn remove_bus_permission(aws: &Aws, bus: &str, sid: &str) -> Result<(), Error> {
    gone_is_done(
        aws.events
            .remove_permission()
            .event_bus_name(bus)
            .statement_id(sid)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws.classify("events:RemovePermission", &e)),
    )
}

/// Removes the rule: its target first (EventBridge refuses to delete a rule that has targets).
pub async fn delete_forwarding(
    aws: &Aws,
    bus: &str,
    rule: &str,
    target_id: &str,
) -> Result<(), Error> {
    gone_is_done(
        aws.events
            .remove_targets()
            .rule(rule)
            .event_bus_name(bus)
            .ids(target_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws.classify("events:RemoveTargets", &e)),
    )?;
    gone_is_done(
        aws.events
            .delete_rule()
            .name(rule)
            .event_bus_name(bus)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws.classify("events:DeleteRule", &e)),
    )
}

/// The account and region's resources, for the executor.
#[async_trait::async_trait]
impl relayform_provider::act::AccountApi for Aws {
    async fn put_role(&self, role: &relayform_provider::act::Role) -> Result<(), Error> {
        put_role(
            self,
            &role.name,
            &role.trust,
            &role.policy_name,
            &role.policy,
            &role.tags,
        )
        .await
    }

    async fn set_trust(&self, role: &str, trust: &str) -> Result<(), Error> {
        update_trust(self, role, trust).await
    }

    async fn set_role_policy(
        &self,
        role: &str,
        policy_name: &str,
        policy: &str,
    ) -> Result<(), Error> {
        put_role_policy(self, role, policy_name, policy).await
    }

    async fn delete_role(&self, role: &str, policy_name: &str) -> Result<(), Error> {
        delete_role(self, role, policy_name).await
    }

    async fn associate(&self, source: &str, tags: &Tags) -> Result<(), Error> {
        associate(self, source, tags).await
    }

    async fn delete_bus(&self, bus: &str) -> Result<(), Error> {
        delete_bus(self, bus).await
    }

    async fn put_forwarding(&self, f: &relayform_provider::act::Forwarding) -> Result<(), Error> {
        put_forwarding(
            self,
            &Forwarding {
                bus: &f.bus,
                rule: &f.rule,
                target_id: &f.target_id,
                destination_arn: &f.destination_arn,
                role_arn: &f.role_arn,
                tags: &f.tags,
            },
        )
        .await
    }

    async fn delete_forwarding(&self, bus: &str, rule: &str, target_id: &str) -> Result<(), Error> {
        delete_forwarding(self, bus, rule, target_id).await
    }

    async fn allow_sender(&self, bus: &str, sender: &str, sid: &str) -> Result<(), Error> {
        put_bus_permission(self, bus, sender, sid).await
    }

    async fn remove_statement(&self, bus: &str, sid: &str) -> Result<(), Error> {
        remove_bus_permission(self, bus, sid).await
    }
}
