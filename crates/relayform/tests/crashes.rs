//! The crash-point sweep with real crashes: `relayform apply` of a three-relay spec is killed
//! (SIGKILL) as soon as the k-th mutating call has been made, for every k; the next apply must
//! converge, the one after must find nothing to do, and the world must be exactly what a clean run
//! makes (names, states and counts; ids and times aside). The orgs and account are a simulator
//! reached as real ones, so it outlives the killed process, as a real org would.

#![allow(clippy::print_stderr)] // the figures of the sweep are printed

mod common;

use relayform_simulator::config::{Config, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET};
use std::time::{Duration, Instant};

fn spec(sim: &relayform_simulator::Running) -> String {
    let relay = |name: &str, events: &str, bus: &str| {
        format!(
            "  {name}:\n    org: acme\n    aws_account: events\n    events: [{events}]\n    error_recovery: earliest\n    destination_bus: {bus}\n"
        )
    };
    format!(
        "version: 1\norgs:\n  acme:\n    instance_url: {}\n    auth: {{client_credentials: {{client_id: {DEMO_CLIENT_ID}, client_secret: {{env: TEST_SF_SECRET}}}}}}\naws_accounts:\n  events:\n    account_id: \"000000000000\"\n    region: us-east-1\n    endpoint_url: {}\n    credentials: default_chain\nrelays:\n{}{}{}",
        sim.base_url(),
        sim.urls.aws_endpoint,
        relay("placed", "Order_Placed__e", "orders"),
        relay(
            "shipped",
            "Order_Shipped__e, Order_Cancelled__e",
            "shipping"
        ),
        relay("accounts", "AccountChangeEvent", "crm"),
    )
}

/// A world where Salesforce registers sources and changes states at once: the position of a call
/// in the apply does not depend on how many polls a wait took.
async fn instant() -> relayform_simulator::Running {
    let mut config = Config::default();
    config.settings.partner_source_delay_seconds = 0;
    config.settings.source_visibility_lag_seconds = 0;
    config.settings.state_change_delay_seconds = 0;
    relayform_simulator::start(relayform_simulator::Options {
        config,
        ..Default::default()
    })
    .await
    .unwrap()
}

fn mutations(sim: &relayform_simulator::Running) -> usize {
    sim.with_world(|w, _| w.journal.entries.iter().filter(|e| e.is_mutating()).count())
}

/// What the world holds, by name: Tooling objects with their state, buses (partner buses by count:
/// their names carry ids), rules with their targets, roles.
fn inventory(sim: &relayform_simulator::Running) -> Vec<String> {
    sim.with_world(|w, _| {
        let mut out = Vec::new();
        for org in w.orgs.values() {
            for (object, records) in &org.tooling {
                for r in records.values() {
                    let r = r.record();
                    let state = r
                        .get("State")
                        .or_else(|| r.get("state"))
                        .and_then(|s| s.as_str())
                        .unwrap_or("");
                    out.push(format!(
                        "{object} {} {state}",
                        r.get("DeveloperName")
                            .and_then(|s| s.as_str())
                            .unwrap_or("?")
                    ));
                }
            }
        }
        for a in w.accounts.values() {
            out.extend(a.roles.values().map(|r| format!("role {}", r.name)));
            for (region, reg) in &a.regions {
                for bus in reg.buses.values() {
                    let name = if bus.name.starts_with("aws.partner/") {
                        "aws.partner/…"
                    } else {
                        &bus.name
                    };
                    out.push(format!("bus {region} {name}"));
                    for rule in bus.rules.values() {
                        out.push(format!(
                            "rule {region} {name} {} {} targets {}",
                            rule.name,
                            rule.state,
                            rule.targets.len()
                        ));
                    }
                }
            }
        }
        out.sort();
        out
    })
}

fn run(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    common::relayform(dir, args, &[("TEST_SF_SECRET", DEMO_CLIENT_SECRET)])
}

