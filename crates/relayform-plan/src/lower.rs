//! A plan as the executor's steps: each change becomes one step or more, each carrying the semantic
//! operation it makes (`relayform_provider::act::Op`) with the observed ids it acts on and the values
//! it sets, its needs and its scope. After this, nothing needs the spec or the observed state.
//!
//! Deletes, and the delete half of each replace, are **teardown** steps, run dependants first
//! (forwarding, association, relay, members, channel, credential, role): a relay's objects wait for
//! its own higher kinds, a shared credential or role for the higher kinds of its scope (the relays
//! there hold on to it), a bus policy statement for the forwarding rules (which send with it).
//! Creates, updates and the create half of each replace are **build** steps, each after the build
//! steps of what it depends on in the desired graph and after its own teardown half. Last for each
//! relay whose fingerprint changes, a step records it (its channel's label), after every build step
//! of the relay's subgraph: a relay only half applied keeps its old fingerprint, so what is left is
//! not mistaken for drift. Every need is found through an index: no step is compared with every
//! other.

use crate::diff::{Observed, admin, recovery, same_name, unfinished_label};
use crate::plan::{Action, Change, Plan};
use crate::resource::{Address, Desired, Key, Kind, Resource};
use crate::{Graph, desired};
use relayform_provider::act::{
    AccountAt, Made, ObjectKind, Op, OrgObject, PartnerSide, Program, Ref, RelayDefinition, Role,
    Scope, Step, Tags,
};
use relayform_provider::{ObservedRelay, same_reference};
use relayform_spec::{Spec, names};
use std::collections::HashMap;

/// The relay (or org, or account) a key starts with: `orders/Order_Placed__e` → `orders`.
fn first(address: &Address) -> &str {
    address.owner()
}

/// The scope of a change to `a`.
pub fn scope_of(spec: &Spec, a: &Address) -> Scope {
    let first = first(a);
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Half {
    Teardown,
    Build,
    Fingerprint,
}

fn step_name(c: &Change, half: Half) -> String {
    let verb = match (half, c.action) {
        (Half::Fingerprint, _) => "record fingerprint",
        (Half::Teardown, Action::Replace) => "delete (replace)",
        (Half::Build, Action::Replace) => "create (replace)",
        (_, Action::Create) => "create",
        (_, Action::Update) => "update",
        (_, Action::Delete) => "delete",
    };
    format!("{} {verb}", c.address)
}

/// The plan's changes as steps, with their needs, scopes and operations.
pub fn lower(plan: &Plan, spec: &Spec, observed: &Observed) -> Program {
    let graph = desired(spec);
    let cx = Lowering {
        spec,
        graph: &graph,
        observed,
    };
    let index: HashMap<&Address, usize> = plan
        .changes
        .iter()
        .enumerate()
        .map(|(i, c)| (&c.address, i))
        .collect();
    let mut out: Vec<Step> = Vec::new();
    let push = |out: &mut Vec<Step>, c: &Change, half: Half, needs: Vec<usize>| {
        let op = match half {
            Half::Teardown => cx.teardown(c),
            Half::Build => cx.build(c),
            Half::Fingerprint => cx.fingerprint(c),
        };
        out.push(Step {
            name: step_name(c, half),
            address: c.address.to_string(),
            change: index[&c.address],
            teardown: half == Half::Teardown,
            needs,
            scope: scope_of(spec, &c.address),
            op,
        });
    };
    // Teardown, dependants first: the kind order gives it (forwarding ... role).
    let mut teardown: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| matches!(c.action, Action::Delete | Action::Replace))
        .collect();
    teardown.sort_by_key(|c| std::cmp::Reverse(c.address.kind));
    // Channels whose label is written last, by the fingerprint step.
    let fingerprints: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| {
            c.address.kind == Kind::Channel
                && c.action != Action::Delete
                && c.fields
                    .iter()
                    .any(|f| f.field == "label" && f.after.is_some())
        })
        .collect();
    // Room for every step at once: a vector grown by doubling holds up to twice its steps (a step
    // is 384 bytes, and 10,000 relays make 71,000 steps).
    out.reserve_exact(
        teardown.len()
            + plan
                .changes
                .iter()
                .filter(|c| c.action != Action::Delete)
                .count()
            + fingerprints.len(),
    );
    let mut by_relay: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_scope: HashMap<Scope, Vec<usize>> = HashMap::new();
    let mut forwarding: Vec<usize> = Vec::new();
    let mut torn_at: HashMap<&Address, usize> = HashMap::new();
    let mut kinds: Vec<Kind> = Vec::new();
    for c in teardown {
        let scope = scope_of(spec, &c.address);
        let candidates: &[usize] = match c.address.kind {
            Kind::NamedCredential | Kind::Role => by_scope.get(&scope).map_or(&[], Vec::as_slice),
            Kind::BusPolicy => &forwarding,
            _ => by_relay.get(first(&c.address)).map_or(&[], Vec::as_slice),
        };
        let needs = candidates
            .iter()
            .copied()
            .filter(|j| kinds[*j] > c.address.kind)
            .collect();
        let i = out.len();
        push(&mut out, c, Half::Teardown, needs);
        kinds.push(c.address.kind);
        by_relay.entry(first(&c.address)).or_default().push(i);
        by_scope.entry(scope).or_default().push(i);
        if c.address.kind == Kind::Forwarding {
            forwarding.push(i);
        }
        torn_at.insert(&c.address, i);
    }
    // Build: after the build steps (before it) of what it depends on, and its own teardown half. A
    // channel change that only writes its label is the fingerprint step's.
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
        push(&mut out, c, Half::Build, needs);
    }
    for c in fingerprints {
        let mut needs: Vec<usize> = graph
            .with_dependencies(&[Address::new(Kind::RelayState, c.address.key.clone())])
            .iter()
            .filter_map(|a| built_at.get(a).copied())
            .collect();
        needs.sort_unstable();
        push(&mut out, c, Half::Fingerprint, needs);
    }
    Program {
        steps: out,
        changes: plan
            .changes
            .iter()
            .map(|c| scope_of(spec, &c.address))
            .collect(),
    }
}

