//! The executor: makes a plan's changes, in graph order, with bounded parallelism.
//!
//! Parallelism is a number of slots (`--parallelism`): a step holds one while it calls Salesforce or
//! AWS and gives it back while it waits, so a hundred relays waiting for their partner sources do not
//! hold up the rest.
//!
//! A plan's changes become *steps*. Deletes, and the delete half of each replace, are **teardown**
//! steps, run dependants first (forwarding, association, relay, members, channel, credential, role);
//! creates, updates and the create half of each replace are **build** steps, run after every teardown
//! step *of their scope* (org or account) has ended, each once the build steps of everything it
//! depends on (in the desired graph) have succeeded. The order is `relayform_exec::Schedule`'s: a
//! dependency walk with a ready queue, linear in the steps. A failed step skips the steps that need
//! it; independent steps go on, and nothing in another org or account waits for it. Waits (the partner
//! event source Salesforce registers after a relay is created, a state change settling) poll with
//! backoff up to the wait timeout. Creates adopt what exists already and matches (see the providers'
//! `ops` modules), so running apply again after any failure converges without duplicates.

use relayform_aws::Aws;
use relayform_aws::ops as aws_ops;
use relayform_exec::{Finish, Node, Phase, Schedule};
use relayform_plan::diff::{
    FORWARD_RULE, FORWARD_TARGET, Observed, ROLE_POLICY, admin_state, recovery_option,
};
use relayform_plan::plan::{Action, Change, Plan};
use relayform_plan::resource::{Address, Desired, Kind};
use relayform_plan::{Graph, Resource};
use relayform_provider::ObservedRelay;
use relayform_salesforce::Client;
use relayform_salesforce::ops as sf;
use relayform_spec::{RelayState, Spec, names};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// How apply runs.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub parallelism: usize,
    pub wait_timeout: Duration,
    /// The first pause between polls; half as long again each time, up to `max_poll`.
    pub first_poll: Duration,
    pub max_poll: Duration,
}

/// The connections apply uses, by spec name.
#[derive(Debug, Clone, Default)]
pub(crate) struct Connections {
    pub orgs: BTreeMap<String, Client>,
    pub accounts: BTreeMap<String, Aws>,
    /// How to reach each account of the spec, by account id: for other regions than the spec's (a
    /// relay moved to another region leaves its old partner bus behind in the old one).
    pub targets: BTreeMap<String, relayform_aws::Target>,
    /// Orgs and accounts that could not be set up (a secret missing), with why.
    pub failed_orgs: BTreeMap<String, String>,
    pub failed_accounts: BTreeMap<String, String>,
}

/// What happens, as it happens (for progress output).
#[derive(Debug, Clone)]
pub(crate) enum Progress {
    /// How many steps the apply has (sent first).
    Planned(usize),
    Started(String),
    /// The step, what it waits for, and how long it has waited so far.
    Waiting(String, String, Duration),
    /// The step, what was done, and how long it took.
    Done(String, String, Duration),
    Failed(String, String),
    /// Still waiting when the wait timeout ended.
    Pending(String, String),
    Skipped(String, String),
    /// The user interrupted (Ctrl-C).
    Interrupted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Half {
    Teardown,
    Build,
    /// Writing a relay's new fingerprint (its channel's label), once everything of the relay has been
    /// built: a relay only half applied keeps its old fingerprint, so what is left is not mistaken
    /// for drift.
    Fingerprint,
}

#[derive(Debug, Clone)]
struct Step {
    change: Change,
    half: Half,
    /// Steps that must have succeeded first.
    needs: Vec<usize>,
    scope: Scope,
}

impl Step {
    fn name(&self) -> String {
        let verb = match (self.half, self.change.action) {
            (Half::Fingerprint, _) => "record fingerprint",
            (Half::Teardown, Action::Replace) => "delete (replace)",
            (Half::Build, Action::Replace) => "create (replace)",
            (_, Action::Create) => "create",
            (_, Action::Update) => "update",
            (_, Action::Delete) => "delete",
        };
        format!("{} {verb}", self.change.address)
    }
}

/// A step's failure: what the provider said, and of what kind (`None`: relayform's own finding, such
/// as an object the refresh did not see), so a report can count failures by kind and a retry rule
/// or failure budget can look at them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub kind: Option<relayform_provider::ErrorKind>,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure {
            kind: None,
            message,
        }
    }
}

/// Where a failure is carried as text (helpers that add context), its kind is let go.
impl From<Failure> for String {
    fn from(f: Failure) -> String {
        f.message
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Done(String),
    Failed(Failure),
    /// Still waiting on Salesforce or AWS when the wait timeout ended: nothing went wrong, and the
    /// next apply carries on from here.
    Pending(String),
    Skipped(String),
}

/// Why a step did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum StepError {
    Failed(Failure),
    /// The vendor has not caught up yet (see [`Outcome::Pending`]).
    Pending(String),
}

impl From<String> for StepError {
    fn from(e: String) -> StepError {
        StepError::Failed(e.into())
    }
}

