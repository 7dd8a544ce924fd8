//! Desired × observed → plan: a pure function.
//!
//! Each desired resource is looked up in what the providers observed, by name (Salesforce
//! DeveloperNames, IAM role names, partner bus names): missing ones are created, differing ones updated
//! in place or, where the vendor allows no change, replaced together with what depends on them.
//! Relays marked `ensure: absent` are removed with the resources only they use. Objects nobody in the
//! spec accounts for are listed as unmanaged and never touched.
//!
//! # Drift
//!
//! relayform keeps no state file, so it tells a change made outside relayform (drift) from a spec change
//! by a **fingerprint** written on the resources themselves: each relay's channel is labelled
//! `<relay> (relayform <fingerprint>)` ([`channel_label`]), where the fingerprint hashes the desired
//! attributes of the relay's whole subgraph (its credential, channel, members, relay, association,
//! forwarding, role and state) as of the last apply. When the fingerprint on a relay's channel equals
//! that of the current spec, the spec has not changed since it was applied, so any difference in that
//! subgraph is drift: it is marked as such and reverted. When they differ, the differences are the
//! spec's, and the channel's label is updated with them (a `label` field on the channel's change).
//! Apply records the fingerprint last, once the relay's whole subgraph is built; until then a channel
//! is labelled [`unfinished_label`], so what an interrupted apply left undone is not mistaken for drift.
//!
//! The channel carries it because a relay's label cannot change (Salesforce: "you can update only the
//! state and relayOption fields"), while a channel's label is an ordinary Metadata field, the channel
//! is one per relay, and the refresh reads its label anyway. Relays applied by older relayform
//! versions carry the fingerprint in their own label ([`label_fingerprint`] reads it there when the
//! channel has none); the next apply copies it to the channel, changing nothing else.

//!
//! # Pieces
//!
//! `kinds` plans each desired resource, one kind at a time; `drift` marks drift and records
//! fingerprints; `removals` finds what `ensure: absent` relays leave behind and the objects no relay
//! accounts for; `isolate` leaves out what unread orgs and accounts would have needed.

use crate::desired::desired;
use crate::graph::Keyed;
use crate::plan::{Action, Change, FieldChange, Plan};
use crate::policy;
use crate::resource::{Address, Resource};
use relayform_provider::act::{AdminState, Recovery, is_channel_id};
use relayform_provider::{ObservedAccount, ObservedOrg, same_id, same_reference};
use relayform_spec::{Ensure, ErrorRecovery, RelayState, Spec};
use std::collections::BTreeMap;
use std::sync::LazyLock;

mod drift;
mod isolate;
mod kinds;
mod removals;

pub use drift::{MAX_LABEL, channel_label, fingerprint, label_fingerprint, unfinished_label};

/// What the providers saw: orgs and accounts by their spec names.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Observed {
    pub orgs: BTreeMap<String, ObservedOrg>,
    pub accounts: BTreeMap<String, ObservedAccount>,
    /// Orgs that could not be read, with why: their relays are left out of the plan.
    pub unread_orgs: BTreeMap<String, String>,
    /// Accounts that could not be read, with why: the relays using them are left out of the plan.
    pub unread_accounts: BTreeMap<String, String>,
}

const PENDING_SOURCE: &str =
    "the partner event source, which Salesforce registers after it creates the relay";

/// The spec's error recovery in the provider contract's terms.
pub fn recovery(r: ErrorRecovery) -> Recovery {
    match r {
        ErrorRecovery::Earliest => Recovery::Earliest,
        ErrorRecovery::Latest => Recovery::Latest,
    }
}

/// The spec's relay state as the relay's admin state.
pub fn admin(s: RelayState) -> AdminState {
    match s {
        RelayState::Running => AdminState::Run,
        RelayState::Paused => AdminState::Pause,
        RelayState::Stopped => AdminState::Stop,
    }
}

fn field(field: &'static str, before: Option<&str>, after: Option<&str>) -> FieldChange {
    FieldChange {
        field,
        before: before.map(str::to_owned),
        after: after.map(str::to_owned),
    }
}

/// A change; fields that stay the same are left out.
fn change(address: &Address, action: Action, mut fields: Vec<FieldChange>) -> Change {
    fields.retain(|f| f.before != f.after);
    Change {
        address: address.clone(),
        action,
        fields,
        reason: None,
        waits_for: None,
        drift: false,
    }
}