struct Lowering<'a> {
    spec: &'a Spec,
    graph: &'a Graph<Resource>,
    observed: &'a Observed,
}

const ALREADY_GONE: &str = "already gone";

impl Lowering<'_> {
    /// The org (spec name) a change acts in.
    fn org_of(&self, a: &Address) -> Result<String, String> {
        match a.kind {
            Kind::NamedCredential => Ok(first(a).to_owned()),
            _ => self
                .spec
                .relays
                .get(first(a))
                .map(|r| r.org.value.clone())
                .ok_or_else(|| format!("{a} names no relay of the spec")),
        }
    }

    /// A spec account, by its spec name, in its own region or in `region`.
    fn at(&self, account: &str, region: Option<&str>) -> Result<AccountAt, String> {
        let acct = self
            .spec
            .aws_accounts
            .get(account)
            .ok_or_else(|| format!("no AWS account `{account}` in the spec"))?;
        Ok(AccountAt {
            account_id: acct.account_id.value.clone(),
            region: region.unwrap_or(&acct.region.value).to_owned(),
        })
    }

    /// The account a change acts in.
    fn account_of(&self, a: &Address) -> Result<AccountAt, String> {
        match a.kind {
            Kind::Role | Kind::BusPolicy => self.at(first(a), None),
            _ => {
                let r = self
                    .spec
                    .relays
                    .get(first(a))
                    .ok_or_else(|| format!("{a} names no relay of the spec"))?;
                self.at(&r.aws_account.value, None)
            }
        }
    }

    fn observed_relay(&self, relay: &str) -> Option<&ObservedRelay> {
        let r = self.spec.relays.get(relay)?;
        self.observed
            .orgs
            .get(&r.org.value)?
            .relays
            .iter()
            .find(|x| x.name == r.names.relay)
    }

    /// A name as the org stores it: with its namespace prefix, if the org has one.
    fn in_org(&self, org: &str, name: &str) -> String {
        match self
            .observed
            .orgs
            .get(org)
            .and_then(|o| o.namespace.as_deref())
        {
            Some(ns) => format!("{ns}__{name}"),
            None => name.to_owned(),
        }
    }

    fn relay_ref(&self, relay: &str) -> Ref {
        Ref {
            made: Some((Made::RelayId, relay.to_owned())),
            seen: self.observed_relay(relay).map(|r| r.id.clone()),
            missing: format!("the relay `{relay}` does not exist"),
        }
    }

    fn channel_ref(&self, relay: &str) -> Ref {
        let r = &self.spec.relays[relay];
        Ref {
            made: Some((Made::ChannelId, relay.to_owned())),
            seen: self
                .observed
                .orgs
                .get(&r.org.value)
                .and_then(|o| o.channels.iter().find(|c| c.name == r.names.channel))
                .map(|c| c.id.clone()),
            missing: format!("the channel of relay `{relay}` does not exist"),
        }
    }

    /// A relay's whole definition as the refresh read it, in the form a PATCH takes. Channel and
    /// credential as the spec names them: the plan replaces a relay whose channel or credential
    /// differ, so these are the relay's own (a query may have returned the channel as its id). A
    /// recovery or state the refresh could not read is the spec's (a PATCH sets it then anyway).
    fn observed_definition(&self, relay: &str) -> Option<RelayDefinition> {
        let seen = self.observed_relay(relay)?;
        let r = &self.spec.relays[relay];
        let org = &r.org.value;
        Some(RelayDefinition {
            name: self.in_org(org, &r.names.relay),
            label: seen.label.clone().unwrap_or_else(|| seen.name.clone()),
            channel: self.in_org(org, &names::channel_full_name(&r.names.channel)),
            named_credential: self.in_org(org, &r.names.named_credential),
            recovery: seen
                .relay_option
                .as_deref()
                .and_then(relayform_provider::act::Recovery::of)
                .unwrap_or(recovery(r.error_recovery)),
            state: seen
                .state
                .as_deref()
                .and_then(relayform_provider::act::AdminState::of)
                .unwrap_or(relayform_provider::act::AdminState::Stop),
        })
    }

    fn desired(&self, a: &Address) -> Result<&Desired, String> {
        self.graph
            .get(a)
            .map(|r| &r.desired)
            .ok_or_else(|| format!("{a} is not in the spec's graph"))
    }

    fn teardown(&self, c: &Change) -> Op {
        self.try_teardown(c).unwrap_or_else(Op::Refuse)
    }

    fn try_teardown(&self, c: &Change) -> Result<Op, String> {
        let a = &c.address;
        let relay = first(a);
        let source = || {
            self.observed_relay(relay)
                .and_then(|r| r.remote_resource.clone())
        };
        Ok(match a.kind {
            Kind::Forwarding => match source() {
                None => Op::Nothing(ALREADY_GONE.into()),
                Some(bus) => Op::DeleteForwarding {
                    at: self.account_of(a)?,
                    bus,
                    rule: names::FORWARD_RULE.into(),
                    target_id: names::FORWARD_TARGET.into(),
                },
            },
            Kind::Association => match source() {
                None => Op::Nothing(ALREADY_GONE.into()),
                Some(bus) => Op::DeleteBus {
                    at: self.account_of(a)?,
                    bus,
                },
            },
            Kind::Relay => {
                let Some(seen) = self.observed_relay(relay) else {
                    return Ok(Op::Nothing(ALREADY_GONE.into()));
                };
                let partner = if c.action == Action::Replace {
                    // The old partner source goes with the relay; its bus and rule would be left.
                    self.partner_side(relay, seen)?
                } else {
                    None
                };
                Op::DeleteRelay {
                    org: self.org_of(a)?,
                    id: seen.id.clone(),
                    name: seen.name.clone(),
                    partner,
                }
            }
            Kind::RelayState => Op::Nothing("nothing to do".into()),
            Kind::Channel => {
                let r = &self.spec.relays[relay];
                let o = self.observed.orgs.get(&r.org.value);
                let Some(ch) =
                    o.and_then(|o| o.channels.iter().find(|c| c.name == r.names.channel))
                else {
                    return Ok(Op::Nothing(ALREADY_GONE.into()));
                };
                Op::Delete {
                    org: self.org_of(a)?,
                    kind: ObjectKind::Channel,
                    id: ch.id.clone(),
                    name: names::channel_full_name(&ch.name),
                }
            }
            Kind::ChannelMember => {
                let r = &self.spec.relays[relay];
                let Key::Member { event, .. } = a.parts() else {
                    return Err(format!("{a} is not a channel member's address"));
                };
                let o = self.observed.orgs.get(&r.org.value);
                let member = o.and_then(|o| {
                    let ch = o.channels.iter().find(|c| c.name == r.names.channel)?;
                    o.members.iter().find(|m| {
                        m.channel_id.as_deref() == Some(ch.id.as_str())
                            && m.event.as_deref().is_some_and(|x| same_name(x, event))
                    })
                });
                let Some(m) = member else {
                    return Ok(Op::Nothing(ALREADY_GONE.into()));
                };
                Op::Delete {
                    org: self.org_of(a)?,
                    kind: ObjectKind::Member,
                    id: m.id.clone(),
                    name: m.name.clone(),
                }
            }
            Kind::NamedCredential => {
                let Key::Shared { scope: org, name } = a.parts() else {
                    return Err(format!("{a} is not a named credential's address"));
                };
                let Some(nc) = self
                    .observed
                    .orgs
                    .get(org)
                    .and_then(|o| o.named_credentials.iter().find(|n| n.name == name))
                else {
                    return Ok(Op::Nothing(ALREADY_GONE.into()));
                };
                Op::Delete {
                    org: org.to_owned(),
                    kind: ObjectKind::NamedCredential,
                    id: nc.id.clone(),
                    name: name.to_owned(),
                }
            }
            Kind::BusPolicy => {
                let Key::BusPolicy {
                    account,
                    region,
                    bus,
                    sender,
                } = a.parts()
                else {
                    return Err(format!("{a} is not a bus policy address"));
                };
                Op::RemoveStatement {
                    at: self.at(account, Some(region))?,
                    bus: bus.to_owned(),
                    sid: format!("relayform-{sender}"),
                }
            }
            Kind::Role => Op::DeleteRole {
                at: self.account_of(a)?,
                name: match a.parts() {
                    Key::Shared { name, .. } => name.to_owned(),
                    _ => return Err(format!("{a} is not a role's address")),
                },
                policy_name: names::ROLE_POLICY.into(),
            },
        })
    }

    /// A replaced relay's old partner bus and rule: where its named credential pointed
    /// (`arn:aws:<REGION>:<account>`), which may be another region or account than the spec's now.
    fn partner_side(
        &self,
        relay: &str,
        seen: &ObservedRelay,
    ) -> Result<Option<PartnerSide>, String> {
        let Some(source) = seen.remote_resource.clone() else {
            return Ok(None);
        };
        let r = &self.spec.relays[relay];
        let spec_account = &self.spec.aws_accounts[&r.aws_account.value];
        let old = seen
            .destination
            .as_deref()
            .and_then(relayform_provider::act::callout_target)
            .and_then(|nc| {
                self.observed
                    .orgs
                    .get(&r.org.value)?
                    .named_credentials
                    .iter()
                    .find(|n| same_reference(nc, &n.name))?
                    .endpoint
                    .clone()
            })
            .and_then(|ep| names::parse_named_credential_endpoint(&ep));
        let side = |at, moved, has_rule, has_bus| PartnerSide {
            at,
            source: source.clone(),
            rule: names::FORWARD_RULE.into(),
            target_id: names::FORWARD_TARGET.into(),
            moved,
            has_rule,
            has_bus,
        };
        if let Some((region, account_id)) = old.filter(|(region, account)| {
            *region != spec_account.region.value || *account != spec_account.account_id.value
        }) {
            return Ok(Some(side(
                AccountAt { account_id, region },
                true,
                true,
                true,
            )));
        }
        let Some(acct) = self.observed.accounts.get(&r.aws_account.value) else {
            return Ok(None);
        };
        let has_rule = acct
            .rules
            .iter()
            .any(|x| x.bus == source && x.name == names::FORWARD_RULE);
        let has_bus = acct.buses.iter().any(|b| b.name == source);
        Ok(Some(side(
            self.at(&r.aws_account.value, None)?,
            false,
            has_rule,
            has_bus,
        )))
    }

    fn build(&self, c: &Change) -> Op {
        self.try_build(c).unwrap_or_else(Op::Refuse)
    }

    fn try_build(&self, c: &Change) -> Result<Op, String> {
        let a = &c.address;
        let update = c.action == Action::Update;
        let changes = |f: &str| c.fields.iter().any(|x| x.field == f && x.after.is_some());
        Ok(match self.desired(a)?.clone() {
            Desired::Role {
                name,
                trust,
                permission,
                destination_arn,
                ..
            } => {
                let at = self.account_of(a)?;
                if update {
                    Op::SetRolePolicies {
                        at,
                        name,
                        trust: changes("trust_policy").then(|| trust.to_string()),
                        policy: changes("permission_policy")
                            .then(|| (names::ROLE_POLICY.to_owned(), permission.to_string())),
                    }
                } else {
                    Op::PutRole {
                        at,
                        role: Role {
                            name,
                            trust: trust.to_string(),
                            policy_name: names::ROLE_POLICY.into(),
                            policy: permission.to_string(),
                            tags: Tags::for_role(&destination_arn),
                        },
                    }
                }
            }
            Desired::BusPolicy {
                account,
                region,
                bus,
                bus_arn,
                sender,
                statement_id,
            } => Op::AllowSender {
                at: self.at(&account, Some(&region))?,
                bus,
                bus_arn,
                sender,
                sid: statement_id,
            },
            Desired::NamedCredential {
                org,
                name,
                endpoint,
            } => {
                if update {
                    let Some(seen) = self
                        .observed
                        .orgs
                        .get(&org)
                        .and_then(|o| o.named_credentials.iter().find(|n| n.name == name))
                    else {
                        return Err(format!("the named credential {name} is gone"));
                    };
                    return Ok(Op::Update {
                        id: Ref {
                            made: None,
                            seen: Some(seen.id.clone()),
                            missing: format!("the named credential {name} is gone"),
                        },
                        object: OrgObject::NamedCredential {
                            name: self.in_org(&org, &name),
                            label: seen.label.clone().unwrap_or_else(|| name.clone()),
                            endpoint: endpoint.clone(),
                        },
                        done: format!("named credential {name} → {endpoint}"),
                        org,
                    });
                }
                Op::Create {
                    org,
                    what: format!("named credential {name}"),
                    object: OrgObject::NamedCredential {
                        label: name.clone(),
                        name,
                        endpoint,
                    },
                    record: None,
                }
            }
            Desired::Channel {
                org,
                name,
                channel_type,
            } => {
                let relay = first(a);
                Op::Create {
                    org,
                    what: format!("channel {}", names::channel_full_name(&name)),
                    object: OrgObject::Channel {
                        name,
                        channel_type: channel_type.as_str().into(),
                        label: unfinished_label(relay),
                    },
                    record: Some((Made::ChannelId, relay.to_owned())),
                }
            }
            Desired::ChannelMember {
                org,
                name,
                channel,
                event,
            } => Op::Create {
                org,
                what: format!("member {name} ({event})"),
                object: OrgObject::Member {
                    name,
                    channel,
                    event,
                },
                record: None,
            },
            Desired::Relay {
                org,
                name,
                channel,
                named_credential,
                error_recovery,
            } => {
                let relay = first(a).to_owned();
                if update {
                    if !changes("error_recovery") {
                        return Ok(Op::Nothing(format!("relay {name} updated")));
                    }
                    return Ok(Op::PatchRelay {
                        org,
                        id: self.relay_ref(&relay),
                        base: self.observed_definition(&relay),
                        recovery: Some(recovery(error_recovery)),
                        state: None,
                        done: format!("relay {name} updated"),
                        relay,
                    });
                }
                // The fingerprint is recorded last; until then, no fingerprint.
                let label = unfinished_label(&relay);
                let def = RelayDefinition {
                    name: name.clone(),
                    label,
                    channel: names::channel_full_name(&channel),
                    named_credential: named_credential.clone(),
                    recovery: recovery(error_recovery),
                    state: relayform_provider::act::AdminState::Stop,
                };
                let stored = RelayDefinition {
                    name: self.in_org(&org, &name),
                    channel: self.in_org(&org, &def.channel),
                    named_credential: self.in_org(&org, &named_credential),
                    ..def.clone()
                };
                Op::CreateRelay {
                    org,
                    relay,
                    object: def,
                    stored,
                }
            }
            Desired::Association { account, relay } => {
                let org = self.spec.relays[&relay].org.value.clone();
                Op::Associate {
                    at: self.at(&account, None)?,
                    relay_id: self.relay_ref(&relay),
                    tags: Tags::for_relay(&relay, &org),
                    org,
                    relay,
                }
            }
            Desired::Forwarding {
                account,
                relay,
                destination_arn,
                role,
            } => {
                let acct = &self.spec.aws_accounts[&account];
                let partition = relayform_spec::rules::partition(&acct.region).unwrap_or("aws");
                let org = &self.spec.relays[&relay].org.value;
                Op::Forward {
                    at: self.at(&account, None)?,
                    source: Ref {
                        made: Some((Made::Source, relay.clone())),
                        seen: self
                            .observed_relay(&relay)
                            .and_then(|r| r.remote_resource.clone()),
                        missing: format!("the partner source of relay `{relay}` is not known"),
                    },
                    rule: names::FORWARD_RULE.into(),
                    target_id: names::FORWARD_TARGET.into(),
                    role_arn: format!("arn:{partition}:iam::{}:role/{role}", acct.account_id.value),
                    tags: Tags::for_relay(&relay, org),
                    destination_arn,
                }
            }
            Desired::RelayState { org, relay, state } => {
                let want = admin(state);
                Op::PatchRelay {
                    org,
                    id: self.relay_ref(&relay),
                    base: self.observed_definition(&relay),
                    recovery: None,
                    state: Some(want),
                    done: format!(
                        "relay {} is {}",
                        self.spec.relays[&relay].names.relay,
                        want.reported()
                    ),
                    relay,
                }
            }
        })
    }

    fn fingerprint(&self, c: &Change) -> Op {
        let a = &c.address;
        let Some(label) = c
            .fields
            .iter()
            .find(|f| f.field == "label")
            .and_then(|f| f.after.clone())
        else {
            return Op::Refuse("no label to record".into());
        };
        let Ok(Desired::Channel {
            org,
            name,
            channel_type,
        }) = self.desired(a)
        else {
            return Op::Refuse(format!("{a} is not a channel"));
        };
        Op::Update {
            org: org.clone(),
            id: self.channel_ref(first(a)),
            object: OrgObject::Channel {
                name: self.in_org(org, name),
                channel_type: channel_type.as_str().into(),
                label: label.clone(),
            },
            done: format!("label {label:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relayform_provider::{ObservedChannel, ObservedOrg};
    use relayform_spec::Spec;
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

    fn half(s: &Step) -> Half {
        if s.teardown {
            Half::Teardown
        } else if s.name.ends_with("record fingerprint") {
            Half::Fingerprint
        } else {
            Half::Build
        }
    }

    /// Each step as `half address <- [needed addresses]`.
    fn shape(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| {
                let needs: Vec<String> = s
                    .needs
                    .iter()
                    .map(|n| format!("{:?} {}", half(&steps[*n]), steps[*n].address))
                    .collect();
                format!("{:?} {} <- {needs:?}", half(s), s.address)
            })
            .collect()
    }

    fn steps(plan: &Plan, spec: &Spec, observed: &Observed) -> Vec<Step> {
        lower(plan, spec, observed).steps
    }

    #[test]
    fn builds_wait_for_their_changed_ancestors_only() {
        let s = spec(SPEC);
        let plan = crate::diff::plan(&s, &Observed::default());
        let steps = steps(&plan, &s, &Observed::default());
        let got = shape(&steps);
        assert!(steps.iter().all(|s| !s.teardown));
        // The relay's fingerprint is recorded after everything of it has been built.
        let last = steps.last().unwrap();
        assert_eq!(
            (half(last), last.address.clone()),
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
            .find(|s| s.address.starts_with("salesforce.relay_state"))
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
        let plan = crate::diff::plan(&s, &observed);
        let got = shape(&steps(&plan, &s, &observed));
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
        let got = shape(&steps(&plan, &s, &Observed::default()));
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

    fn op_of<'a>(steps: &'a [Step], name: &str) -> &'a Op {
        &steps
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no step {name}: {:#?}", shape(steps)))
            .op
    }

    #[test]
    fn steps_carry_observed_ids_and_names_as_the_org_stores_them() {
        let s = spec(&SPEC.replace(
            "destination_bus: orders",
            "destination_bus: orders\n    state: running",
        ));
        let mut observed = Observed::default();
        observed.orgs.insert(
            "acme".into(),
            ObservedOrg {
                org_id: "00DSM0000000001AAA".into(),
                namespace: Some("ns".into()),
                relays: vec![ObservedRelay {
                    id: "7k2000000000001AAA".into(),
                    name: "orders".into(),
                    label: Some("orders".into()),
                    channel: Some("ns__orders__chn".into()),
                    destination: Some("callout:ns__Relayform_123456789012_eu_west_1".into()),
                    relay_option: Some(r#"{"ReplayRecovery":"EARLIEST"}"#.into()),
                    state: Some("STOP".into()),
                    ..Default::default()
                }],
                ..Default::default()
            },
        );
        let plan = crate::diff::plan(&s, &observed);
        let steps = steps(&plan, &s, &observed);
        let Op::PatchRelay {
            id, base, state, ..
        } = op_of(&steps, "salesforce.relay_state[orders] update")
        else {
            panic!("{steps:#?}");
        };
        assert_eq!(id.seen.as_deref(), Some("7k2000000000001AAA"));
        assert_eq!(id.made, Some((Made::RelayId, "orders".into())));
        assert_eq!(*state, Some(relayform_provider::act::AdminState::Run));
        let base = base.as_ref().expect("the observed definition");
        assert_eq!(
            (
                base.name.as_str(),
                base.channel.as_str(),
                base.named_credential.as_str()
            ),
            (
                "ns__orders",
                "ns__orders__chn",
                "ns__Relayform_123456789012_eu_west_1"
            )
        );
    }

    #[test]
    fn a_replaced_relay_whose_credential_pointed_elsewhere_removes_its_partner_side_there() {
        let s = spec(SPEC);
        let mut observed = Observed::default();
        observed.orgs.insert(
            "acme".into(),
            ObservedOrg {
                org_id: "00DSM0000000001AAA".into(),
                named_credentials: vec![relayform_provider::ObservedNamedCredential {
                    id: "0XA1".into(),
                    name: "Relayform_123456789012_us_east_1".into(),
                    label: None,
                    endpoint: Some("arn:aws:US-EAST-1:123456789012".into()),
                }],
                relays: vec![ObservedRelay {
                    id: "7k21".into(),
                    name: "orders".into(),
                    channel: Some("orders__chn".into()),
                    destination: Some("callout:Relayform_123456789012_us_east_1".into()),
                    remote_resource: Some("aws.partner/salesforce.com/00D/7k21".into()),
                    ..Default::default()
                }],
                ..Default::default()
            },
        );
        let plan = crate::diff::plan(&s, &observed);
        let steps = steps(&plan, &s, &observed);
        let Op::DeleteRelay { id, partner, .. } =
            op_of(&steps, "salesforce.relay[orders] delete (replace)")
        else {
            panic!("{steps:#?}");
        };
        assert_eq!(id, "7k21");
        let p = partner.as_ref().expect("its old partner side");
        assert!(p.moved, "{p:?}");
        assert_eq!(
            p.at,
            AccountAt {
                account_id: "123456789012".into(),
                region: "us-east-1".into()
            }
        );
        assert_eq!(p.source, "aws.partner/salesforce.com/00D/7k21");
    }
}