impl From<&str> for StepError {
    fn from(e: &str) -> StepError {
        StepError::Failed(e.to_owned().into())
    }
}

impl From<Failure> for StepError {
    fn from(e: Failure) -> StepError {
        StepError::Failed(e)
    }
}

/// The result of an apply.
#[derive(Debug, Clone, Default)]
pub(crate) struct Report {
    /// Steps, with what was done or why not.
    pub done: Vec<(String, String)>,
    pub failed: Vec<(String, Failure)>,
    /// Steps still waiting on Salesforce or AWS when the wait timeout ended.
    pub pending: Vec<(String, String)>,
    pub skipped: Vec<(String, String)>,
    /// The plan's changes counted whole (a change is one step or more: a replace is two, a relay's
    /// fingerprint is recorded last).
    pub changes: Counts,
    /// The same, per org and account: what a failure budget or a retry rule looks at.
    pub scopes: BTreeMap<Scope, Counts>,
}

/// The plan's changes by how they ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub done: usize,
    pub failed: usize,
    /// Waiting on the vendor when the wait timeout ended.
    pub pending: usize,
    /// Not started because something they need failed or is pending.
    pub not_done: usize,
}

impl Counts {
    pub(crate) fn total(&self) -> usize {
        self.done + self.failed + self.pending + self.not_done
    }
}

impl Report {
    pub(crate) fn succeeded(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty() && self.pending.is_empty()
    }

    /// Nothing failed: what is left waits on Salesforce or AWS.
    pub(crate) fn only_pending(&self) -> bool {
        self.failed.is_empty() && !self.pending.is_empty()
    }
}

struct Ctx {
    spec: Spec,
    graph: Graph<Resource>,
    observed: Observed,
    conn: Connections,
    options: Options,
    /// Relay ids created in this run, by relay spec name.
    relay_ids: Mutex<BTreeMap<String, String>>,
    /// Channel ids created in this run, by relay spec name.
    channel_ids: Mutex<BTreeMap<String, String>>,
    /// Relays' whole definitions as they stand after this run's changes, by relay spec name (a Tooling
    /// PATCH must carry the whole definition).
    relay_defs: Mutex<BTreeMap<String, sf::RelayDefinition>>,
    /// Partner sources found in this run, by relay spec name.
    sources: Mutex<BTreeMap<String, String>>,
    progress: mpsc::UnboundedSender<Progress>,
    /// Set on an interrupt: no new step starts, waits give up, running calls finish.
    stop: Arc<AtomicBool>,
    /// `--parallelism` permits.
    slots: Arc<Semaphore>,
    /// The last feedback read per org, shared by every relay waiting in it: one query serves them all.
    feedback: BTreeMap<String, Arc<tokio::sync::Mutex<Option<FeedbackRead>>>>,
}

type FeedbackRead = (Instant, Vec<(String, sf::Feedback)>);

/// How old a feedback read may be and still answer a waiter.
const FEEDBACK_FRESH: Duration = Duration::from_millis(250);

/// Where a step acts: the org or account whose names it creates or frees. Teardown ordering and the
/// build barrier hold within one scope: nothing in one org waits for another org's teardown.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Scope {
    Org(String),
    Account(String),
}

