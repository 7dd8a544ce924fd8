//! Plan at fleet scale on the embedded simulator with latency injected on every call (the issue's
//! setup: 20 ms): a fleet is applied first (no latency), then `relayform plan` of the converged fleet
//! is timed. Prints, per fleet, the wall time, the API calls (per org, and AWS calls per relay), and
//! beside them two reference points: the "refresh model" (one read per resource of the desired graph
//! at parallelism 10, as a Terraform-style refresh makes them) and the floor (token → query → ListRules →
//! ListTargetsByRule, one after another).
//!
//! `cargo bench -p relayform-benches --bench plan` (env `BENCH_LATENCY_MS`, default 20;
//! `BENCH_FLEETS`, default `100x10x1,100x10x4`: orgs × relays per org × AWS accounts, comma
//! separated; `100x100x1` is the large case and takes minutes to apply first).
#![allow(clippy::print_stdout, unreachable_pub)]

/// The allocator the `relayform` binary uses, so that the figures are a user's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// The fleet's spec files: orgs and accounts in one, each org's relays in its own (a spec file is at
/// most 1 MiB, and 10,000 relays take more).
fn spec(orgs: usize, relays: usize, accounts: usize) -> Vec<relayform_spec::SourceFile> {
    let mut s = String::from("version: 1\norgs:\n");
    for o in 1..=orgs {
        s.push_str(&format!("  org{o}: {{simulator: true}}\n"));
    }
    s.push_str("aws_accounts:\n");
    for a in 1..=accounts {
        s.push_str(&format!(
            "  events{a}: {{simulator: true, account_id: \"1000000000{a:02}\", region: us-east-1}}\n"
        ));
    }
    let mut files = vec![relayform_spec::SourceFile::new("fleet.relayform.yaml", s)];
    for o in 1..=orgs {
        let mut s = String::from("version: 1\nrelays:\n");
        for r in 1..=relays {
            let a = (o - 1) % accounts + 1;
            s.push_str(&format!(
                "  o{o}-r{r:03}: {{org: org{o}, aws_account: events{a}, events: [Order_Placed__e], error_recovery: latest, state: running, destination_bus: orders}}\n"
            ));
        }
        files.push(relayform_spec::SourceFile::new(
            format!("org{o}.relayform.yaml"),
            s,
        ));
    }
    files
}

fn run(args: &[String]) -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut argv = vec!["relayform".to_owned()];
    argv.extend_from_slice(args);
    let code = relayform::run_args(argv, &mut out, &mut err);
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

/// Runs `f` on the simulator that owns `state` (started, then shut down).
fn with_sim<T>(state: &Path, f: impl FnOnce(&relayform_simulator::Running) -> T) -> T {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let sim = relayform_simulator::start(relayform_simulator::Options {
            state_file: Some(state.to_owned()),
            ..Default::default()
        })
        .await
        .unwrap();
        let out = f(&sim);
        sim.shutdown().await.unwrap();
        out
    })
}

