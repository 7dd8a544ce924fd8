//! An in-memory provider: orgs and accounts held as the contract's observed-state types, changed by
//! the executor's operations as Salesforce and AWS change them, so executor behaviour (ordering,
//! skips, waits, adoption, faults, Ctrl-C) and whole plan → apply → plan round trips are tested in
//! milliseconds, without the simulator or a network.
//!
//! What it keeps of the vendors' rules (the simulator is the strict model; this one is for speed):
//! creates adopt an object of the same name when it matches and refuse one that differs; deleting a
//! channel deletes its members; a relay's
//! PATCH may change only its state and recovery; a relay's partner source is registered a number of
//! feedback reads after the relay is created ([`Timing`]), in the account and region its named
//! credential names (a relay whose credential names an account it does not hold reports ERROR);
//! its bus can be created only once the source exists; a relay reports a new state a number of reads
//! after its PATCH; a bus with rules cannot be deleted. Values read back are in the vendors' forms
//! (ids of 18 characters, `callout:` destinations, policy documents), as the planner expects them.
//!
//! Every call is logged ([`Memory::calls`]) and can be made to fail ([`Memory::fail`]).

use async_trait::async_trait;
use relayform_provider::act::{
    AccountApi, AccountAt, AdminState, Connect, Created, Feedback, Forwarding, ObjectKind, OrgApi,
    OrgObject, Recovery, RelayDefinition, Role, SOURCE_ACTIVE, SOURCE_PENDING, STATUS_ERROR, Tags,
    callout, callout_target,
};
use relayform_provider::{
    Error, ErrorKind, ObservedAccount, ObservedBus, ObservedBusPolicy, ObservedChannel,
    ObservedMember, ObservedNamedCredential, ObservedOrg, ObservedRelay, ObservedRole,
    ObservedRule, ObservedSource, ObservedTarget, same_id, same_reference,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How many feedback reads of an org pass before something shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timing {
    /// After a relay is created, before its partner source is registered.
    pub source_after: u32,
    /// After a relay's state is PATCHed, before it reports the new state.
    pub status_after: u32,
}

/// A call the provider saw: when, and what (`acme create Relay orders`, `123456789012/eu-west-1
/// put_forwarding aws.partner/...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub at: Instant,
    pub what: String,
}

#[derive(Debug, Clone)]
struct Fault {
    matches: String,
    kind: ErrorKind,
    /// How many more calls it fails (`None`: all).
    left: Option<u32>,
}

#[derive(Debug, Default)]
struct OrgState {
    observed: ObservedOrg,
    /// Per relay id: reads left before the source shows, and before the status does.
    source_in: BTreeMap<String, u32>,
    status_in: BTreeMap<String, u32>,
}

#[derive(Debug, Default)]
struct RegionState {
    /// Partner sources by name, with their state.
    sources: BTreeMap<String, String>,
    buses: BTreeMap<String, ObservedBus>,
    /// Rules by bus and name.
    rules: BTreeMap<(String, String), ObservedRule>,
    /// Resource-policy statements by bus: (sid, sender).
    statements: BTreeMap<String, Vec<(String, String)>>,
}

#[derive(Debug, Default)]
struct World {
    orgs: BTreeMap<String, OrgState>,
    /// Account ids relayform holds credentials for, with their IAM roles (global to an account).
    accounts: BTreeMap<String, Vec<ObservedRole>>,
    regions: BTreeMap<AccountAt, RegionState>,
    next_id: u64,
    faults: Vec<Fault>,
    calls: Vec<Call>,
}

/// The in-memory provider. Cheap to clone (it is shared).
#[derive(Debug, Clone, Default)]
pub struct Memory {
    world: Arc<Mutex<World>>,
    timing: Timing,
}

impl Memory {
    pub fn new(timing: Timing) -> Memory {
        Memory {
            world: Arc::default(),
            timing,
        }
    }

    /// Adds an org (by its spec name), empty.
    pub fn with_org(self, org: &str) -> Memory {
        {
            let mut w = self.world.lock().expect("world");
            let n = w.orgs.len() + 1;
            w.orgs.entry(org.to_owned()).or_default().observed.org_id = id18("00D", n as u64);
        }
        self
    }

