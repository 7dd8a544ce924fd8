//! The typed spec: what a valid set of spec files says, with every name resolved and derived.

use crate::diagnostic::Location;
use std::collections::BTreeMap;

/// A value together with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    pub at: Location,
}

impl<T> Located<T> {
    pub fn new(value: T, at: Location) -> Self {
        Located { value, at }
    }
}

impl<T> std::ops::Deref for Located<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// Everything the spec files declare, merged. Maps are ordered by name so that all output is
/// deterministic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spec {
    pub orgs: BTreeMap<String, Org>,
    pub aws_accounts: BTreeMap<String, AwsAccount>,
    pub relays: BTreeMap<String, Relay>,
}

pub type Labels = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    pub name: String,
    /// Where the org was declared (its name's position).
    pub at: Location,
    pub connection: OrgConnection,
    /// The org id the org must turn out to have, 15 or 18 characters as written.
    pub org_id: Option<Located<String>>,
    pub labels: Labels,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrgConnection {
    /// The embedded simulator, with its demo credentials.
    Simulator,
    /// A real org at its My Domain URL.
    Remote {
        instance_url: Located<String>,
        auth: SalesforceAuth,
    },
}

/// How to obtain a Salesforce access token. Secrets are only ever references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SalesforceAuth {
    /// OAuth 2.0 JWT bearer flow: a connected app's consumer key, a user, and the app's private key.
    JwtBearer {
        client_id: String,
        username: String,
        private_key: SecretRef,
        login_url: Option<String>,
    },
    /// OAuth 2.0 client credentials flow of a connected app with a run-as user.
    ClientCredentials {
        client_id: String,
        client_secret: SecretRef,
    },
    /// OAuth 2.0 refresh token flow.
    RefreshToken {
        client_id: String,
        client_secret: Option<SecretRef>,
        refresh_token: SecretRef,
    },
    /// An org the `sf` CLI is logged in to, by alias or username.
    SfCli { alias: String },
    /// A ready access token (for short-lived automation).
    AccessToken { token: SecretRef },
}

/// Where a secret is read from at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    Env(String),
    File(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsAccount {
    pub name: String,
    pub at: Location,
    pub account_id: Located<String>,
    pub region: Located<String>,
    pub connection: AwsConnection,
    pub labels: Labels,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsConnection {
    /// The embedded simulator, with its demo access keys.
    Simulator,
    Remote {
        credentials: AwsCredentials,
        endpoint_url: Option<Located<String>>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsCredentials {
    /// The SDK's default provider chain (environment, profile, SSO, instance role, ...).
    DefaultChain,
    /// A named profile from the shared AWS config files.
    Profile(String),
    /// A role assumed with STS, from the default chain or a named profile.
    AssumeRole {
        role_arn: String,
        external_id: Option<String>,
        session_name: Option<String>,
        source_profile: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChannelType {
    /// Custom platform events (`__e`).
    Event,
    /// Change data capture (`ChangeEvent`).
    Data,
}

impl ChannelType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelType::Event => "event",
            ChannelType::Data => "data",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorRecovery {
    /// Replay everything still retained (up to 72 hours) after an outage.
    Earliest,
    /// Skip what was published during an outage.
    Latest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RelayState {
    Running,
    Paused,
    Stopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ensure {
    Present,
    Absent,
}

/// Where relayed events are forwarded, resolved to a full address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Destination {
    pub account_id: String,
    pub region: String,
    pub bus_name: String,
}

impl Destination {
    pub fn arn(&self) -> String {
        let partition = crate::rules::partition(&self.region).unwrap_or("aws");
        format!(
            "arn:{partition}:events:{}:{}:event-bus/{}",
            self.region, self.account_id, self.bus_name
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay {
    pub name: String,
    pub at: Location,
    pub org: Located<String>,
    pub aws_account: Located<String>,
    pub channel_type: ChannelType,
    pub events: Vec<Located<String>>,
    pub error_recovery: ErrorRecovery,
    pub state: RelayState,
    pub destination: Option<Located<Destination>>,
    pub ensure: Ensure,
    pub names: RelayNames,
}

/// The names of the objects a relay consists of, derived (see [`crate::names`]) or overridden.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayNames {
    /// `EventRelayConfig` DeveloperName.
    pub relay: String,
    /// `PlatformEventChannel` DeveloperName (the full name adds `__chn`).
    pub channel: String,
    /// `NamedCredential` DeveloperName.
    pub named_credential: String,
    /// IAM role for forwarding; only with a destination.
    pub role: Option<String>,
}
