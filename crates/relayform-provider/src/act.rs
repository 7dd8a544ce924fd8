//! What the executor asks of providers, and the steps it runs: the half of the contract that acts.
//!
//! A plan becomes [`Step`]s (the planner's `lower`), each one [`Op`]: a semantic operation on an
//! org's relay objects ([`OrgApi`]) or on an account's IAM and EventBridge resources
//! ([`AccountApi`]), carrying every id, name and value it needs, so the executor needs neither the
//! spec nor the observed state. The providers turn these values into their wire formats; the
//! executor knows none.
//!
//! Values made during a run (a relay's or channel's id, a relay's whole definition, its partner
//! source's name) flow between steps through [`Ref`]s: "what an earlier step of this run recorded
//! under this key, else what the refresh saw".

use crate::Error;
use std::sync::Arc;

/// Where a step acts: the org or account whose names it creates or frees (spec names). Teardown
/// ordering and the build barrier hold within one scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Org(String),
    Account(String),
}

impl Scope {
    /// The org or account's spec name.
    pub fn name(&self) -> &str {
        match self {
            Scope::Org(n) | Scope::Account(n) => n,
        }
    }
}

/// A plan as the executor runs it: its steps, and the scope of each of the plan's changes, in the
/// plan's order (a change is one step or more, `Step::change` its index; the report counts changes
/// whole).
#[derive(Debug, Clone, Default)]
pub struct Program {
    pub steps: Vec<Step>,
    pub changes: Vec<Scope>,
}

/// One step of an apply.
#[derive(Debug, Clone)]
pub struct Step {
    /// What the step is, for progress and reports: `salesforce.relay[orders] create`.
    pub name: String,
    /// The address of the change it is part of, for skip reasons: `salesforce.relay[orders]`.
    pub address: String,
    /// The index of that change in the plan (a change is one step or more).
    pub change: usize,
    /// Teardown (deletes, a replace's delete half) or build.
    pub teardown: bool,
    /// Steps (by index, all earlier) that must have succeeded first.
    pub needs: Vec<usize>,
    pub scope: Scope,
    pub op: Op,
}

/// What a run records for later steps, by relay (spec name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Made {
    RelayId,
    ChannelId,
    /// The partner event source's name, found once Salesforce registered it.
    Source,
}

/// A value a step needs: what an earlier step of this run recorded (under `made`, for a relay),
/// else what the refresh saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    pub made: Option<(Made, String)>,
    /// What the refresh saw, if anything.
    pub seen: Option<String>,
    /// The failure when there is neither (`the relay `orders` does not exist`).
    pub missing: String,
}

/// An AWS account and region (the account by its id: a relay moved to another region or account
/// leaves its old partner bus there).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountAt {
    pub account_id: String,
    pub region: String,
}

impl std::fmt::Display for AccountAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AWS account {} in {}", self.account_id, self.region)
    }
}

/// How a relay replays after an outage (its `relayOption`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Recovery {
    Earliest,
    Latest,
}

impl Recovery {
    /// The `relayOption` JSON Salesforce takes.
    pub fn relay_option(self) -> &'static str {
        match self {
            Recovery::Earliest => r#"{"ReplayRecovery":"EARLIEST"}"#,
            Recovery::Latest => r#"{"ReplayRecovery":"LATEST"}"#,
        }
    }

    /// The recovery a `relayOption` value says, however it is spaced.
    pub fn of(relay_option: &str) -> Option<Recovery> {
        match (
            relay_option.contains("EARLIEST"),
            relay_option.contains("LATEST"),
        ) {
            (true, false) => Some(Recovery::Earliest),
            (false, true) => Some(Recovery::Latest),
            _ => None,
        }
    }
}

/// A relay's admin state (its `state` field), and the feedback status that says it took effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdminState {
    Run,
    Pause,
    Stop,
}

