//! What goes without being desired: what `ensure: absent` relays leave behind, and the objects no
//! spec relay accounts for (listed, never touched).

use super::Observed;
use super::field;
use crate::plan::{Action, Change, Unmanaged};
use crate::policy;
use crate::resource::{Address, Kind};
use relayform_provider::act;
use relayform_provider::same_reference;
use relayform_spec::names::FORWARD_RULE;
use relayform_spec::{Ensure, Spec, names};
use std::collections::{BTreeSet, HashMap, HashSet};

/// What `ensure: absent` relays leave behind to remove: their forwarding, association, relay and
/// channel, and their named credential and role when nothing else uses them.
pub(super) fn removals(spec: &Spec, observed: &Observed) -> Vec<Change> {
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
pub(super) fn unmanaged(spec: &Spec, observed: &Observed) -> Vec<Unmanaged> {
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
    // The spec's names per org, gathered once (a pass over every relay per org grew with orgs × relays).
    let mut by_org: HashMap<&str, [HashSet<&str>; 3]> = HashMap::new();
    for r in spec.relays.values() {
        let [relays, channels, credentials] = by_org.entry(r.org.value.as_str()).or_default();
        relays.insert(&r.names.relay);
        channels.insert(&r.names.channel);
        credentials.insert(&r.names.named_credential);
    }
    let none: [HashSet<&str>; 3] = Default::default();
    for (org_name, o) in &observed.orgs {
        let [relays, channels, credentials] = by_org.get(org_name.as_str()).unwrap_or(&none);
        for r in &o.relays {
            if !relays.contains(r.name.as_str()) {
                out.push(Unmanaged {
                    system: "salesforce",
                    scope: org_name.clone(),
                    kind: "relay",
                    name: r.name.clone(),
                });
            }
        }
        for c in &o.channels {
            if !channels.contains(c.name.as_str()) {
                out.push(Unmanaged {
                    system: "salesforce",
                    scope: org_name.clone(),
                    kind: "channel",
                    name: names::channel_full_name(&c.name),
                });
            }
        }
        for n in &o.named_credentials {
            if !credentials.contains(n.name.as_str()) {
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
