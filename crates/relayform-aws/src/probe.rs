//! The few calls `relayform conformance` makes beyond those of plan and apply: it asks an account
//! questions with temporary resources of its own.

use crate::{Aws, Error};

/// A partner event source's state (`PENDING`, `ACTIVE`, `DELETED`), or `None` while the account
/// does not see it.
pub async fn source_state(aws: &Aws, name: &str) -> Result<Option<String>, Error> {
    match aws
        .events
        .describe_event_source()
        .name(name)
        .send()
        .await
        .map_err(|e| aws.classify("events:DescribeEventSource", &e))
    {
        Ok(out) => Ok(Some(
            out.state()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
        )),
        Err(e) if e.kind == crate::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates a custom event bus; returns its ARN.
pub async fn create_bus(aws: &Aws, name: &str) -> Result<String, Error> {
    aws.events
        .create_event_bus()
        .name(name)
        .set_tags(Some(crate::ops::event_tags(&crate::ops::Tags::managed())))
        .send()
        .await
        .map(|o| o.event_bus_arn().unwrap_or_default().to_owned())
        .map_err(|e| aws.classify("events:CreateEventBus", &e))
}

/// Creates a CloudWatch Logs group with a resource policy that lets EventBridge write to it;
/// returns the ARN a rule's target names.
pub async fn create_log_group(aws: &Aws, group: &str, policy_name: &str) -> Result<String, Error> {
    aws.logs
        .create_log_group()
        .log_group_name(group)
        .tags(crate::ops::MANAGED_BY.0, crate::ops::MANAGED_BY.1)
        .send()
        .await
        .map_err(|e| aws.classify("logs:CreateLogGroup", &e))?;
    let account = aws.caller_account().await?;
    let arn = format!("arn:aws:logs:{}:{account}:log-group:{group}", aws.region);
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": ["events.amazonaws.com", "delivery.logs.amazonaws.com"]},
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": format!("{arn}:*"),
        }],
    });
    aws.logs
        .put_resource_policy()
        .policy_name(policy_name)
        .policy_document(policy.to_string())
        .send()
        .await
        .map_err(|e| aws.classify("logs:PutResourcePolicy", &e))?;
    Ok(arn)
}

/// Deletes the log group and its resource policy; either already gone counts as deleted.
pub async fn delete_log_group(aws: &Aws, group: &str, policy_name: &str) -> Result<(), Error> {
    let gone = |r: Result<(), Error>| match r {
        Err(e) if e.kind == crate::ErrorKind::NotFound => Ok(()),
        other => other,
    };
    gone(
        aws.logs
            .delete_resource_policy()
            .policy_name(policy_name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws.classify("logs:DeleteResourcePolicy", &e)),
    )?;
    gone(
        aws.logs
            .delete_log_group()
            .log_group_name(group)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws.classify("logs:DeleteLogGroup", &e)),
    )
}

/// The messages written to a log group (EventBridge writes each event as its JSON envelope).
pub async fn log_messages(aws: &Aws, group: &str) -> Result<Vec<String>, Error> {
    let out = aws
        .logs
        .filter_log_events()
        .log_group_name(group)
        .send()
        .await
        .map_err(|e| aws.classify("logs:FilterLogEvents", &e))?;
    Ok(out
        .events()
        .iter()
        .filter_map(|e| e.message().map(str::to_owned))
        .collect())
}

/// Puts a rule on `bus` that sends everything from Salesforce to `target_arn` (a log group: no role).
pub async fn capture(aws: &Aws, bus: &str, rule: &str, target_arn: &str) -> Result<(), Error> {
    let target = crate::ops::target("capture", target_arn, None)?;
    let tags = crate::ops::Tags::managed();
    crate::ops::put_rule_and_target(aws, bus, rule, None, target, &tags).await
}
