//! The executor on the in-memory provider: whole plan → apply → plan round trips, and its behaviour
//! (skips, per-scope isolation, waits, pending, adoption, Ctrl-C), in milliseconds.

use relayform_exec::memory::{Memory, Timing};
use relayform_exec::{Options, Progress, Report, run};
use relayform_plan::diff::{Observed, plan};
use relayform_plan::lower;
use relayform_provider::ErrorKind;
use relayform_provider::act::Scope;
use relayform_spec::{SourceFile, Spec, check};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// Two orgs, one account; in `acme`, a relay to another account's bus (a bus policy statement), and
/// a change data capture relay; in `globex`, one relay.
const SPEC: &str = r#"
version: 1
orgs:
  acme: {simulator: true}
  globex: {simulator: true}
aws_accounts:
  events: {simulator: true, account_id: "123456789012", region: eu-west-1}
  sink: {simulator: true, account_id: "210987654321", region: eu-west-1}
relays:
  orders:
    org: acme
    aws_account: events
    events: [Order_Placed__e, Order_Shipped__e]
    error_recovery: earliest
    state: running
    destination_bus: arn:aws:events:eu-west-1:210987654321:event-bus/orders
  accounts:
    org: acme
    aws_account: events
    channel_type: data
    events: [AccountChangeEvent]
    error_recovery: latest
    state: running
  invoices:
    org: globex
    aws_account: events
    events: [Invoice_Paid__e]
    error_recovery: earliest
    state: running
    destination_bus: invoices
"#;

fn spec(text: &str) -> Spec {
    let c = check(&[SourceFile::new("t.relayform.yaml", text)]);
    assert!(!c.has_errors(), "{:?}", c.diagnostics);
    c.spec
}

fn world(timing: Timing) -> Memory {
    Memory::new(timing)
        .with_org("acme")
        .with_org("globex")
        .with_account("123456789012", "eu-west-1")
        .with_account("210987654321", "eu-west-1")
        .with_bus("210987654321", "eu-west-1", "orders")
        .with_bus("123456789012", "eu-west-1", "invoices")
}

/// What a refresh would read of the spec's orgs and accounts.
fn observe(mem: &Memory, spec: &Spec) -> Observed {
    let mut o = Observed::default();
    for name in spec.orgs.keys() {
        o.orgs.insert(name.clone(), mem.org(name).expect("an org"));
    }
    for (name, a) in &spec.aws_accounts {
        if let Some(seen) = mem.account(&a.account_id.value, &a.region.value) {
            o.accounts.insert(name.clone(), seen);
        }
    }
    o
}

fn options() -> Options {
    Options {
        parallelism: 4,
        wait_timeout: Duration::from_secs(5),
        first_poll: Duration::from_millis(1),
        max_poll: Duration::from_millis(5),
    }
}

/// Plans against the memory's state and applies; returns the report and the progress events.
async fn apply(mem: &Memory, spec: &Spec, options: Options) -> (Report, Vec<Progress>) {
    apply_with(mem, spec, options, Arc::default(), |_, _| {}).await
}

async fn apply_with(
    mem: &Memory,
    spec: &Spec,
    options: Options,
    stop: Arc<AtomicBool>,
    mut on: impl FnMut(&Progress, &AtomicBool),
) -> (Report, Vec<Progress>) {
    let observed = observe(mem, spec);
    let p = plan(spec, &observed);
    let program = lower(&p, spec, &observed);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let job = tokio::spawn(run(
        program,
        Arc::new(mem.clone()),
        options,
        tx,
        stop.clone(),
    ));
    let mut events = Vec::new();
    while let Some(ev) = rx.recv().await {
        on(&ev, &stop);
        events.push(ev);
    }
    (job.await.expect("the run"), events)
}