impl AdminState {
    /// The value of the relay's `state` field.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminState::Run => "RUN",
            AdminState::Pause => "PAUSE",
            AdminState::Stop => "STOP",
        }
    }

    pub fn of(state: &str) -> Option<AdminState> {
        [AdminState::Run, AdminState::Pause, AdminState::Stop]
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(state))
    }

    /// The `EventRelayFeedback` status a relay reports once the state has taken effect.
    pub fn reported(self) -> &'static str {
        match self {
            AdminState::Run => "RUNNING",
            AdminState::Pause => "PAUSED",
            AdminState::Stop => "STOPPED",
        }
    }
}

/// The feedback status of a relay Salesforce could not run.
pub const STATUS_ERROR: &str = "ERROR";

/// The state of a partner event source whose relay is gone.
pub const SOURCE_DELETED: &str = "DELETED";
/// The state of a partner event source with a bus (associated).
pub const SOURCE_ACTIVE: &str = "ACTIVE";
/// The state of a partner event source without one: its events are dropped.
pub const SOURCE_PENDING: &str = "PENDING";

/// A relay's destination as Salesforce stores it: `callout:<named credential>`.
pub fn callout(named_credential: &str) -> String {
    format!("callout:{named_credential}")
}

/// The named credential a relay's destination names (`callout:X` → `X`).
pub fn callout_target(destination: &str) -> Option<&str> {
    destination.strip_prefix("callout:")
}

/// Whether a value is a platform event channel's id (15 or 18 characters, key prefix `0YL`), as a
/// query may give a relay's channel.
pub fn is_channel_id(value: &str) -> bool {
    (value.len() == 15 || value.len() == 18)
        && value.starts_with("0YL")
        && value.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// An event relay's whole definition, as a Tooling PATCH must carry it: only `state` and
/// `recovery` may differ from what the relay was created with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayDefinition {
    /// The DeveloperName (with the org's namespace prefix, in an update).
    pub name: String,
    pub label: String,
    /// The channel as the relay refers to it: its full name (`X__chn`, with a namespace prefix
    /// where the org has one) or, as a read may give it, its id.
    pub channel: String,
    /// The named credential's name (the relay's destination is `callout:<it>`).
    pub named_credential: String,
    pub recovery: Recovery,
    pub state: AdminState,
}

/// A relay object in an org, whole: what a create makes and an update sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrgObject {
    /// A legacy named credential for relays (`arn:aws:<REGION>:<account>`).
    NamedCredential {
        name: String,
        label: String,
        endpoint: String,
    },
    /// A platform event channel; `name` is its DeveloperName (the full name adds `__chn`).
    Channel {
        name: String,
        /// `event` or `data`.
        channel_type: String,
        label: String,
    },
    /// A channel member; `channel` is the channel's DeveloperName.
    Member {
        name: String,
        channel: String,
        event: String,
    },
    Relay(RelayDefinition),
}

/// The kinds of relay object, for deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    NamedCredential,
    Channel,
    Member,
    Relay,
}

impl ObjectKind {
    /// How messages name it.
    pub fn noun(self) -> &'static str {
        match self {
            ObjectKind::NamedCredential => "named credential",
            ObjectKind::Channel => "channel",
            ObjectKind::Member => "member",
            ObjectKind::Relay => "relay",
        }
    }
}

impl OrgObject {
    pub fn kind(&self) -> ObjectKind {
        match self {
            OrgObject::NamedCredential { .. } => ObjectKind::NamedCredential,
            OrgObject::Channel { .. } => ObjectKind::Channel,
            OrgObject::Member { .. } => ObjectKind::Member,
            OrgObject::Relay(_) => ObjectKind::Relay,
        }
    }
}

/// What a create did: the object's id, and whether it existed already and matched (adopted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub id: String,
    pub adopted: bool,
}

/// A relay's `EventRelayFeedback`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Feedback {
    pub relay_id: String,
    /// `RUNNING`, `PAUSED`, `STOPPED` or `ERROR`.
    pub status: Option<String>,
    /// The partner event source's name, once Salesforce has registered it.
    pub remote_resource: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// The tags relayform puts on everything it creates in AWS, so that a console search, a cost
/// report or another tool can tell what relayform made and what for: `managed-by = relayform`
/// always, then what the resource serves (a relay and its org, or a role's destination bus).
/// Creates carry them; what already existed and was adopted keeps its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tags(Vec<(String, String)>);

