//! The planner, one kind of resource at a time: each desired resource looked up in what the
//! providers observed, by name, and created, updated, or replaced (with the relays that use it) where
//! the vendor allows no change in place.

use super::{
    PENDING_SOURCE, account_in, admin, change, field, org_in, recovery, same_channel, same_name,
    same_recovery,
};
use crate::graph::Keyed;
use crate::plan::{Action, Change};
use crate::policy;
use crate::resource::{Address, Desired, Kind, Resource};
use relayform_provider::act::{self, AdminState};
use relayform_provider::{ObservedAccount, ObservedOrg, ObservedRule, same_reference};
use relayform_spec::names::{self, FORWARD_RULE, FORWARD_TARGET, ROLE_POLICY};
use relayform_spec::{Ensure, Spec};
use std::collections::{BTreeMap, HashMap, HashSet};

/// An account's partner buses by name and rules by (bus, name): a fleet account holds thousands of
/// each, and a scan per relay grew with the square of the fleet.
#[derive(Default)]
struct AccountIndex<'a> {
    buses: HashSet<&'a str>,
    rules: HashMap<(&'a str, &'a str), &'a ObservedRule>,
}

/// The changes found so far, and the relays that must be replaced (with why).
pub(super) struct Planner<'a> {
    spec: &'a Spec,
    observed: &'a super::Observed,
    pub(super) changes: BTreeMap<Address, Change>,
    /// Relays (spec names) that must be replaced, and why.
    replaced: BTreeMap<String, String>,
    /// Built on first use, per spec account.
    indexes: HashMap<&'a str, AccountIndex<'a>>,
}

impl<'a> Planner<'a> {
    pub(super) fn new(spec: &'a Spec, observed: &'a super::Observed) -> Self {
        Planner {
            spec,
            observed,
            changes: BTreeMap::new(),
            replaced: BTreeMap::new(),
            indexes: HashMap::new(),
        }
    }

    fn index(&mut self, account: &'a str) -> &AccountIndex<'a> {
        let observed = self.observed;
        self.indexes.entry(account).or_insert_with(|| {
            let a = account_in(observed, account);
            AccountIndex {
                buses: a.buses.iter().map(|b| b.name.as_str()).collect(),
                rules: a
                    .rules
                    .iter()
                    .map(|r| ((r.bus.as_str(), r.name.as_str()), r))
                    .collect(),
            }
        })
    }

    fn org(&self, name: &str) -> &'a ObservedOrg {
        org_in(self.observed, name)
    }

