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

use crate::desired::desired;
use crate::graph::Keyed;
use crate::plan::{Action, Change, FieldChange, Plan, Unmanaged};
use crate::policy;
use crate::resource::{Address, Desired, Kind, Resource};
use names::{FORWARD_RULE, FORWARD_TARGET, ROLE_POLICY};
use relayform_provider::act::{self, AdminState, Recovery, is_channel_id};
use relayform_provider::{ObservedAccount, ObservedOrg, same_id, same_reference};
use relayform_spec::{Ensure, ErrorRecovery, RelayState, Spec, names};
use std::collections::{BTreeMap, BTreeSet};

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

/// Plans the changes that make the observed orgs and accounts match the spec.
pub fn plan(spec: &Spec, observed: &Observed) -> Plan {
    let graph = desired(spec);
    let order: Vec<&Resource> = graph.order().unwrap_or_else(|_| graph.nodes().collect());
    let empty_org = ObservedOrg::default();
    let empty_account = ObservedAccount::default();
    let org = |name: &str| observed.orgs.get(name).unwrap_or(&empty_org);
    let account = |name: &str| observed.accounts.get(name).unwrap_or(&empty_account);
    let mut changes: BTreeMap<Address, Change> = BTreeMap::new();
    // Relays (spec names) that must be replaced, and why.
    let mut replaced: BTreeMap<String, String> = BTreeMap::new();
    let created_or_replaced = |changes: &BTreeMap<Address, Change>, a: &Address| {
        changes
            .get(a)
            .is_some_and(|c| matches!(c.action, Action::Create | Action::Replace))
    };

    for r in &order {
        let addr = r.key();
        match &r.desired {
            Desired::NamedCredential {
                org: o,
                name,
                endpoint,
            } => {
                let seen = org(o).named_credentials.iter().find(|n| &n.name == name);
                match seen {
                    None => {
                        changes.insert(
                            addr.clone(),
                            change(
                                &addr,
                                Action::Create,
                                vec![field("endpoint", None, Some(endpoint))],
                            ),
                        );
                    }
                    Some(n) if n.endpoint.as_deref() != Some(endpoint.as_str()) => {
                        let callout = act::callout(name);
                        let in_use = org(o).relays.iter().any(|r| {
                            r.destination
                                .as_deref()
                                .is_some_and(|d| same_reference(d, &callout))
                        });
                        let mut c = change(
                            &addr,
                            if in_use {
                                Action::Replace
                            } else {
                                Action::Update
                            },
                            vec![field("endpoint", n.endpoint.as_deref(), Some(endpoint))],
                        );
                        if in_use {
                            c.reason = Some("Salesforce does not let a named credential's AWS account or region change while relays use it".into());
                            for (rname, rel) in &spec.relays {
                                if rel.org.value == *o
                                    && rel.names.named_credential == *name
                                    && rel.ensure == Ensure::Present
                                {
                                    replaced.entry(rname.clone()).or_insert_with(|| {
                                        format!("its named credential {name} is replaced")
                                    });
                                }
                            }
                        }
                        changes.insert(addr.clone(), c);
                    }
                    Some(_) => {}
                }
            }
            Desired::Channel {
                org: o,
                name,
                channel_type,
            } => {
                let want = channel_type.as_str();
                match org(o).channels.iter().find(|c| &c.name == name) {
                    None => {
                        changes.insert(
                            addr.clone(),
                            change(
                                &addr,
                                Action::Create,
                                vec![field("channel_type", None, Some(want))],
                            ),
                        );
                    }
                    Some(c) if c.channel_type.as_deref() != Some(want) => {
                        let mut ch = change(
                            &addr,
                            Action::Replace,
                            vec![field("channel_type", c.channel_type.as_deref(), Some(want))],
                        );
                        ch.reason = Some("a channel's type cannot change".into());
                        replaced.entry(addr.key.clone()).or_insert_with(|| {
                            format!("its channel {} is replaced", names::channel_full_name(name))
                        });
                        changes.insert(addr.clone(), ch);
                    }
                    Some(_) => {}
                }
            }
            Desired::ChannelMember {
                org: o,
                channel,
                event,
                ..
            } => {
                let relay = addr.key.split('/').next().unwrap_or_default().to_owned();
                let channel_addr = Address::new(Kind::Channel, relay);
                let exists = !created_or_replaced(&changes, &channel_addr)
                    && org(o)
                        .channels
                        .iter()
                        .find(|c| &c.name == channel)
                        .is_some_and(|c| {
                            org(o).members.iter().any(|m| {
                                m.channel_id.as_deref() == Some(c.id.as_str())
                                    && m.event.as_deref().is_some_and(|e| same_name(e, event))
                            })
                        });
                if !exists {
                    changes.insert(
                        addr.clone(),
                        change(
                            &addr,
                            Action::Create,
                            vec![field("event", None, Some(event))],
                        ),
                    );
                }
            }
            Desired::Relay {
                org: o,
                name,
                channel,
                named_credential,
                error_recovery,
            } => {
                let full = names::channel_full_name(channel);
                let callout = act::callout(named_credential);
                let option = recovery(*error_recovery).relay_option();
                let fields_new = || {
                    vec![
                        field("channel", None, Some(&full)),
                        field("named_credential", None, Some(named_credential)),
                        field("error_recovery", None, Some(option)),
                    ]
                };
                match org(o).relays.iter().find(|r| &r.name == name) {
                    None => {
                        changes.insert(addr.clone(), change(&addr, Action::Create, fields_new()));
                    }
                    Some(seen) => {
                        let channel_id = org(o)
                            .channels
                            .iter()
                            .find(|c| &c.name == channel)
                            .map(|c| c.id.as_str());
                        let why = if !same_channel(seen.channel.as_deref(), &full, channel_id) {
                            Some("a relay's channel cannot change".to_owned())
                        } else if !seen
                            .destination
                            .as_deref()
                            .is_some_and(|d| same_reference(d, &callout))
                        {
                            Some("a relay's named credential cannot change".to_owned())
                        } else {
                            replaced.get(&addr.key).cloned()
                        };
                        if let Some(why) = why {
                            let mut c = change(
                                &addr,
                                Action::Replace,
                                vec![
                                    field("channel", seen.channel.as_deref(), Some(&full)),
                                    field(
                                        "named_credential",
                                        seen.destination.as_deref().and_then(act::callout_target),
                                        Some(named_credential),
                                    ),
                                ],
                            );
                            c.reason = Some(match &seen.remote_resource {
                                Some(_) => format!(
                                    "{why}; the old partner event bus and its rule go with it"
                                ),
                                None => why,
                            });
                            changes.insert(addr.clone(), c);
                        } else if !same_recovery(seen.relay_option.as_deref(), *error_recovery) {
                            changes.insert(
                                addr.clone(),
                                change(
                                    &addr,
                                    Action::Update,
                                    vec![field(
                                        "error_recovery",
                                        seen.relay_option.as_deref(),
                                        Some(option),
                                    )],
                                ),
                            );
                        }
                    }
                }
            }
            Desired::Association { account: a, relay } => {
                let relay_addr = Address::new(Kind::Relay, relay.clone());
                match source_of(spec, &changes, relay, &relay_addr, org) {
                    None => {
                        let mut c = change(&addr, Action::Create, Vec::new());
                        c.waits_for = Some(PENDING_SOURCE.into());
                        changes.insert(addr.clone(), c);
                    }
                    Some(src) if !account(a).buses.iter().any(|b| b.name == src) => {
                        changes.insert(
                            addr.clone(),
                            change(
                                &addr,
                                Action::Create,
                                vec![field("partner_bus", None, Some(&src))],
                            ),
                        );
                    }
                    Some(_) => {}
                }
            }
            Desired::Forwarding {
                account: a,
                relay,
                destination_arn,
                role,
            } => {
                let acct = &spec.aws_accounts[a];
                let partition = relayform_spec::rules::partition(&acct.region).unwrap_or("aws");
                let role_arn =
                    format!("arn:{partition}:iam::{}:role/{role}", acct.account_id.value);
                let relay_addr = Address::new(Kind::Relay, relay.clone());
                let want = vec![
                    field("destination", None, Some(destination_arn)),
                    field("role", None, Some(&role_arn)),
                ];
                match source_of(spec, &changes, relay, &relay_addr, org) {
                    None => {
                        let mut c = change(&addr, Action::Create, want);
                        c.waits_for = Some(PENDING_SOURCE.into());
                        changes.insert(addr.clone(), c);
                    }
                    Some(src) => {
                        let rule = account(a)
                            .rules
                            .iter()
                            .find(|r| r.bus == src && r.name == FORWARD_RULE);
                        let target =
                            rule.and_then(|r| r.targets.iter().find(|t| t.id == FORWARD_TARGET));
                        match target {
                            None => {
                                changes.insert(addr.clone(), change(&addr, Action::Create, want));
                            }
                            Some(t)
                                if t.arn != *destination_arn
                                    || t.role_arn.as_deref() != Some(role_arn.as_str()) =>
                            {
                                changes.insert(
                                    addr.clone(),
                                    change(
                                        &addr,
                                        Action::Update,
                                        vec![
                                            field(
                                                "destination",
                                                Some(&t.arn),
                                                Some(destination_arn),
                                            ),
                                            field("role", t.role_arn.as_deref(), Some(&role_arn)),
                                        ],
                                    ),
                                );
                            }
                            Some(_) => {}
                        }
                    }
                }
            }
            Desired::Role {
                account: a,
                name,
                trust,
                permission,
                ..
            } => {
                let compact = |v: &serde_json::Value| v.to_string();
                match account(a).roles.iter().find(|r| &r.name == name) {
                    None => {
                        changes.insert(
                            addr.clone(),
                            change(
                                &addr,
                                Action::Create,
                                vec![
                                    field("trust_policy", None, Some(&compact(trust))),
                                    field("permission_policy", None, Some(&compact(permission))),
                                ],
                            ),
                        );
                    }
                    Some(seen) => {
                        let seen_trust = seen.trust_policy.as_deref().and_then(policy::decode);
                        let seen_perm = seen
                            .policy
                            .as_ref()
                            .filter(|(n, _)| n == ROLE_POLICY)
                            .and_then(|(_, d)| policy::decode(d));
                        // Both sides in the canonical form, so that the plan shows only what differs.
                        let canonical = |v: &serde_json::Value| compact(&policy::normalize(v));
                        let mut fields = Vec::new();
                        if !seen_trust.as_ref().is_some_and(|t| policy::same(t, trust)) {
                            fields.push(field(
                                "trust_policy",
                                seen_trust.as_ref().map(canonical).as_deref(),
                                Some(&canonical(trust)),
                            ));
                        }
                        if !seen_perm
                            .as_ref()
                            .is_some_and(|p| policy::same(p, permission))
                        {
                            fields.push(field(
                                "permission_policy",
                                seen_perm.as_ref().map(canonical).as_deref(),
                                Some(&canonical(permission)),
                            ));
                        }
                        if !fields.is_empty() {
                            changes.insert(addr.clone(), change(&addr, Action::Update, fields));
                        }
                    }
                }
            }
            Desired::BusPolicy {
                account: a,
                region,
                bus,
                bus_arn,
                sender,
                statement_id,
            } => {
                let seen = account(a)
                    .bus_policies
                    .iter()
                    .find(|p| &p.region == region && &p.bus == bus);
                let has = seen
                    .and_then(|p| p.policy.as_deref())
                    .is_some_and(|p| policy::bus_policy_has(p, statement_id, sender, bus_arn));
                if !has {
                    let statement = policy::bus_statement(sender, bus_arn, statement_id);
                    let mut c = change(
                        &addr,
                        Action::Create,
                        vec![field("statement", None, Some(&statement.to_string()))],
                    );
                    c.reason = Some(if seen.is_some_and(|p| !p.exists) {
                        format!(
                            "the destination bus {bus_arn} does not exist: create it, or this fails"
                        )
                    } else {
                        format!(
                            "EventBridge delivers to {bus_arn} from account {sender} only if its policy allows it"
                        )
                    });
                    changes.insert(addr.clone(), c);
                }
            }
            Desired::RelayState {
                org: o,
                relay,
                state,
            } => {
                let relay_addr = Address::new(Kind::Relay, relay.clone());
                let want = admin(*state).as_str();
                let now = if created_or_replaced(&changes, &relay_addr) {
                    Some(AdminState::Stop.as_str().to_owned())
                } else {
                    let rname = &spec.relays[relay].names.relay;
                    org(o)
                        .relays
                        .iter()
                        .find(|r| &r.name == rname)
                        .and_then(|r| r.state.clone())
                };
                if now.as_deref() != Some(want) {
                    changes.insert(
                        addr.clone(),
                        change(
                            &addr,
                            Action::Update,
                            vec![field("state", now.as_deref(), Some(want))],
                        ),
                    );
                }
            }
        }
    }

    // Fingerprints: mark drift, and carry the current fingerprint onto relays whose subgraph changes.
    let mut extra_members = Vec::new();
    for (name, r) in spec
        .relays
        .iter()
        .filter(|(_, r)| r.ensure == Ensure::Present)
    {
        let closure: BTreeSet<Address> = graph
            .with_dependencies(&[Address::new(Kind::RelayState, name.clone())])
            .into_iter()
            .collect();
        let want = fingerprint(&graph, name);
        let seen_channel = org(&r.org.value)
            .channels
            .iter()
            .find(|c| c.name == r.names.channel);
        let seen_fp = observed_fingerprint(org(&r.org.value), r);
        let channel_addr = Address::new(Kind::Channel, name.clone());
        // Members on the relay's channel that the spec no longer names.
        if !created_or_replaced(&changes, &Address::new(Kind::Channel, name.clone())) {
            let o = org(&r.org.value);
            if let Some(ch) = o.channels.iter().find(|c| c.name == r.names.channel) {
                for m in o
                    .members
                    .iter()
                    .filter(|m| m.channel_id.as_deref() == Some(ch.id.as_str()))
                {
                    let event = m.event.clone().unwrap_or_default();
                    if !r.events.iter().any(|e| same_name(&e.value, &event)) {
                        let mut c = change(
                            &Address::new(Kind::ChannelMember, format!("{name}/{event}")),
                            Action::Delete,
                            vec![field("name", Some(&m.name), None)],
                        );
                        c.reason = Some("the spec no longer names this event".into());
                        c.drift = seen_fp.as_deref() == Some(want.as_str());
                        extra_members.push(c);
                    }
                }
            }
        }
        let prefix = format!("{name}/");
        let touched = changes.keys().any(|a| closure.contains(a))
            || extra_members
                .iter()
                .any(|c| c.address.key.starts_with(&prefix));
        let current = seen_fp.as_deref() == Some(want.as_str());
        if touched && current {
            for (a, c) in changes.iter_mut() {
                if closure.contains(a) {
                    // Shared nodes are drift only if every relay using them says so; see below.
                    c.drift = true;
                }
            }
        }
        // The channel's label records the fingerprint: when the subgraph changes and the spec did, or
        // when the channel does not hold the current one (a relay applied by an older relayform, whose
        // fingerprint sits in the relay's label).
        let channel_has_it = seen_channel
            .and_then(|c| c.label.as_deref())
            .and_then(label_fingerprint)
            .is_some_and(|fp| fp == want);
        // (A channel holding the current fingerprint means the spec has not changed since.)
        if channel_has_it {
            continue;
        }
        if !touched && seen_channel.is_none() {
            continue;
        }
        let label = channel_label(name, &want);
        let before = seen_channel.and_then(|c| c.label.as_deref());
        match changes.get_mut(&channel_addr) {
            Some(c) => {
                if !c.fields.iter().any(|f| f.field == "label") {
                    c.fields.push(field("label", before, Some(&label)));
                }
            }
            None => {
                changes.insert(
                    channel_addr.clone(),
                    change(
                        &channel_addr,
                        Action::Update,
                        vec![field("label", before, Some(&label))],
                    ),
                );
            }
        }
    }
    // A change is drift only when every relay whose subgraph holds it was applied from this spec.
    for (a, c) in changes.iter_mut() {
        if !c.drift {
            continue;
        }
        let users: Vec<&String> = spec
            .relays
            .iter()
            .filter(|(_, r)| r.ensure == Ensure::Present)
            .filter(|(n, _)| {
                graph
                    .with_dependencies(&[Address::new(Kind::RelayState, (*n).clone())])
                    .contains(a)
            })
            .map(|(n, _)| n)
            .collect();
        c.drift = users.iter().all(|n| {
            let r = &spec.relays[*n];
            observed_fingerprint(org(&r.org.value), r)
                .is_some_and(|fp| fp == fingerprint(&graph, n))
        });
        // The label update that records a new fingerprint is never drift.
        if c.fields.iter().any(|f| f.field == "label") {
            c.drift = false;
        }
    }

    // In graph order; then removals, last-created first.
    let mut out: Vec<Change> = order
        .iter()
        .filter_map(|r| changes.remove(&r.key()))
        .collect();
    let mut removals = removals(spec, observed);
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
        unmanaged: unmanaged(spec, observed),
        manual: manual(spec),
        unread: Vec::new(),
    };
    isolate(spec, observed, &mut plan);
    plan
}

