//! The contract between relayform's engine and its providers (Salesforce, AWS).
//!
//! It holds only plain value types, so that the engine, the planner and the providers can share them
//! without depending on one another or on any HTTP client or SDK: [`Secret`], the one error type
//! ([`Error`]) with the classes of failure ([`ErrorKind`]) that decide what the engine may do after an
//! error, and the observed state of an org ([`ObservedOrg`]) and of an account and region
//! ([`ObservedAccount`]) that refresh returns and the planner compares with the spec; and in [`act`],
//! what the executor asks of providers: the steps of an apply, their semantic operations, and the
//! traits the providers implement (`OrgApi`, `AccountApi`, `Connect`).

pub mod act;

use std::fmt;
use std::time::Duration;

/// A credential (token, client secret, password, secret access key). `Debug` prints `Secret(***)`;
/// there is no `Display`, so a secret cannot end up in a message by accident. [`Secret::expose`] is the
/// one way to the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for putting on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// What kind of failure an error is, which decides what the engine may do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The resource does not exist.
    NotFound,
    /// It exists already or is bound elsewhere: look it up and adopt it, or report the clash.
    Conflict,
    /// Refused as it stands (validation, permissions, quotas): retrying will not help.
    Rejected,
    /// Too many requests just now: retried with backoff.
    Throttled,
    /// The service or the network failed: retried with backoff.
    Transient,
    /// The credentials were refused, or are for another org or account than the spec pins.
    Unauthorized,
    /// The response was not what the API documents.
    Protocol,
}

impl ErrorKind {
    /// The kind's name in reports and JSON: `not_found`, `conflict`, `rejected`, `throttled`,
    /// `transient`, `unauthorized`, `protocol`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Rejected => "rejected",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Transient => "transient",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Protocol => "protocol",
        }
    }

    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Transient | ErrorKind::Throttled)
    }
}

/// How long a provider waits for one call, and for how long it retries one that was throttled or
/// failed in transit. Every call of both providers is bounded by it: nothing waits for ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience {
    /// To open a connection (TCP and TLS).
    pub connect: Duration,
    /// For one attempt, from sending the request to the last byte of the response.
    pub attempt: Duration,
    /// For all attempts of one call, the waits between them included. Retries are bounded by this
    /// time, not by a count: a call is retried while the next attempt can start within it (and
    /// that attempt has its whole `attempt` time, so a call ends within `total` + `attempt`).
    pub total: Duration,
}

impl Default for Patience {
    fn default() -> Self {
        Patience {
            connect: Duration::from_secs(10),
            attempt: Duration::from_secs(60),
            total: Duration::from_secs(180),
        }
    }
}

impl Patience {
    /// `attempt` for each attempt (and to connect, up to 10 s), three times that in all, as the
    /// default is: what `--call-timeout` sets.
    pub fn per_attempt(attempt: Duration) -> Self {
        Patience {
            connect: attempt.min(Duration::from_secs(10)),
            attempt,
            total: attempt.saturating_mul(3),
        }
    }
}

/// The scheme, host and port of a URL, for messages: never its path, query or userinfo, which can
/// carry data or credentials.
pub fn endpoint_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(format!("{:?}", Some(&s)), "Some(Secret(***))");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn endpoints_lose_path_query_and_userinfo() {
        assert_eq!(
            endpoint_of("https://user:pass@acme.my.salesforce.com:8443/services?sid=x"),
            "https://acme.my.salesforce.com:8443"
        );
        assert_eq!(
            endpoint_of("http://127.0.0.1:4599/sf/demo"),
            "http://127.0.0.1:4599"
        );
        assert_eq!(
            Patience::per_attempt(Duration::from_secs(60)),
            Patience::default()
        );
    }

    #[test]
    fn only_transient_and_throttled_are_retried() {
        assert!(ErrorKind::Transient.is_retryable() && ErrorKind::Throttled.is_retryable());
        assert!(!ErrorKind::Conflict.is_retryable() && !ErrorKind::Rejected.is_retryable());
    }
}

