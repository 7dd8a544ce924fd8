//! The binary under faults, against a simulator reached the way real orgs and accounts are: an
//! endpoint that never answers, a throttle storm on both APIs with a session expiring mid-apply.
//! Each test prints its figures (attempts, time) to stderr; `cargo test -- --nocapture` shows them.

#![allow(clippy::print_stderr)] // the figures of each run are printed

mod common;

use relayform_simulator::config::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET};
use serde_json::json;
use std::time::{Duration, Instant};

/// A relay `orders` from org `acme` (the simulator) to account `events`; and with `hole`, a second
/// org and account, `lost`, whose endpoints accept connections and never answer.
fn spec(sim: &relayform_simulator::Running, hole: Option<&str>) -> String {
    let mut s = format!(
        r#"version: 1
orgs:
  acme:
    instance_url: {instance}
    auth: {{client_credentials: {{client_id: {DEMO_CLIENT_ID}, client_secret: {{env: TEST_SF_SECRET}}}}}}
"#,
        instance = sim.base_url()
    );
    if let Some(h) = hole {
        s += &format!(
            "  lost:\n    instance_url: {h}\n    auth: {{access_token: {{env: TEST_SF_SECRET}}}}\n"
        );
    }
    s += &format!(
        r#"aws_accounts:
  events:
    account_id: "000000000000"
    region: us-east-1
    endpoint_url: {aws}
    credentials: default_chain
"#,
        aws = sim.urls.aws_endpoint
    );
    if let Some(h) = hole {
        s += &format!(
            "  lost:\n    account_id: \"111111111111\"\n    region: us-east-1\n    endpoint_url: {h}\n    credentials: default_chain\n"
        );
    }
    s += "relays:\n  orders:\n    org: acme\n    aws_account: events\n    events: [Order_Placed__e]\n    error_recovery: earliest\n    destination_bus: orders\n";
    if hole.is_some() {
        s += "  stranded:\n    org: lost\n    aws_account: lost\n    events: [Order_Placed__e]\n    error_recovery: earliest\n    destination_bus: orders\n";
    }
    s
}

fn run(dir: &std::path::Path, args: &[&str]) -> (i32, String, String, Duration) {
    let started = Instant::now();
    let (code, out, err) = common::relayform(dir, args, &[("TEST_SF_SECRET", DEMO_CLIENT_SECRET)]);
    (code, out, err, started.elapsed())
}