/// Leaves out of the plan what an unread org or account would have needed: nothing is known of it,
/// so a plan for it would create what may exist. A relay goes whole (its org, its account and its
/// destination's account must all have been read); a shared credential or role goes with its org
/// or account. The rest of the plan stands; `plan.unread` says what was left out and why.
fn isolate(spec: &Spec, observed: &Observed, plan: &mut Plan) {
    if observed.unread_orgs.is_empty() && observed.unread_accounts.is_empty() {
        return;
    }
    let mut left_out: BTreeMap<(&'static str, String), Vec<String>> = BTreeMap::new();
    for name in observed.unread_orgs.keys() {
        left_out.entry(("salesforce", name.clone())).or_default();
    }
    for name in observed.unread_accounts.keys() {
        left_out.entry(("aws", name.clone())).or_default();
    }
    let mut relays = std::collections::BTreeSet::new();
    for (name, r) in &spec.relays {
        let destination = crate::desired::cross_destination(spec, r).and_then(|c| c.account);
        let scopes = [
            ("salesforce", Some(r.org.value.as_str())),
            ("aws", Some(r.aws_account.value.as_str())),
            ("aws", destination.as_deref()),
        ];
        for (system, scope) in scopes {
            if let Some(scope) = scope
                && let Some(list) = left_out.get_mut(&(system, scope.to_owned()))
            {
                if !list.contains(name) {
                    list.push(name.clone());
                }
                relays.insert(name.as_str());
            }
        }
    }
    // A shared credential or role that only left-out relays need is left out with them.
    let only_for_left_out =
        |users: Vec<&str>| !users.is_empty() && users.iter().all(|u| relays.contains(u));
    plan.changes.retain(|c| {
        let (first, name) = c
            .address
            .key
            .split_once('/')
            .unwrap_or((&c.address.key, ""));
        match c.address.kind {
            Kind::NamedCredential => {
                !observed.unread_orgs.contains_key(first)
                    && !only_for_left_out(
                        spec.relays
                            .iter()
                            .filter(|(_, r)| {
                                r.ensure == relayform_spec::Ensure::Present
                                    && r.org.value == first
                                    && r.names.named_credential == name
                            })
                            .map(|(n, _)| n.as_str())
                            .collect(),
                    )
            }
            Kind::Role => {
                !observed.unread_accounts.contains_key(first)
                    && !only_for_left_out(
                        spec.relays
                            .iter()
                            .filter(|(_, r)| {
                                r.ensure == relayform_spec::Ensure::Present
                                    && r.aws_account.value == first
                                    && r.names.role.as_deref() == Some(name)
                            })
                            .map(|(n, _)| n.as_str())
                            .collect(),
                    )
            }
            Kind::BusPolicy => !observed.unread_accounts.contains_key(first),
            _ => !relays.contains(first),
        }
    });
    plan.unmanaged
        .retain(|u| !left_out.contains_key(&(u.system, u.scope.clone())));
    plan.unread = left_out
        .into_iter()
        .map(|((system, scope), relays)| crate::plan::Unread {
            system,
            error: if system == "salesforce" {
                observed.unread_orgs[&scope].clone()
            } else {
                observed.unread_accounts[&scope].clone()
            },
            scope,
            relays,
        })
        .collect();
    // Orgs first, then accounts, each by name: the order the refresh reads them in.
    plan.unread.sort_by(|a, b| {
        (a.system != "salesforce", &a.scope).cmp(&(b.system != "salesforce", &b.scope))
    });
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

/// The fingerprint of a relay's subgraph: a hash of the desired attributes of every resource it is made
/// of (see the module docs). Twelve hex digits of FNV-1a 64.
pub fn fingerprint(graph: &crate::Graph<Resource>, relay: &str) -> String {
    let mut text = String::new();
    for a in graph.with_dependencies(&[Address::new(Kind::RelayState, relay.to_owned())]) {
        if let Some(r) = graph.get(&a) {
            text.push_str(&format!("{a}={:?};", r.desired));
        }
    }
    format!("{:012x}", names::fnv1a_64(text.as_bytes()) >> 16)
}

/// Salesforce's longest label.
pub const MAX_LABEL: usize = 80;

/// The label relayform gives a relay's channel: `<spec name> (relayform <fingerprint>)`, the name cut
/// short where the whole would pass Salesforce's 80 characters.
pub fn channel_label(relay: &str, fingerprint: &str) -> String {
    let suffix = format!(" (relayform {fingerprint})");
    let room = MAX_LABEL.saturating_sub(suffix.chars().count());
    let name: String = relay.chars().take(room).collect();
    format!("{name}{suffix}")
}

/// The label of a relay, and of a channel relayform has created but not finished applying: no
/// fingerprint. A relay keeps it for good (its label cannot change).
pub fn unfinished_label(relay: &str) -> String {
    let suffix = " (relayform)";
    let name: String = relay
        .chars()
        .take(MAX_LABEL - suffix.chars().count())
        .collect();
    format!("{name}{suffix}")
}

/// The fingerprint in a label written by [`channel_label`] (or, by older versions, on a relay).
pub fn label_fingerprint(label: &str) -> Option<String> {
    let (_, rest) = label.rsplit_once("(relayform ")?;
    let fp = rest.strip_suffix(')')?;
    (fp.len() == 12 && fp.bytes().all(|b| b.is_ascii_hexdigit())).then(|| fp.to_owned())
}

/// The fingerprint a spec relay was last applied with: its channel's label, or, for relays applied by
/// older versions (whose channels have none), the relay's own label.
fn observed_fingerprint(o: &ObservedOrg, r: &relayform_spec::Relay) -> Option<String> {
    let channel = o
        .channels
        .iter()
        .find(|c| c.name == r.names.channel)
        .and_then(|c| c.label.as_deref())
        .and_then(label_fingerprint);
    channel.or_else(|| {
        o.relays
            .iter()
            .find(|x| x.name == r.names.relay)?
            .label
            .as_deref()
            .and_then(label_fingerprint)
    })
}

/// The partner source of a relay, if it is known and will stay: the relay exists, is not being created
/// or replaced, and Salesforce has registered its source.
fn source_of<'a>(
    spec: &Spec,
    changes: &BTreeMap<Address, Change>,
    relay: &str,
    relay_addr: &Address,
    org: impl Fn(&str) -> &'a ObservedOrg,
) -> Option<String> {
    if changes
        .get(relay_addr)
        .is_some_and(|c| matches!(c.action, Action::Create | Action::Replace))
    {
        return None;
    }
    let r = &spec.relays[relay];
    org(&r.org.value)
        .relays
        .iter()
        .find(|o| o.name == r.names.relay)?
        .remote_resource
        .clone()
}

/// What `ensure: absent` relays leave behind to remove: their forwarding, association, relay and
/// channel, and their named credential and role when nothing else uses them.
fn removals(spec: &Spec, observed: &Observed) -> Vec<Change> {
    let mut out = Vec::new();
    let present: Vec<_> = spec
        .relays
        .values()
        .filter(|r| r.ensure == Ensure::Present)
        .collect();
    for (name, r) in spec
        .relays
        .iter()
        .filter(|(_, r)| r.ensure == Ensure::Absent)
    {
        let Some(o) = observed.orgs.get(&r.org.value) else {
            continue;
        };
        let acct = observed.accounts.get(&r.aws_account.value);
        let del = |kind, key: String, what: &str| Change {
            address: Address::new(kind, key),
            action: Action::Delete,
            fields: vec![field("name", Some(what), None)],
            reason: Some("ensure: absent".into()),
            waits_for: None,
            drift: false,
        };
        let seen = o.relays.iter().find(|x| x.name == r.names.relay);
        if let (Some(seen), Some(acct)) = (seen, acct)
            && let Some(src) = &seen.remote_resource
        {
            if acct
                .rules
                .iter()
                .any(|x| &x.bus == src && x.name == FORWARD_RULE)
            {
                out.push(del(Kind::Forwarding, name.clone(), FORWARD_RULE));
            }
            if acct.buses.iter().any(|b| &b.name == src) {
                out.push(del(Kind::Association, name.clone(), src));
            }
        }
        if let Some(seen) = seen {
            out.push(del(Kind::Relay, name.clone(), &seen.name));
        }
        if o.channels.iter().any(|c| c.name == r.names.channel) {
            out.push(del(
                Kind::Channel,
                name.clone(),
                &names::channel_full_name(&r.names.channel),
            ));
        }
        let nc = &r.names.named_credential;
        let callout = act::callout(nc);
        // Used by a relay that stays: one the spec keeps, or one it does not name at all. Relays
        // removed in the same run do not keep it (they go first).
        let leaving = |name: &str| {
            spec.relays.values().any(|x| {
                x.ensure == Ensure::Absent && x.org.value == r.org.value && x.names.relay == name
            })
        };
        let nc_used = present
            .iter()
            .any(|p| p.org.value == r.org.value && p.names.named_credential == *nc)
            || o.relays.iter().any(|x| {
                !leaving(&x.name)
                    && x.destination
                        .as_deref()
                        .is_some_and(|d| same_reference(d, &callout))
            });
        if !nc_used && o.named_credentials.iter().any(|n| n.name == *nc) {
            out.push(del(
                Kind::NamedCredential,
                format!("{}/{nc}", r.org.value),
                nc,
            ));
        }
        if let (Some(role), Some(acct)) = (&r.names.role, acct) {
            let role_used = present.iter().any(|p| {
                p.aws_account.value == r.aws_account.value && p.names.role.as_ref() == Some(role)
            });
            if !role_used && acct.roles.iter().any(|x| &x.name == role) {
                out.push(del(
                    Kind::Role,
                    format!("{}/{role}", r.aws_account.value),
                    role,
                ));
            }
        }
    }
    // Bus policy statements that only absent relays needed.
    let needed: BTreeSet<Address> = present
        .iter()
        .filter_map(|p| {
            let c = crate::desired::cross_destination(spec, p)?;
            Some(crate::desired::bus_policy_address(
                c.account.as_deref()?,
                &c,
            ))
        })
        .collect();
    for r in spec.relays.values().filter(|r| r.ensure == Ensure::Absent) {
        let Some(c) = crate::desired::cross_destination(spec, r) else {
            continue;
        };
        let Some(acct) = c.account.as_deref() else {
            continue;
        };
        let address = crate::desired::bus_policy_address(acct, &c);
        let there = observed.accounts.get(acct).is_some_and(|a| {
            a.bus_policies.iter().any(|p| {
                p.region == c.region
                    && p.bus == c.bus
                    && p.policy.as_deref().is_some_and(|d| {
                        policy::bus_policy_has(d, &c.statement_id, &c.sender, &c.bus_arn)
                    })
            })
        });
        if there && !needed.contains(&address) {
            out.push(Change {
                address,
                action: Action::Delete,
                fields: vec![field("statement_id", Some(&c.statement_id), None)],
                reason: Some("ensure: absent".into()),
                waits_for: None,
                drift: false,
            });
        }
    }
    // Shared resources are named once even when several absent relays leave them.
    let mut seen = BTreeSet::new();
    out.retain(|c| seen.insert(c.address.clone()));
    out
}

/// Relays, channels and named credentials in the spec's orgs, and Salesforce partner event sources and
/// buses in the spec's accounts, that no spec relay accounts for.
fn unmanaged(spec: &Spec, observed: &Observed) -> Vec<Unmanaged> {
    let mut out = Vec::new();
    // The partner sources of the spec's relays (present or absent), as their orgs report them.
    let ours: BTreeSet<&str> = spec
        .relays
        .values()
        .filter_map(|r| {
            observed
                .orgs
                .get(&r.org.value)?
                .relays
                .iter()
                .find(|x| x.name == r.names.relay)?
                .remote_resource
                .as_deref()
        })
        .collect();
    for (name, a) in &observed.accounts {
        let mut strangers: BTreeSet<(&'static str, &str)> = BTreeSet::new();
        for b in a.buses.iter().filter(|b| !ours.contains(b.name.as_str())) {
            strangers.insert(("partner event bus", &b.name));
        }
        for s in a.sources.iter().filter(|s| {
            !ours.contains(s.name.as_str())
                && s.state.as_deref() != Some(act::SOURCE_DELETED)
                && !a.buses.iter().any(|b| b.name == s.name)
        }) {
            strangers.insert(("partner event source", &s.name));
        }
        for (kind, n) in strangers {
            out.push(Unmanaged {
                system: "aws",
                scope: name.clone(),
                kind,
                name: n.to_owned(),
            });
        }
    }
    for (org_name, o) in &observed.orgs {
        let relays: Vec<_> = spec
            .relays
            .values()
            .filter(|r| r.org.value == *org_name)
            .collect();
        for r in &o.relays {
            if !relays.iter().any(|x| x.names.relay == r.name) {
                out.push(Unmanaged {
                    system: "salesforce",
                    scope: org_name.clone(),
                    kind: "relay",
                    name: r.name.clone(),
                });
            }
        }
        for c in &o.channels {
            if !relays.iter().any(|x| x.names.channel == c.name) {
                out.push(Unmanaged {
                    system: "salesforce",
                    scope: org_name.clone(),
                    kind: "channel",
                    name: names::channel_full_name(&c.name),
                });
            }
        }
        for n in &o.named_credentials {
            if !relays.iter().any(|x| x.names.named_credential == n.name) {
                out.push(Unmanaged {
                    system: "salesforce",
                    scope: org_name.clone(),
                    kind: "named credential",
                    name: n.name.clone(),
                });
            }
        }
    }
    out.sort();
    out
}