fn main() {
    let latency: u64 = std::env::var("BENCH_LATENCY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let fleets = std::env::var("BENCH_FLEETS").unwrap_or_else(|_| "100x10x1,100x10x4".into());
    println!("plan of a converged fleet, {latency} ms injected on every call");
    println!(
        "{:>16} {:>9} {:>10} {:>13} {:>14} {:>10} {:>9}",
        "orgs×relays,accts",
        "calls",
        "plan s",
        "calls/org",
        "AWS calls/relay",
        "model s",
        "floor s"
    );
    for fleet in fleets.split(',').filter(|f| !f.is_empty()) {
        fleet_plan(fleet, latency, None);
    }
    // Under a request-rate quota (the simulator's `aws_requests_per_second`): how close a plan comes
    // to AWS calls ÷ quota, with every call answered in the end.
    let quota: u32 = std::env::var("BENCH_QUOTA")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let fleet = std::env::var("BENCH_QUOTA_FLEET").unwrap_or_else(|_| "20x10x1".into());
    println!(
        "\nthe same with a quota of {quota} AWS requests a second per service, account and region"
    );
    fleet_plan(&fleet, latency, Some(quota));
}

fn fleet_plan(fleet: &str, latency: u64, quota: Option<u32>) {
    {
        let dims: Vec<usize> = fleet.split('x').filter_map(|d| d.parse().ok()).collect();
        let [orgs, relays, accounts] = dims[..] else {
            panic!("BENCH_FLEETS: `{fleet}` is not ORGSxRELAYSxACCOUNTS");
        };
        let dir = tempfile::tempdir().unwrap();
        let spec_path = dir.path().join("fleet");
        std::fs::create_dir_all(&spec_path).unwrap();
        let files = spec(orgs, relays, accounts);
        for f in &files {
            std::fs::write(spec_path.join(&f.path), &f.text).unwrap();
        }
        let state = dir.path().join("simulator.json");
        let common = vec![
            "--simulator-state".to_owned(),
            state.display().to_string(),
            spec_path.display().to_string(),
        ];
        let mut apply = vec![
            "apply".to_owned(),
            "--auto-approve".to_owned(),
            "--parallelism".to_owned(),
            "32".to_owned(),
        ];
        apply.extend(common.clone());
        let (code, out, err) = run(&apply);
        assert_eq!(code, 0, "{out}\n{err}");
        let before = with_sim(&state, |sim| {
            sim.with_world(|w, _| {
                w.faults.add(
                    serde_json::from_value(serde_json::json!({
                        "action": {"type": "latency", "ms": latency}
                    }))
                    .unwrap(),
                );
                w.settings.aws_requests_per_second = quota;
                // The plan's calls are counted from the journal: room for all of them (100 × 100
                // makes 20,903; the default keeps 10,000).
                w.settings.max_journal_entries = w.settings.max_journal_entries.max(1_000_000);
                w.journal.entries.end()
            })
        });
        let mut plan = vec!["plan".to_owned()];
        plan.extend(common);
        let started = Instant::now();
        let (code, out, err) = run(&plan);
        let took = started.elapsed().as_secs_f64();
        assert_eq!(code, 0, "a converged fleet plans no change:\n{out}\n{err}");
        let (by, throttled): (BTreeMap<String, usize>, usize) = with_sim(&state, |sim| {
            sim.with_world(|w, _| {
                let mut by = BTreeMap::new();
                let mut throttled = 0;
                // By absolute index: the journal forgets its oldest entries past its bound.
                for e in w.journal.entries.tail(before).iter() {
                    if e.fault.as_deref() == Some("quota") {
                        throttled += 1;
                        continue;
                    }
                    *by.entry(format!("{}:{}", e.api, e.operation)).or_insert(0) += 1;
                }
                (by, throttled)
            })
        });
        let calls: usize = by.values().sum();
        let aws: usize = by
            .iter()
            .filter(|(k, _)| k.starts_with("aws:"))
            .map(|(_, v)| v)
            .sum();
        let sf = calls - aws;
        let total = orgs * relays;
        // The model: every resource of the desired graph read once, ten at a time.
        let checked = relayform_spec::check(&files);
        let resources = relayform_plan::desired(&checked.spec).len();
        let model = resources as f64 * latency as f64 / 1000.0 / 10.0;
        let floor = 4.0 * latency as f64 / 1000.0;
        println!(
            "{:>16} {calls:>9} {took:>10.2} {:>13.1} {:>14.2} {model:>10.1} {floor:>9.2}",
            format!("{orgs}×{relays},{accounts}"),
            sf as f64 / orgs as f64,
            aws as f64 / total as f64,
        );
        if let Some(q) = quota {
            // Per service: the busiest service of the account bounds the time.
            let events: usize = by
                .iter()
                .filter(|(k, _)| {
                    k.starts_with("aws:") && !k.contains("Role") && !k.contains("CallerIdentity")
                })
                .map(|(_, v)| v)
                .sum();
            let bound = events as f64 / f64::from(q) / accounts as f64;
            println!(
                "{:>16} {throttled} calls throttled and retried; EventBridge calls ÷ quota = {bound:.2} s; plan took {:.2}× that",
                "",
                took / bound
            );
        }
    }
}