#[tokio::test]
async fn a_spec_is_applied_and_the_next_plan_is_empty() {
    let s = spec(SPEC);
    let mem = world(Timing {
        source_after: 3,
        status_after: 2,
    });
    let (first, events) = apply(&mem, &s, options()).await;
    assert!(first.succeeded(), "{first:#?}");
    assert_eq!(first.changes.failed + first.changes.not_done, 0);
    // Waits were waited (the sources and states took several reads to show).
    assert!(
        events.iter().any(|e| matches!(e, Progress::Waiting(..))),
        "{events:#?}"
    );
    let again = plan(&s, &observe(&mem, &s));
    assert!(again.is_empty(), "{again:#?}");
    // And applying the converged spec calls nothing at all.
    let before = mem.calls().len();
    let (report, _) = apply(&mem, &s, options()).await;
    assert!(report.succeeded() && report.done.is_empty(), "{report:#?}");
    assert_eq!(mem.calls().len(), before, "{:#?}", &mem.calls()[before..]);
    // Counted per scope: both orgs and both accounts changed.
    let scopes: Vec<&str> = first.scopes.keys().map(Scope::name).collect();
    assert_eq!(scopes, ["acme", "globex", "events", "sink"], "{first:#?}");
}

#[tokio::test]
async fn a_failure_in_one_org_skips_only_what_needs_it() {
    let s = spec(SPEC);
    let mem = world(Timing::default());
    mem.fail("acme create Relay orders", ErrorKind::Rejected, None);
    let (report, _) = apply(&mem, &s, options()).await;
    assert_eq!(report.failed.len(), 1, "{report:#?}");
    let (step, failure) = &report.failed[0];
    assert_eq!(step, "salesforce.relay[orders] create");
    assert_eq!(failure.kind, Some(ErrorKind::Rejected));
    assert_eq!(
        failure.operation.as_deref(),
        Some("acme create Relay orders")
    );
    // What needs the relay is skipped, naming it; nothing else.
    let skipped: Vec<&str> = report.skipped.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        skipped,
        [
            "aws.association[orders] create",
            "aws.forwarding[orders] create",
            "salesforce.relay_state[orders] update",
            "salesforce.channel[orders] record fingerprint",
        ],
        "{report:#?}"
    );
    assert!(
        report
            .skipped
            .iter()
            .all(|(_, why)| why.contains("did not succeed")),
        "{report:#?}"
    );
    assert_eq!(report.scopes[&Scope::Org("globex".into())].failed, 0);
    assert_eq!(report.scopes[&Scope::Org("acme".into())].failed, 1);
    // The rest converged: the next plan is only the failed relay's.
    let again = plan(&s, &observe(&mem, &s));
    assert!(
        again
            .changes
            .iter()
            .all(|c| c.address.key.starts_with("orders")),
        "{again:#?}"
    );
}

#[tokio::test]
async fn a_failed_teardown_in_one_org_skips_nothing_in_another() {
    let s = spec(SPEC);
    let mem = world(Timing::default());
    assert!(apply(&mem, &s, options()).await.0.succeeded());
    let gone = spec(&SPEC.replace(
        "    state: running\n",
        "    state: running\n    ensure: absent\n",
    ));
    mem.fail("acme delete Relay", ErrorKind::Transient, None);
    let (report, _) = apply(&mem, &gone, options()).await;
    assert!(!report.failed.is_empty(), "{report:#?}");
    assert!(
        report
            .failed
            .iter()
            .all(|(s, _)| s.starts_with("salesforce.relay[") && !s.contains("invoices")),
        "{report:#?}"
    );
    // Every teardown step of globex's relay ran, and its account-side objects too.
    assert!(
        report.skipped.iter().all(|(s, _)| !s.contains("invoices")),
        "{report:#?}"
    );
    assert!(
        report
            .done
            .iter()
            .any(|(s, _)| s == "salesforce.relay[invoices] delete"),
        "{report:#?}"
    );
    assert_eq!(report.scopes[&Scope::Org("globex".into())].failed, 0);
}

#[tokio::test]
async fn a_source_that_does_not_show_in_time_is_pending_not_failed() {
    let s = spec(SPEC);
    let mem = world(Timing {
        source_after: u32::MAX,
        status_after: 0,
    });
    let (report, _) = apply(
        &mem,
        &s,
        Options {
            wait_timeout: Duration::from_millis(50),
            ..options()
        },
    )
    .await;
    assert!(report.only_pending(), "{report:#?}");
    assert_eq!(report.pending.len(), 3, "{report:#?}");
    assert!(
        report
            .pending
            .iter()
            .all(|(s, why)| s.starts_with("aws.association[")
                && why.contains("after 50ms (--wait-timeout)")),
        "{report:#?}"
    );
    assert!(
        report
            .skipped
            .iter()
            .all(|(_, why)| why.contains("is still pending")),
        "{report:#?}"
    );
}

