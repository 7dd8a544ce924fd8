//! Everything the simulator knows: orgs, accounts, what is scheduled, what happened.
//!
//! The world is plain data behind one lock. Delayed effects (a partner source appearing after a relay
//! is created, a state change taking effect) are entries in `scheduled`, applied by [`World::settle`]
//! once simulated time reaches them; every request settles the world first, and so does advancing the
//! clock. Nothing runs in the background, so a run is a function of its requests and the clock.

use crate::clock::Millis;
use crate::config::{AppConfig, Config, PendingDelivery, RecoveryMode, Settings};
use crate::ids;
use crate::part::{Log, Part};
use compact_str::CompactString;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

pub type Record = Map<String, Value>;

/// An org's Tooling objects by type (`NamedCredential`, ...) then id.
pub type Tooling = BTreeMap<String, BTreeMap<String, Stored>>;

/// A record at rest: compact JSON text, parsed when read. A JSON map costs several times its text in
/// memory, and an org holds hundreds of these; reads are rare next to what they would cost at rest.
/// The text is shared: a change to an org's Tooling objects while a save holds them copies the map,
/// and the map's copy then costs a pointer per record, not the records.
#[derive(Debug, Clone)]
pub struct Stored(Arc<serde_json::value::RawValue>);

/// As the JSON text itself (a state file's records are plain JSON).
impl Serialize for Stored {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Stored {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Box::<serde_json::value::RawValue>::deserialize(d).map(|raw| Stored(Arc::from(raw)))
    }
}

impl Stored {
    pub fn new(record: &Record) -> Stored {
        let text = serde_json::to_string(record).expect("a JSON map serializes");
        Stored(Arc::from(
            serde_json::value::RawValue::from_string(text).expect("serialized JSON is JSON"),
        ))
    }

    /// Any JSON value at rest (an event, say).
    pub fn of(value: &Value) -> Stored {
        Stored(Arc::from(
            serde_json::value::to_raw_value(value).expect("a JSON value serializes"),
        ))
    }

    /// The compact JSON text.
    pub fn text(&self) -> &str {
        self.0.get()
    }

    pub fn record(&self) -> Record {
        serde_json::from_str(self.0.get()).unwrap_or_default()
    }

    /// The record as a JSON object.
    pub fn value(&self) -> Value {
        Value::Object(self.record())
    }

    /// Whether a top-level field holds this value. Scans of many records use it, so it first looks
    /// for `"key":value` in the compact text (absent there means absent) and parses only on a hit, to
    /// rule out the same pair nested deeper.
    pub fn field_is(&self, key: &str, value: &Value) -> bool {
        FieldIs::new(key, value).matches(self)
    }

    /// One top-level string field, read without building the record (scans over many records use
    /// it: the other fields are skipped, not parsed into values).
    pub fn str_field(&self, key: &str) -> Option<String> {
        struct Field<'k>(&'k str);
        impl<'de> serde::de::DeserializeSeed<'de> for Field<'_> {
            type Value = Option<String>;
            fn deserialize<D: serde::Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Self::Value, D::Error> {
                d.deserialize_map(self)
            }
        }
        impl<'de> serde::de::Visitor<'de> for Field<'_> {
            type Value = Option<String>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut found = None;
                while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if k == self.0 {
                        found = map.next_value::<Value>()?.as_str().map(str::to_owned);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(found)
            }
        }
        let mut de = serde_json::Deserializer::from_str(self.0.get());
        serde::de::DeserializeSeed::deserialize(Field(key), &mut de)
            .ok()
            .flatten()
    }
}

/// A test of one top-level field's value, made once for a scan over many records: it looks for
/// `"key":value` in each record's compact text (absent there means absent) and parses only on a hit,
/// to rule out the same pair nested deeper.
#[derive(Debug)]
pub struct FieldIs<'a> {
    needle: String,
    key: &'a str,
    value: &'a Value,
}

impl<'a> FieldIs<'a> {
    pub fn new(key: &'a str, value: &'a Value) -> FieldIs<'a> {
        FieldIs {
            needle: format!("{}:{value}", Value::from(key)),
            key,
            value,
        }
    }

    pub fn matches(&self, s: &Stored) -> bool {
        s.0.get().contains(&self.needle) && s.record().get(self.key) == Some(self.value)
    }
}

/// The access keys LocalStack and moto users have in their environment: the default account's.
pub const CONVENTIONAL_ACCESS_KEYS: [&str; 2] = ["test", "testing"];

#[derive(Debug, Serialize, Deserialize)]
pub struct World {
    pub settings: Settings,
    /// Sequence for ids; also reseeds the random generator on load.
    pub seq: u64,
    pub orgs: BTreeMap<String, Part<Org>>,
    pub accounts: BTreeMap<String, Part<Account>>,
    /// Access key id → account id.
    pub access_keys: BTreeMap<String, String>,
    pub scheduled: Vec<Scheduled>,
    /// When [`World::settle`] last forgot events past their retention: it looks again a second
    /// later at the earliest (retention is counted in hours; every request settles the world).
    #[serde(skip)]
    pub events_pruned_at: Option<Millis>,
    pub journal: Journal,
    pub faults: crate::faults::Faults,
    pub deliveries: Deliveries,
    #[serde(skip, default = "default_rng")]
    pub rng: StdRng,
    /// Open query cursors by locator (not persisted: a restart ends them, as on a real org).
    #[serde(skip)]
    pub cursors: BTreeMap<String, Cursor>,
}

#[derive(Debug, Clone)]
pub struct Cursor {
    pub records: Vec<Value>,
    pub tooling: bool,
    pub entity: String,
}

fn stop() -> String {
    "STOP".into()
}

