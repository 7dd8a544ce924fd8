//! Fleet-scale apply and converged plan on the embedded simulator, with its delays set to 0 (a
//! partner source appears and a state change lands at once), so the figures are relayform's and the
//! simulator's own work: for each size, an apply from empty, then a plan of the converged fleet.
//! Each run is a process of its own, as a user's is. Prints wall time, peak resident memory (of
//! that process: relayform and the embedded simulator together),
//! API calls, and the state file's size; then how each figure grew from the first size to the last.
//!
//! `cargo bench -p relayform-benches --bench apply` (env `BENCH_SIZES`, relays in all, default
//! `1000,10000`; `BENCH_ORGS`, default 100; `BENCH_PARALLELISM`, default 64; `BENCH_KEEP=DIR` keeps
//! each size's spec and simulator state under `DIR/<relays>`).
#![allow(clippy::print_stdout, unreachable_pub)]

/// The allocator the `relayform` binary uses, so that the figures are a user's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::Path;
use std::time::{Duration, Instant};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// The fleet as a directory of spec files: the orgs and the account in one, each org's relays in
/// its own (a spec file is at most 1 MiB).
fn write_spec(dir: &Path, orgs: usize, relays: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let mut s = String::from("version: 1\norgs:\n");
    for o in 1..=orgs {
        s.push_str(&format!("  org{o}: {{simulator: true}}\n"));
    }
    s.push_str("aws_accounts:\n  events: {simulator: true, account_id: \"100000000001\", region: us-east-1}\n");
    std::fs::write(dir.join("fleet.relayform.yaml"), s).unwrap();
    for o in 1..=orgs {
        let mut s = String::from("version: 1\nrelays:\n");
        for r in 1..=relays {
            s.push_str(&format!(
                "  o{o}-r{r:03}: {{org: org{o}, aws_account: events, events: [Order_Placed__e], error_recovery: latest, state: running, destination_bus: orders}}\n"
            ));
        }
        std::fs::write(dir.join(format!("org{o}.relayform.yaml")), s).unwrap();
    }
}

/// This process's peak resident memory, in MB.
fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Runs one relayform command in a process of its own (this bench again, told so by
/// `BENCH_PHASE_ARGS`), as a user's run is: (exit code, wall time, peak resident MB, output).
fn phase(args: &[String]) -> (u8, Duration, f64, String) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env("BENCH_PHASE_ARGS", args.join("\u{1f}"))
        // The options the binary's `tune_allocator` sets (read by mimalloc as it starts).
        .env("MIMALLOC_PURGE_DELAY", "0")
        .env("MIMALLOC_ARENA_EAGER_COMMIT", "0")
        .env("MIMALLOC_ALLOW_THP", "0")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let last = text.lines().last().unwrap_or("");
    let mut fields = last.split_whitespace();
    let (Some("phase:"), Some(code), Some(secs), Some(mb)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        panic!(
            "the phase printed no result:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    (
        code.parse().unwrap(),
        Duration::from_secs_f64(secs.parse().unwrap()),
        mb.parse().unwrap(),
        text,
    )
}

/// The child's side of [`phase`]: run the command with this process's stdout and stderr, as the
/// binary does (output held in buffers here would count in the peak: the plan's text and the
/// progress lines are 25 MB at 10,000 relays), then print one result line.
fn run_phase(args: &str) -> ! {
    let mut argv = vec!["relayform"];
    argv.extend(args.split('\u{1f}'));
    let started = Instant::now();
    let code = relayform::run_args(argv, &mut std::io::stdout(), &mut std::io::stderr());
    let secs = started.elapsed().as_secs_f64();
    println!("phase: {code} {secs} {}", peak_mb());
    std::process::exit(0)
}

/// API calls the simulator answered in all (the journal keeps the last `max_journal_entries` and
/// counts the rest).
fn calls(state: &Path) -> u64 {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let sim = relayform_simulator::start(relayform_simulator::Options {
            state_file: Some(state.to_owned()),
            ..Default::default()
        })
        .await
        .unwrap();
        let n = sim.with_world(|w, _| w.journal.dropped + w.journal.entries.len() as u64);
        sim.shutdown().await.unwrap();
        n
    })
}

fn state_mb(dir: &Path) -> f64 {
    let bytes: u64 = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("simulator.json")
        })
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    bytes as f64 / (1024.0 * 1024.0)
}

enum Kept {
    Temp(tempfile::TempDir),
    Dir(std::path::PathBuf),
}