/// One org (and its account) of two accepts connections and never answers. `--org` naming the
/// healthy one is not held up at all; a whole plan fails within the call timeout's bound, naming the
/// endpoint, instead of hanging.
#[tokio::test(flavor = "multi_thread")]
async fn a_black_holed_org_of_two_neither_hangs_nor_holds_up_the_other() {
    let sim = relayform_simulator::start(relayform_simulator::Options::default())
        .await
        .unwrap();
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hole_url = format!("http://{}", hole.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spec.yaml"), spec(&sim, Some(&hole_url))).unwrap();

    let (code, out, err, took) = run(
        dir.path(),
        &[
            "plan",
            "--detailed-exitcode",
            "--org",
            "acme",
            "--call-timeout",
            "2s",
            "spec.yaml",
        ],
    );
    eprintln!("plan --org acme with org `lost` black-holed: exit {code} in {took:.1?}");
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(out.contains("+ salesforce.relay[orders]"), "{out}");
    assert!(!out.contains("stranded"), "{out}");
    assert!(took < Duration::from_secs(30), "{took:?}");

    // The same with `--target`: only the target's org and account, and what it depends on, are read.
    let (code, out, err, took) = run(
        dir.path(),
        &[
            "plan",
            "--detailed-exitcode",
            "--target",
            "aws.forwarding[orders]",
            "--call-timeout",
            "2s",
            "spec.yaml",
        ],
    );
    eprintln!(
        "plan --target aws.forwarding[orders] with org `lost` black-holed: exit {code} in {took:.1?}"
    );
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(out.contains("+ aws.forwarding[orders]"), "{out}");
    assert!(took < Duration::from_secs(30), "{took:?}");

    // A target that names nothing of the spec fails before anything is read, with a suggestion.
    let (code, out, err, took) = run(
        dir.path(),
        &[
            "plan",
            "--target",
            "salesforce.relay[ordres]",
            "--call-timeout",
            "2s",
            "spec.yaml",
        ],
    );
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("--target salesforce.relay[ordres]: the spec has no such resource"),
        "{err}"
    );
    assert!(
        err.contains("did you mean `--target salesforce.relay[orders]`?"),
        "{err}"
    );
    assert!(
        !err.contains("lost") && !err.contains("read 1 org"),
        "{err}"
    );
    assert!(took < Duration::from_secs(30), "{took:?}");

    // Apply and destroy of the healthy org's relays read only it (destroy used to read every org).
    for verb in ["apply", "destroy"] {
        let (code, out, err, took) = run(
            dir.path(),
            &[
                verb,
                "--auto-approve",
                "--org",
                "acme",
                "--call-timeout",
                "2s",
                "spec.yaml",
            ],
        );
        eprintln!("{verb} --org acme with org `lost` black-holed: exit {code} in {took:.1?}");
        assert_eq!(code, 0, "{verb}: {out}\n{err}");
        assert!(!out.contains("stranded"), "{out}");
        assert!(took < Duration::from_secs(60), "{took:?}");
    }

    let (code, out, err, took) = run(dir.path(), &["plan", "--call-timeout", "1s", "spec.yaml"]);
    eprintln!(
        "plan of both orgs, `lost` black-holed, --call-timeout 1s: exit {code} in {took:.1?}"
    );
    // The unreachable org (and account) is one part of the plan, with its reason; the healthy org
    // is planned all the same. Exit 1: not everything could be planned.
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains("! org `lost` could not be read, so relay `stranded` is not planned:"),
        "{out}"
    );
    assert!(out.contains("cannot read org `lost`"), "{out}");
    assert!(
        out.contains(&format!("{hole_url} did not answer within")),
        "{out}"
    );
    assert!(
        out.contains("hint: org `lost` could not be reached"),
        "{out}"
    );
    assert!(out.contains("+ salesforce.relay[orders]"), "{out}");
    assert!(
        !out.contains("stranded]"),
        "nothing of `stranded` is planned: {out}"
    );
    assert!(
        err.contains("error: org `lost` (relay `stranded`), AWS account `lost` (relay `stranded`) could not be read"),
        "{err}"
    );
    // Three attempts of a second at most, for the calls in flight, and margin for a loaded machine.
    assert!(took < Duration::from_secs(30), "{took:?}");

    // A saved plan must be whole: with a part unread it is not saved.
    let (code, _, err, _) = run(
        dir.path(),
        &[
            "plan",
            "--call-timeout",
            "1s",
            "--out",
            "partial.plan",
            "spec.yaml",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the plan was not saved"), "{err}");
    assert!(!dir.path().join("partial.plan").exists());

    // And apply: the healthy org is applied; the run ends with exit 1 naming the other and why.
    let (code, out, err, took) = run(
        dir.path(),
        &[
            "apply",
            "--auto-approve",
            "--call-timeout",
            "1s",
            "spec.yaml",
        ],
    );
    eprintln!("apply of both orgs, `lost` black-holed: exit {code} in {took:.1?}");
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("Apply complete"), "{out}");
    assert!(out.contains("cannot read org `lost`"), "{out}");
    assert!(
        err.contains("error: org `lost` (relay `stranded`)"),
        "{err}"
    );
    let (code, out, _, _) = run(
        dir.path(),
        &["plan", "--detailed-exitcode", "--org", "acme", "spec.yaml"],
    );
    assert_eq!(code, 0, "acme converged: {out}");

    // conformance takes the same bound (it had none: it waited on the black hole for minutes).
    let (code, out, err, took) = run(
        dir.path(),
        &[
            "conformance",
            "--org",
            "lost",
            "--aws",
            "lost",
            "--call-timeout",
            "1s",
            "spec.yaml",
        ],
    );
    eprintln!("conformance on the black-holed org, --call-timeout 1s: exit {code} in {took:.1?}");
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(format!("{out}{err}").contains(&hole_url), "{out}\n{err}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    drop(hole);
}

/// One apply under a seeded storm throttling 30 % of the calls to both APIs (the OAuth token
/// endpoint included), with the session refused once mid-apply, converges; the next plan is empty.
#[tokio::test(flavor = "multi_thread")]
async fn one_apply_converges_under_a_30_percent_throttle_storm_and_an_expiring_session() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sim.json");
    let sim = relayform_simulator::start(relayform_simulator::Options {
        state_file: Some(state.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    std::fs::write(dir.path().join("spec.yaml"), spec(&sim, None)).unwrap();
    sim.with_world(|w, _| {
        for f in [
            json!({"api": "salesforce", "operation": "*", "action": {"type": "throttle", "retry_after_ms": 1000}, "when": {"type": "probability", "p": 0.3, "seed": 7}}),
            json!({"api": "aws", "operation": "*", "action": {"type": "throttle", "retry_after_ms": 200}, "when": {"type": "probability", "p": 0.3, "seed": 11}}),
            json!({"api": "salesforce", "operation": "tooling.create", "action": {"type": "error", "status": 401, "code": "INVALID_SESSION_ID", "message": "Session expired or invalid"}, "when": {"type": "call", "k": 2}}),
        ] {
            w.faults.add(serde_json::from_value(f).unwrap());
        }
    });
    let (code, out, err, took) = run(dir.path(), &["apply", "--auto-approve", "spec.yaml"]);
    let (calls, throttled, refused) = sim.with_world(|w, _| {
        let e = &w.journal.entries;
        (
            e.len(),
            e.iter()
                .filter(|x| x.fault.as_deref() == Some("throttle"))
                .count(),
            e.iter().filter(|x| x.status == 401).count(),
        )
    });
    eprintln!(
        "apply under a 30% throttle storm: exit {code} in {took:.1?}; {calls} calls, {throttled} throttled, {refused} session refusal(s)"
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Apply complete"), "{out}");
    assert!(
        throttled >= calls / 6,
        "the storm was real: {throttled} of {calls}"
    );
    assert_eq!(refused, 1, "the session was refused once and renewed");
    sim.with_world(|w, _| w.faults.clear());
    let (code, out, err, _) = run(dir.path(), &["plan", "--detailed-exitcode", "spec.yaml"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "No changes: the orgs and accounts match the spec.\n"),
        "{err}"
    );
}