fn default_rng() -> StdRng {
    StdRng::seed_from_u64(0)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub password: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Token {
    pub user_id: String,
    pub client_id: String,
    pub expires: Millis,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Org {
    pub id: String,
    pub my_domain: String,
    pub users: Vec<User>,
    pub apps: Vec<AppConfig>,
    pub platform_events: BTreeMap<String, Vec<String>>,
    pub cdc_entities: BTreeMap<String, Vec<String>>,
    pub api_limit: u64,
    pub api_used: u64,
    /// Standard-volume platform events (they cannot join a custom channel).
    #[serde(default)]
    pub standard_volume_events: Vec<String>,
    #[serde(default)]
    pub allocations: crate::config::Allocations,
    #[serde(default)]
    pub namespace: Option<String>,
    pub tokens: BTreeMap<String, Token>,
    pub refresh_tokens: BTreeMap<String, Token>,
    /// Tooling objects by type (`NamedCredential`, ...) then id.
    pub tooling: Part<Tooling>,
    /// Data records of CDC-enabled objects, by id.
    pub records: Part<BTreeMap<String, Record>>,
    /// Relay runtime (feedback, position), by relay id.
    pub relays: Part<BTreeMap<String, RelayRuntime>>,
    /// Published events, oldest first, pruned past retention and past `max_events_per_org`.
    pub events: Log<StoredEvent>,
    pub next_replay: u64,
    /// Which relays select which events, derived from channels, members and relays; dropped whenever
    /// a Tooling object changes and rebuilt when next needed.
    #[serde(skip)]
    pub selection: Option<Selection>,
}

#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub by_event: BTreeMap<String, Vec<String>>,
    pub by_relay: BTreeMap<String, Vec<String>>,
    /// Member filter expressions, by (relay, event).
    pub filters: BTreeMap<(String, String), String>,
}

impl Org {
    /// The org without its big pieces (Tooling objects, records, relays, events), which a state
    /// file keeps apart.
    pub fn head_only(&self) -> Org {
        Org {
            tooling: Part::default(),
            records: Part::default(),
            relays: Part::default(),
            events: Log::default(),
            selection: None,
            ..self.clone()
        }
    }

    fn selection(&mut self) -> &Selection {
        if self.selection.is_none() {
            let mut sel = Selection::default();
            let empty = BTreeMap::new();
            let all = |t: &str| -> Vec<(String, Record)> {
                self.tooling
                    .get(t)
                    .unwrap_or(&empty)
                    .iter()
                    .map(|(id, r)| (id.clone(), r.record()))
                    .collect()
            };
            let (channels, members, relays) = (
                all("PlatformEventChannel"),
                all("PlatformEventChannelMember"),
                all("EventRelayConfig"),
            );
            for (relay_id, relay) in &relays {
                let channel = relay.get("EventChannel").and_then(Value::as_str);
                let Some(channel_id) = channels
                    .iter()
                    .find(|(_, c)| c.get("FullName").and_then(Value::as_str) == channel)
                    .and_then(|(_, c)| c.get("Id"))
                else {
                    continue;
                };
                for (_, m) in members
                    .iter()
                    .filter(|(_, m)| m.get("EventChannel") == Some(channel_id))
                {
                    if let Some(e) = m.get("SelectedEntity").and_then(Value::as_str) {
                        if let Some(f) = m
                            .get("FilterExpression")
                            .and_then(Value::as_str)
                            .filter(|f| !f.trim().is_empty())
                        {
                            sel.filters
                                .insert((relay_id.clone(), e.to_owned()), f.to_owned());
                        }
                        sel.by_event
                            .entry(e.to_owned())
                            .or_default()
                            .push(relay_id.clone());
                        sel.by_relay
                            .entry(relay_id.clone())
                            .or_default()
                            .push(e.to_owned());
                    }
                }
            }
            self.selection = Some(sel);
        }
        self.selection.get_or_insert_with(Selection::default)
    }

    /// Relay ids whose channel selects `event`.
    pub fn relays_selecting(&mut self, event: &str) -> Vec<String> {
        self.selection()
            .by_event
            .get(event)
            .cloned()
            .unwrap_or_default()
    }

    /// The filter expression of the member that selects `event` for `relay`, if it has one.
    pub fn relay_filter(&mut self, relay: &str, event: &str) -> Option<String> {
        self.selection()
            .filters
            .get(&(relay.to_owned(), event.to_owned()))
            .cloned()
    }

    /// The events a relay's channel selects.
    pub fn relay_events(&mut self, relay: &str) -> Vec<String> {
        self.selection()
            .by_relay
            .get(relay)
            .cloned()
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredEvent {
    pub replay: u64,
    pub time: Millis,
    pub name: String,
    pub uuid: String,
    pub payload: Value,
}

/// The part of a relay that Salesforce keeps at run time (EventRelayFeedback and the position).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RelayRuntime {
    pub feedback_id: String,
    pub number: u64,
    pub status: String,
    pub remote_resource: Option<String>,
    pub last_relayed: Option<Millis>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub error_time: Option<Millis>,
    /// Replay id of the last event handed to EventBridge; `None` before the first run.
    pub position: Option<u64>,
    /// Where the relay's partner source lives, resolved from its named credential at creation.
    pub target: Option<(String, String)>,
    /// The record's `State` (the admin state) and `RelayOption`, mirrored here for the hot path.
    #[serde(default = "stop")]
    pub admin_state: String,
    #[serde(default)]
    pub relay_option: String,
    pub created: Millis,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    /// IAM roles by lower-cased name (IAM names are unique case-insensitively).
    pub roles: BTreeMap<String, Role>,
    pub regions: BTreeMap<String, Region>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    pub path: String,
    pub id: String,
    pub arn: String,
    pub created: Millis,
    pub assume_role_policy: String,
    pub description: Option<String>,
    pub max_session_duration: u32,
    pub inline_policies: BTreeMap<String, String>,
    /// Attached managed policies: ARN → name.
    pub attached: BTreeMap<String, String>,
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Region {
    /// Each bus, source and tag set is a [`Part`] of its own, so that the copy a change makes of an
    /// account that a save still holds copies pointers, not every bus's rules and targets.
    pub buses: BTreeMap<String, Part<Bus>>,
    pub sources: BTreeMap<String, Part<Source>>,
    /// CloudWatch Logs groups (targets that keep what they receive).
    #[serde(default)]
    pub log_groups: BTreeMap<String, LogGroup>,
    /// CloudWatch Logs resource policies, by name.
    #[serde(default)]
    pub log_policies: BTreeMap<String, String>,
    /// Tags by resource ARN.
    pub tags: BTreeMap<String, Part<TagSet>>,
}

/// A resource's tags, sorted by key. A resource has a handful, and a `BTreeMap`'s first node holds
/// room for eleven: at 10,000 buses and rules the list is 8 MB smaller. Serialized as a map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagSet(Vec<(String, String)>);

impl TagSet {
    /// Sets a tag (a key that is there gets the new value).
    pub fn insert(&mut self, key: String, value: String) {
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(&key)) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (key, value)),
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<String> {
        let i = self.0.binary_search_by(|(k, _)| k.as_str().cmp(key)).ok()?;
        Some(self.0.remove(i).1)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// By key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl Extend<(String, String)> for TagSet {
    fn extend<I: IntoIterator<Item = (String, String)>>(&mut self, tags: I) {
        for (k, v) in tags {
            self.insert(k, v);
        }
    }
}

impl Serialize for TagSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for TagSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A map's keys come sorted and unique.
        BTreeMap::<String, String>::deserialize(d).map(|m| TagSet(m.into_iter().collect()))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogGroup {
    pub name: String,
    pub arn: String,
    pub created: Millis,
    /// (timestamp, message), oldest first.
    pub events: Vec<(Millis, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bus {
    pub name: String,
    pub arn: String,
    pub created: Millis,
    pub modified: Millis,
    pub description: Option<String>,
    pub event_source: Option<String>,
    /// Boxed: a bus has a rule or two, and a map's first node holds room for eleven values.
    pub rules: BTreeMap<String, Box<Rule>>,
    pub received: u64,
    /// The bus's resource policy (`PutPermission`), as a JSON document.
    #[serde(default)]
    pub policy: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rule {
    pub name: String,
    pub arn: String,
    pub event_pattern: Option<String>,
    pub schedule_expression: Option<String>,
    pub state: String,
    pub description: Option<String>,
    pub role_arn: Option<String>,
    /// Targets by id, as sent (`Id`, `Arn`, `RoleArn`, ...), as compact JSON text: a parsed target
    /// costs several times its text, and a fleet's account holds a rule per relay.
    pub targets: BTreeMap<String, Stored>,
    pub matched: u64,
    /// The pattern, parsed once (patterns are checked when put, so this cannot fail then).
    #[serde(skip)]
    pub parsed: std::sync::OnceLock<Option<Value>>,
}

impl Rule {
    pub fn parsed_pattern(&self) -> Option<&Value> {
        self.parsed
            .get_or_init(|| {
                self.event_pattern
                    .as_deref()
                    .and_then(|p| crate::aws::pattern::parse(p).ok())
            })
            .as_ref()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Source {
    pub name: String,
    pub arn: String,
    pub created_by: String,
    pub created: Millis,
    pub expiration: Millis,
    pub state: String,
    pub account: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Scheduled {
    /// Salesforce registers the relay's partner event source in AWS.
    RegisterSource {
        due: Millis,
        org: String,
        relay: String,
    },
    /// A relay's admin state takes effect.
    ApplyState {
        due: Millis,
        org: String,
        relay: String,
        state: String,
    },
    /// The partner source Salesforce registered becomes visible in AWS (some time after
    /// `RemoteResource` is filled).
    SourceVisible {
        due: Millis,
        account: String,
        region: String,
        source: Source,
    },
}

impl Scheduled {
    fn due(&self) -> Millis {
        match self {
            Scheduled::RegisterSource { due, .. }
            | Scheduled::ApplyState { due, .. }
            | Scheduled::SourceVisible { due, .. } => *due,
        }
    }
}

/// Every API call, in order: what tests count calls with.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Journal {
    pub entries: Log<JournalEntry>,
    /// Entries dropped from the front to bound memory.
    pub dropped: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JournalEntry {
    // Compact strings: every one of these is short enough to be held inline, so an entry makes no
    // allocation of its own (the journal keeps `max_journal_entries` of them).
    pub seq: u64,
    pub time: Millis,
    /// `salesforce` or `aws`.
    pub api: CompactString,
    /// `oauth`, `tooling`, `data`, `events`, `iam`, `sts`.
    pub service: CompactString,
    pub operation: CompactString,
    /// The sObject type for Salesforce calls (`EventRelayConfig`, `Order_Placed__e`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<CompactString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<CompactString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<CompactString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<CompactString>,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<CompactString>,
}

/// Salesforce operations (as the journal names them) that change the org: every other one (token
/// requests, queries, gets, limits) only reads.
const SALESFORCE_WRITES: [&str; 7] = [
    "tooling.create",
    "tooling.update",
    "tooling.delete",
    "sobject.create",
    "sobject.update",
    "sobject.delete",
    "event.publish",
];

/// AWS operations that read although their names do not say so (`List*`, `Get*` and `Describe*`
/// read by name). `AssumeRole` hands out credentials and changes no resource.
const AWS_READS: [&str; 3] = ["FilterLogEvents", "TestEventPattern", "AssumeRole"];

/// Whether a call of `operation` on `api` (`salesforce` or `aws`) changes the simulated world's
/// resources: a create, update, delete or publish. The one home of this rule: crash sweeps kill
/// after such calls, tests and benchmarks count them.
pub fn mutating(api: &str, operation: &str) -> bool {
    if api == "salesforce" {
        return SALESFORCE_WRITES.contains(&operation);
    }
    let reads = ["List", "Get", "Describe"]
        .iter()
        .any(|p| operation.starts_with(p))
        || AWS_READS.contains(&operation);
    !reads
}

impl JournalEntry {
    /// Whether this call changed the world's resources (see [`mutating`]).
    pub fn is_mutating(&self) -> bool {
        mutating(&self.api, &self.operation)
    }
}

/// What reached which target.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Deliveries {
    pub recent: Log<Delivery>,
    pub dropped: u64,
    /// Counters by `account/region/bus/rule/target`.
    pub counters: Part<BTreeMap<String, TargetCounters>>,
}

pub const DELIVERIES_CAP: usize = 10_000;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TargetCounters {
    pub invocations: u64,
    pub failed_invocations: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    pub time: Millis,
    pub account: String,
    pub region: String,
    pub bus: String,
    /// Empty when the event arrived on the bus rather than through a rule's target.
    pub rule: String,
    pub target: String,
    pub outcome: String,
    /// The event at rest (a parsed event costs about three times its text, and the simulator keeps
    /// thousands), its text shared by the records one event makes on a bus.
    pub event: Stored,
}

pub const TRUST_PRINCIPAL: &str = "events.amazonaws.com";

impl World {
    /// The world without its orgs, accounts, journal entries and deliveries: what a state file's
    /// manifest holds (see `store`).
    pub fn core(&self) -> World {
        World {
            settings: self.settings.clone(),
            seq: self.seq,
            orgs: BTreeMap::new(),
            accounts: BTreeMap::new(),
            access_keys: self.access_keys.clone(),
            scheduled: self.scheduled.clone(),
            events_pruned_at: None,
            journal: Journal {
                entries: Log::default(),
                dropped: self.journal.dropped,
            },
            faults: self.faults.clone(),
            deliveries: Deliveries {
                recent: Log::default(),
                dropped: self.deliveries.dropped,
                counters: Part::default(),
            },
            rng: default_rng(),
            cursors: BTreeMap::new(),
        }
    }

    pub fn new(config: &Config) -> Result<World, String> {
        let mut world = World {
            settings: config.settings.clone(),
            seq: 0,
            orgs: BTreeMap::new(),
            accounts: BTreeMap::new(),
            access_keys: BTreeMap::new(),
            scheduled: Vec::new(),
            events_pruned_at: None,
            journal: Journal::default(),
            faults: Default::default(),
            deliveries: Deliveries::default(),
            rng: StdRng::seed_from_u64(config.settings.seed),
            cursors: BTreeMap::new(),
        };
        for (i, o) in config.orgs.iter().enumerate() {
            let id = match &o.org_id {
                Some(id) if id.len() == 15 => ids::id18(id),
                Some(id) if id.len() == 18 => id.clone(),
                Some(id) => {
                    return Err(format!(
                        "org `{}`: org id `{id}` is not 15 or 18 characters",
                        o.my_domain
                    ));
                }
                None => ids::org(i as u64),
            };
            if world.orgs.values().any(|x| x.my_domain == o.my_domain) {
                return Err(format!(
                    "two orgs have the My Domain name `{}`",
                    o.my_domain
                ));
            }
            let users = o
                .users
                .iter()
                .map(|u| User {
                    id: world.next_id("005"),
                    username: u.username.clone(),
                    password: u.password.clone(),
                })
                .collect();
            world.orgs.insert(
                id.clone(),
                Part::new(Org {
                    id,
                    my_domain: o.my_domain.clone(),
                    users,
                    apps: o.connected_apps.clone(),
                    platform_events: o.platform_events.clone(),
                    cdc_entities: o.cdc_entities.clone(),
                    api_limit: o.api_request_limit,
                    api_used: 0,
                    standard_volume_events: o.standard_volume_events.clone(),
                    allocations: o.allocations,
                    namespace: o.namespace_prefix.clone(),
                    tokens: BTreeMap::new(),
                    refresh_tokens: BTreeMap::new(),
                    tooling: Part::default(),
                    records: Part::default(),
                    relays: Part::default(),
                    events: Log::default(),
                    next_replay: 1,
                    selection: None,
                }),
            );
        }
        for a in &config.aws_accounts {
            if a.account_id.len() != 12 || !a.account_id.chars().all(|c| c.is_ascii_digit()) {
                return Err(format!(
                    "AWS account id `{}` is not 12 digits",
                    a.account_id
                ));
            }
            world.accounts.insert(
                a.account_id.clone(),
                Part::new(Account {
                    id: a.account_id.clone(),
                    ..Account::default()
                }),
            );
            for k in &a.access_keys {
                world
                    .access_keys
                    .insert(k.access_key_id.clone(), a.account_id.clone());
            }
            for b in &a.event_buses {
                if b.name.is_empty() || b.name.contains('/') || b.name.starts_with("aws.") {
                    return Err(format!(
                        "event bus `{}` of account {}: custom bus names are not empty, have no '/' and do not start with 'aws.'",
                        b.name, a.account_id
                    ));
                }
                let arn = format!(
                    "arn:aws:events:{}:{}:event-bus/{}",
                    b.region, a.account_id, b.name
                );
                world.region_mut(&a.account_id, &b.region).buses.insert(
                    b.name.clone(),
                    Part::new(Bus {
                        name: b.name.clone(),
                        arn,
                        created: 0,
                        modified: 0,
                        description: None,
                        event_source: None,
                        rules: Default::default(),
                        received: 0,
                        policy: None,
                    }),
                );
            }
        }
        Ok(world)
    }

    /// Whether a world read from a state file is one the handlers can serve: ids in the vendors'
    /// shapes, each keyed as it names itself, regions that exist, known accounts behind access keys,
    /// settings in range. A file that parses but breaks one of these is refused with the reason,
    /// rather than served until a handler trips over it.
    pub fn check(&self) -> Result<(), String> {
        let sf_id = |id: &str| id.len() == 18 && id.bytes().all(|b| b.is_ascii_alphanumeric());
        for (key, org) in &self.orgs {
            if !sf_id(&org.id) || !org.id.starts_with("00D") || *key != org.id {
                return Err(format!(
                    "org `{key}` has id `{}`: an org id is 18 letters and digits starting `00D`, and the org is kept under it",
                    org.id.chars().take(40).collect::<String>()
                ));
            }
            if org.my_domain.is_empty() || org.my_domain.len() > 80 {
                return Err(format!("org {} has no usable My Domain name", org.id));
            }
            if let Some(u) = org.users.iter().find(|u| !sf_id(&u.id)) {
                return Err(format!(
                    "org {}: user `{}` has an id that is not 18 letters and digits",
                    org.id, u.username
                ));
            }
            for (object, records) in org.tooling.iter() {
                if let Some(id) = records.keys().find(|id| !sf_id(id)) {
                    return Err(format!(
                        "org {}: a {object} is kept under `{}`, not an 18-character id",
                        org.id,
                        id.chars().take(40).collect::<String>()
                    ));
                }
            }
        }
        for (key, account) in &self.accounts {
            if key.len() != 12 || !key.bytes().all(|b| b.is_ascii_digit()) || *key != account.id {
                return Err(format!(
                    "AWS account `{}` is not kept under its 12-digit id",
                    key.chars().take(40).collect::<String>()
                ));
            }
            if let Some(r) = account
                .regions
                .keys()
                .find(|r| !crate::aws::regions::known(r))
            {
                return Err(format!(
                    "AWS account {key} has a region `{}` that AWS does not have",
                    r.chars().take(40).collect::<String>()
                ));
            }
        }
        if let Some((k, _)) = self
            .access_keys
            .iter()
            .find(|(_, a)| !self.accounts.contains_key(*a))
        {
            return Err(format!(
                "access key {} belongs to no account of the world",
                k.chars().take(40).collect::<String>()
            ));
        }
        if let Some(f) = self.faults.rules.iter().find(|f| f.validate().is_err()) {
            return Err(format!(
                "fault {}: {}",
                f.id,
                f.validate().err().unwrap_or_default()
            ));
        }
        Ok(())
    }

    /// Restores the random generator after loading persisted state.
    pub fn reseed(&mut self) {
        self.rng = StdRng::seed_from_u64(self.settings.seed ^ self.seq.rotate_left(17));
    }

    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// A fresh 18-character Salesforce id with this key prefix.
    pub fn next_id(&mut self, prefix: &str) -> String {
        let n = self.next_seq();
        ids::salesforce(prefix, n)
    }

    pub fn org_by_domain(&self, domain: &str) -> Option<&Org> {
        self.orgs
            .values()
            .find(|o| o.my_domain == domain)
            .map(|o| &**o)
    }

    /// The account an access key belongs to: a configured key, a 12-digit key naming a known
    /// account, `test`/`testing` (LocalStack's and moto's keys) for the default account (the lowest
    /// id), and with `strict_access_keys: false` any other key for the default account too.
    pub fn account_for_key(&self, key: &str) -> Option<String> {
        if let Some(a) = self.access_keys.get(key) {
            return Some(a.clone());
        }
        if self.accounts.contains_key(key) {
            return Some(key.to_owned());
        }
        let conventional = CONVENTIONAL_ACCESS_KEYS.contains(&key);
        if conventional || !self.settings.strict_access_keys {
            return self.accounts.keys().next().cloned();
        }
        None
    }

    pub fn record(&mut self, mut entry: JournalEntry) {
        entry.seq = self.next_seq();
        while self.journal.entries.len() >= self.settings.max_journal_entries.max(1) {
            self.journal.entries.pop_front();
            self.journal.dropped += 1;
        }
        self.journal.entries.push_back(entry);
    }

    pub fn schedule(&mut self, s: Scheduled) {
        let at = self.scheduled.partition_point(|x| x.due() <= s.due());
        self.scheduled.insert(at, s);
    }

    /// Applies everything due at or before `now`, in due order, then prunes expired events.
    pub fn settle(&mut self, now: Millis) {
        while self.scheduled.first().is_some_and(|s| s.due() <= now) {
            let s = self.scheduled.remove(0);
            match s {
                Scheduled::RegisterSource { due, org, relay } => {
                    self.register_source(&org, &relay, due)
                }
                Scheduled::ApplyState {
                    due,
                    org,
                    relay,
                    state,
                } => self.apply_state(&org, &relay, &state, due),
                Scheduled::SourceVisible {
                    due,
                    account,
                    region,
                    source,
                } => self.source_visible(&account, &region, source, due),
            }
        }
        if self
            .events_pruned_at
            .is_some_and(|at| now >= at && now - at < 1000)
        {
            return;
        }
        self.events_pruned_at = Some(now);
        let horizon = now - (self.settings.retention_seconds as Millis) * 1000;
        for org in self.orgs.values_mut() {
            while org.events.front().is_some_and(|e| e.time < horizon) {
                org.events.pop_front();
            }
        }
    }

    /// The partner source name of a relay: `aws.partner/salesforce.com/<orgId18>/<channelId18>`.
    fn source_name(&self, org: &str, relay: &str) -> Option<String> {
        let o = self.orgs.get(org)?;
        let channel = o
            .tooling
            .get("EventRelayConfig")?
            .get(relay)?
            .str_field("EventChannel")?;
        let channel_id = o
            .tooling
            .get("PlatformEventChannel")?
            .values()
            .map(Stored::record)
            .find(|c| c.get("FullName").and_then(Value::as_str) == Some(channel.as_str()))?
            .get("Id")?
            .as_str()?
            .to_owned();
        Some(format!("aws.partner/salesforce.com/{org}/{channel_id}"))
    }

    fn register_source(&mut self, org: &str, relay: &str, now: Millis) {
        let Some(name) = self.source_name(org, relay) else {
            return;
        };
        let Some(rt) = self
            .orgs
            .get(org)
            .and_then(|o| o.relays.get(relay))
            .cloned()
        else {
            return;
        };
        match rt
            .target
            .clone()
            .filter(|(acct, _)| self.accounts.contains_key(acct))
        {
            Some((account, region)) => {
                let arn = format!("arn:aws:events:{region}::event-source/{name}");
                let source = Source {
                    name: name.clone(),
                    arn,
                    created_by: "aws.partner/salesforce.com".into(),
                    created: now,
                    expiration: now + 14 * 24 * 3600 * 1000,
                    state: "PENDING".into(),
                    account: account.clone(),
                };
                let lag = self.settings.source_visibility_lag_seconds as Millis * 1000;
                if lag == 0 {
                    self.source_visible(&account, &region, source, now);
                } else {
                    self.schedule(Scheduled::SourceVisible {
                        due: now + lag,
                        account,
                        region,
                        source,
                    });
                }
                if let Some(rt) = self.relay_mut(org, relay) {
                    rt.remote_resource = Some(name);
                }
            }
            None => self.relay_error(
                org,
                relay,
                now,
                "sfdc.platform.eventbus.relay.aws.partner.eventsource.invalid",
                "The AWS account in the relay's named credential is not valid.",
            ),
        }
        self.pump_relay(org, relay, now);
    }

    /// A registered partner source appears in the AWS account. A bus left over for it (a relay
    /// re-created on the same channel) makes it active at once.
    fn source_visible(&mut self, account: &str, region: &str, mut source: Source, now: Millis) {
        let reg = self.region_mut(account, region);
        if reg.buses.contains_key(&source.name) {
            source.state = "ACTIVE".into();
        }
        let name = source.name.clone();
        reg.sources.insert(name.clone(), Part::new(source));
        self.source_changed(&name, now);
    }

    fn relay_mut(&mut self, org: &str, relay: &str) -> Option<&mut RelayRuntime> {
        self.orgs.get_mut(org)?.relays.get_mut(relay)
    }

    /// Puts a relay in ERROR (as Salesforce does when delivery fails); it recovers by itself after
    /// `recover_after_ms` if it is still meant to run.
    pub fn inject_relay_error(
        &mut self,
        org: &str,
        relay: &str,
        code: &str,
        message: &str,
        now: Millis,
        recover_after_ms: Millis,
    ) -> bool {
        if self
            .orgs
            .get(org)
            .is_none_or(|o| !o.relays.contains_key(relay))
        {
            return false;
        }
        self.relay_error(org, relay, now, code, message);
        self.schedule(Scheduled::ApplyState {
            due: now + recover_after_ms,
            org: org.into(),
            relay: relay.into(),
            state: "RUN".into(),
        });
        true
    }

    fn relay_error(&mut self, org: &str, relay: &str, now: Millis, code: &str, message: &str) {
        if let Some(rt) = self.relay_mut(org, relay) {
            rt.status = "ERROR".into();
            rt.error_code = Some(code.into());
            rt.error_message = Some(message.into());
            rt.error_time = Some(now);
        }
    }

    /// A region of an account, to read (a read never changes the account, so a save need not
    /// write it again).
    pub fn region(&self, account: &str, region: &str) -> Option<&Region> {
        self.accounts.get(account)?.regions.get(region)
    }

    /// A region of an account, to change: it is made when missing.
    pub fn region_mut(&mut self, account: &str, region: &str) -> &mut Region {
        self.accounts
            .entry(account.to_owned())
            .or_insert_with(|| {
                Part::new(Account {
                    id: account.to_owned(),
                    ..Account::default()
                })
            })
            .regions
            .entry(region.to_owned())
            .or_default()
    }

    /// A relay's admin state takes effect.
    fn apply_state(&mut self, org: &str, relay: &str, state: &str, now: Millis) {
        let tail = self.orgs.get(org).map(|o| o.next_replay - 1).unwrap_or(0);
        let Some(rt) = self.relay_mut(org, relay) else {
            return;
        };
        match state {
            // From ERROR, recovery (and where to resume) is the pump's decision.
            "RUN" if rt.status == "ERROR" => {}
            "RUN" => {
                if rt.position.is_none() || rt.status == "STOPPED" {
                    // From STOP, only events published from now on flow.
                    rt.position = Some(tail);
                }
                rt.status = "RUNNING".into();
            }
            "PAUSE" => rt.status = "PAUSED".into(),
            _ => {
                rt.status = "STOPPED".into();
                rt.position = None;
                rt.last_relayed = None;
                rt.error_code = None;
                rt.error_message = None;
                rt.error_time = None;
            }
        }
        self.pump_relay(org, relay, now);
    }

    /// The source of a relay and whether it is associated (ACTIVE).
    fn relay_source_active(&self, org: &str, relay: &str) -> Option<bool> {
        let rt = self.orgs.get(org)?.relays.get(relay)?;
        let (account, region) = rt.target.as_ref()?;
        let name = rt.remote_resource.as_ref()?;
        let src = self
            .accounts
            .get(account)?
            .regions
            .get(region)?
            .sources
            .get(name)?;
        Some(src.state == "ACTIVE")
    }

    /// Delivers what a running relay owes EventBridge, or moves it in or out of ERROR as its source
    /// comes and goes.
    ///
    /// A source that is not ACTIVE (PENDING: not associated; not yet visible; DELETED) either takes
    /// the events and drops them while Salesforce reports the relay RUNNING
    /// (`pending_source_delivery: drop`, what AWS documents for an unassociated source), or puts
    /// the relay in ERROR until it is associated (`error`). Recovering from an error resumes where
    /// `recovery_mode` says: the relay option alone (`option_only`: EARLIEST from the oldest retained
    /// event, LATEST with new events only), or after the last relayed event while it is retained
    /// (`resume`).
    pub fn pump_relay(&mut self, org: &str, relay: &str, now: Millis) {
        let Some(rt) = self.orgs.get(org).and_then(|o| o.relays.get(relay)) else {
            return;
        };
        let status = rt.status.clone();
        let wants_run = status == "RUNNING" || (status == "ERROR" && rt.admin_state == "RUN");
        if !wants_run || rt.remote_resource.is_none() {
            return;
        }
        let active = self.relay_source_active(org, relay) == Some(true);
        if !active && self.settings.pending_source_delivery == PendingDelivery::Error {
            if status != "ERROR" {
                self.relay_error(
                    org,
                    relay,
                    now,
                    "sfdc.platform.eventbus.relay.aws.partner.eventsource.connect.error",
                    "The partner event source is not associated with an event bus in Amazon EventBridge.",
                );
            }
            return;
        }
        // Running: recover from an error first.
        let o = self.orgs.get(org).expect("org");
        let oldest = o.events.front().map(|e| e.replay);
        let tail = o.next_replay - 1;
        let option = o.relays[relay].relay_option.clone();
        let mode = self.settings.recovery_mode;
        let rt = self.relay_mut(org, relay).expect("relay");
        if rt.status == "ERROR" {
            let resumable = mode == RecoveryMode::Resume
                && match (rt.position, oldest) {
                    (Some(p), Some(first)) => p + 1 >= first,
                    (Some(_), None) => true,
                    (None, _) => false,
                };
            if !resumable {
                rt.position = Some(if option.contains("EARLIEST") {
                    oldest.map_or(tail, |f| f - 1)
                } else {
                    tail
                });
            }
            rt.status = "RUNNING".into();
            rt.error_code = None;
            rt.error_message = None;
            rt.error_time = None;
        }
        self.deliver_backlog(org, relay, now, active);
    }

    /// Hands the relay's undelivered events to EventBridge; to a source that is not active they are
    /// lost (recorded as `dropped` deliveries).
    fn deliver_backlog(&mut self, org: &str, relay: &str, now: Millis, active: bool) {
        let selected = self
            .orgs
            .get_mut(org)
            .map(|o| o.relay_events(relay))
            .unwrap_or_default();
        let o = &self.orgs[org];
        let rt = &o.relays[relay];
        let Some((account, region)) = rt.target.clone() else {
            return;
        };
        let Some(source) = rt.remote_resource.clone() else {
            return;
        };
        let position = rt.position.unwrap_or(0);
        // Replay ids increase along the log: find the first undelivered event by binary search.
        let start = o.events.partition_point(|e| e.replay <= position);
        let candidates: Vec<StoredEvent> = o
            .events
            .range_from(start)
            .filter(|e| selected.contains(&e.name))
            .cloned()
            .collect();
        // A member's filter expression keeps what does not match from the relay.
        let org_mut = self.orgs.get_mut(org).expect("org");
        let batch: Vec<StoredEvent> = candidates
            .into_iter()
            .filter(|e| {
                org_mut
                    .relay_filter(relay, &e.name)
                    .is_none_or(|f| crate::salesforce::tooling::filter_matches(&f, &e.payload))
            })
            .collect();
        let o = &self.orgs[org];
        let tail = o.next_replay - 1;
        for e in &batch {
            let envelope = json!({
                "version": "0",
                "id": ids::uuid(&mut self.rng),
                "detail-type": e.name,
                "source": source,
                "account": account,
                // EventBridge times have whole seconds.
                "time": crate::clock::iso(e.time - e.time.rem_euclid(1000)).replace(".000Z", "Z"),
                "region": region,
                "resources": [],
                "detail": {"payload": e.payload},
            });
            if active {
                crate::aws::events::put_on_bus(self, &account, &region, &source, envelope, now, 0);
            } else {
                self.log_delivery(Delivery {
                    time: now,
                    account: account.clone(),
                    region: region.clone(),
                    bus: source.clone(),
                    rule: String::new(),
                    target: String::new(),
                    outcome: "dropped: the partner event source is not active".into(),
                    event: Stored::of(&envelope),
                });
            }
        }
        if let Some(rt) = self.relay_mut(org, relay) {
            rt.position = Some(tail);
            if !batch.is_empty() {
                rt.last_relayed = Some(now);
            }
        }
    }

    /// Stores an event published in an org and hands it to every running relay whose channel selects it.
    pub fn publish(&mut self, org: &str, name: &str, payload: Value, now: Millis) -> StoredEvent {
        let uuid = ids::uuid(&mut self.rng);
        let cap = self.settings.max_events_per_org.max(1);
        let o = self.orgs.get_mut(org).expect("org");
        let e = StoredEvent {
            replay: o.next_replay,
            time: now,
            name: name.to_owned(),
            uuid,
            payload,
        };
        o.next_replay += 1;
        o.events.push_back(e.clone());
        while o.events.len() > cap {
            o.events.pop_front();
        }
        // Only the relays whose channel selects this event have anything to do.
        let relays: Vec<String> = o
            .relays_selecting(name)
            .into_iter()
            .filter(|id| o.relays.get(id).is_some_and(|r| r.status == "RUNNING"))
            .collect();
        for relay in relays {
            self.pump_relay(org, &relay, now);
        }
        e
    }

    /// Re-evaluates the relays whose partner source is `source` (after association changes).
    pub fn source_changed(&mut self, source: &str, now: Millis) {
        // `aws.partner/salesforce.com/<orgId18>/<channelId18>`: only that org's relays can use it.
        let org = source
            .split('/')
            .nth(2)
            .filter(|id| self.orgs.contains_key(*id));
        let affected: Vec<(String, String)> = self
            .orgs
            .iter()
            .filter(|(oid, _)| org.is_none_or(|o| o == oid.as_str()))
            .flat_map(|(oid, o)| {
                o.relays
                    .iter()
                    .filter(|(_, r)| r.remote_resource.as_deref() == Some(source))
                    .map(move |(rid, _)| (oid.clone(), rid.clone()))
            })
            .collect();
        for (org, relay) in affected {
            self.pump_relay(&org, &relay, now);
        }
    }

    pub fn log_delivery(&mut self, d: Delivery) {
        if self.deliveries.recent.len() >= DELIVERIES_CAP {
            self.deliveries.recent.pop_front();
            self.deliveries.dropped += 1;
        }
        let key = format!(
            "{}/{}/{}/{}/{}",
            d.account, d.region, d.bus, d.rule, d.target
        );
        if d.outcome.starts_with("dropped") {
            // Lost before any rule saw it: no invocation to count.
            self.deliveries.recent.push_back(d);
            return;
        }
        let c = self.deliveries.counters.entry(key).or_default();
        if d.outcome == "delivered" {
            c.invocations += 1;
        } else {
            c.failed_invocations += 1;
        }
        self.deliveries.recent.push_back(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_set_keeps_one_value_per_key_in_key_order_and_saves_as_a_map() {
        let mut t = TagSet::default();
        t.extend([
            ("b".to_owned(), "1".to_owned()),
            ("a".to_owned(), "2".to_owned()),
        ]);
        t.insert("b".into(), "3".into());
        assert_eq!(t.iter().collect::<Vec<_>>(), [("a", "2"), ("b", "3")]);
        assert_eq!(t.remove("a"), Some("2".to_owned()));
        assert_eq!(t.remove("a"), None);
        assert_eq!(t.len(), 1);
        let text = serde_json::to_string(&t).unwrap();
        assert_eq!(text, r#"{"b":"3"}"#);
        assert_eq!(
            serde_json::from_str::<TagSet>(r#"{"z":"1","c":"2"}"#)
                .unwrap()
                .iter()
                .collect::<Vec<_>>(),
            [("c", "2"), ("z", "1")]
        );
    }

    #[test]
    fn a_stored_record_saves_as_its_json_text() {
        let s = Stored::new(json!({"Id": "x", "N": 1}).as_object().unwrap());
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(text, r#"{"Id":"x","N":1}"#);
        let back: Stored = serde_json::from_str(&text).unwrap();
        assert_eq!(back.str_field("Id").as_deref(), Some("x"));
        // A copy shares the text.
        assert!(Arc::ptr_eq(&back.0, &back.clone().0));
    }

    #[test]
    fn stored_records_match_top_level_fields_exactly() {
        let rec: Record = json!({
            "DeveloperName": "Order_Events", "XEventChannel": "c1", "Quote": "a\"b",
            "Metadata": {"eventChannel": "c2", "DeveloperName": "nested"},
        })
        .as_object()
        .cloned()
        .unwrap();
        let s = Stored::new(&rec);
        assert_eq!(s.record(), rec);
        assert!(s.field_is("DeveloperName", &json!("Order_Events")));
        assert!(
            !s.field_is("DeveloperName", &json!("Order")),
            "a prefix of the value"
        );
        assert!(
            !s.field_is("EventChannel", &json!("c1")),
            "a suffix of another key"
        );
        assert!(!s.field_is("eventChannel", &json!("c1")));
        assert!(s.field_is("Quote", &json!("a\"b")), "escaped values");
        assert!(
            !s.field_is("DeveloperName", &json!("nested")),
            "a nested field with the same name"
        );
        // One string field: top level only, escapes decoded, non-strings and absence are none.
        assert_eq!(
            s.str_field("DeveloperName").as_deref(),
            Some("Order_Events")
        );
        assert_eq!(s.str_field("Quote").as_deref(), Some("a\"b"));
        assert_eq!(s.str_field("eventChannel"), None, "only nested");
        assert_eq!(s.str_field("Metadata"), None, "not a string");
        assert_eq!(s.str_field("Missing"), None);
    }
}

#[cfg(test)]
mod mutating_tests {
    use super::mutating;

    #[test]
    fn reads_token_requests_and_credentials_change_nothing() {
        for (api, op) in [
            ("salesforce", "oauth.token"),
            ("salesforce", "tooling.query"),
            ("salesforce", "tooling.get"),
            ("salesforce", "sobject.get"),
            ("salesforce", "limits"),
            ("salesforce", "query"),
            ("aws", "ListRules"),
            ("aws", "GetRole"),
            ("aws", "DescribeEventBus"),
            ("aws", "FilterLogEvents"),
            ("aws", "AssumeRole"),
        ] {
            assert!(!mutating(api, op), "{api} {op}");
        }
        for (api, op) in [
            ("salesforce", "tooling.create"),
            ("salesforce", "tooling.delete"),
            ("salesforce", "event.publish"),
            ("aws", "CreateEventBus"),
            ("aws", "PutTargets"),
            ("aws", "TagResource"),
            ("aws", "UpdateAssumeRolePolicy"),
        ] {
            assert!(mutating(api, op), "{api} {op}");
        }
    }
}
