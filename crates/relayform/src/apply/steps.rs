//! A plan's changes as steps: teardown (dependants first), build (in desired-graph order), and a
//! last step per relay recording its fingerprint; each step's needs and scope.

use super::*;

/// The scope of a change to `a`.
pub(super) fn scope_of(spec: &Spec, a: &Address) -> Scope {
    let first = relay_of(a);
    match a.kind {
        Kind::NamedCredential => Scope::Org(first.to_owned()),
        Kind::Role | Kind::BusPolicy => Scope::Account(first.to_owned()),
        kind => {
            let Some(r) = spec.relays.get(first) else {
                return Scope::Org(first.to_owned());
            };
            if kind.as_str().starts_with("salesforce.") {
                Scope::Org(r.org.value.clone())
            } else {
                Scope::Account(r.aws_account.value.clone())
            }
        }
    }
}

/// Turns the plan into steps with their dependencies, each found through an index (no step is
/// compared with every other).
pub(super) fn steps(plan: &Plan, graph: &Graph<Resource>, spec: &Spec) -> Vec<Step> {
    use std::collections::HashMap;
    let mut out: Vec<Step> = Vec::new();
    // Teardown: dependants first, which the kind order gives (forwarding ... role). A relay's
    // objects wait for the relay's own higher kinds; a shared credential or role for the higher
    // kinds of its scope (the relays there hold on to it); a bus policy statement for the
    // forwarding rules (which send with it).
    let mut teardown: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| matches!(c.action, Action::Delete | Action::Replace))
        .collect();
    teardown.sort_by_key(|c| std::cmp::Reverse(c.address.kind));
    let mut by_relay: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_scope: HashMap<Scope, Vec<usize>> = HashMap::new();
    let mut forwarding: Vec<usize> = Vec::new();
    let mut torn_at: HashMap<&Address, usize> = HashMap::new();
    for c in teardown {
        let scope = scope_of(spec, &c.address);
        let candidates: &[usize] = match c.address.kind {
            Kind::NamedCredential | Kind::Role => by_scope.get(&scope).map_or(&[], Vec::as_slice),
            Kind::BusPolicy => &forwarding,
            _ => by_relay
                .get(relay_of(&c.address))
                .map_or(&[], Vec::as_slice),
        };
        let needs = candidates
            .iter()
            .copied()
            .filter(|j| out[*j].change.address.kind > c.address.kind)
            .collect();
        let i = out.len();
        out.push(Step {
            change: c.clone(),
            half: Half::Teardown,
            needs,
            scope: scope.clone(),
        });
        by_relay.entry(relay_of(&c.address)).or_default().push(i);
        by_scope.entry(scope).or_default().push(i);
        if c.address.kind == Kind::Forwarding {
            forwarding.push(i);
        }
        torn_at.insert(&c.address, i);
    }
    // Build: each change after the build steps (before it) of what it depends on in the desired
    // graph, and after its own teardown half.
    let label_only = |c: &Change| c.fields.iter().all(|f| f.field == "label");
    let mut built_at: HashMap<Address, usize> = HashMap::new();
    for c in plan
        .changes
        .iter()
        .filter(|c| c.action != Action::Delete)
        .filter(|c| {
            !(c.address.kind == Kind::Channel && c.action == Action::Update && label_only(c))
        })
    {
        let mut needs: Vec<usize> = graph
            .with_dependencies(std::slice::from_ref(&c.address))
            .iter()
            .filter(|a| **a != c.address)
            .filter_map(|a| built_at.get(a).copied())
            .chain(torn_at.get(&c.address).copied())
            .collect();
        needs.sort_unstable();
        built_at.insert(c.address.clone(), out.len());
        out.push(Step {
            change: c.clone(),
            half: Half::Build,
            needs,
            scope: scope_of(spec, &c.address),
        });
    }
    // Last for each relay whose fingerprint (its channel's label) changes: after every build step of
    // its subgraph.
    for c in plan.changes.iter().filter(|c| {
        c.address.kind == Kind::Channel
            && c.action != Action::Delete
            && c.fields
                .iter()
                .any(|f| f.field == "label" && f.after.is_some())
    }) {
        let mut needs: Vec<usize> = graph
            .with_dependencies(&[Address::new(Kind::RelayState, c.address.key.clone())])
            .iter()
            .filter_map(|a| built_at.get(a).copied())
            .collect();
        needs.sort_unstable();
        out.push(Step {
            change: c.clone(),
            half: Half::Fingerprint,
            needs,
            scope: scope_of(spec, &c.address),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use relayform_provider::{ObservedChannel, ObservedOrg};
    use relayform_spec::{SourceFile, check};

    const SPEC: &str = r#"
version: 1
orgs: {acme: {simulator: true}}
aws_accounts: {events: {simulator: true, account_id: "123456789012", region: eu-west-1}}
relays:
  orders:
    org: acme
    aws_account: events
    events: [Order_Placed__e]
    error_recovery: earliest
    destination_bus: orders
"#;

    fn spec(text: &str) -> Spec {
        let c = check(&[SourceFile::new("t.yaml", text)]);
        assert!(!c.has_errors(), "{:?}", c.diagnostics);
        c.spec
    }

    /// Each step as `half address <- [needed addresses]`.
    fn shape(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| {
                let needs: Vec<String> = s
                    .needs
                    .iter()
                    .map(|n| format!("{:?} {}", steps[*n].half, steps[*n].change.address))
                    .collect();
                format!("{:?} {} <- {needs:?}", s.half, s.change.address)
            })
            .collect()
    }

    #[test]
    fn builds_wait_for_their_changed_ancestors_only() {
        let s = spec(SPEC);
        let plan = relayform_plan::diff::plan(&s, &Observed::default());
        let steps = steps(&plan, &relayform_plan::desired(&s), &s);
        let got = shape(&steps);
        assert!(steps.iter().all(|s| s.half != Half::Teardown));
        // The relay's fingerprint is recorded after everything of it has been built.
        let last = steps.last().unwrap();
        assert_eq!(
            (last.half, last.change.address.to_string()),
            (Half::Fingerprint, "salesforce.channel[orders]".to_owned())
        );
        assert_eq!(last.needs.len(), steps.len() - 1, "{got:#?}");
        assert!(
            got.contains(&r#"Build salesforce.relay[orders] <- ["Build salesforce.named_credential[acme/Relayform_123456789012_eu_west_1]", "Build salesforce.channel[orders]", "Build salesforce.channel_member[orders/Order_Placed__e]"]"#.to_owned()),
            "{got:#?}"
        );
        assert!(
            got.contains(&r#"Build aws.role[events/relayform-eu-west-1-orders] <- []"#.to_owned()),
            "{got:#?}"
        );
        // Running waits for everything: association and forwarding (and what they need).
        let state = steps
            .iter()
            .find(|s| s.change.address.kind == Kind::RelayState)
            .unwrap();
        assert_eq!(state.needs.len(), steps.len() - 2, "{got:#?}");
    }

    #[test]
    fn a_replaced_channel_is_torn_down_after_its_relay_and_built_before_it() {
        let s = spec(SPEC);
        let mut observed = Observed::default();
        observed.orgs.insert(
            "acme".into(),
            ObservedOrg {
                org_id: "00DSM0000000001AAA".into(),
                channels: vec![ObservedChannel {
                    id: "0YL1".into(),
                    name: "orders".into(),
                    label: None,
                    channel_type: Some("data".into()),
                }],
                relays: vec![ObservedRelay {
                    id: "7k21".into(),
                    name: "orders".into(),
                    channel: Some("orders__chn".into()),
                    destination: Some("callout:Relayform_123456789012_eu_west_1".into()),
                    ..Default::default()
                }],
                ..Default::default()
            },
        );
        let plan = relayform_plan::diff::plan(&s, &observed);
        let got = shape(&steps(&plan, &relayform_plan::desired(&s), &s));
        assert_eq!(
            got[0], "Teardown salesforce.relay[orders] <- []",
            "{got:#?}"
        );
        assert_eq!(
            got[1],
            r#"Teardown salesforce.channel[orders] <- ["Teardown salesforce.relay[orders]"]"#,
            "{got:#?}"
        );
        assert!(
            got.contains(
                &r#"Build salesforce.channel[orders] <- ["Teardown salesforce.channel[orders]"]"#
                    .to_owned()
            ),
            "{got:#?}"
        );
        assert!(
            got.iter().any(|g| g.starts_with(
                "Build salesforce.relay[orders] <- [\"Teardown salesforce.relay[orders]\""
            )),
            "{got:#?}"
        );
    }

    #[test]
    fn removals_run_dependants_first_and_shared_resources_last() {
        let s = spec(&SPEC.replace(
            "destination_bus: orders",
            "destination_bus: orders\n    ensure: absent",
        ));
        let mut plan = Plan::default();
        for (kind, key) in [
            (Kind::Role, "events/relayform-eu-west-1-orders"),
            (Kind::Channel, "orders"),
            (Kind::Relay, "orders"),
            (Kind::Forwarding, "orders"),
            (Kind::Association, "orders"),
        ] {
            plan.changes.push(Change {
                address: Address::new(kind, key),
                action: Action::Delete,
                fields: Vec::new(),
                reason: None,
                waits_for: None,
                drift: false,
            });
        }
        let got = shape(&steps(&plan, &relayform_plan::desired(&s), &s));
        let order: Vec<&str> = got
            .iter()
            .map(|g| g.split(" <- ").next().unwrap())
            .collect();
        assert_eq!(
            order,
            [
                "Teardown aws.forwarding[orders]",
                "Teardown aws.association[orders]",
                "Teardown salesforce.relay[orders]",
                "Teardown salesforce.channel[orders]",
                "Teardown aws.role[events/relayform-eu-west-1-orders]",
            ]
        );
        // The role waits for what uses it in its account (the rule sends with it), not for the
        // org's objects: teardown ordering is per scope.
        assert!(
            got[4].ends_with(
                r#"["Teardown aws.forwarding[orders]", "Teardown aws.association[orders]"]"#
            ),
            "{got:#?}"
        );
        assert!(
            got[2].ends_with(
                r#"["Teardown aws.forwarding[orders]", "Teardown aws.association[orders]"]"#
            ),
            "{got:#?}"
        );
    }
}
