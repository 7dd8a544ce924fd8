//! Orgs and accounts the refresh could not read: what they would have needed is left out of the plan.

use super::Observed;
use crate::plan::Plan;
use crate::resource::{Key, Kind};
use relayform_spec::Spec;
use std::collections::BTreeMap;

/// Leaves out of the plan what an unread org or account would have needed: nothing is known of it,
/// so a plan for it would create what may exist. A relay goes whole (its org, its account and its
/// destination's account must all have been read); a shared credential or role goes with its org
/// or account. The rest of the plan stands; `plan.unread` says what was left out and why.
pub(super) fn isolate(spec: &Spec, observed: &Observed, plan: &mut Plan) {
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
        let (first, name) = match c.address.parts() {
            Key::Shared { scope, name } => (scope, name),
            _ => (c.address.owner(), ""),
        };
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
