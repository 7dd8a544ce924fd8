//! The run: steps handed out by the [`Schedule`], started while a slot is free, their outcomes
//! gathered into a [`Report`] with counts per change and per scope.

use crate::ops::run_step;
use crate::report::{Report, count};
use crate::wait::Slot;
use crate::{Finish, Node, Phase, Schedule};
use relayform_provider::ErrorKind;
use relayform_provider::act::{Connect, Feedback, Made, Program, RelayDefinition, Scope, Step};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};

/// How a run goes.
#[derive(Debug, Clone)]
pub struct Options {
    /// How many steps call Salesforce or AWS at once (`--parallelism`); waiting takes no slot.
    pub parallelism: usize,
    /// How long a step waits for the vendors (a partner source, a state change) before it is left
    /// pending.
    pub wait_timeout: Duration,
    /// The first pause between polls; half as long again each time, up to `max_poll`.
    pub first_poll: Duration,
    pub max_poll: Duration,
}

/// What happens, as it happens (for progress output).
#[derive(Debug, Clone)]
pub enum Progress {
    /// How many steps the run has (sent first).
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

/// A step's failure, typed to the end: of what kind (`None`: relayform's own finding, such as an
/// object the refresh did not see), the vendor's code and the operation where the provider gave them,
/// what went wrong, and what to do about it; so a report can count failures by kind and a retry rule
/// or failure budget can look at them. The step it belongs to is the report's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: Option<ErrorKind>,
    /// The vendor's error code (`FIELD_INTEGRITY_EXCEPTION`, `ResourceNotFoundException`, ...).
    pub code: Option<String>,
    /// The provider call that failed (`tooling.create EventRelayConfig`, `events:PutRule`, ...).
    pub operation: Option<String>,
    /// What went wrong (without the hint).
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Failure {
    /// A failure from text that may end in `\nhint: ...`.
    pub fn new(kind: Option<ErrorKind>, text: &str) -> Failure {
        let (message, hint) = match text.split_once("\nhint: ") {
            Some((m, h)) => (m.to_owned(), Some(h.to_owned())),
            None => (text.to_owned(), None),
        };
        Failure {
            kind,
            code: None,
            operation: None,
            message,
            hint,
        }
    }
}

/// The message, then the hint on a line of its own.
impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "\nhint: {h}")?;
        }
        Ok(())
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::new(None, &message)
    }
}