/// The tag every resource relayform creates carries.
pub const MANAGED_BY: (&str, &str) = ("managed-by", "relayform");
/// The relay (its spec name) a partner bus or forwarding rule serves.
pub const RELAY_TAG: &str = "relayform:relay";
/// The org (its spec name) of that relay.
pub const ORG_TAG: &str = "relayform:org";
/// The destination bus (its ARN) a forwarding role sends to.
pub const DESTINATION_TAG: &str = "relayform:destination";

impl Tags {
    /// For a relay's partner bus and forwarding rule.
    pub fn for_relay(relay: &str, org: &str) -> Tags {
        Tags(vec![
            (MANAGED_BY.0.into(), MANAGED_BY.1.into()),
            (RELAY_TAG.into(), relay.into()),
            (ORG_TAG.into(), org.into()),
        ])
    }

    /// For a forwarding role (shared by the relays that send to one destination bus).
    pub fn for_role(destination_arn: &str) -> Tags {
        Tags(vec![
            (MANAGED_BY.0.into(), MANAGED_BY.1.into()),
            (DESTINATION_TAG.into(), destination_arn.into()),
        ])
    }

    /// Only `managed-by` (for temporary objects, such as `relayform conformance` makes).
    pub fn managed() -> Tags {
        Tags(vec![(MANAGED_BY.0.into(), MANAGED_BY.1.into())])
    }

    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// A forwarding role: trusted by EventBridge, allowed to put events on the destination bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    /// The trust policy document.
    pub trust: String,
    /// The name of its inline permission policy, and the document.
    pub policy_name: String,
    pub policy: String,
    pub tags: Tags,
}

/// The forwarding of a partner bus to a destination bus: a rule matching every Salesforce event, with
/// one target through the role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarding {
    pub bus: String,
    pub rule: String,
    pub target_id: String,
    pub destination_arn: String,
    pub role_arn: String,
    pub tags: Tags,
}

/// An org's relay objects. Creates adopt what exists and matches; deletes treat "gone" as done.
#[async_trait::async_trait]
pub trait OrgApi: Send + Sync {
    async fn create(&self, object: &OrgObject) -> Result<Created, Error>;
    /// Sets the object's whole definition (names as the org stores them).
    async fn update(&self, id: &str, object: &OrgObject) -> Result<(), Error>;
    async fn delete(&self, kind: ObjectKind, id: &str) -> Result<(), Error>;
    /// A relay's definition as the org holds it (for a relay adopted rather than created). Its
    /// `name` may be left empty: the caller, which asked for the relay by name, supplies it.
    async fn relay(&self, id: &str) -> Result<RelayDefinition, Error>;
    /// Every relay's feedback in the org.
    async fn feedback(&self) -> Result<Vec<Feedback>, Error>;
}

/// An account and region's IAM and EventBridge resources. Every call converges: a create that finds
/// the resource adopts it (and sets what it must), a delete that finds it gone is done.
#[async_trait::async_trait]
pub trait AccountApi: Send + Sync {
    /// Creates the role with its policies and tags, or brings an existing one to the policies.
    async fn put_role(&self, role: &Role) -> Result<(), Error>;
    async fn set_trust(&self, role: &str, trust: &str) -> Result<(), Error>;
    async fn set_role_policy(
        &self,
        role: &str,
        policy_name: &str,
        policy: &str,
    ) -> Result<(), Error>;
    async fn delete_role(&self, role: &str, policy_name: &str) -> Result<(), Error>;
    /// Creates the partner source's bus; "not found" while AWS does not show the source yet.
    async fn associate(&self, source: &str, tags: &Tags) -> Result<(), Error>;
    async fn delete_bus(&self, bus: &str) -> Result<(), Error>;
    async fn put_forwarding(&self, forwarding: &Forwarding) -> Result<(), Error>;
    async fn delete_forwarding(&self, bus: &str, rule: &str, target_id: &str) -> Result<(), Error>;
    /// Adds (or replaces) statement `sid` on the bus's resource policy, letting `sender` put events.
    async fn allow_sender(&self, bus: &str, sender: &str, sid: &str) -> Result<(), Error>;
    async fn remove_statement(&self, bus: &str, sid: &str) -> Result<(), Error>;
}

