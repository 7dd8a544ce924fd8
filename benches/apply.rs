//! The engine at scale on the embedded simulator: apply, then apply again (nothing to change), for
//! several orgs of many relays. Prints wall time and API calls (total, mutating, per relay); asserts
//! only that the work was done.
//!
//! `cargo bench -p relayform-benches --bench apply` (env `BENCH_ORGS`, default 4; `BENCH_RELAYS` per
//! org, default 25; `BENCH_PARALLELISM`, default 10). The simulator's default delays apply: a partner
//! source appears 2 s after its relay is created and a state change takes 1 s, as a real org's would
//! take a while, so the figure shows how well waits overlap.
#![allow(clippy::print_stdout, unreachable_pub)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn spec(orgs: usize, relays: usize) -> String {
    let mut s = String::from("version: 1\norgs:\n");
    for o in 1..=orgs {
        s.push_str(&format!("  org{o}: {{simulator: true}}\n"));
    }
    s.push_str("aws_accounts:\n  events: {simulator: true, account_id: \"100000000001\", region: us-east-1}\nrelays:\n");
    for o in 1..=orgs {
        for r in 1..=relays {
            s.push_str(&format!(
                "  o{o}-r{r:03}: {{org: org{o}, aws_account: events, events: [Order_Placed__e], error_recovery: latest, state: running, destination_bus: orders}}\n"
            ));
        }
    }
    s
}

fn run(args: &[&str]) -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut argv = vec!["relayform"];
    argv.extend_from_slice(args);
    let code = relayform::run_args(argv, &mut out, &mut err);
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

/// (total calls, mutating calls, calls by operation) in the journal from entry `from` on.
fn calls(state: &Path, from: usize) -> (usize, usize, usize, BTreeMap<String, usize>) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let sim = relayform_simulator::start(relayform_simulator::Options {
            state_file: Some(state.to_owned()),
            ..Default::default()
        })
        .await
        .unwrap();
        let out = sim.with_world(|w, _| {
            let mut by = BTreeMap::new();
            let mut mutating = 0;
            for e in w.journal.entries.iter().skip(from) {
                if e.is_mutating() {
                    mutating += 1;
                }
                *by.entry(e.operation.clone()).or_insert(0) += 1;
            }
            let len = w.journal.entries.len();
            (len - from.min(len), mutating, len, by)
        });
        sim.shutdown().await.unwrap();
        out
    })
}

fn main() {
    let orgs = env("BENCH_ORGS", 4);
    let relays = env("BENCH_RELAYS", 25);
    let parallelism = env("BENCH_PARALLELISM", 10).to_string();
    let total = orgs * relays;
    let dir = tempfile::tempdir().unwrap();
    let spec_path = dir.path().join("fleet.yaml");
    std::fs::write(&spec_path, spec(orgs, relays)).unwrap();
    let state = dir.path().join("simulator.json");
    let (spec_arg, state_arg) = (spec_path.display().to_string(), state.display().to_string());
    let args = |extra: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = vec!["apply".into(), "--auto-approve".into()];
        v.extend(["--parallelism".into(), parallelism.clone()]);
        v.extend(["--simulator-state".into(), state_arg.clone()]);
        v.extend(extra.iter().map(|s| s.to_string()));
        v.push(spec_arg.clone());
        v
    };
    println!("apply: {orgs} orgs × {relays} relays = {total} relays, parallelism {parallelism}");

    let a = args(&[]);
    let started = Instant::now();
    let (code, out, err) = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let first = started.elapsed();
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Apply complete"), "{out}");
    let (n1, m1, len1, by) = calls(&state, 0);
    println!(
        "  first apply:  {:>6.1} s wall, {n1} API calls ({m1} mutating: {:.1} per relay; {:.1} calls per relay in all)",
        first.as_secs_f64(),
        m1 as f64 / total as f64,
        n1 as f64 / total as f64
    );
    let polls = by.get("query").copied().unwrap_or(0);
    println!("                feedback polls and other data queries: {polls}");

    let started = Instant::now();
    let (code, out, err) = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let second = started.elapsed();
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(out, "No changes: the orgs and accounts match the spec.\n");
    let (n2, m2, _, by) = calls(&state, len1);
    assert_eq!(m2, 0, "a converged apply made changes: {by:?}");
    println!(
        "  second apply: {:>6.2} s wall, {n2} API calls, none mutating ({} per org + {} for the account)",
        second.as_secs_f64(),
        by.iter()
            .filter(|(k, _)| k.contains("query") || k.starts_with("oauth"))
            .map(|(_, v)| v)
            .sum::<usize>()
            / orgs,
        by.iter()
            .filter(|(k, _)| !(k.contains("query") || k.starts_with("oauth")))
            .map(|(_, v)| v)
            .sum::<usize>()
    );
}
