//! The desired resource graph of a spec.

use crate::graph::Graph;
use crate::resource::{Address, Desired, Kind, Resource};
use relayform_spec::{Ensure, Relay, Spec, names};

/// A relay's destination bus in another account or region than the relay's own: EventBridge delivers
/// to it only if the bus's resource policy allows the sending account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrossDestination {
    /// The spec account with credentials for the destination's account, if the spec has one.
    pub account: Option<String>,
    pub account_id: String,
    pub region: String,
    pub bus: String,
    pub bus_arn: String,
    /// The relay's own account id: the one that sends.
    pub sender: String,
    /// The statement's id on the bus's policy: one per sending account.
    pub statement_id: String,
}

/// The cross-account or cross-region destination of a relay, if it has one.
pub fn cross_destination(spec: &Spec, relay: &Relay) -> Option<CrossDestination> {
    let dest = &relay.destination.as_ref()?.value;
    let own = spec.aws_accounts.get(&relay.aws_account.value)?;
    if dest.account_id == own.account_id.value && dest.region == own.region.value {
        return None;
    }
    // Credentials for the destination's account: the spec account with its id (same region first).
    let mut candidates: Vec<(&String, &relayform_spec::AwsAccount)> = spec
        .aws_accounts
        .iter()
        .filter(|(_, a)| a.account_id.value == dest.account_id)
        .collect();
    candidates.sort_by_key(|(n, a)| (a.region.value != dest.region, (*n).clone()));
    Some(CrossDestination {
        account: candidates.first().map(|(n, _)| (*n).clone()),
        account_id: dest.account_id.clone(),
        region: dest.region.clone(),
        bus: dest.bus_name.clone(),
        bus_arn: dest.arn(),
        sender: own.account_id.value.clone(),
        statement_id: format!("relayform-{}", own.account_id.value),
    })
}

/// The address of a bus policy statement: `aws.bus_policy[<account>/<region>/<bus>/<sender>]`.
pub fn bus_policy_address(account: &str, c: &CrossDestination) -> Address {
    Address::new(
        Kind::BusPolicy,
        format!("{account}/{}/{}/{}", c.region, c.bus, c.sender),
    )
}