impl Kept {
    fn path(&self) -> &Path {
        match self {
            Kept::Temp(t) => t.path(),
            Kept::Dir(d) => d,
        }
    }
}

struct Figures {
    relays: usize,
    apply: Duration,
    apply_mb: f64,
    apply_calls: u64,
    plan: Duration,
    plan_mb: f64,
    plan_calls: u64,
}

fn measure(orgs: usize, total: usize, parallelism: &str) -> Figures {
    let per_org = total.div_ceil(orgs);
    let relays = per_org * orgs;
    let dir = tempfile::tempdir().unwrap();
    let dir = match std::env::var_os("BENCH_KEEP") {
        // Keep the fleet's spec and simulator state, to look at them afterwards.
        Some(keep) => {
            let d = std::path::PathBuf::from(keep).join(relays.to_string());
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            Kept::Dir(d)
        }
        None => Kept::Temp(dir),
    };
    let spec_path = dir.path().join("fleet");
    write_spec(&spec_path, orgs, per_org);
    let settings = dir.path().join("settings.yaml");
    std::fs::write(
        &settings,
        "partner_source_delay_seconds: 0\nsource_visibility_lag_seconds: 0\nstate_change_delay_seconds: 0\n",
    )
    .unwrap();
    let state = dir.path().join("simulator.json");
    let common = |command: &str| -> Vec<String> {
        let mut v = vec![command.to_owned()];
        v.extend(["--simulator-state".into(), state.display().to_string()]);
        v.extend([
            "--simulator-settings".into(),
            settings.display().to_string(),
        ]);
        v
    };

    let mut apply = common("apply");
    apply.extend([
        "--auto-approve".into(),
        "--parallelism".into(),
        parallelism.to_owned(),
    ]);
    apply.push(spec_path.display().to_string());
    let (code, apply_time, apply_mb, out) = phase(&apply);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Apply complete"), "{out}");
    let apply_calls = calls(&state);

    let mut plan = common("plan");
    plan.push(spec_path.display().to_string());
    let (code, plan_time, plan_mb, out) = phase(&plan);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("No changes"),
        "the fleet did not converge:\n{out}"
    );
    let plan_calls = calls(&state) - apply_calls;

    println!(
        "  {relays:>6} relays ({orgs} orgs × {per_org}): apply {:>6.2} s, peak {:>5.0} MB, {apply_calls} calls ({:.1} per relay) | converged plan {:>5.2} s, peak {:>5.0} MB, {plan_calls} calls | state file {:.1} MB",
        apply_time.as_secs_f64(),
        apply_mb,
        apply_calls as f64 / relays as f64,
        plan_time.as_secs_f64(),
        plan_mb,
        state_mb(dir.path()),
    );
    Figures {
        relays,
        apply: apply_time,
        apply_mb,
        apply_calls,
        plan: plan_time,
        plan_mb,
        plan_calls,
    }
}

fn main() {
    if let Ok(args) = std::env::var("BENCH_PHASE_ARGS") {
        run_phase(&args);
    }
    let sizes: Vec<usize> = env("BENCH_SIZES", "1000,10000")
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let orgs: usize = env("BENCH_ORGS", "100").parse().unwrap_or(100);
    let parallelism = env("BENCH_PARALLELISM", "64");
    println!(
        "apply from empty, then plan, on the embedded simulator with delays 0; parallelism {parallelism}; targets: 1,000 relays ≤ 3 s; 10,000 relays ≤ 30 s and ≤ 250 MB; converged plan of 10,000 ≤ 3 s and ≤ 250 MB"
    );
    let figures: Vec<Figures> = sizes
        .iter()
        .map(|&n| measure(orgs.min(n), n, &parallelism))
        .collect();
    if let (Some(a), Some(b)) = (figures.first(), figures.last())
        && b.relays > a.relays
    {
        let k = b.relays as f64 / a.relays as f64;
        println!(
            "  growth from {} to {} relays (×{k:.0}): apply time ×{:.1}, apply calls ×{:.1}, plan time ×{:.1}, plan calls ×{:.1}; peak memory ×{:.1} (apply), ×{:.1} (plan)",
            a.relays,
            b.relays,
            b.apply.as_secs_f64() / a.apply.as_secs_f64(),
            b.apply_calls as f64 / a.apply_calls as f64,
            b.plan.as_secs_f64() / a.plan.as_secs_f64(),
            b.plan_calls as f64 / a.plan_calls as f64,
            b.apply_mb / a.apply_mb,
            b.plan_mb / a.plan_mb,
        );
    }
}
