//! The few calls `relayform conformance` makes beyond those of plan and apply: it asks an account
//! questions with temporary resources of its own.

use crate::{Aws, Error, classify};

/// A partner event source's state (`PENDING`, `ACTIVE`, `DELETED`), or `None` while the account
/// does not see it.
pub async fn source_state(aws: &Aws, name: &str) -> Result<Option<String>, Error> {
    match aws
        .events
        .describe_event_source()
        .name(name)
        .send()
        .await
        .map_err(|e| classify("events:DescribeEventSource", &e))
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
        .send()
        .await
        .map(|o| o.event_bus_arn().unwrap_or_default().to_owned())
        .map_err(|e| classify("events:CreateEventBus", &e))
}
