//! Drift, told from spec changes by the fingerprint each relay's channel label carries (see the
//! module docs of [`super`]): the fingerprints and labels, and the pass that marks drift and records a
//! new fingerprint where a relay's subgraph changes.

use super::{change, created_or_replaced, field, org_in, same_name};
use crate::plan::{Action, Change};
use crate::resource::{Address, Kind, Resource};
use relayform_provider::ObservedOrg;
use relayform_spec::{Ensure, Spec, names};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Marks drift in `changes`, and carries the current fingerprint onto relays whose subgraph changes;
/// returns the removals of members the spec no longer names. Each relay's subgraph and fingerprint is
/// computed once, and each changed resource finds the relays using it through an index.
pub(super) fn mark(
    spec: &Spec,
    observed: &super::Observed,
    graph: &crate::Graph<Resource>,
    changes: &mut BTreeMap<Address, Change>,
) -> Vec<Change> {
    let org = |name: &str| org_in(observed, name);
    let subgraphs: BTreeMap<&String, (BTreeSet<Address>, String)> = spec
        .relays
        .iter()
        .filter(|(_, r)| r.ensure == Ensure::Present)
        .map(|(name, _)| {
            let subgraph = graph.with_dependencies(&[Address::new(Kind::RelayState, name.clone())]);
            let fp = fingerprint_over(graph, &subgraph);
            (name, (subgraph.into_iter().collect(), fp))
        })
        .collect();
    let mut users_of: HashMap<&Address, Vec<&String>> = HashMap::new();
    for (name, (closure, _)) in &subgraphs {
        for a in closure {
            users_of.entry(a).or_default().push(name);
        }
    }
    // Fingerprints: mark drift, and carry the current fingerprint onto relays whose subgraph changes.
    let mut extra_members = Vec::new();
    for (name, r) in spec
        .relays
        .iter()
        .filter(|(_, r)| r.ensure == Ensure::Present)
    {
        let (closure, want) = &subgraphs[name];
        let want = want.clone();
        let seen_channel = org(&r.org.value)
            .channels
            .iter()
            .find(|c| c.name == r.names.channel);
        let seen_fp = observed_fingerprint(org(&r.org.value), r);
        let channel_addr = Address::new(Kind::Channel, name.clone());
        // Members on the relay's channel that the spec no longer names.
        if !created_or_replaced(changes, &Address::new(Kind::Channel, name.clone())) {
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
                            &Address::member(name, &event),
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
        // Over the relay's own subgraph (a few nodes), not over every change of the fleet.
        let touched = closure.iter().any(|a| changes.contains_key(a))
            || extra_members
                .iter()
                .any(|c| c.address.key.starts_with(&prefix));
        let current = seen_fp.as_deref() == Some(want.as_str());
        if touched && current {
            for a in closure {
                if let Some(c) = changes.get_mut(a) {
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
        let users = users_of.get(a).map_or(&[][..], Vec::as_slice);
        c.drift = users.iter().all(|n| {
            let r = &spec.relays[*n];
            observed_fingerprint(org(&r.org.value), r).is_some_and(|fp| fp == subgraphs[*n].1)
        });
        // The label update that records a new fingerprint is never drift.
        if c.fields.iter().any(|f| f.field == "label") {
            c.drift = false;
        }
    }
    extra_members
}

/// The fingerprint of a relay's subgraph: a hash of the desired attributes of every resource it is made
/// of (see the module docs). Twelve hex digits of FNV-1a 64.
pub fn fingerprint(graph: &crate::Graph<Resource>, relay: &str) -> String {
    fingerprint_over(
        graph,
        &graph.with_dependencies(&[Address::new(Kind::RelayState, relay.to_owned())]),
    )
}

/// The fingerprint of a relay's subgraph, given as `with_dependencies` lists it (the text hashed is
/// the one labels have always carried: changing it would mark every relay drifted).
fn fingerprint_over(graph: &crate::Graph<Resource>, subgraph: &[Address]) -> String {
    use std::fmt::Write;
    let mut text = String::new();
    for a in subgraph {
        if let Some(r) = graph.get(a) {
            let _ = write!(text, "{a}={:?};", r.desired);
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