/// Kills an apply after its k-th mutating call; returns whether it was still running then.
async fn killed_after(sim: &relayform_simulator::Running, dir: &std::path::Path, k: usize) -> bool {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_relayform"))
        .args(["apply", "--auto-approve", "spec.yaml"])
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("TEST_SF_SECRET", DEMO_CLIENT_SECRET)
        .env(
            "AWS_ACCESS_KEY_ID",
            relayform_simulator::config::DEMO_ACCESS_KEY_ID,
        )
        .env(
            "AWS_SECRET_ACCESS_KEY",
            relayform_simulator::config::DEMO_SECRET_ACCESS_KEY,
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if mutations(sim) >= k {
            child.start_kill().unwrap();
            let _ = child.wait().await;
            return true;
        }
        if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_apply_killed_after_any_mutating_call_is_finished_by_the_next() {
    // A clean run: the calls to sweep, and the world to compare with.
    let sim = instant().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spec.yaml"), spec(&sim)).unwrap();
    let (code, out, err) = run(dir.path(), &["apply", "--auto-approve", "spec.yaml"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let calls = mutations(&sim);
    let clean = inventory(&sim);
    assert!(calls >= 20, "{calls}");
    assert!(
        clean
            .iter()
            .filter(|x| x.starts_with("EventRelayConfig"))
            .count()
            == 3,
        "{clean:?}"
    );
    drop(sim);

    let started = Instant::now();
    let cases = std::sync::Arc::new(tokio::sync::Semaphore::new(4));
    let mut sweep = tokio::task::JoinSet::new();
    for k in 1..=calls {
        let cases = cases.clone();
        let clean = clean.clone();
        sweep.spawn(async move {
            let _slot = cases.acquire().await.unwrap();
            let sim = instant().await;
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("spec.yaml"), spec(&sim)).unwrap();
            let killed = killed_after(&sim, dir.path(), k).await;
            let at = mutations(&sim);
            let d = dir.path().to_owned();
            let (code, out, err) = tokio::task::spawn_blocking(move || {
                run(&d, &["apply", "--auto-approve", "spec.yaml"])
            })
            .await
            .unwrap();
            assert_eq!(
                code, 0,
                "killed after call {k} (of {at} made): the next apply failed\n{out}\n{err}"
            );
            let d = dir.path().to_owned();
            let (code, out, err) = tokio::task::spawn_blocking(move || {
                run(&d, &["plan", "--detailed-exitcode", "spec.yaml"])
            })
            .await
            .unwrap();
            assert_eq!(
                (code, out.as_str()),
                (0, "No changes: the orgs and accounts match the spec.\n"),
                "killed after call {k}: {err}"
            );
            assert_eq!(inventory(&sim), clean, "killed after call {k}");
            (killed, at)
        });
    }
    let mut killed = 0;
    while let Some(r) = sweep.join_next().await {
        if r.unwrap().0 {
            killed += 1;
        }
    }
    eprintln!(
        "crash sweep: {calls} mutating calls, {killed} applies killed (SIGKILL) mid-run, each finished by the next apply, in {:.1?}",
        started.elapsed()
    );
    // An apply can finish between two looks at the journal (the last calls, on a loaded machine).
    assert!(
        killed * 4 >= calls * 3,
        "most cases were real kills: {killed} of {calls}"
    );
}

/// `relayform sim serve` killed (SIGKILL) while it creates records as fast as a client asks and
/// saves its state every quarter second, six times over: each restart loads the state (old or new,
/// never corrupt), and no id handed out before a kill is ever handed out again.
#[tokio::test(flavor = "multi_thread")]
async fn a_simulator_killed_while_saving_restarts_whole_and_never_reuses_an_id() {
    use relayform_salesforce::{Client, Grant, OAuth, Secret};
    use std::collections::HashSet;
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sim.json");
    let mut handed_out: HashSet<String> = HashSet::new();
    let mut kept = Vec::new();
    let started = Instant::now();
    for (round, lifetime_ms) in [350u64, 620, 300, 900, 460, 533].into_iter().enumerate() {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_relayform"))
            .args(["sim", "serve", "--addr", "127.0.0.1:0", "--json", "--state"])
            .arg(&state)
            .current_dir(dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the simulator starts")
            .unwrap()
            .unwrap_or_else(|| {
                panic!("round {round}: the simulator did not start (a corrupt state file?)")
            });
        let doc: serde_json::Value = serde_json::from_str(&first).unwrap();
        let instance = doc["orgs"][0]["instance_url"].as_str().unwrap().to_owned();
        let client = Client::new(std::sync::Arc::new(OAuth::new(
            &instance,
            Grant::ClientCredentials {
                client_id: DEMO_CLIENT_ID.into(),
                client_secret: Secret::new(DEMO_CLIENT_SECRET),
            },
        )));
        let accounts = client.query("SELECT Id FROM Account").await.unwrap().len();
        kept.push(accounts);
        let writer = tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0.. {
                match client
                    .record_create(
                        "Account",
                        &serde_json::json!({"Name": format!("r{round}-{i}")}),
                    )
                    .await
                {
                    Ok(id) => ids.push(id),
                    Err(_) => break,
                }
            }
            ids
        });
        tokio::time::sleep(Duration::from_millis(lifetime_ms)).await;
        child.start_kill().unwrap();
        let _ = child.wait().await;
        let ids = writer.await.unwrap();
        for id in ids {
            assert!(
                handed_out.insert(id.clone()),
                "round {round}: id {id} was handed out before a kill"
            );
        }
    }
    assert!(
        handed_out.len() > 100,
        "records were created: {}",
        handed_out.len()
    );
    // The last kill too is survived.
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(
        serde_json::from_str::<serde_json::Value>(&text).is_ok(),
        "the state file is whole JSON"
    );
    eprintln!(
        "simulator kills: 6 SIGKILLs while saving, {} ids handed out, none reused; records found on restart {:?}; {:.1?}",
        handed_out.len(),
        kept,
        started.elapsed()
    );
    assert!(
        kept.windows(2).all(|w| w[1] >= w[0]),
        "a restart never goes back past an earlier one: {kept:?}"
    );
}