    fn account(&self, name: &str) -> &'a ObservedAccount {
        account_in(self.observed, name)
    }

    fn created_or_replaced(&self, a: &Address) -> bool {
        super::created_or_replaced(&self.changes, a)
    }

    /// Plans one desired resource (they come in graph order: what it depends on is planned).
    pub(super) fn resource(&mut self, r: &'a Resource) {
        let addr = &r.key();
        match &r.desired {
            Desired::NamedCredential { .. } => self.named_credential(addr, &r.desired),
            Desired::Channel { .. } => self.channel(addr, &r.desired),
            Desired::ChannelMember { .. } => self.member(addr, &r.desired),
            Desired::Relay { .. } => self.relay(addr, &r.desired),
            Desired::Association { .. } => self.association(addr, &r.desired),
            Desired::Forwarding { .. } => self.forwarding(addr, &r.desired),
            Desired::Role { .. } => self.role(addr, &r.desired),
            Desired::BusPolicy { .. } => self.bus_policy(addr, &r.desired),
            Desired::RelayState { .. } => self.relay_state(addr, &r.desired),
        }
    }

    /// The partner source of a relay, if it is known and will stay: the relay exists, is not being
    /// created or replaced, and Salesforce has registered its source.
    fn source_of(&self, relay: &str, relay_addr: &Address) -> Option<String> {
        if self.created_or_replaced(relay_addr) {
            return None;
        }
        let r = &self.spec.relays[relay];
        self.org(&r.org.value)
            .relays
            .iter()
            .find(|o| o.name == r.names.relay)?
            .remote_resource
            .clone()
    }

    fn named_credential(&mut self, addr: &Address, desired: &'a Desired) {
        let Desired::NamedCredential {
            org: o,
            name,
            endpoint,
        } = desired
        else {
            return;
        };
        let seen = self
            .org(o)
            .named_credentials
            .iter()
            .find(|n| &n.name == name);
        match seen {
            None => {
                self.changes.insert(
                    addr.clone(),
                    change(
                        addr,
                        Action::Create,
                        vec![field("endpoint", None, Some(endpoint))],
                    ),
                );
            }
            Some(n) if n.endpoint.as_deref() != Some(endpoint.as_str()) => {
                let callout = act::callout(name);
                let in_use = self.org(o).relays.iter().any(|r| {
                    r.destination
                        .as_deref()
                        .is_some_and(|d| same_reference(d, &callout))
                });
                let mut c = change(
                    addr,
                    if in_use {
                        Action::Replace
                    } else {
                        Action::Update
                    },
                    vec![field("endpoint", n.endpoint.as_deref(), Some(endpoint))],
                );
                if in_use {
                    c.reason = Some("Salesforce does not let a named credential's AWS account or region change while relays use it".into());
                    for (rname, rel) in &self.spec.relays {
                        if rel.org.value == *o
                            && rel.names.named_credential == *name
                            && rel.ensure == Ensure::Present
                        {
                            self.replaced.entry(rname.clone()).or_insert_with(|| {
                                format!("its named credential {name} is replaced")
                            });
                        }
                    }
                }
                self.changes.insert(addr.clone(), c);
            }
            Some(_) => {}
        }
    }

    fn channel(&mut self, addr: &Address, desired: &'a Desired) {
        let Desired::Channel {
            org: o,
            name,
            channel_type,
        } = desired
        else {
            return;
        };
        let want = channel_type.as_str();
        match self.org(o).channels.iter().find(|c| &c.name == name) {
            None => {
                self.changes.insert(
                    addr.clone(),
                    change(
                        addr,
                        Action::Create,
                        vec![field("channel_type", None, Some(want))],
                    ),
                );
            }
            Some(c) if c.channel_type.as_deref() != Some(want) => {
                let mut ch = change(
                    addr,
                    Action::Replace,
                    vec![field("channel_type", c.channel_type.as_deref(), Some(want))],
                );
                ch.reason = Some("a channel's type cannot change".into());
                self.replaced.entry(addr.key.clone()).or_insert_with(|| {
                    format!("its channel {} is replaced", names::channel_full_name(name))
                });
                self.changes.insert(addr.clone(), ch);
            }
            Some(_) => {}
        }
    }

    fn member(&mut self, addr: &Address, desired: &'a Desired) {
        let Desired::ChannelMember {
            org: o,
            channel,
            event,
            ..
        } = desired
        else {
            return;
        };
        let relay = addr.owner().to_owned();
        let channel_addr = Address::new(Kind::Channel, relay);
        let exists = !self.created_or_replaced(&channel_addr)
            && self
                .org(o)
                .channels
                .iter()
                .find(|c| &c.name == channel)
                .is_some_and(|c| {
                    self.org(o).members.iter().any(|m| {
                        m.channel_id.as_deref() == Some(c.id.as_str())
                            && m.event.as_deref().is_some_and(|e| same_name(e, event))
                    })
                });
        if !exists {
            self.changes.insert(
                addr.clone(),
                change(
                    addr,
                    Action::Create,
                    vec![field("event", None, Some(event))],
                ),
            );
        }
    }

    fn relay(&mut self, addr: &Address, desired: &'a Desired) {
        let Desired::Relay {
            org: o,
            name,
            channel,
            named_credential,
            error_recovery,
        } = desired
        else {
            return;
        };
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
        match self.org(o).relays.iter().find(|r| &r.name == name) {
            None => {
                self.changes
                    .insert(addr.clone(), change(addr, Action::Create, fields_new()));
            }
            Some(seen) => {
                let channel_id = self
                    .org(o)
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
                    self.replaced.get(&addr.key).cloned()
                };
                if let Some(why) = why {
                    let mut c = change(
                        addr,
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
                        Some(_) => {
                            format!("{why}; the old partner event bus and its rule go with it")
                        }
                        None => why,
                    });
                    self.changes.insert(addr.clone(), c);
                } else if !same_recovery(seen.relay_option.as_deref(), *error_recovery) {
                    self.changes.insert(
                        addr.clone(),
                        change(
                            addr,
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

    fn association(&mut self, addr: &Address, desired: &'a Desired) {
        let Desired::Association { account: a, relay } = desired else {
            return;
        };
        let relay_addr = Address::new(Kind::Relay, relay.clone());
        match self.source_of(relay, &relay_addr) {
            None => {
                let mut c = change(addr, Action::Create, Vec::new());
                c.waits_for = Some(PENDING_SOURCE.into());
                self.changes.insert(addr.clone(), c);
            }
            Some(src) if !self.index(a).buses.contains(src.as_str()) => {
                self.changes.insert(
                    addr.clone(),
                    change(
                        addr,
                        Action::Create,
                        vec![field("partner_bus", None, Some(&src))],
                    ),
                );
            }
            Some(_) => {}
        }
    }

    fn forwarding(&mut self, addr: &Address, desired: &'a Desired) {
        let Desired::Forwarding {
            account: a,
            relay,
            destination_arn,
            role,
        } = desired
        else {
            return;
        };
        let acct = &self.spec.aws_accounts[a];
        let partition = relayform_spec::rules::partition(&acct.region).unwrap_or("aws");
        let role_arn = format!("arn:{partition}:iam::{}:role/{role}", acct.account_id.value);
        let relay_addr = Address::new(Kind::Relay, relay.clone());
        let want = vec![
            field("destination", None, Some(destination_arn)),
            field("role", None, Some(&role_arn)),
        ];
        match self.source_of(relay, &relay_addr) {
            None => {
                let mut c = change(addr, Action::Create, want);
                c.waits_for = Some(PENDING_SOURCE.into());
                self.changes.insert(addr.clone(), c);
            }
            Some(src) => {
                let rule = self
                    .index(a)
                    .rules
                    .get(&(src.as_str(), FORWARD_RULE))
                    .copied();
                let target = rule.and_then(|r| r.targets.iter().find(|t| t.id == FORWARD_TARGET));
                match target {
                    None => {
                        self.changes
                            .insert(addr.clone(), change(addr, Action::Create, want));
                    }
                    Some(t)
                        if t.arn != *destination_arn
                            || t.role_arn.as_deref() != Some(role_arn.as_str()) =>
                    {
                        self.changes.insert(
                            addr.clone(),
                            change(
                                addr,
                                Action::Update,
                                vec![
                                    field("destination", Some(&t.arn), Some(destination_arn)),
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

    fn role(&mut self, addr: &Address, desired: &'a Desired) {
        let Desired::Role {
            account: a,
            name,
            trust,
            permission,
            ..
        } = desired
        else {
            return;
        };
        let compact = |v: &serde_json::Value| v.to_string();
        match self.account(a).roles.iter().find(|r| &r.name == name) {
            None => {
                self.changes.insert(
                    addr.clone(),
                    change(
                        addr,
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
                    self.changes
                        .insert(addr.clone(), change(addr, Action::Update, fields));
                }
            }
        }
    }

    fn bus_policy(&mut self, addr: &Address, desired: &'a Desired) {
        let Desired::BusPolicy {
            account: a,
            region,
            bus,
            bus_arn,
            sender,
            statement_id,
        } = desired
        else {
            return;
        };
        let seen = self
            .account(a)
            .bus_policies
            .iter()
            .find(|p| &p.region == region && &p.bus == bus);
        let has = seen
            .and_then(|p| p.policy.as_deref())
            .is_some_and(|p| policy::bus_policy_has(p, statement_id, sender, bus_arn));
        if !has {
            let statement = policy::bus_statement(sender, bus_arn, statement_id);
            let mut c = change(
                addr,
                Action::Create,
                vec![field("statement", None, Some(&statement.to_string()))],
            );
            c.reason = Some(if seen.is_some_and(|p| !p.exists) {
                format!("the destination bus {bus_arn} does not exist: create it, or this fails")
            } else {
                format!(
                    "EventBridge delivers to {bus_arn} from account {sender} only if its policy allows it"
                )
            });
            self.changes.insert(addr.clone(), c);
        }
    }

    fn relay_state(&mut self, addr: &Address, desired: &'a Desired) {
        let Desired::RelayState {
            org: o,
            relay,
            state,
        } = desired
        else {
            return;
        };
        let relay_addr = Address::new(Kind::Relay, relay.clone());
        let want = admin(*state).as_str();
        let now = if self.created_or_replaced(&relay_addr) {
            Some(AdminState::Stop.as_str().to_owned())
        } else {
            let rname = &self.spec.relays[relay].names.relay;
            self.org(o)
                .relays
                .iter()
                .find(|r| &r.name == rname)
                .and_then(|r| r.state.clone())
        };
        if now.as_deref() != Some(want) {
            self.changes.insert(
                addr.clone(),
                change(
                    addr,
                    Action::Update,
                    vec![field("state", now.as_deref(), Some(want))],
                ),
            );
        }
    }
}
