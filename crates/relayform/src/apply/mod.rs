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
//!
//! Here: the run's types and [`apply`] (the loop over the schedule); `steps` turns a plan into
//! steps with their needs and scopes; `ctx` is what a step finds in the run (clients, ids, relay
//! definitions, shared feedback reads, waits); `ops` is what each step does at Salesforce and AWS.
//! (Issue 11 moves this behind provider traits into `relayform-exec`.)

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

mod ctx;
mod ops;
mod steps;

use ops::{e, run_step};
use steps::{scope_of, steps};

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

/// A share of `--parallelism`: held while a step calls an API, given back while it waits.
struct Slot {
    slots: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
}
