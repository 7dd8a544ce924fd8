//! The simulator's configuration: which orgs and AWS accounts exist, with what credentials and events.
//!
//! Without a file, [`Config::default`] gives one demo org and one demo account (documented in
//! `simulator/README.md`). The credentials here are the simulator's own demo values; they open
//! nothing outside it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub orgs: Vec<OrgConfig>,
    pub aws_accounts: Vec<AccountConfig>,
    pub settings: Settings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgConfig {
    /// The My Domain name: the org's instance URL is `<base>/sf/<my_domain>`.
    pub my_domain: String,
    /// A 15- or 18-character `00D` id; derived from the position in the list when left out.
    #[serde(default)]
    pub org_id: Option<String>,
    #[serde(default)]
    pub users: Vec<UserConfig>,
    #[serde(default)]
    pub connected_apps: Vec<AppConfig>,
    /// Platform events (`Order_Placed__e`) and their fields.
    #[serde(default)]
    pub platform_events: BTreeMap<String, Vec<String>>,
    /// Objects with change data capture (`Account`) and their fields.
    #[serde(default)]
    pub cdc_entities: BTreeMap<String, Vec<String>>,
    /// Daily API request allocation (`REQUEST_LIMIT_EXCEEDED` past it).
    #[serde(default = "default_api_limit")]
    pub api_request_limit: u64,
    /// Platform events defined with standard volume (legacy): custom channels take only high-volume
    /// ones, so these cannot be channel members.
    #[serde(default)]
    pub standard_volume_events: Vec<String>,
    /// The org's allocations for channels and their members.
    #[serde(default)]
    pub allocations: Allocations,
    /// A namespace (a packaging or scratch org's): Tooling objects' full names and the references
    /// between them then carry `<prefix>__`, while DeveloperNames stay bare.
    #[serde(default)]
    pub namespace_prefix: Option<String>,
}

/// Salesforce's documented default allocations for custom channels and what they select
/// (Performance and Unlimited editions; Developer and Professional orgs allow 5 distinct platform
/// events in channels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Allocations {
    /// Custom platform event channels (`channelType: event`).
    pub event_channels: usize,
    /// Custom change data capture channels (`channelType: data`).
    pub data_channels: usize,
    /// Distinct custom platform events across all channel members.
    pub platform_events_in_channels: usize,
    /// Distinct entities selected for change data capture across all channel members.
    pub cdc_entities_in_channels: usize,
}

impl Default for Allocations {
    fn default() -> Self {
        Allocations {
            event_channels: 100,
            data_channels: 100,
            platform_events_in_channels: 50,
            cdc_entities_in_channels: 5,
        }
    }
}

fn default_api_limit() -> u64 {
    1_000_000
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub username: String,
    #[serde(default)]
    pub password: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<String>,
    /// PEM public key or certificate that verifies JWT bearer assertions (RS256).
    #[serde(default)]
    pub certificate: Option<String>,
    /// The user the client credentials flow runs as.
    #[serde(default)]
    pub run_as: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    pub account_id: String,
    #[serde(default)]
    pub access_keys: Vec<AccessKeyConfig>,
    /// Custom event buses that exist from the start (destination buses, typically).
    #[serde(default)]
    pub event_buses: Vec<BusConfig>,
}

