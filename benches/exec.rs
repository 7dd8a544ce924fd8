//! The whole executor (`relayform_exec::run`) on the in-memory provider: a spec of N relays over
//! orgs of 10, planned from empty, lowered to steps and applied, every step making its calls and its
//! waits (the feedback reads that find each relay's partner source). No network and no vendor delays:
//! what is left is relayform's own cost, which must grow linearly with the steps. Prints, at about
//! 1,000, 10,000, 20,000 and 70,000 steps, the time to plan and lower, the time to run, the time per
//! step, and the planner alone on the converged fleet.
//!
//! `cargo bench -p relayform-benches --bench exec` (env `BENCH_EXEC_RELAYS`, default
//! `140,1400,2800,10000`)
#![allow(clippy::print_stdout, unreachable_pub)]

use relayform_exec::memory::{Memory, Timing};
use relayform_exec::{Options, run};
use relayform_plan::diff::{Observed, plan};
use relayform_spec::{SourceFile, Spec, check};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "eu-west-1";

fn spec(relays: usize) -> Spec {
    let orgs = relays.div_ceil(10);
    let mut y = String::from("version: 1\norgs:\n");
    for o in 0..orgs {
        writeln!(y, "  o{o}: {{simulator: true}}").unwrap();
    }
    writeln!(
        y,
        "aws_accounts:\n  events: {{simulator: true, account_id: \"{ACCOUNT}\", region: {REGION}}}\nrelays:"
    )
    .unwrap();
    for r in 0..relays {
        writeln!(
            y,
            "  r{r}: {{org: o{}, aws_account: events, events: [E{r}__e], error_recovery: earliest, state: running, destination_bus: sink}}",
            r % orgs
        )
        .unwrap();
    }
    let c = check(&[SourceFile::new("bench.relayform.yaml", &y)]);
    assert!(!c.has_errors(), "{:?}", c.diagnostics);
    c.spec
}

fn world(spec: &Spec) -> Memory {
    let mut m = Memory::new(Timing::default())
        .with_account(ACCOUNT, REGION)
        .with_bus(ACCOUNT, REGION, "sink");
    for o in spec.orgs.keys() {
        m = m.with_org(o);
    }
    m
}

fn observe(mem: &Memory, spec: &Spec) -> Observed {
    let mut o = Observed::default();
    for name in spec.orgs.keys() {
        o.orgs.insert(name.clone(), mem.org(name).expect("an org"));
    }
    o.accounts.insert(
        "events".into(),
        mem.account(ACCOUNT, REGION).expect("the account"),
    );
    o
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    println!("executor on the in-memory provider (plan from empty, lower, run; parallelism 32)");
    println!(
        "{:>8} {:>8} {:>9} {:>9} {:>9} {:>12} {:>19}",
        "relays", "steps", "plan ms", "lower ms", "run ms", "µs per step", "converged plan ms"
    );
    let sizes = std::env::var("BENCH_EXEC_RELAYS").unwrap_or_else(|_| "140,1400,2800,10000".into());
    for relays in sizes
        .split(',')
        .filter_map(|n| n.trim().parse::<usize>().ok())
    {
        let s = spec(relays);
        let mem = world(&s);
        let started = Instant::now();
        let observed = observe(&mem, &s);
        let p = plan(&s, &observed);
        let planned = started.elapsed();
        let started = Instant::now();
        let program = relayform_plan::lower(&p, &s, &observed);
        let lowered = started.elapsed();
        let steps = program.steps.len();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let started = Instant::now();
        let report = rt.block_on(async {
            let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
            let report = run(
                program,
                Arc::new(mem.clone()),
                Options {
                    parallelism: 32,
                    wait_timeout: Duration::from_secs(60),
                    first_poll: Duration::from_millis(5),
                    max_poll: Duration::from_millis(50),
                },
                tx,
                Arc::default(),
            )
            .await;
            drain.await.expect("drained");
            report
        });
        let ran = started.elapsed();
        assert!(report.succeeded(), "{:?}", report.failed.first());
        // The planner alone against the converged fleet (observing it is the provider's cost).
        let observed = observe(&mem, &s);
        let started = Instant::now();
        let converged = plan(&s, &observed).is_empty();
        let again = started.elapsed();
        println!(
            "{relays:>8} {steps:>8} {:>9.1} {:>9.1} {:>9.1} {:>12.1} {:>19.1}",
            planned.as_secs_f64() * 1e3,
            lowered.as_secs_f64() * 1e3,
            ran.as_secs_f64() * 1e3,
            ran.as_secs_f64() * 1e6 / steps as f64,
            again.as_secs_f64() * 1e3,
        );
        assert!(converged, "the fleet did not converge");
    }
}