/// How the executor reaches orgs and accounts.
#[async_trait::async_trait]
pub trait Connect: Send + Sync {
    /// The org's API (spec name), or why there is none.
    fn org(&self, org: &str) -> Result<Arc<dyn OrgApi>, String>;
    /// The account and region's API; `None` when the spec has no credentials for the account.
    async fn account(&self, at: &AccountAt) -> Result<Option<Arc<dyn AccountApi>>, String>;
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Nothing to call; the outcome's words (`already gone`).
    Nothing(String),
    /// Relayform's own finding that the step cannot be made (an object the refresh did not see).
    Refuse(String),
    /// Creates (or adopts) an object; `what` names it in the outcome (`channel X__chn`); the id is
    /// recorded for later steps when `record` says under what.
    Create {
        org: String,
        object: OrgObject,
        what: String,
        record: Option<(Made, String)>,
    },
    /// Sets an object's whole definition; `done` is the outcome's words.
    Update {
        org: String,
        id: Ref,
        object: OrgObject,
        done: String,
    },
    Delete {
        org: String,
        kind: ObjectKind,
        id: String,
        /// As messages name it (`X__chn` for a channel).
        name: String,
    },
    /// Creates a relay (stopped), recording its id and the definition later PATCHes repeat
    /// (`stored`: names as the org stores them; an adopted relay's is read back instead).
    CreateRelay {
        org: String,
        relay: String,
        object: RelayDefinition,
        stored: RelayDefinition,
    },
    /// PATCHes a relay with its whole definition (what this run last set, else `base`), changed to
    /// `recovery` and `state` where given; with a state, waits until the relay reports it.
    PatchRelay {
        org: String,
        relay: String,
        id: Ref,
        base: Option<RelayDefinition>,
        recovery: Option<Recovery>,
        state: Option<AdminState>,
        /// The outcome's words.
        done: String,
    },
    /// Deletes a relay; for a replace, first its old partner bus and rule (`partner`).
    DeleteRelay {
        org: String,
        id: String,
        name: String,
        partner: Option<PartnerSide>,
    },
    /// Waits for the relay's partner source (Salesforce registers it, then AWS shows it), then
    /// creates its bus; records the source.
    Associate {
        org: String,
        at: AccountAt,
        relay: String,
        relay_id: Ref,
        tags: Tags,
    },
    /// Puts the rule and target on the relay's partner bus (`source`).
    Forward {
        at: AccountAt,
        source: Ref,
        rule: String,
        target_id: String,
        destination_arn: String,
        role_arn: String,
        tags: Tags,
    },
    DeleteForwarding {
        at: AccountAt,
        bus: String,
        rule: String,
        target_id: String,
    },
    DeleteBus {
        at: AccountAt,
        bus: String,
    },
    PutRole {
        at: AccountAt,
        role: Role,
    },
    /// Sets a role's trust policy and/or inline policy.
    SetRolePolicies {
        at: AccountAt,
        name: String,
        trust: Option<String>,
        policy: Option<(String, String)>,
    },
    DeleteRole {
        at: AccountAt,
        name: String,
        policy_name: String,
    },
    AllowSender {
        at: AccountAt,
        bus: String,
        bus_arn: String,
        sender: String,
        sid: String,
    },
    RemoveStatement {
        at: AccountAt,
        bus: String,
        sid: String,
    },
}

/// A replaced relay's old partner bus and rule, to remove before the relay goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerSide {
    pub at: AccountAt,
    pub source: String,
    pub rule: String,
    pub target_id: String,
    /// Elsewhere than the spec's account and region now (where the relay's old named credential
    /// pointed): both are removed if relayform has credentials there, else they are left, with a
    /// note.
    pub moved: bool,
    /// Whether the refresh saw the rule, and the bus (in the spec's account; always true if moved).
    pub has_rule: bool,
    pub has_bus: bool,
}