/// What an org holds of relayform's concern, as read in one refresh. Values are as Salesforce returns
/// them (for example `state` is `RUN`, `PAUSE` or `STOP`); the planner interprets them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObservedOrg {
    /// The 18-character org id.
    pub org_id: String,
    /// The org's namespace prefix, if it has one (packaging and some scratch orgs): full names and
    /// references between objects then carry `<prefix>__`.
    pub namespace: Option<String>,
    pub named_credentials: Vec<ObservedNamedCredential>,
    pub channels: Vec<ObservedChannel>,
    pub members: Vec<ObservedMember>,
    pub relays: Vec<ObservedRelay>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObservedNamedCredential {
    pub id: String,
    pub name: String,
    pub label: Option<String>,
    /// `arn:aws:<REGION>:<account>` for relay credentials.
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObservedChannel {
    pub id: String,
    /// The DeveloperName; the full name adds `__chn`.
    pub name: String,
    pub label: Option<String>,
    /// `event` or `data`.
    pub channel_type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObservedMember {
    pub id: String,
    pub name: String,
    /// The channel's id (queries return the id, not the name).
    pub channel_id: Option<String>,
    pub event: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObservedRelay {
    pub id: String,
    pub name: String,
    pub label: Option<String>,
    /// The channel's full name (`X__chn`).
    pub channel: Option<String>,
    /// `callout:<NamedCredential>`.
    pub destination: Option<String>,
    /// The JSON string `{"ReplayRecovery":"LATEST"|"EARLIEST"}`.
    pub relay_option: Option<String>,
    /// The admin state: `RUN`, `PAUSE` or `STOP`.
    pub state: Option<String>,
    /// From `EventRelayFeedback`: `RUNNING`, `PAUSED`, `STOPPED`, `ERROR`.
    pub status: Option<String>,
    /// The partner event source name, once Salesforce has registered it.
    pub remote_resource: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// What an AWS account and region hold of relayform's concern, as read in one refresh. Policy
/// documents are as IAM returns them (percent-encoded JSON); the planner decodes and compares them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObservedAccount {
    pub account_id: String,
    pub region: String,
    /// Salesforce partner event sources.
    pub sources: Vec<ObservedSource>,
    /// Partner event buses (associations) and the other buses asked about.
    pub buses: Vec<ObservedBus>,
    /// Rules (with their targets) on the partner buses asked about.
    pub rules: Vec<ObservedRule>,
    /// The roles asked about that exist.
    pub roles: Vec<ObservedRole>,
    /// The resource policies of the destination buses asked about (in this account, any region).
    pub bus_policies: Vec<ObservedBusPolicy>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObservedBusPolicy {
    pub region: String,
    pub bus: String,
    /// Whether the bus exists.
    pub exists: bool,
    /// Its resource policy document, if it has one.
    pub policy: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObservedSource {
    pub name: String,
    /// `PENDING`, `ACTIVE` or `DELETED`.
    pub state: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObservedBus {
    pub name: String,
    pub arn: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObservedRule {
    pub bus: String,
    pub name: String,
    pub event_pattern: Option<String>,
    pub state: Option<String>,
    pub targets: Vec<ObservedTarget>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObservedTarget {
    pub id: String,
    pub arn: String,
    pub role_arn: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObservedRole {
    pub name: String,
    pub arn: String,
    pub trust_policy: Option<String>,
    /// The inline policy asked about, if the role has it.
    pub policy: Option<(String, String)>,
}

/// Whether a value Salesforce returned names what `want` does: names compare case-insensitively, and
/// a namespaced org gives references with its prefix (`ns__Orders__chn`, `callout:ns__Relayform_...`).
pub fn same_reference(have: &str, want: &str) -> bool {
    if have.eq_ignore_ascii_case(want) {
        return true;
    }
    let (have, want) = match (have.strip_prefix("callout:"), want.strip_prefix("callout:")) {
        (Some(h), Some(w)) => (h, w),
        _ => (have, want),
    };
    have.split_once("__")
        .is_some_and(|(ns, rest)| !ns.is_empty() && rest.eq_ignore_ascii_case(want))
}

/// Whether two Salesforce ids name the same record: ids come back in the 15- or the 18-character form.
pub fn same_id(a: &str, b: &str) -> bool {
    a == b || (a.len() >= 15 && b.len() >= 15 && a.get(..15) == b.get(..15))
}

/// A failed provider call: which system and operation, what kind of failure, and the vendor's code and
/// message (never a credential).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// `Salesforce` or `AWS`.
    pub system: &'static str,
    pub kind: ErrorKind,
    /// What was being done (`tooling.create EventRelayConfig`, `events:CreateEventBus`, ...).
    pub operation: String,
    pub status: Option<u16>,
    /// The vendor's error code (`FIELD_INTEGRITY_EXCEPTION`, `ResourceNotFoundException`, ...).
    pub code: Option<String>,
    pub message: String,
    /// How long the server asked us to wait, in milliseconds.
    pub retry_after_ms: Option<u64>,
}

impl Error {
    pub fn new(
        system: &'static str,
        kind: ErrorKind,
        operation: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error {
            system,
            kind,
            operation: operation.into(),
            status: None,
            code: None,
            message: message.into(),
            retry_after_ms: None,
        }
    }

    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: ", self.system, self.operation)?;
        if let Some(code) = &self.code {
            write!(f, "{code}: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(status) = self.status {
            write!(f, " (HTTP {status})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}