#[tokio::test]
async fn a_stale_program_run_again_adopts_what_exists() {
    let s = spec(SPEC);
    let mem = world(Timing::default());
    let observed = observe(&mem, &s);
    let p = plan(&s, &observed);
    let program = lower(&p, &s, &observed);
    for round in 0..2 {
        let (tx, _rx) = mpsc::unbounded_channel();
        let report = run(
            program.clone(),
            Arc::new(mem.clone()),
            options(),
            tx,
            Arc::default(),
        )
        .await;
        assert!(report.succeeded(), "round {round}: {report:#?}");
        let adopted = report
            .done
            .iter()
            .filter(|(_, d)| d.contains("adopted"))
            .count();
        // The second run finds every Salesforce object it creates and adopts it: 2 named
        // credentials, 3 channels, 4 members, 3 relays.
        assert_eq!(adopted, if round == 0 { 0 } else { 12 }, "{report:#?}");
    }
    assert!(plan(&s, &observe(&mem, &s)).is_empty());
}

#[tokio::test]
async fn ctrl_c_starts_nothing_new_and_ends_waits() {
    // The sources never show and the wait timeout is long: only the interrupt can end the run.
    let s = spec(SPEC);
    let mem = world(Timing {
        source_after: u32::MAX,
        status_after: 0,
    });
    let run = apply_with(
        &mem,
        &s,
        Options {
            parallelism: 1,
            wait_timeout: Duration::from_secs(600),
            ..options()
        },
        Arc::default(),
        |ev, stop| {
            if matches!(ev, Progress::Waiting(..)) {
                stop.store(true, Ordering::SeqCst);
            }
        },
    );
    let (report, _) = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the interrupt ends the waits");
    assert!(!report.succeeded());
    // Every association was interrupted, waiting or before it started; nothing after them ran.
    let interrupted = |step: &str| {
        report.failed.iter().any(|(s, f)| {
            s == step
                && f.message
                    .starts_with("interrupted while waiting for the partner event source")
        }) || report
            .skipped
            .iter()
            .any(|(s, why)| s == step && why == "interrupted before it started")
    };
    for relay in ["orders", "accounts", "invoices"] {
        assert!(
            interrupted(&format!("aws.association[{relay}] create")),
            "{relay}: {report:#?}"
        );
    }
    assert!(
        report
            .failed
            .iter()
            .any(|(_, f)| f.message.starts_with("interrupted while waiting")),
        "{report:#?}"
    );
    assert!(
        !report
            .done
            .iter()
            .any(|(s, _)| s.starts_with("aws.forwarding[")
                || s.starts_with("salesforce.relay_state[")),
        "{report:#?}"
    );
}

#[tokio::test]
async fn parallelism_bounds_calls_in_flight_and_waits_take_no_slot() {
    // Three relays wait for their sources at once with one slot: if a wait held the slot, the
    // others' waits would start only after it ended, and the run would take three wait-lengths.
    let s = spec(SPEC);
    let mem = world(Timing {
        source_after: 3,
        status_after: 0,
    });
    let (report, events) = apply(
        &mem,
        &s,
        Options {
            parallelism: 1,
            ..options()
        },
    )
    .await;
    assert!(report.succeeded(), "{report:#?}");
    let waits: Vec<&String> = events
        .iter()
        .filter_map(|e| match e {
            Progress::Waiting(step, ..) => Some(step),
            _ => None,
        })
        .collect();
    let associations = events
        .iter()
        .filter(|e| matches!(e, Progress::Started(s) if s.starts_with("aws.association[")))
        .count();
    assert_eq!(associations, 3);
    // All three were waiting together: each started waiting before any source showed.
    let first_done = events
        .iter()
        .position(|e| matches!(e, Progress::Done(s, ..) if s.starts_with("aws.association[")))
        .expect("an association done");
    let started_before = events[..first_done]
        .iter()
        .filter(|e| matches!(e, Progress::Waiting(s, ..) if s.starts_with("aws.association[")))
        .count();
    assert_eq!(started_before, 3, "{waits:#?}");
}