/// The scope of a change to `a`.
fn scope_of(spec: &Spec, a: &Address) -> Scope {
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
fn steps(plan: &Plan, graph: &Graph<Resource>, spec: &Spec) -> Vec<Step> {
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

/// Runs the plan; sends progress as it goes.
pub(crate) async fn apply(
    spec: &Spec,
    plan: &Plan,
    observed: &Observed,
    conn: Connections,
    options: Options,
    progress: mpsc::UnboundedSender<Progress>,
    stop: Arc<AtomicBool>,
) -> Report {
    let graph = relayform_plan::desired(spec);
    let steps = steps(plan, &graph, spec);
    let ctx = Arc::new(Ctx {
        spec: spec.clone(),
        graph,
        observed: observed.clone(),
        conn,
        options: options.clone(),
        relay_ids: Mutex::default(),
        channel_ids: Mutex::default(),
        relay_defs: Mutex::default(),
        sources: Mutex::default(),
        progress,
        stop,
        slots: Arc::new(Semaphore::new(options.parallelism.max(1))),
        feedback: spec
            .orgs
            .keys()
            .map(|o| (o.clone(), Arc::default()))
            .collect(),
    });
    let _ = ctx.progress.send(Progress::Planned(steps.len()));
    let nodes = steps
        .iter()
        .map(|s| Node {
            needs: s.needs.clone(),
            scope: s.scope.clone(),
            phase: if s.half == Half::Teardown {
                Phase::Teardown
            } else {
                Phase::Build
            },
        })
        .collect();
    let mut schedule = Schedule::new(nodes).expect("steps are built in dependency order");
    let mut outcome: Vec<Option<Outcome>> = vec![None; steps.len()];
    let mut running = tokio::task::JoinSet::new();
    loop {
        // Start what is ready; parallelism is bounded by the slots (held while calling an API, not
        // while waiting). Once interrupted, nothing new starts.
        while !ctx.stop.load(Ordering::SeqCst)
            && let Some(i) = schedule.next_ready()
        {
            let ctx = ctx.clone();
            let step = steps[i].clone();
            running.spawn(async move {
                let mut slot = Slot::take(ctx.slots.clone()).await;
                if ctx.stop.load(Ordering::SeqCst) {
                    return (i, None);
                }
                let _ = ctx.progress.send(Progress::Started(step.name()));
                let started = Instant::now();
                let result = run_step(&ctx, &step, &mut slot).await;
                (i, Some(result.map(|d| (d, started.elapsed()))))
            });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (i, result) = match joined {
            Ok(r) => r,
            Err(e) => {
                // A step panicked: nothing else is known about it; stop starting new work.
                let _ = ctx
                    .progress
                    .send(Progress::Failed("a step".into(), e.to_string()));
                break;
            }
        };
        let name = steps[i].name();
        let ended = match result {
            None => {
                let why = "interrupted before it started".to_owned();
                let _ = ctx.progress.send(Progress::Skipped(name, why.clone()));
                Outcome::Skipped(why)
            }
            Some(Ok((detail, took))) => {
                let _ = ctx
                    .progress
                    .send(Progress::Done(name, detail.clone(), took));
                Outcome::Done(detail)
            }
            Some(Err(StepError::Failed(e))) => {
                let _ = ctx.progress.send(Progress::Failed(name, e.message.clone()));
                Outcome::Failed(e)
            }
            Some(Err(StepError::Pending(e))) => {
                let _ = ctx.progress.send(Progress::Pending(name, e.clone()));
                Outcome::Pending(e)
            }
        };
        let how = if matches!(ended, Outcome::Done(_)) {
            Finish::Succeeded
        } else {
            Finish::NotSucceeded
        };
        outcome[i] = Some(ended);
        for (skipped, cause) in schedule.finish(i, how) {
            let why = match outcome[cause] {
                Some(Outcome::Pending(_)) => {
                    format!("{} is still pending", steps[cause].change.address)
                }
                _ => format!("{} did not succeed", steps[cause].change.address),
            };
            let _ = ctx
                .progress
                .send(Progress::Skipped(steps[skipped].name(), why.clone()));
            outcome[skipped] = Some(Outcome::Skipped(why));
        }
    }
    let mut report = Report::default();
    let mut by_address: std::collections::HashMap<&Address, Vec<&Option<Outcome>>> =
        std::collections::HashMap::new();
    for (s, o) in steps.iter().zip(&outcome) {
        by_address.entry(&s.change.address).or_default().push(o);
    }
    for c in &plan.changes {
        let mine = by_address.get(&c.address).map_or(&[][..], Vec::as_slice);
        let scope = report.scopes.entry(scope_of(spec, &c.address)).or_default();
        let (all, here) = (&mut report.changes, scope);
        if mine.iter().any(|o| matches!(o, Some(Outcome::Failed(_)))) {
            all.failed += 1;
            here.failed += 1;
        } else if mine.iter().all(|o| matches!(o, Some(Outcome::Done(_)))) {
            all.done += 1;
            here.done += 1;
        } else if mine.iter().any(|o| matches!(o, Some(Outcome::Pending(_)))) {
            all.pending += 1;
            here.pending += 1;
        } else {
            all.not_done += 1;
            here.not_done += 1;
        }
    }
    for (s, o) in steps.iter().zip(outcome) {
        match o {
            Some(Outcome::Done(d)) => report.done.push((s.name(), d)),
            Some(Outcome::Failed(e)) => report.failed.push((s.name(), e)),
            Some(Outcome::Pending(e)) => report.pending.push((s.name(), e)),
            Some(Outcome::Skipped(e)) => report.skipped.push((s.name(), e)),
            None => report
                .skipped
                .push((s.name(), "interrupted before it started".into())),
        }
    }
    report
}

type StepResult = Result<String, StepError>;

fn relay_of(address: &Address) -> &str {
    address.key.split('/').next().unwrap_or_default()
}

impl Ctx {
    fn org_of(&self, address: &Address) -> Result<&Client, String> {
        let org = match address.kind {
            Kind::NamedCredential => relay_of(address).to_owned(),
            _ => self
                .spec
                .relays
                .get(relay_of(address))
                .map(|r| r.org.value.clone())
                .ok_or_else(|| format!("{address} names no relay of the spec"))?,
        };
        self.conn
            .orgs
            .get(&org)
            .ok_or_else(|| format!("no connection to org `{org}`"))
    }

    fn account_of(&self, address: &Address) -> Result<&Aws, String> {
        let account = match address.kind {
            Kind::Role | Kind::BusPolicy => relay_of(address).to_owned(),
            _ => self
                .spec
                .relays
                .get(relay_of(address))
                .map(|r| r.aws_account.value.clone())
                .ok_or_else(|| format!("{address} names no relay of the spec"))?,
        };
        self.conn
            .accounts
            .get(&account)
            .ok_or_else(|| format!("no connection to AWS account `{account}`"))
    }

    /// A client for the spec account `account` in `region` (which may not be the account's own).
    async fn account_in_region(&self, account: &str, region: &str) -> Result<Aws, String> {
        let a = self
            .spec
            .aws_accounts
            .get(account)
            .ok_or_else(|| format!("no AWS account `{account}` in the spec"))?;
        if a.region.value == region {
            return self
                .conn
                .accounts
                .get(account)
                .cloned()
                .ok_or_else(|| format!("no connection to AWS account `{account}`"));
        }
        let t = self
            .conn
            .targets
            .get(&a.account_id.value)
            .ok_or_else(|| format!("no connection to AWS account `{account}`"))?;
        Ok(Aws::connect(
            &relayform_aws::Target {
                region: region.to_owned(),
                ..t.clone()
            },
            None,
        )
        .await)
    }

    fn desired(&self, address: &Address) -> Result<&Desired, String> {
        self.graph
            .get(address)
            .map(|r| &r.desired)
            .ok_or_else(|| format!("{address} is not in the spec's graph"))
    }

    /// The relay as it was observed before apply.
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

    /// A relay's whole definition as it stands now: what this run created or last set, else what the
    /// refresh read.
    fn relay_definition(&self, relay: &str) -> Result<sf::RelayDefinition, String> {
        if let Some(d) = self.relay_defs.lock().expect("defs").get(relay) {
            return Ok(d.clone());
        }
        let seen = self
            .observed_relay(relay)
            .ok_or_else(|| format!("the relay `{relay}` does not exist"))?;
        // Channel and credential as the spec names them: the plan replaces a relay whose channel or
        // credential differ, so these are the relay's own, in the form a PATCH takes (a query may
        // have returned the channel as its id).
        let r = &self.spec.relays[relay];
        let names = &r.names;
        Ok(sf::RelayDefinition {
            label: seen.label.clone().unwrap_or_else(|| seen.name.clone()),
            channel: self.in_org(&r.org.value, &names::channel_full_name(&names.channel)),
            destination: format!(
                "callout:{}",
                self.in_org(&r.org.value, &names.named_credential)
            ),
            relay_option: seen.relay_option.clone().unwrap_or_default(),
            state: seen.state.clone().unwrap_or_else(|| "STOP".into()),
        })
    }

    /// PATCHes a relay with its whole definition, changed by `edit`.
    async fn patch_relay(
        &self,
        address: &Address,
        relay: &str,
        edit: impl FnOnce(&mut sf::RelayDefinition),
    ) -> Result<(), String> {
        let mut def = self.relay_definition(relay)?;
        edit(&mut def);
        let r = &self.spec.relays[relay];
        sf::update(
            self.org_of(address)?,
            "EventRelayConfig",
            &self.relay_id(relay)?,
            &self.in_org(&r.org.value, &r.names.relay),
            def.metadata(),
        )
        .await
        .map_err(e)?;
        self.relay_defs
            .lock()
            .expect("defs")
            .insert(relay.to_owned(), def);
        Ok(())
    }

    fn channel_id(&self, relay: &str) -> Result<String, String> {
        if let Some(id) = self.channel_ids.lock().expect("ids").get(relay) {
            return Ok(id.clone());
        }
        let r = &self.spec.relays[relay];
        self.observed
            .orgs
            .get(&r.org.value)
            .and_then(|o| o.channels.iter().find(|c| c.name == r.names.channel))
            .map(|c| c.id.clone())
            .ok_or_else(|| format!("the channel of relay `{relay}` does not exist"))
    }

    fn relay_id(&self, relay: &str) -> Result<String, String> {
        if let Some(id) = self.relay_ids.lock().expect("ids").get(relay) {
            return Ok(id.clone());
        }
        self.observed_relay(relay)
            .map(|r| r.id.clone())
            .ok_or_else(|| format!("the relay `{relay}` does not exist"))
    }

    /// A relay's feedback, from a read of the whole org's no older than [`FEEDBACK_FRESH`] (made now
    /// if there is none): relays waiting together cost one query per poll, not one each.
    async fn relay_feedback(&self, relay: &str, relay_id: &str) -> Result<sf::Feedback, StepError> {
        let org = &self.spec.relays[relay].org.value;
        let cell = self
            .feedback
            .get(org)
            .ok_or_else(|| format!("no org `{org}`"))?
            .clone();
        let mut read = cell.lock().await;
        if read
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() > FEEDBACK_FRESH)
        {
            let client = self
                .conn
                .orgs
                .get(org)
                .ok_or_else(|| format!("no connection to org `{org}`"))?;
            let rows = sf::feedback_all(client).await.map_err(e)?;
            *read = Some((Instant::now(), rows));
        }
        let rows = read.as_ref().map(|(_, r)| r.as_slice()).unwrap_or_default();
        Ok(rows
            .iter()
            .find(|(id, _)| sf::same_id(id, relay_id))
            .map(|(_, f)| f.clone())
            .unwrap_or_default())
    }

    /// Polls `check` with backoff until it gives a value or the wait timeout passes.
    async fn wait_for<T, F, Fut>(
        &self,
        slot: &mut Slot,
        step: &str,
        what: &str,
        mut check: F,
    ) -> Result<T, StepError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>, StepError>>,
    {
        let started = Instant::now();
        let mut pause = self.options.first_poll;
        let mut told = None::<Instant>;
        loop {
            if let Some(v) = check().await? {
                return Ok(v);
            }
            if self.stop.load(Ordering::SeqCst) {
                return Err(format!("interrupted while waiting for {what}").into());
            }
            let waited = started.elapsed();
            if waited >= self.options.wait_timeout {
                return Err(StepError::Pending(format!(
                    "still waiting for {what} after {} (--wait-timeout)",
                    human(self.options.wait_timeout)
                )));
            }
            if told.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                told = Some(Instant::now());
                let _ =
                    self.progress
                        .send(Progress::Waiting(step.to_owned(), what.to_owned(), waited));
            }
            // Waiting takes no slot: other changes go on meanwhile.
            slot.release();
            tokio::time::sleep(pause.min(self.options.wait_timeout.saturating_sub(waited))).await;
            slot.retake().await;
            pause = (pause * 3 / 2).min(self.options.max_poll);
        }
    }
}

/// `500ms`, `90s`, `5m`: as `--wait-timeout` takes them.
fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// A share of `--parallelism`: held while a step calls an API, given back while it waits.
struct Slot {
    slots: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Slot {
    async fn take(slots: Arc<Semaphore>) -> Slot {
        let mut s = Slot {
            slots,
            permit: None,
        };
        s.retake().await;
        s
    }

    fn release(&mut self) {
        self.permit = None;
    }

    async fn retake(&mut self) {
        // The semaphore is never closed.
        self.permit = self.slots.clone().acquire_owned().await.ok();
    }
}

async fn run_step(ctx: &Ctx, step: &Step, slot: &mut Slot) -> StepResult {
    match step.half {
        Half::Teardown => teardown(ctx, step).await,
        Half::Build => build(ctx, step, slot).await,
        Half::Fingerprint => record_fingerprint(ctx, step).await,
    }
}

async fn record_fingerprint(ctx: &Ctx, step: &Step) -> StepResult {
    let a = &step.change.address;
    let relay = relay_of(a);
    let label = step
        .change
        .fields
        .iter()
        .find(|f| f.field == "label")
        .and_then(|f| f.after.clone())
        .ok_or("no label to record")?;
    let Desired::Channel {
        name, channel_type, ..
    } = ctx.desired(a)?
    else {
        return Err(format!("{a} is not a channel").into());
    };
    let org = &ctx.spec.relays[relay].org.value;
    sf::update(
        ctx.org_of(a)?,
        "PlatformEventChannel",
        &ctx.channel_id(relay)?,
        &ctx.in_org(org, &names::channel_full_name(name)),
        sf::channel_definition(channel_type.as_str(), &label),
    )
    .await
    .map_err(e)?;
    Ok(format!("label {label:?}"))
}

/// A provider error as a step failure, its kind kept.
fn e(err: relayform_provider::Error) -> Failure {
    Failure {
        kind: Some(err.kind),
        message: err.to_string(),
    }
}

/// Removes a replaced relay's forwarding rule and partner bus. They are where its named credential
/// pointed (`arn:aws:<REGION>:<account>`), which may be another region or account than the spec's now;
/// returns a note when they are somewhere relayform has no credentials for.
async fn remove_partner_side(
    ctx: &Ctx,
    relay: &str,
    address: &Address,
) -> Result<Option<String>, String> {
    let Some(seen) = ctx.observed_relay(relay) else {
        return Ok(None);
    };
    let Some(src) = seen.remote_resource.clone() else {
        return Ok(None);
    };
    let r = &ctx.spec.relays[relay];
    let spec_account = &ctx.spec.aws_accounts[&r.aws_account.value];
    let old = seen
        .destination
        .as_deref()
        .and_then(|d| d.strip_prefix("callout:"))
        .and_then(|nc| {
            ctx.observed
                .orgs
                .get(&r.org.value)?
                .named_credentials
                .iter()
                .find(|n| sf::same_reference(nc, &n.name))?
                .endpoint
                .clone()
        })
        .and_then(|ep| {
            let rest = ep.strip_prefix("arn:aws:")?;
            let (region, account) = rest.split_once(':')?;
            Some((region.to_lowercase(), account.to_owned()))
        });
    let moved = old.filter(|(region, account)| {
        *region != spec_account.region.value || *account != spec_account.account_id.value
    });
    if let Some((region, account)) = moved {
        let Some(t) = ctx.conn.targets.get(&account) else {
            return Ok(Some(format!(
                "its old partner bus {src} in account {account}, {region} is left: the spec has no credentials for that account"
            )));
        };
        let aws = Aws::connect(
            &relayform_aws::Target {
                region: region.clone(),
                ..t.clone()
            },
            None,
        )
        .await;
        aws_ops::delete_forwarding(&aws, &src, FORWARD_RULE, FORWARD_TARGET)
            .await
            .map_err(e)?;
        aws_ops::delete_bus(&aws, &src).await.map_err(e)?;
        return Ok(Some(format!(
            "its old partner bus {src} in {region} deleted"
        )));
    }
    let Some(acct) = ctx.observed.accounts.get(&r.aws_account.value) else {
        return Ok(None);
    };
    let aws = ctx.account_of(address)?;
    if acct
        .rules
        .iter()
        .any(|x| x.bus == src && x.name == FORWARD_RULE)
    {
        aws_ops::delete_forwarding(aws, &src, FORWARD_RULE, FORWARD_TARGET)
            .await
            .map_err(e)?;
    }
    if acct.buses.iter().any(|b| b.name == src) {
        aws_ops::delete_bus(aws, &src).await.map_err(e)?;
        return Ok(Some(format!("its old partner bus {src} deleted")));
    }
    Ok(None)
}

async fn teardown(ctx: &Ctx, step: &Step) -> StepResult {
    let a = &step.change.address;
    let relay = relay_of(a);
    match a.kind {
        Kind::Forwarding => {
            let Some(src) = ctx
                .observed_relay(relay)
                .and_then(|r| r.remote_resource.clone())
            else {
                return Ok("already gone".into());
            };
            aws_ops::delete_forwarding(ctx.account_of(a)?, &src, FORWARD_RULE, FORWARD_TARGET)
                .await
                .map_err(e)?;
            Ok(format!("rule {FORWARD_RULE} removed from {src}"))
        }
        Kind::Association => {
            let Some(src) = ctx
                .observed_relay(relay)
                .and_then(|r| r.remote_resource.clone())
            else {
                return Ok("already gone".into());
            };
            aws_ops::delete_bus(ctx.account_of(a)?, &src)
                .await
                .map_err(e)?;
            Ok(format!("partner bus {src} deleted"))
        }
        Kind::Relay => {
            let Some(seen) = ctx.observed_relay(relay) else {
                return Ok("already gone".into());
            };
            let mut note = None;
            if step.change.action == Action::Replace {
                // The old partner source goes with the relay; its bus and rule would be left over.
                note = remove_partner_side(ctx, relay, a).await?;
            }
            sf::delete(ctx.org_of(a)?, "EventRelayConfig", &seen.id)
                .await
                .map_err(e)?;
            Ok(match note {
                Some(n) => format!("relay {} deleted; {n}", seen.name),
                None => format!("relay {} deleted", seen.name),
            })
        }
        Kind::RelayState => Ok("nothing to do".into()),
        Kind::Channel => {
            let r = &ctx.spec.relays[relay];
            let o = ctx.observed.orgs.get(&r.org.value);
            let Some(ch) = o.and_then(|o| o.channels.iter().find(|c| c.name == r.names.channel))
            else {
                return Ok("already gone".into());
            };
            sf::delete(ctx.org_of(a)?, "PlatformEventChannel", &ch.id)
                .await
                .map_err(e)?;
            Ok(format!(
                "channel {} deleted",
                names::channel_full_name(&ch.name)
            ))
        }
        Kind::ChannelMember => {
            let r = &ctx.spec.relays[relay];
            let event = a.key.split_once('/').map(|(_, e)| e).unwrap_or_default();
            let o = ctx.observed.orgs.get(&r.org.value);
            let member = o.and_then(|o| {
                let ch = o.channels.iter().find(|c| c.name == r.names.channel)?;
                o.members.iter().find(|m| {
                    m.channel_id.as_deref() == Some(ch.id.as_str())
                        && m.event
                            .as_deref()
                            .is_some_and(|x| relayform_plan::diff::same_name(x, event))
                })
            });
            let Some(m) = member else {
                return Ok("already gone".into());
            };
            sf::delete(ctx.org_of(a)?, "PlatformEventChannelMember", &m.id)
                .await
                .map_err(e)?;
            Ok(format!("member {} deleted", m.name))
        }
        Kind::NamedCredential => {
            let (org, name) = a.key.split_once('/').unwrap_or_default();
            let Some(nc) = ctx
                .observed
                .orgs
                .get(org)
                .and_then(|o| o.named_credentials.iter().find(|n| n.name == name))
            else {
                return Ok("already gone".into());
            };
            sf::delete(ctx.org_of(a)?, "NamedCredential", &nc.id)
                .await
                .map_err(e)?;
            Ok(format!("named credential {name} deleted"))
        }
        Kind::BusPolicy => {
            // `<account>/<region>/<bus>/<sender>`
            let parts: Vec<&str> = a.key.split('/').collect();
            let [account, region, bus, sender] = parts[..] else {
                return Err(format!("{a} is not a bus policy address").into());
            };
            let sid = format!("relayform-{sender}");
            let aws = ctx.account_in_region(account, region).await?;
            aws_ops::remove_bus_permission(&aws, bus, &sid)
                .await
                .map_err(e)?;
            Ok(format!("statement {sid} removed from bus {bus} ({region})"))
        }
        Kind::Role => {
            let name = a.key.split_once('/').map(|(_, n)| n).unwrap_or_default();
            aws_ops::delete_role(ctx.account_of(a)?, name, ROLE_POLICY)
                .await
                .map_err(e)?;
            Ok(format!("role {name} deleted"))
        }
    }
}

/// A relay Salesforce reports in error, in its words.
fn in_error(f: &sf::Feedback) -> String {
    format!(
        "Salesforce reports the relay in error: {}: {}\nhint: the relay's feedback in Setup (Event Relays) says more; an unknown AWS account or region in its named credential is the usual cause. Fix it and run apply again",
        f.error_code.as_deref().unwrap_or("(no code)"),
        f.error_message.as_deref().unwrap_or("(no message)")
    )
}

fn adopted(what: String, adopted: bool) -> String {
    if adopted {
        format!("{what} (it existed already and matches the spec: adopted)")
    } else {
        what
    }
}

async fn build(ctx: &Ctx, step: &Step, slot: &mut Slot) -> StepResult {
    let a = &step.change.address;
    let action = step.change.action;
    let after = |f: &str| {
        step.change
            .fields
            .iter()
            .find(|x| x.field == f)
            .and_then(|x| x.after.clone())
    };
    match ctx.desired(a)?.clone() {
        Desired::Role {
            name,
            trust,
            permission,
            destination_arn,
            ..
        } => {
            let aws = ctx.account_of(a)?;
            if action == Action::Update {
                if after("trust_policy").is_some() {
                    aws_ops::update_trust(aws, &name, &trust.to_string())
                        .await
                        .map_err(e)?;
                }
                if after("permission_policy").is_some() {
                    aws_ops::put_role_policy(aws, &name, ROLE_POLICY, &permission.to_string())
                        .await
                        .map_err(e)?;
                }
                Ok(format!("role {name} policies set"))
            } else {
                aws_ops::put_role(
                    aws,
                    &name,
                    &trust.to_string(),
                    ROLE_POLICY,
                    &permission.to_string(),
                    &aws_ops::Tags::for_role(&destination_arn),
                )
                .await
                .map_err(e)?;
                Ok(format!("role {name} created"))
            }
        }
        Desired::BusPolicy {
            account,
            region,
            bus,
            bus_arn,
            sender,
            statement_id,
        } => {
            let aws = ctx.account_in_region(&account, &region).await?;
            aws_ops::put_bus_permission(&aws, &bus, &sender, &statement_id)
                .await
                .map_err(e)?;
            Ok(format!(
                "{bus_arn} now lets account {sender} put events on it ({statement_id})"
            ))
        }
        Desired::NamedCredential {
            org,
            name,
            endpoint,
        } => {
            let client = ctx.org_of(a)?;
            if action == Action::Update {
                let id = ctx
                    .observed
                    .orgs
                    .get(&org)
                    .and_then(|o| o.named_credentials.iter().find(|n| n.name == name))
                    .map(|n| n.id.clone())
                    .ok_or_else(|| format!("the named credential {name} is gone"))?;
                let label = ctx
                    .observed
                    .orgs
                    .get(&org)
                    .and_then(|o| o.named_credentials.iter().find(|n| n.name == name))
                    .and_then(|n| n.label.clone())
                    .unwrap_or_else(|| name.clone());
                sf::update(
                    client,
                    "NamedCredential",
                    &id,
                    &ctx.in_org(&org, &name),
                    sf::named_credential_definition(&label, &endpoint),
                )
                .await
                .map_err(e)?;
                return Ok(format!("named credential {name} → {endpoint}"));
            }
            let (_, was) = sf::create_or_adopt(client, &sf::named_credential(&name, &endpoint))
                .await
                .map_err(e)?;
            Ok(adopted(format!("named credential {name} created"), was))
        }
        Desired::Channel {
            name, channel_type, ..
        } => {
            let relay = relay_of(a);
            let (id, was) = sf::create_or_adopt(
                ctx.org_of(a)?,
                &sf::channel(
                    &name,
                    channel_type.as_str(),
                    &relayform_plan::diff::unfinished_label(relay),
                ),
            )
            .await
            .map_err(e)?;
            ctx.channel_ids
                .lock()
                .expect("ids")
                .insert(relay.to_owned(), id);
            Ok(adopted(
                format!("channel {} created", names::channel_full_name(&name)),
                was,
            ))
        }
        Desired::ChannelMember {
            name,
            channel,
            event,
            ..
        } => {
            let (_, was) =
                sf::create_or_adopt(ctx.org_of(a)?, &sf::channel_member(&name, &channel, &event))
                    .await
                    .map_err(e)?;
            Ok(adopted(format!("member {name} ({event}) created"), was))
        }
        Desired::Relay {
            org,
            name,
            channel,
            named_credential,
            error_recovery,
        } => {
            let relay = relay_of(a).to_owned();
            // The fingerprint is recorded last (see `Half::Fingerprint`); until then, no fingerprint.
            let label = relayform_plan::diff::unfinished_label(&relay);
            let client = ctx.org_of(a)?;
            if action == Action::Update {
                if after("error_recovery").is_some() {
                    ctx.patch_relay(a, &relay, |d| {
                        d.relay_option = recovery_option(error_recovery).to_owned();
                    })
                    .await?;
                }
                return Ok(format!("relay {name} updated"));
            }
            let new = sf::relay(
                &name,
                &label,
                &channel,
                &named_credential,
                recovery_option(error_recovery),
            );
            let (id, was) = sf::create_or_adopt(client, &new).await.map_err(e)?;
            // What a PATCH must repeat: what was created, or what the adopted relay holds.
            let def = if was {
                sf::RelayDefinition::read(client, &id).await.map_err(e)?
            } else {
                sf::RelayDefinition {
                    label: label.clone(),
                    channel: ctx.in_org(&org, &names::channel_full_name(&channel)),
                    destination: format!("callout:{}", ctx.in_org(&org, &named_credential)),
                    relay_option: recovery_option(error_recovery).to_owned(),
                    state: "STOP".into(),
                }
            };
            ctx.relay_defs
                .lock()
                .expect("defs")
                .insert(relay.clone(), def);
            ctx.relay_ids
                .lock()
                .expect("ids")
                .insert(relay.clone(), id.clone());
            Ok(adopted(format!("relay {name} created (stopped)"), was))
        }
        Desired::Association { relay, .. } => {
            let id = ctx.relay_id(&relay)?;
            let step_name = step.name();
            let aws = ctx.account_of(a)?;
            let tags = aws_ops::Tags::for_relay(&relay, &ctx.spec.relays[&relay].org.value);
            // Salesforce names the source first (RemoteResource); AWS shows it some time later, and
            // until then CreateEventBus for it is "not found": still pending, not a failure.
            let src = ctx
                .wait_for(
                    slot,
                    &step_name,
                    &format!("the partner event source of relay `{relay}` (Salesforce registers it, then AWS shows it)"),
                    || async {
                        let f = ctx.relay_feedback(&relay, &id).await?;
                        let Some(src) = f.remote_resource.clone() else {
                            if f.status.as_deref() == Some("ERROR") {
                                return Err(in_error(&f).into());
                            }
                            return Ok(None);
                        };
                        match aws_ops::associate(aws, &src, &tags).await {
                            Ok(()) => Ok(Some(src)),
                            Err(err) if err.kind == relayform_provider::ErrorKind::NotFound => {
                                Ok(None)
                            }
                            Err(err) => Err(e(err).into()),
                        }
                    },
                )
                .await?;
            ctx.sources
                .lock()
                .expect("sources")
                .insert(relay, src.clone());
            Ok(format!("partner event source {src} associated"))
        }
        Desired::Forwarding {
            relay,
            destination_arn,
            role,
            account,
        } => {
            let src = ctx
                .sources
                .lock()
                .expect("sources")
                .get(&relay)
                .cloned()
                .or_else(|| {
                    ctx.observed_relay(&relay)
                        .and_then(|r| r.remote_resource.clone())
                })
                .ok_or_else(|| format!("the partner source of relay `{relay}` is not known"))?;
            let acct = &ctx.spec.aws_accounts[&account];
            let partition = relayform_spec::rules::partition(&acct.region).unwrap_or("aws");
            let role_arn = format!("arn:{partition}:iam::{}:role/{role}", acct.account_id.value);
            aws_ops::put_forwarding(
                ctx.account_of(a)?,
                &aws_ops::Forwarding {
                    bus: &src,
                    rule: FORWARD_RULE,
                    target_id: FORWARD_TARGET,
                    destination_arn: &destination_arn,
                    role_arn: &role_arn,
                    tags: &aws_ops::Tags::for_relay(&relay, &ctx.spec.relays[&relay].org.value),
                },
            )
            .await
            .map_err(e)?;
            Ok(format!("rule {FORWARD_RULE} on {src} → {destination_arn}"))
        }
        Desired::RelayState { relay, state, .. } => {
            let id = ctx.relay_id(&relay)?;
            let want = admin_state(state);
            ctx.patch_relay(a, &relay, |d| d.state = want.to_owned())
                .await?;
            let status = match state {
                RelayState::Running => "RUNNING",
                RelayState::Paused => "PAUSED",
                RelayState::Stopped => "STOPPED",
            };
            let step_name = step.name();
            ctx.wait_for(
                slot,
                &step_name,
                &format!("relay `{relay}` to report {status}"),
                || async {
                    let f = ctx.relay_feedback(&relay, &id).await?;
                    match f.status.as_deref() {
                        Some(s) if s == status => Ok(Some(())),
                        Some("ERROR") => Err(in_error(&f).into()),
                        _ => Ok(None),
                    }
                },
            )
            .await?;
            Ok(format!(
                "relay {} is {status}",
                ctx.spec.relays[&relay].names.relay
            ))
        }
    }
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