/// Whether two Salesforce API names are the same name: Salesforce compares them case-insensitively
/// (and hands back its own casing).
pub fn same_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Whether a relay's `EventChannel`, as a query returned it, names the channel `full` (`X__chn`) whose
/// id is `channel_id`: Salesforce may give the full name, the full name with a namespace prefix
/// (`ns__X__chn`), or the channel's id (15 or 18 characters). A difference of form is never a
/// different channel; an id is compared with the channel's own.
pub fn same_channel(observed: Option<&str>, full: &str, channel_id: Option<&str>) -> bool {
    let Some(seen) = observed else {
        return false;
    };
    same_reference(seen, full)
        || (is_channel_id(seen) && channel_id.is_some_and(|id| same_id(seen, id)))
}

/// Whether the recovery option JSON says the same as `want`.
fn same_recovery(observed: Option<&str>, want: ErrorRecovery) -> bool {
    observed.and_then(Recovery::of) == Some(recovery(want))
}

/// Whether the plan so far creates (or replaces) the resource at `a`: then nothing of it observed
/// stands.
fn created_or_replaced(changes: &BTreeMap<Address, Change>, a: &Address) -> bool {
    changes
        .get(a)
        .is_some_and(|c| matches!(c.action, Action::Create | Action::Replace))
}

/// An org the refresh did not return, as empty.
fn org_in<'a>(observed: &'a Observed, name: &str) -> &'a ObservedOrg {
    static EMPTY: LazyLock<ObservedOrg> = LazyLock::new(ObservedOrg::default);
    observed.orgs.get(name).unwrap_or(&EMPTY)
}

/// An account the refresh did not return, as empty.
fn account_in<'a>(observed: &'a Observed, name: &str) -> &'a ObservedAccount {
    static EMPTY: LazyLock<ObservedAccount> = LazyLock::new(ObservedAccount::default);
    observed.accounts.get(name).unwrap_or(&EMPTY)
}

/// Plans the changes that make the observed orgs and accounts match the spec.
pub fn plan(spec: &Spec, observed: &Observed) -> Plan {
    let graph = desired(spec);
    let order: Vec<&Resource> = graph.order().unwrap_or_else(|_| graph.nodes().collect());
    let mut planner = kinds::Planner::new(spec, observed);
    for r in &order {
        planner.resource(r);
    }
    let mut changes = planner.changes;
    let extra_members = drift::mark(spec, observed, &graph, &mut changes);

    // In graph order; then removals, last-created first.
    let mut out: Vec<Change> = order
        .iter()
        .filter_map(|r| changes.remove(&r.key()))
        .collect();
    let mut removals = removals::removals(spec, observed);
    removals.extend(extra_members);
    removals.sort_by(|a, b| {
        b.address
            .kind
            .cmp(&a.address.kind)
            .then(a.address.cmp(&b.address))
    });
    out.extend(removals);
    let mut plan = Plan {
        changes: out,
        unmanaged: removals::unmanaged(spec, observed),
        manual: manual(spec),
        unread: Vec::new(),
    };
    isolate::isolate(spec, observed, &mut plan);
    plan
}

/// The bus policy statements relayform cannot make: destinations in accounts the spec has no
/// credentials for.
fn manual(spec: &Spec) -> Vec<crate::plan::Manual> {
    let mut out: BTreeMap<(String, String), crate::plan::Manual> = BTreeMap::new();
    for (name, r) in spec
        .relays
        .iter()
        .filter(|(_, r)| r.ensure == Ensure::Present)
    {
        let Some(c) = crate::desired::cross_destination(spec, r) else {
            continue;
        };
        if c.account.is_some() {
            continue;
        }
        let m = out
            .entry((c.bus_arn.clone(), c.sender.clone()))
            .or_insert_with(|| crate::plan::Manual {
                bus_arn: c.bus_arn.clone(),
                account_id: c.account_id.clone(),
                region: c.region.clone(),
                statement: policy::bus_statement(&c.sender, &c.bus_arn, &c.statement_id)
                    .to_string(),
                command: format!(
                    "aws events put-permission --region {} --event-bus-name {} --action events:PutEvents --principal {} --statement-id {}",
                    c.region, c.bus, c.sender, c.statement_id
                ),
                relays: Vec::new(),
            });
        m.relays.push(name.clone());
    }
    out.into_values().collect()
}