/// The graph of every resource the spec wants present, with dependencies:
///
/// ```text
/// aws.bus_policy (destination in another account or region) ──┐
/// aws.role ───────────────────────────────────────────────► aws.forwarding ─┐
/// salesforce.named_credential ──► salesforce.relay ──► aws.association ─┬──┘ ▼
/// salesforce.channel ──► channel_member(s) ──┘                          └──► salesforce.relay_state
/// ```
///
/// Relays with `ensure: absent` contribute nothing: they are the planner's to remove.
pub fn desired(spec: &Spec) -> Graph<Resource> {
    let mut g = Graph::default();
    for (name, relay) in &spec.relays {
        if relay.ensure == Ensure::Absent {
            continue;
        }
        let org = relay.org.value.clone();
        let account = spec.aws_accounts[&relay.aws_account.value].clone();
        let mut add = |kind, key: String, desired| {
            g.add(Resource {
                address: Address::new(kind, key),
                desired,
            })
        };
        let nc_name = relay.names.named_credential.clone();
        let credential = add(
            Kind::NamedCredential,
            format!("{org}/{nc_name}"),
            Desired::NamedCredential {
                org: org.clone(),
                endpoint: names::named_credential_endpoint(&account.account_id, &account.region),
                name: nc_name,
            },
        );
        let channel = add(
            Kind::Channel,
            name.clone(),
            Desired::Channel {
                org: org.clone(),
                name: relay.names.channel.clone(),
                channel_type: relay.channel_type,
            },
        );
        let members: Vec<_> = relay
            .events
            .iter()
            .map(|event| {
                add(
                    Kind::ChannelMember,
                    format!("{name}/{}", event.value),
                    Desired::ChannelMember {
                        org: org.clone(),
                        name: names::channel_member(&relay.names.channel, event),
                        channel: relay.names.channel.clone(),
                        event: event.value.clone(),
                    },
                )
            })
            .collect();
        let relay_node = add(
            Kind::Relay,
            name.clone(),
            Desired::Relay {
                org: org.clone(),
                name: relay.names.relay.clone(),
                channel: relay.names.channel.clone(),
                named_credential: relay.names.named_credential.clone(),
                error_recovery: relay.error_recovery,
            },
        );
        let association = add(
            Kind::Association,
            name.clone(),
            Desired::Association {
                account: account.name.clone(),
                relay: name.clone(),
            },
        );
        let state = add(
            Kind::RelayState,
            name.clone(),
            Desired::RelayState {
                org: org.clone(),
                relay: name.clone(),
                state: relay.state,
            },
        );
        let bus_policy = cross_destination(spec, relay).and_then(|c| {
            let account = c.account.clone()?;
            let address = bus_policy_address(&account, &c);
            Some(add(
                Kind::BusPolicy,
                address.key,
                Desired::BusPolicy {
                    account,
                    region: c.region,
                    bus: c.bus,
                    bus_arn: c.bus_arn,
                    sender: c.sender,
                    statement_id: c.statement_id,
                },
            ))
        });
        let forwarding = match (&relay.destination, &relay.names.role) {
            (Some(dest), Some(role)) => {
                let arn = dest.value.arn();
                let partition = relayform_spec::rules::partition(&account.region).unwrap_or("aws");
                let role_node = add(
                    Kind::Role,
                    format!("{}/{role}", account.name),
                    Desired::Role {
                        account: account.name.clone(),
                        name: role.clone(),
                        destination_arn: arn.clone(),
                        trust: crate::policy::forwarding_trust(
                            partition,
                            &account.region,
                            &account.account_id,
                        ),
                        permission: crate::policy::forwarding_permission(&arn),
                    },
                );
                let fwd = add(
                    Kind::Forwarding,
                    name.clone(),
                    Desired::Forwarding {
                        account: account.name.clone(),
                        relay: name.clone(),
                        destination_arn: arn,
                        role: role.clone(),
                    },
                );
                Some((role_node, fwd))
            }
            _ => None,
        };
        g.depend(credential, relay_node);
        g.depend(channel, relay_node);
        for m in members {
            g.depend(channel, m);
            g.depend(m, relay_node);
        }
        g.depend(relay_node, association);
        g.depend(association, state);
        if let Some((role_node, fwd)) = forwarding {
            g.depend(role_node, fwd);
            if let Some(bp) = bus_policy {
                g.depend(bp, fwd);
            }
            g.depend(association, fwd);
            // Start relaying only once events have somewhere to go.
            g.depend(fwd, state);
        }
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use relayform_spec::{SourceFile, check};

    fn spec(text: &str) -> Spec {
        let checked = check(&[SourceFile::new("t.yaml", text)]);
        assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
        checked.spec
    }

    const TWO_RELAYS: &str = r#"
version: 1
orgs: {acme: {simulator: true}}
aws_accounts: {events: {simulator: true, account_id: "123456789012", region: eu-west-1}}
relays:
  orders:
    org: acme
    aws_account: events
    events: [Order_Placed__e, Order_Shipped__e]
    error_recovery: earliest
    destination_bus: orders
  returns:
    org: acme
    aws_account: events
    events: [Return__e]
    error_recovery: latest
    destination_bus: orders
  gone:
    org: acme
    aws_account: events
    events: [Gone__e]
    error_recovery: latest
    ensure: absent
"#;

    #[test]
    fn graph_of_two_relays_sharing_credential_and_role() {
        let g = desired(&spec(TWO_RELAYS));
        let order: Vec<String> = g
            .order()
            .unwrap()
            .iter()
            .map(|r| r.address.to_string())
            .collect();
        insta::assert_snapshot!(order.join("\n"));
        // One credential and one role, shared.
        let count = |k: Kind| g.nodes().filter(|r| r.address.kind == k).count();
        assert_eq!(count(Kind::NamedCredential), 1);
        assert_eq!(count(Kind::Role), 1);
        assert_eq!(count(Kind::Relay), 2, "the absent relay is not desired");
    }

    #[test]
    fn running_waits_for_association_and_forwarding() {
        let g = desired(&spec(TWO_RELAYS));
        let state: Address = "salesforce.relay_state[orders]".parse().unwrap();
        let deps: Vec<String> = g
            .dependencies(&state)
            .iter()
            .map(|r| r.address.to_string())
            .collect();
        assert_eq!(deps, ["aws.association[orders]", "aws.forwarding[orders]"]);
        let closure = g.with_dependencies(&[state]);
        assert!(
            closure.contains(
                &"aws.role[events/relayform-eu-west-1-orders]"
                    .parse()
                    .unwrap()
            )
        );
        assert!(!closure.iter().any(|a| a.key.starts_with("returns")));
    }

    #[test]
    fn the_role_grants_exactly_the_destination() {
        let g = desired(&spec(TWO_RELAYS));
        let role: Address = "aws.role[events/relayform-eu-west-1-orders]"
            .parse()
            .unwrap();
        let Desired::Role {
            trust, permission, ..
        } = &g.get(&role).unwrap().desired
        else {
            panic!("not a role");
        };
        assert_eq!(
            permission["Statement"][0]["Resource"],
            "arn:aws:events:eu-west-1:123456789012:event-bus/orders"
        );
        assert_eq!(permission["Statement"][0]["Action"], "events:PutEvents");
        assert_eq!(
            trust["Statement"][0]["Condition"]["StringEquals"]["aws:SourceAccount"],
            "123456789012"
        );
    }

    #[test]
    fn dot_and_mermaid() {
        let g = desired(&spec(TWO_RELAYS));
        let dot = g.to_dot(Resource::label);
        assert!(
            dot.contains("\"salesforce.relay[orders]\" -> \"aws.association[orders]\";"),
            "{dot}"
        );
        let mermaid = g.to_mermaid(Resource::label);
        assert!(mermaid.starts_with("flowchart LR\n"));
        assert_eq!(mermaid.matches("-->").count(), dot.matches("->").count());
    }

    #[test]
    fn addresses_parse_and_print() {
        let a: Address = "aws.role[events/relayform-x]".parse().unwrap();
        assert_eq!(a.to_string(), "aws.role[events/relayform-x]");
        assert!(
            "salesforce.nope[x]"
                .parse::<Address>()
                .unwrap_err()
                .contains("KIND[KEY]")
        );
        assert!("salesforce.relay[]".parse::<Address>().is_err());
    }
}