    /// Adds an account relayform holds credentials for, and its region (more regions appear as
    /// they are used).
    pub fn with_account(self, account_id: &str, region: &str) -> Memory {
        {
            let mut w = self.world.lock().expect("world");
            w.accounts.entry(account_id.to_owned()).or_default();
            w.regions.entry(at(account_id, region)).or_default();
        }
        self
    }

    /// Adds a plain event bus (a destination).
    pub fn with_bus(self, account_id: &str, region: &str, bus: &str) -> Memory {
        {
            let mut w = self.world.lock().expect("world");
            w.regions
                .entry(at(account_id, region))
                .or_default()
                .buses
                .insert(
                    bus.to_owned(),
                    ObservedBus {
                        name: bus.to_owned(),
                        arn: Some(bus_arn(account_id, region, bus)),
                    },
                );
        }
        self
    }

    /// Makes calls whose description contains `matches` fail with `kind`: the next `times` of them,
    /// or all (`None`).
    pub fn fail(&self, matches: &str, kind: ErrorKind, times: Option<u32>) {
        self.world.lock().expect("world").faults.push(Fault {
            matches: matches.to_owned(),
            kind,
            left: times,
        });
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.world.lock().expect("world").calls.clone()
    }

    /// An org as a refresh would read it.
    pub fn org(&self, org: &str) -> Option<ObservedOrg> {
        let w = self.world.lock().expect("world");
        let o = w.orgs.get(org)?;
        let mut seen = o.observed.clone();
        // The refresh joins each relay's feedback in.
        for r in &mut seen.relays {
            r.status = status(o, r);
            if o.source_in.get(&r.id).is_some_and(|n| *n > 0) {
                r.remote_resource = None;
            }
        }
        Some(seen)
    }