/// A custom event bus of an account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusConfig {
    pub region: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKeyConfig {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// How the simulated world behaves: its delays, its clock, and the vendor rules where the vendors'
/// documentation leaves room for more than one reading. Every rule defaults to the **stricter**
/// reading (`../shared/reference/vendor-rules.md` has the evidence); each is a named setting so that a
/// user, or `relayform conformance`, can switch it to what a real org or account does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "RawSettings")]
pub struct Settings {
    /// `fast` (seconds: for tests and demos) or `documented` (the magnitudes the vendors document:
    /// minutes). Decides the delays below unless they are given.
    pub timing: Timing,
    /// Seconds of simulated time an access token lives.
    pub token_lifetime_seconds: u64,
    /// Seconds from relay creation until Salesforce fills `EventRelayFeedback.RemoteResource`.
    pub partner_source_delay_seconds: u64,
    /// Seconds after that until the partner event source is visible in AWS (`CreateEventBus` for it
    /// is `ResourceNotFoundException` until then).
    pub source_visibility_lag_seconds: u64,
    /// Seconds until a relay state change takes effect.
    pub state_change_delay_seconds: u64,
    /// Rows per query page (Salesforce uses 2000).
    pub query_page_size: usize,
    /// Seconds of simulated time events are retained on a channel (72 hours).
    pub retention_seconds: u64,
    /// `wall` (simulated time runs with the wall clock) or `frozen` (moves only when advanced).
    pub clock: ClockMode,
    /// With a `wall` clock: simulated milliseconds per wall-clock millisecond (1 = real time), so
    /// that `documented` timing can run in tests.
    pub clock_speed: u32,
    /// Seed for ids and fault probabilities, so runs repeat.
    pub seed: u64,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// What a Tooling PATCH does with `Metadata`: `replace` (the body is the object's whole
    /// definition: a required field left out is refused, an optional one returns to its default) or
    /// `merge` (fields left out are kept).
    pub tooling_patch: ToolingPatch,
    /// A PATCH that changes an event relay's label (Salesforce: "You can update only the state and
    /// relayOption fields"): `reject`ed, `ignore`d (204, label unchanged) or `accept`ed.
    pub relay_label_update: LabelUpdate,
    /// A running relay whose partner source is not ACTIVE: its events are `drop`ped by AWS while
    /// Salesforce reports the relay RUNNING (AWS documents the drop; Salesforce's side is not), or the
    /// relay goes to `error` and resumes once the source is associated.
    pub pending_source_delivery: PendingDelivery,
    /// Where a relay resumes after an error: `option_only` (the relay option decides: LATEST relays
    /// only new events, EARLIEST the oldest retained) or `resume` (after the last relayed event while
    /// it is retained; the option only when it is not).
    pub recovery_mode: RecoveryMode,
    /// `DeleteEventBus` on a bus that still has rules: `refuse` (the API reference: delete the rules
    /// first) or `cascade` (the rules go with it, as in the console).
    pub delete_bus_with_rules: DeleteBusWithRules,
    /// How many bus-to-bus hops an event makes: EventBridge does not route an event that arrived
    /// from another bus on to a third (1).
    pub bus_to_bus_hops: u8,
    /// Whether the Tooling API's `NamedCredential` has an `Endpoint` column: documented on the
    /// data-API object only, so `absent` (a Tooling query naming it is `INVALID_FIELD`) or `present`.
    pub tooling_named_credential_endpoint: Presence,
    /// How a query returns `EventRelayConfig.EventChannel`: the channel's `full_name` (`X__chn`, as
    /// the reference says) or its `id` (`0YL...`, as the sibling `PlatformEventChannelMember` field
    /// does).
    pub relay_event_channel: ChannelForm,
    /// Event-bus targets in another account or region: `enforce` (the destination bus's resource
    /// policy must allow the sender: `PutTargets` is `AccessDeniedException` without it, and an event
    /// sent after the policy went is dropped as a failed invocation) or `ignore` (the sender's role
    /// alone decides).
    pub receiver_bus_policy: ReceiverPolicy,
    /// AWS access keys no account was configured with: refused as AWS refuses them
    /// (`InvalidClientTokenId`), when `true`, or taken as the default account's (the lowest account
    /// id), as LocalStack and moto take any key, when `false`. The keys `test` and `testing` (the
    /// LocalStack and moto conventions) are the default account's either way: they cannot be a real
    /// key, so taking them hides no mistake.
    pub strict_access_keys: bool,
    /// Requests per second each AWS service answers per account and region before it throttles
    /// (`ThrottlingException`; `Throttling` from IAM and STS), as a token bucket holding a second's
    /// worth. Off (`null`) by default: AWS's request-rate quotas differ by API, Region and account
    /// (many are adjustable), so no one number is the documented one; set it to see how a client
    /// paces itself under a quota (EventBridge documents tens per second for most control-plane
    /// APIs).
    pub aws_requests_per_second: Option<u32>,
    /// The most published events an org keeps (oldest dropped first), besides `retention_seconds`:
    /// a bound on the simulator's memory (each event is about a kilobyte), not a vendor rule. A
    /// relay behind the oldest kept event has lost what went, as past retention.
    pub max_events_per_org: usize,
    /// The most API calls the journal keeps (oldest dropped first, and counted): a bound on the
    /// simulator's memory (about 220 bytes an entry, and as much again in a state file), not a
    /// vendor rule. The admin API's `GET /journal` shows what is kept.
    pub max_journal_entries: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ReceiverPolicy {
    #[default]
    Enforce,
    Ignore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    #[default]
    Absent,
    Present,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ChannelForm {
    #[default]
    FullName,
    Id,
}

/// The delay profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Timing {
    #[default]
    Fast,
    Documented,
}

impl Timing {
    /// (partner source delay, visibility lag, state change delay), in seconds.
    pub fn delays(self) -> (u64, u64, u64) {
        match self {
            Timing::Fast => (2, 1, 1),
            // Relay state changes "can take several minutes"; RemoteResource appeared within 3-6 min
            // in a real-org script; the source then took some seconds more to be found in AWS.
            Timing::Documented => (300, 30, 180),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ToolingPatch {
    #[default]
    Replace,
    Merge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LabelUpdate {
    #[default]
    Reject,
    Ignore,
    Accept,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PendingDelivery {
    #[default]
    Drop,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryMode {
    #[default]
    OptionOnly,
    Resume,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DeleteBusWithRules {
    #[default]
    Refuse,
    Cascade,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockMode {
    Wall,
    Frozen,
}

/// Settings as written: delays left out come from the timing profile.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSettings {
    timing: Timing,
    token_lifetime_seconds: Option<u64>,
    partner_source_delay_seconds: Option<u64>,
    source_visibility_lag_seconds: Option<u64>,
    state_change_delay_seconds: Option<u64>,
    query_page_size: Option<usize>,
    retention_seconds: Option<u64>,
    clock: Option<ClockMode>,
    clock_speed: Option<u32>,
    seed: Option<u64>,
    max_body_bytes: Option<usize>,
    tooling_patch: ToolingPatch,
    relay_label_update: LabelUpdate,
    pending_source_delivery: PendingDelivery,
    recovery_mode: RecoveryMode,
    delete_bus_with_rules: DeleteBusWithRules,
    bus_to_bus_hops: Option<u8>,
    tooling_named_credential_endpoint: Presence,
    relay_event_channel: ChannelForm,
    receiver_bus_policy: ReceiverPolicy,
    strict_access_keys: Option<bool>,
    aws_requests_per_second: Option<u32>,
    max_events_per_org: Option<usize>,
    max_journal_entries: Option<usize>,
}

impl From<RawSettings> for Settings {
    fn from(r: RawSettings) -> Settings {
        let d = Settings::with_timing(r.timing);
        Settings {
            timing: r.timing,
            token_lifetime_seconds: r.token_lifetime_seconds.unwrap_or(d.token_lifetime_seconds),
            partner_source_delay_seconds: r
                .partner_source_delay_seconds
                .unwrap_or(d.partner_source_delay_seconds),
            source_visibility_lag_seconds: r
                .source_visibility_lag_seconds
                .unwrap_or(d.source_visibility_lag_seconds),
            state_change_delay_seconds: r
                .state_change_delay_seconds
                .unwrap_or(d.state_change_delay_seconds),
            query_page_size: r.query_page_size.unwrap_or(d.query_page_size),
            retention_seconds: r.retention_seconds.unwrap_or(d.retention_seconds),
            clock: r.clock.unwrap_or(d.clock),
            clock_speed: r.clock_speed.unwrap_or(d.clock_speed).max(1),
            seed: r.seed.unwrap_or(d.seed),
            max_body_bytes: r.max_body_bytes.unwrap_or(d.max_body_bytes),
            tooling_patch: r.tooling_patch,
            relay_label_update: r.relay_label_update,
            pending_source_delivery: r.pending_source_delivery,
            recovery_mode: r.recovery_mode,
            delete_bus_with_rules: r.delete_bus_with_rules,
            bus_to_bus_hops: r.bus_to_bus_hops.unwrap_or(d.bus_to_bus_hops),
            tooling_named_credential_endpoint: r.tooling_named_credential_endpoint,
            relay_event_channel: r.relay_event_channel,
            receiver_bus_policy: r.receiver_bus_policy,
            strict_access_keys: r.strict_access_keys.unwrap_or(d.strict_access_keys),
            aws_requests_per_second: r.aws_requests_per_second.filter(|n| *n > 0),
            max_events_per_org: r.max_events_per_org.unwrap_or(d.max_events_per_org).max(1),
            max_journal_entries: r
                .max_journal_entries
                .unwrap_or(d.max_journal_entries)
                .max(1),
        }
    }
}

impl Settings {
    /// The defaults, with the delays of a timing profile.
    pub fn with_timing(timing: Timing) -> Settings {
        let (source, lag, state) = timing.delays();
        Settings {
            timing,
            token_lifetime_seconds: 2 * 3600,
            partner_source_delay_seconds: source,
            source_visibility_lag_seconds: lag,
            state_change_delay_seconds: state,
            query_page_size: 2000,
            retention_seconds: 72 * 3600,
            clock: ClockMode::Wall,
            clock_speed: 1,
            seed: 1,
            max_body_bytes: 1 << 20,
            tooling_patch: ToolingPatch::default(),
            relay_label_update: LabelUpdate::default(),
            pending_source_delivery: PendingDelivery::default(),
            recovery_mode: RecoveryMode::default(),
            delete_bus_with_rules: DeleteBusWithRules::default(),
            bus_to_bus_hops: 1,
            tooling_named_credential_endpoint: Presence::default(),
            relay_event_channel: ChannelForm::default(),
            receiver_bus_policy: ReceiverPolicy::default(),
            strict_access_keys: true,
            aws_requests_per_second: None,
            max_events_per_org: 100_000,
            max_journal_entries: 10_000,
        }
    }

    /// Parses settings alone (the `settings:` part of a config), as YAML.
    pub fn from_yaml(text: &str) -> Result<Settings, String> {
        serde_yaml::from_str(text).map_err(|e| e.to_string())
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::with_timing(Timing::Fast)
    }
}

pub const DEMO_USERNAME: &str = "admin@demo.relayform.test";
pub const DEMO_PASSWORD: &str = "demo-password";
pub const DEMO_CLIENT_ID: &str = "relayform-demo-client";
pub const DEMO_CLIENT_SECRET: &str = "relayform-demo-secret";
/// The demo org's JWT bearer app: it verifies assertions with the public half of the test-only key
/// `simulator/tests/fixtures/test-only-jwt-key.pem` (which protects nothing), so that JWT logins
/// (`sf org login jwt`, simple-salesforce, relayform's `jwt_bearer`) can be tried on the demo.
pub const DEMO_JWT_CLIENT_ID: &str = "relayform-demo-jwt";
pub const DEMO_JWT_PUBLIC_KEY: &str = include_str!("../tests/fixtures/test-only-jwt-key.pub.pem");
pub const DEMO_ACCOUNT_ID: &str = "000000000000";
pub const DEMO_ACCESS_KEY_ID: &str = "SIMDEMOACCESSKEY0000";
pub const DEMO_SECRET_ACCESS_KEY: &str = "sim-demo-secret-access-key";

impl Default for Config {
    fn default() -> Self {
        Config {
            orgs: vec![OrgConfig::demo("demo")],
            aws_accounts: vec![AccountConfig {
                account_id: DEMO_ACCOUNT_ID.into(),
                access_keys: vec![AccessKeyConfig {
                    access_key_id: DEMO_ACCESS_KEY_ID.into(),
                    secret_access_key: DEMO_SECRET_ACCESS_KEY.into(),
                }],
                event_buses: Vec::new(),
            }],
            settings: Settings::default(),
        }
    }
}

impl OrgConfig {
    /// An org with the demo user and app, and a few platform events and CDC entities.
    pub fn demo(my_domain: &str) -> Self {
        let fields = |f: &[&str]| f.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let user = if my_domain == "demo" {
            DEMO_USERNAME.to_owned()
        } else {
            format!("admin@{my_domain}.relayform.test")
        };
        let client_id = if my_domain == "demo" {
            DEMO_CLIENT_ID.to_owned()
        } else {
            format!("relayform-{my_domain}-client")
        };
        OrgConfig {
            my_domain: my_domain.into(),
            org_id: None,
            users: vec![UserConfig {
                username: user.clone(),
                password: Some(DEMO_PASSWORD.into()),
            }],
            connected_apps: vec![
                AppConfig {
                    client_id,
                    client_secret: Some(DEMO_CLIENT_SECRET.into()),
                    certificate: None,
                    run_as: Some(user),
                },
                AppConfig {
                    client_id: if my_domain == "demo" {
                        DEMO_JWT_CLIENT_ID.to_owned()
                    } else {
                        format!("relayform-{my_domain}-jwt")
                    },
                    client_secret: None,
                    certificate: Some(DEMO_JWT_PUBLIC_KEY.into()),
                    run_as: None,
                },
            ],
            platform_events: BTreeMap::from([
                (
                    "Order_Placed__e".into(),
                    fields(&["Order_Id__c", "Amount__c", "Currency__c"]),
                ),
                (
                    "Order_Shipped__e".into(),
                    fields(&["Order_Id__c", "Carrier__c"]),
                ),
                (
                    "Order_Cancelled__e".into(),
                    fields(&["Order_Id__c", "Reason__c"]),
                ),
            ]),
            cdc_entities: BTreeMap::from([
                ("Account".into(), fields(&["Name", "Industry", "Phone"])),
                (
                    "Contact".into(),
                    fields(&["FirstName", "LastName", "Email"]),
                ),
            ]),
            api_request_limit: default_api_limit(),
            standard_volume_events: Vec::new(),
            allocations: Allocations::default(),
            namespace_prefix: None,
        }
    }
}

impl Config {
    /// Parses a YAML config.
    pub fn from_yaml(text: &str) -> Result<Config, String> {
        serde_yaml::from_str(text).map_err(|e| e.to_string())
    }

    /// A config with `orgs` demo orgs (`org1`, `org2`, ...) and `accounts` accounts, for tests and
    /// benchmarks of many tenants.
    pub fn many(orgs: usize, accounts: usize) -> Config {
        Config {
            orgs: (1..=orgs)
                .map(|i| OrgConfig::demo(&format!("org{i}")))
                .collect(),
            aws_accounts: (1..=accounts)
                .map(|i| AccountConfig {
                    account_id: format!("{:012}", 100_000_000_000u64 + i as u64),
                    access_keys: Vec::new(),
                    event_buses: Vec::new(),
                })
                .collect(),
            settings: Settings::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses() {
        let text = include_str!("../config.example.yaml");
        let c = Config::from_yaml(text).unwrap();
        assert_eq!(c.orgs.len(), 2);
        assert_eq!(c.orgs[1].org_id.as_deref(), Some("00D000000000062"));
        assert_eq!(c.settings.clock, ClockMode::Frozen);
        assert_eq!(
            c.settings.query_page_size, 2000,
            "unset settings keep their defaults"
        );
        crate::world::World::new(&c).unwrap();
    }

    #[test]
    fn bad_configs_are_refused_with_a_reason() {
        let e = Config::from_yaml("orgs:\n  - my_domain: x\n    colour: blue\n").unwrap_err();
        assert!(e.contains("unknown field `colour`"), "{e}");
        let c = Config::from_yaml("aws_accounts:\n  - account_id: \"123\"\n").unwrap();
        assert!(
            crate::world::World::new(&c)
                .unwrap_err()
                .contains("12 digits")
        );
    }
}