impl From<relayform_provider::Error> for Failure {
    fn from(err: relayform_provider::Error) -> Failure {
        Failure {
            code: err.code.clone(),
            operation: Some(err.operation.clone()),
            ..Failure::new(Some(err.kind), &err.to_string())
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Done(String),
    /// Boxed: a run keeps an outcome per step, and failures are rare.
    Failed(Box<Failure>),
    /// Still waiting on Salesforce or AWS when the wait timeout ended: nothing went wrong, and the
    /// next apply carries on from here.
    Pending(String),
    Skipped(String),
}

/// Why a step did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StepError {
    Failed(Failure),
    /// The vendor has not caught up yet (see [`Outcome::Pending`]).
    Pending(String),
}

impl From<String> for StepError {
    fn from(e: String) -> StepError {
        StepError::Failed(e.into())
    }
}

impl From<Failure> for StepError {
    fn from(e: Failure) -> StepError {
        StepError::Failed(e)
    }
}

impl From<relayform_provider::Error> for StepError {
    fn from(e: relayform_provider::Error) -> StepError {
        StepError::Failed(e.into())
    }
}

/// What a step finds in the run.
pub(crate) struct Run {
    pub connect: Arc<dyn Connect>,
    pub options: Options,
    pub progress: mpsc::UnboundedSender<Progress>,
    /// Set on an interrupt: no new step starts, waits give up, running calls finish.
    pub stop: Arc<AtomicBool>,
    pub(crate) slots: Arc<Semaphore>,
    /// Ids and names made in this run, by what and relay.
    pub made: Mutex<HashMap<(Made, String), String>>,
    /// Relays' whole definitions as they stand after this run's changes, by relay (a Tooling PATCH
    /// must carry the whole definition).
    pub defs: Mutex<HashMap<String, RelayDefinition>>,
    /// When this run last created or PATCHed each relay (by id): a feedback read made before that
    /// cannot show what the relay does now.
    pub touched: Mutex<HashMap<String, Instant>>,
    /// The last feedback read per org, shared by every relay waiting in it: one query serves them all.
    pub feedback: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<FeedbackRead>>>>>,
}

pub(crate) type FeedbackRead = (Instant, Vec<Feedback>);

/// Runs the program; sends progress as it goes. Nothing in it panics on a provider's answer; a
/// step that panics stops the run, which reports it.
pub async fn run(
    program: Program,
    connect: Arc<dyn Connect>,
    options: Options,
    progress: mpsc::UnboundedSender<Progress>,
    stop: Arc<AtomicBool>,
) -> Report {
    let Program { mut steps, changes } = program;
    let run = Arc::new(Run {
        connect,
        slots: Arc::new(Semaphore::new(options.parallelism.max(1))),
        options,
        progress,
        stop,
        made: Mutex::default(),
        defs: Mutex::default(),
        touched: Mutex::default(),
        feedback: Mutex::default(),
    });
    let _ = run.progress.send(Progress::Planned(steps.len()));
    // The schedule owns the steps' needs (nothing else reads them) and knows each scope by a
    // number: 70,000 steps at 10,000 relays, none copied.
    let mut scopes: HashMap<&Scope, usize> = HashMap::new();
    let needs: Vec<Vec<usize>> = steps
        .iter_mut()
        .map(|s| std::mem::take(&mut s.needs))
        .collect();
    let nodes = steps
        .iter()
        .zip(needs)
        .map(|(s, needs)| {
            let n = scopes.len();
            Node {
                needs,
                scope: *scopes.entry(&s.scope).or_insert(n),
                phase: if s.teardown {
                    Phase::Teardown
                } else {
                    Phase::Build
                },
            }
        })
        .collect();
    drop(scopes);
    // Shared by the running steps; an `Arc<[Step]>` would copy every step (70,000 at 10,000 relays).
    let steps: Arc<Vec<Step>> = Arc::new(steps);
    let mut outcome: Vec<Option<Outcome>> = vec![None; steps.len()];
    let mut schedule = match Schedule::new(nodes) {
        Ok(s) => s,
        Err(e) => {
            // The lowering builds steps in dependency order; a program that is not is refused whole.
            let why = format!("the steps are out of order ({e:?}): nothing was run");
            let mut report = Report::default();
            for s in steps.iter() {
                report.skipped.push((s.name.clone(), why.clone()));
            }
            count(&mut report, &steps, &changes, &outcome);
            return report;
        }
    };
    let mut running = tokio::task::JoinSet::new();
    // A step is spawned once it holds a slot: the steps that are ready but have no slot yet are
    // indices in the schedule, not tasks (10,000 relays make tens of thousands ready at once).
    let mut next = None;
    let mut slot_in_hand = None;
    loop {
        // Start what is ready while slots are free (a slot is held while calling an API, not while
        // waiting). Once interrupted, nothing new starts.
        while !run.stop.load(Ordering::SeqCst) {
            if next.is_none() {
                next = schedule.next_ready();
            }
            let Some(i) = next else { break };
            let permit = match slot_in_hand.take() {
                Some(p) => p,
                None => match run.slots.clone().try_acquire_owned() {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            next = None;
            let (run, steps) = (run.clone(), steps.clone());
            running.spawn(async move {
                let step = &steps[i];
                let mut slot = Slot::held(run.slots.clone(), permit);
                let _ = run.progress.send(Progress::Started(step.name.clone()));
                let started = Instant::now();
                let result = run_step(&run, step, &mut slot).await;
                (i, result.map(|d| (d, started.elapsed())))
            });
        }
        if run.stop.load(Ordering::SeqCst) {
            // A slot taken for a step that will not start now goes back: a waiting step needs one
            // to finish (with one slot, holding it here would wait on that step for ever).
            slot_in_hand = None;
        }
        let joined = if next.is_some() && !run.stop.load(Ordering::SeqCst) {
            // A step is ready and every slot is taken: whichever comes first, a slot (given back
            // by a step that ended or one that waits), or a step's end.
            tokio::select! {
                permit = run.slots.clone().acquire_owned() => {
                    // The semaphore is never closed.
                    slot_in_hand = permit.ok();
                    continue;
                }
                joined = running.join_next() => joined,
            }
        } else {
            running.join_next().await
        };
        let Some(joined) = joined else {
            break;
        };
        let (i, result) = match joined {
            Ok(r) => r,
            Err(e) => {
                // A step panicked: nothing else is known about it; stop starting new work.
                let _ = run
                    .progress
                    .send(Progress::Failed("a step".into(), e.to_string()));
                break;
            }
        };
        let name = steps[i].name.clone();
        let ended = match result {
            Ok((detail, took)) => {
                let _ = run
                    .progress
                    .send(Progress::Done(name, detail.clone(), took));
                Outcome::Done(detail)
            }
            Err(StepError::Failed(e)) => {
                let _ = run.progress.send(Progress::Failed(name, e.to_string()));
                Outcome::Failed(Box::new(e))
            }
            Err(StepError::Pending(e)) => {
                let _ = run.progress.send(Progress::Pending(name, e.clone()));
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
                Some(Outcome::Pending(_)) => format!("{} is still pending", steps[cause].address),
                _ => format!("{} did not succeed", steps[cause].address),
            };
            let _ = run
                .progress
                .send(Progress::Skipped(steps[skipped].name.clone(), why.clone()));
            outcome[skipped] = Some(Outcome::Skipped(why));
        }
    }
    // What the run no longer needs goes before the report is built: the report is the last thing
    // made, at the run's peak.
    drop((schedule, running, run));
    let mut report = Report::default();
    count(&mut report, &steps, &changes, &outcome);
    // Every task has ended (or the run stopped on a panic), so the steps are the run's alone: their
    // names move into the report, and each step is freed as it is reported.
    let steps = Arc::try_unwrap(steps).unwrap_or_else(|shared| (*shared).clone());
    let how_many = |f: fn(&Option<Outcome>) -> bool| outcome.iter().filter(|o| f(o)).count();
    report
        .done
        .reserve_exact(how_many(|o| matches!(o, Some(Outcome::Done(_)))));
    report
        .failed
        .reserve_exact(how_many(|o| matches!(o, Some(Outcome::Failed(_)))));
    report
        .pending
        .reserve_exact(how_many(|o| matches!(o, Some(Outcome::Pending(_)))));
    report
        .skipped
        .reserve_exact(how_many(|o| matches!(o, Some(Outcome::Skipped(_)) | None)));
    for (s, o) in steps.into_iter().zip(outcome) {
        let name = s.name;
        match o {
            Some(Outcome::Done(d)) => report.done.push((name, d)),
            Some(Outcome::Failed(e)) => report.failed.push((name, *e)),
            Some(Outcome::Pending(e)) => report.pending.push((name, e)),
            Some(Outcome::Skipped(e)) => report.skipped.push((name, e)),
            None => report
                .skipped
                .push((name, "interrupted before it started".into())),
        }
    }
    report
}