    /// An account and region as a refresh would read it (bus policies from every region of the
    /// account, as the engine asks for the destination buses it sends to).
    pub fn account(&self, account_id: &str, region: &str) -> Option<ObservedAccount> {
        let w = self.world.lock().expect("world");
        let roles = w.accounts.get(account_id)?.clone();
        let here = w.regions.get(&at(account_id, region));
        let bus_policies = w
            .regions
            .iter()
            .filter(|(a, _)| a.account_id == account_id)
            .flat_map(|(a, r)| {
                r.buses
                    .values()
                    .filter(|b| !b.name.starts_with("aws.partner/"))
                    .map(move |b| ObservedBusPolicy {
                        region: a.region.clone(),
                        bus: b.name.clone(),
                        exists: true,
                        policy: r
                            .statements
                            .get(&b.name)
                            .filter(|s| !s.is_empty())
                            .map(|s| policy_document(s, b.arn.as_deref().unwrap_or_default())),
                    })
            })
            .collect();
        Some(ObservedAccount {
            account_id: account_id.to_owned(),
            region: region.to_owned(),
            sources: here
                .map(|r| {
                    r.sources
                        .iter()
                        .map(|(name, state)| ObservedSource {
                            name: name.clone(),
                            state: Some(state.clone()),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            buses: here
                .map(|r| r.buses.values().cloned().collect())
                .unwrap_or_default(),
            rules: here
                .map(|r| r.rules.values().cloned().collect())
                .unwrap_or_default(),
            roles,
            bus_policies,
        })
    }

    /// Logs the call and fails it if a fault says so.
    fn call(&self, what: String) -> Result<std::sync::MutexGuard<'_, World>, Error> {
        let mut w = self.world.lock().expect("world");
        w.calls.push(Call {
            at: Instant::now(),
            what: what.clone(),
        });
        if let Some(f) = w
            .faults
            .iter_mut()
            .find(|f| what.contains(&f.matches) && f.left != Some(0))
        {
            if let Some(n) = &mut f.left {
                *n -= 1;
            }
            return Err(Error::new(
                "Memory",
                f.kind,
                what,
                format!("injected {}", f.kind.as_str()),
            ));
        }
        Ok(w)
    }
}

fn at(account_id: &str, region: &str) -> AccountAt {
    AccountAt {
        account_id: account_id.to_owned(),
        region: region.to_owned(),
    }
}

fn id18(prefix: &str, n: u64) -> String {
    format!("{prefix}{n:0>12}AAA")
}

fn bus_arn(account_id: &str, region: &str, bus: &str) -> String {
    format!("arn:aws:events:{region}:{account_id}:event-bus/{bus}")
}

fn policy_document(statements: &[(String, String)], bus_arn: &str) -> String {
    let s: Vec<String> = statements
        .iter()
        .map(|(sid, sender)| {
            format!(
                r#"{{"Sid":"{sid}","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{sender}:root"}},"Action":"events:PutEvents","Resource":"{bus_arn}"}}"#
            )
        })
        .collect();
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        s.join(",")
    )
}

fn status(o: &OrgState, r: &ObservedRelay) -> Option<String> {
    if r.error_code.is_some() {
        return Some(STATUS_ERROR.into());
    }
    let state = r.state.as_deref().and_then(AdminState::of)?;
    if o.status_in.get(&r.id).is_some_and(|n| *n > 0) {
        // Not settled yet: the state it had before (a new relay is stopped).
        return Some(r.status.clone().unwrap_or_else(|| "STOPPED".into()));
    }
    Some(state.reported().into())
}

fn not_found(what: &str, message: String) -> Error {
    Error::new("Memory", ErrorKind::NotFound, what, message)
}

fn conflict(what: &str, message: String) -> Error {
    Error::new("Memory", ErrorKind::Conflict, what, message)
}

fn rejected(what: &str, message: String) -> Error {
    Error::new("Memory", ErrorKind::Rejected, what, message)
}

/// One org of the in-memory provider.
#[derive(Debug)]
struct OrgHandle {
    mem: Memory,
    org: String,
}

/// One account and region of the in-memory provider.
#[derive(Debug)]
struct AccountHandle {
    mem: Memory,
    at: AccountAt,
}

#[async_trait]
impl Connect for Memory {
    fn org(&self, org: &str) -> Result<Arc<dyn OrgApi>, String> {
        if !self.world.lock().expect("world").orgs.contains_key(org) {
            return Err(format!("no connection to org `{org}`"));
        }
        Ok(Arc::new(OrgHandle {
            mem: self.clone(),
            org: org.to_owned(),
        }))
    }

    async fn account(&self, at: &AccountAt) -> Result<Option<Arc<dyn AccountApi>>, String> {
        let mut w = self.world.lock().expect("world");
        if !w.accounts.contains_key(&at.account_id) {
            return Ok(None);
        }
        w.regions.entry(at.clone()).or_default();
        Ok(Some(Arc::new(AccountHandle {
            mem: self.clone(),
            at: at.clone(),
        })))
    }
}

fn name_of(object: &OrgObject) -> &str {
    match object {
        OrgObject::NamedCredential { name, .. }
        | OrgObject::Channel { name, .. }
        | OrgObject::Member { name, .. } => name,
        OrgObject::Relay(d) => &d.name,
    }
}

#[async_trait]
impl OrgApi for OrgHandle {
    async fn create(&self, object: &OrgObject) -> Result<Created, Error> {
        let what = format!(
            "{} create {:?} {}",
            self.org,
            object.kind(),
            name_of(object)
        );
        let mut w = self.mem.call(what.clone())?;
        w.next_id += 1;
        let n = w.next_id;
        let timing = self.mem.timing;
        let world = &mut *w;
        let o = world
            .orgs
            .get_mut(&self.org)
            .ok_or_else(|| not_found(&what, format!("no org {}", self.org)))?;
        // An object of the same name exists: adopted if `field` says what is asked, refused if not.
        let adopt = |id: &str, field: &str, have: Option<&str>, want: &str, same: bool| {
            if same {
                Ok(Created {
                    id: id.to_owned(),
                    adopted: true,
                })
            } else {
                Err(conflict(
                    &what,
                    format!(
                        "{} exists already and differs: {field} is {have:?}, the spec wants {want:?}",
                        name_of(object)
                    ),
                ))
            }
        };
        match object {
            OrgObject::NamedCredential {
                name,
                label,
                endpoint,
            } => {
                if let Some(nc) = o
                    .observed
                    .named_credentials
                    .iter()
                    .find(|x| x.name.eq_ignore_ascii_case(name))
                {
                    let have = nc.endpoint.as_deref();
                    return adopt(&nc.id, "Endpoint", have, endpoint, have == Some(endpoint));
                }
                let id = id18("0XA", n);
                o.observed.named_credentials.push(ObservedNamedCredential {
                    id: id.clone(),
                    name: name.clone(),
                    label: Some(label.clone()),
                    endpoint: Some(endpoint.clone()),
                });
                Ok(Created { id, adopted: false })
            }
            OrgObject::Channel {
                name,
                channel_type,
                label,
            } => {
                if let Some(c) = o
                    .observed
                    .channels
                    .iter()
                    .find(|x| x.name.eq_ignore_ascii_case(name))
                {
                    let have = c.channel_type.as_deref();
                    return adopt(
                        &c.id,
                        "ChannelType",
                        have,
                        channel_type,
                        have == Some(channel_type),
                    );
                }
                let id = id18("0YL", n);
                o.observed.channels.push(ObservedChannel {
                    id: id.clone(),
                    name: name.clone(),
                    label: Some(label.clone()),
                    channel_type: Some(channel_type.clone()),
                });
                Ok(Created { id, adopted: false })
            }
            OrgObject::Member {
                name,
                channel,
                event,
            } => {
                if let Some(m) = o
                    .observed
                    .members
                    .iter()
                    .find(|x| x.name.eq_ignore_ascii_case(name))
                {
                    let have = m.event.as_deref();
                    return adopt(&m.id, "SelectedEntity", have, event, have == Some(event));
                }
                let channel_id = o
                    .observed
                    .channels
                    .iter()
                    .find(|c| c.name.eq_ignore_ascii_case(channel))
                    .map(|c| c.id.clone())
                    .ok_or_else(|| {
                        rejected(&what, format!("no channel {channel} for member {name}"))
                    })?;
                let id = id18("0v8", n);
                o.observed.members.push(ObservedMember {
                    id: id.clone(),
                    name: name.clone(),
                    channel_id: Some(channel_id),
                    event: Some(event.clone()),
                });
                Ok(Created { id, adopted: false })
            }
            OrgObject::Relay(def) => {
                let destination = callout(&def.named_credential);
                if let Some(r) = o
                    .observed
                    .relays
                    .iter()
                    .find(|x| x.name.eq_ignore_ascii_case(&def.name))
                {
                    let have = r.destination.as_deref();
                    let same = have.is_some_and(|d| same_reference(d, &destination));
                    return adopt(&r.id, "DestinationResourceName", have, &destination, same);
                }
                if def.state != AdminState::Stop {
                    return Err(rejected(&what, "a relay is created stopped".into()));
                }
                let id = id18("7k2", n);
                // Where the credential points: `arn:aws:<REGION>:<account>`.
                let target = o
                    .observed
                    .named_credentials
                    .iter()
                    .find(|nc| same_reference(&def.named_credential, &nc.name))
                    .and_then(|nc| nc.endpoint.as_deref())
                    .and_then(|e| e.strip_prefix("arn:aws:"))
                    .and_then(|e| e.split_once(':'))
                    .map(|(region, account)| at(account, &region.to_lowercase()));
                let org_id = o.observed.org_id.clone();
                let source = format!("aws.partner/salesforce.com/{org_id}/{id}");
                let mut relay = ObservedRelay {
                    id: id.clone(),
                    name: def.name.clone(),
                    label: Some(def.label.clone()),
                    channel: Some(def.channel.clone()),
                    destination: Some(destination),
                    relay_option: Some(def.recovery.relay_option().into()),
                    state: Some(AdminState::Stop.as_str().into()),
                    status: Some("STOPPED".into()),
                    remote_resource: Some(source.clone()),
                    ..Default::default()
                };
                match target.and_then(|t| world.regions.get_mut(&t).map(|r| (t, r))) {
                    Some((_, region)) => {
                        region.sources.insert(source, SOURCE_PENDING.into());
                    }
                    None => {
                        relay.remote_resource = None;
                        relay.error_code = Some("INVALID_DESTINATION".into());
                        relay.error_message =
                            Some("the named credential names no account this world holds".into());
                    }
                }
                let o = world.orgs.get_mut(&self.org).expect("checked above");
                o.observed.relays.push(relay);
                o.source_in.insert(id.clone(), timing.source_after);
                Ok(Created { id, adopted: false })
            }
        }
    }

    async fn update(&self, id: &str, object: &OrgObject) -> Result<(), Error> {
        let what = format!(
            "{} update {:?} {}",
            self.org,
            object.kind(),
            name_of(object)
        );
        let mut w = self.mem.call(what.clone())?;
        let timing = self.mem.timing;
        let o = w
            .orgs
            .get_mut(&self.org)
            .ok_or_else(|| not_found(&what, format!("no org {}", self.org)))?;
        let gone = || not_found(&what, format!("no object with id {id}"));
        match object {
            OrgObject::NamedCredential {
                label, endpoint, ..
            } => {
                let nc = o
                    .observed
                    .named_credentials
                    .iter_mut()
                    .find(|x| same_id(&x.id, id))
                    .ok_or_else(gone)?;
                nc.label = Some(label.clone());
                nc.endpoint = Some(endpoint.clone());
            }
            OrgObject::Channel {
                channel_type,
                label,
                ..
            } => {
                let c = o
                    .observed
                    .channels
                    .iter_mut()
                    .find(|x| same_id(&x.id, id))
                    .ok_or_else(gone)?;
                if c.channel_type.as_deref() != Some(channel_type) {
                    return Err(rejected(&what, "a channel's type cannot change".into()));
                }
                c.label = Some(label.clone());
            }
            OrgObject::Member { event, .. } => {
                let m = o
                    .observed
                    .members
                    .iter_mut()
                    .find(|x| same_id(&x.id, id))
                    .ok_or_else(gone)?;
                m.event = Some(event.clone());
            }
            OrgObject::Relay(def) => {
                let r = o
                    .observed
                    .relays
                    .iter_mut()
                    .find(|x| same_id(&x.id, id))
                    .ok_or_else(gone)?;
                // "You can update only the state and relayOption fields": the rest must be repeated
                // as it is.
                let same = r.label.as_deref() == Some(&def.label)
                    && r.channel
                        .as_deref()
                        .is_some_and(|c| same_reference(c, &def.channel))
                    && r.destination
                        .as_deref()
                        .is_some_and(|d| same_reference(d, &callout(&def.named_credential)));
                if !same {
                    return Err(rejected(
                        &what,
                        "you can update only the state and relayOption fields".into(),
                    ));
                }
                let before = r.state.as_deref().and_then(AdminState::of);
                // What it reported before, until the new state settles.
                r.status = Some(before.unwrap_or(AdminState::Stop).reported().into());
                r.relay_option = Some(def.recovery.relay_option().into());
                r.state = Some(def.state.as_str().into());
                let rid = r.id.clone();
                if before != Some(def.state) {
                    o.status_in.insert(rid, timing.status_after);
                }
            }
        }
        Ok(())
    }

    async fn delete(&self, kind: ObjectKind, id: &str) -> Result<(), Error> {
        let what = format!("{} delete {kind:?} {id}", self.org);
        let mut w = self.mem.call(what.clone())?;
        let world = &mut *w;
        let Some(o) = world.orgs.get_mut(&self.org) else {
            return Ok(());
        };
        let obs = &mut o.observed;
        match kind {
            ObjectKind::NamedCredential => obs.named_credentials.retain(|x| !same_id(&x.id, id)),
            ObjectKind::Channel => {
                // Deleting a channel deletes its members (as Salesforce does).
                obs.members
                    .retain(|m| !m.channel_id.as_deref().is_some_and(|c| same_id(c, id)));
                obs.channels.retain(|x| !same_id(&x.id, id));
            }
            ObjectKind::Member => obs.members.retain(|x| !same_id(&x.id, id)),
            ObjectKind::Relay => {
                if let Some(r) = obs.relays.iter().find(|x| same_id(&x.id, id)) {
                    let source = r.remote_resource.clone();
                    obs.relays.retain(|x| !same_id(&x.id, id));
                    if let Some(source) = source {
                        for region in world.regions.values_mut() {
                            region.sources.remove(&source);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    async fn relay(&self, id: &str) -> Result<RelayDefinition, Error> {
        let what = format!("{} read Relay {id}", self.org);
        let w = self.mem.call(what.clone())?;
        let r = w
            .orgs
            .get(&self.org)
            .and_then(|o| o.observed.relays.iter().find(|x| same_id(&x.id, id)))
            .ok_or_else(|| not_found(&what, format!("no relay {id}")))?;
        Ok(RelayDefinition {
            name: r.name.clone(),
            label: r.label.clone().unwrap_or_default(),
            channel: r.channel.clone().unwrap_or_default(),
            named_credential: r
                .destination
                .as_deref()
                .and_then(callout_target)
                .unwrap_or_default()
                .to_owned(),
            recovery: r
                .relay_option
                .as_deref()
                .and_then(Recovery::of)
                .unwrap_or(Recovery::Earliest),
            state: r
                .state
                .as_deref()
                .and_then(AdminState::of)
                .unwrap_or(AdminState::Stop),
        })
    }

    async fn feedback(&self) -> Result<Vec<Feedback>, Error> {
        let what = format!("{} feedback", self.org);
        let mut w = self.mem.call(what.clone())?;
        let Some(o) = w.orgs.get_mut(&self.org) else {
            return Ok(Vec::new());
        };
        // Time passes by reads: what was due shows now.
        for left in o.source_in.values_mut().chain(o.status_in.values_mut()) {
            *left = left.saturating_sub(1);
        }
        let out = o
            .observed
            .relays
            .iter()
            .map(|r| Feedback {
                relay_id: r.id.clone(),
                status: status(o, r),
                remote_resource: r
                    .remote_resource
                    .clone()
                    .filter(|_| o.source_in.get(&r.id).is_none_or(|n| *n == 0)),
                error_code: r.error_code.clone(),
                error_message: r.error_message.clone(),
            })
            .collect();
        o.source_in.retain(|_, n| *n > 0);
        let settled: Vec<String> = o
            .status_in
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(id, _)| id.clone())
            .collect();
        for id in settled {
            o.status_in.remove(&id);
            if let Some(r) = o.observed.relays.iter_mut().find(|r| r.id == id) {
                r.status = r
                    .state
                    .as_deref()
                    .and_then(AdminState::of)
                    .map(|s| s.reported().into());
            }
        }
        Ok(out)
    }
}

impl AccountHandle {
    fn label(&self) -> String {
        format!("{}/{}", self.at.account_id, self.at.region)
    }
}

#[async_trait]
impl AccountApi for AccountHandle {
    async fn put_role(&self, role: &Role) -> Result<(), Error> {
        let what = format!("{} put_role {}", self.label(), role.name);
        let mut w = self.mem.call(what)?;
        let roles = w.accounts.entry(self.at.account_id.clone()).or_default();
        roles.retain(|r| r.name != role.name);
        roles.push(ObservedRole {
            name: role.name.clone(),
            arn: format!("arn:aws:iam::{}:role/{}", self.at.account_id, role.name),
            trust_policy: Some(role.trust.clone()),
            policy: Some((role.policy_name.clone(), role.policy.clone())),
        });
        Ok(())
    }

    async fn set_trust(&self, role: &str, trust: &str) -> Result<(), Error> {
        let what = format!("{} set_trust {role}", self.label());
        let mut w = self.mem.call(what.clone())?;
        let r = w
            .accounts
            .entry(self.at.account_id.clone())
            .or_default()
            .iter_mut()
            .find(|r| r.name == role)
            .ok_or_else(|| not_found(&what, format!("no role {role}")))?;
        r.trust_policy = Some(trust.to_owned());
        Ok(())
    }

    async fn set_role_policy(
        &self,
        role: &str,
        policy_name: &str,
        policy: &str,
    ) -> Result<(), Error> {
        let what = format!("{} set_role_policy {role}", self.label());
        let mut w = self.mem.call(what.clone())?;
        let r = w
            .accounts
            .entry(self.at.account_id.clone())
            .or_default()
            .iter_mut()
            .find(|r| r.name == role)
            .ok_or_else(|| not_found(&what, format!("no role {role}")))?;
        r.policy = Some((policy_name.to_owned(), policy.to_owned()));
        Ok(())
    }

    async fn delete_role(&self, role: &str, _policy_name: &str) -> Result<(), Error> {
        let what = format!("{} delete_role {role}", self.label());
        let mut w = self.mem.call(what)?;
        w.accounts
            .entry(self.at.account_id.clone())
            .or_default()
            .retain(|r| r.name != role);
        Ok(())
    }

    async fn associate(&self, source: &str, _tags: &Tags) -> Result<(), Error> {
        let what = format!("{} associate {source}", self.label());
        let mut w = self.mem.call(what.clone())?;
        let region = w.regions.entry(self.at.clone()).or_default();
        let Some(state) = region.sources.get_mut(source) else {
            return Err(not_found(
                &what,
                format!("no partner event source {source}"),
            ));
        };
        SOURCE_ACTIVE.clone_into(state);
        region
            .buses
            .entry(source.to_owned())
            .or_insert_with(|| ObservedBus {
                name: source.to_owned(),
                arn: Some(bus_arn(&self.at.account_id, &self.at.region, source)),
            });
        Ok(())
    }

    async fn delete_bus(&self, bus: &str) -> Result<(), Error> {
        let what = format!("{} delete_bus {bus}", self.label());
        let mut w = self.mem.call(what.clone())?;
        let region = w.regions.entry(self.at.clone()).or_default();
        if region
            .rules
            .range((bus.to_owned(), String::new())..)
            .next()
            .is_some_and(|((b, _), _)| b == bus)
        {
            return Err(rejected(&what, format!("the bus {bus} has rules")));
        }
        region.buses.remove(bus);
        if let Some(state) = region.sources.get_mut(bus) {
            SOURCE_PENDING.clone_into(state);
        }
        Ok(())
    }

    async fn put_forwarding(&self, f: &Forwarding) -> Result<(), Error> {
        let what = format!("{} put_forwarding {}", self.label(), f.bus);
        let mut w = self.mem.call(what.clone())?;
        let region = w.regions.entry(self.at.clone()).or_default();
        if !region.buses.contains_key(&f.bus) {
            return Err(not_found(&what, format!("no bus {}", f.bus)));
        }
        let rule = ObservedRule {
            bus: f.bus.clone(),
            name: f.rule.clone(),
            event_pattern: None,
            state: Some("ENABLED".into()),
            targets: vec![ObservedTarget {
                id: f.target_id.clone(),
                arn: f.destination_arn.clone(),
                role_arn: Some(f.role_arn.clone()),
            }],
        };
        region.rules.insert((f.bus.clone(), f.rule.clone()), rule);
        Ok(())
    }

    async fn delete_forwarding(
        &self,
        bus: &str,
        rule: &str,
        _target_id: &str,
    ) -> Result<(), Error> {
        let what = format!("{} delete_forwarding {bus}", self.label());
        let mut w = self.mem.call(what)?;
        w.regions
            .entry(self.at.clone())
            .or_default()
            .rules
            .remove(&(bus.to_owned(), rule.to_owned()));
        Ok(())
    }

    async fn allow_sender(&self, bus: &str, sender: &str, sid: &str) -> Result<(), Error> {
        let what = format!("{} allow_sender {bus} {sender}", self.label());
        let mut w = self.mem.call(what.clone())?;
        let region = w.regions.entry(self.at.clone()).or_default();
        if !region.buses.contains_key(bus) {
            return Err(not_found(&what, format!("no bus {bus}")));
        }
        let s = region.statements.entry(bus.to_owned()).or_default();
        s.retain(|(x, _)| x != sid);
        s.push((sid.to_owned(), sender.to_owned()));
        Ok(())
    }

    async fn remove_statement(&self, bus: &str, sid: &str) -> Result<(), Error> {
        let what = format!("{} remove_statement {bus} {sid}", self.label());
        let mut w = self.mem.call(what)?;
        if let Some(s) = w
            .regions
            .entry(self.at.clone())
            .or_default()
            .statements
            .get_mut(bus)
        {
            s.retain(|(x, _)| x != sid);
        }
        Ok(())
    }
}
