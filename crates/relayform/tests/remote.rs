//! The binary against "real" endpoints: a simulator started here, reached the way a real org and
//! account are (instance URL with client-credentials OAuth, AWS credentials from the environment and
//! an endpoint URL), not through the embedded mode. Checks plan → apply → plan, refused credentials,
//! and account pinning, and that no secret reaches the output.

use relayform_simulator::config::{
    DEMO_ACCESS_KEY_ID, DEMO_ACCOUNT_ID, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_SECRET_ACCESS_KEY,
};
use std::path::Path;
use std::process::Command;

fn spec(sim: &relayform_simulator::Running, account_id: &str) -> String {
    format!(
        r#"version: 1
orgs:
  acme:
    instance_url: {instance}
    auth: {{client_credentials: {{client_id: {DEMO_CLIENT_ID}, client_secret: {{env: TEST_SF_SECRET}}}}}}
aws_accounts:
  events:
    account_id: "{account_id}"
    region: us-east-1
    endpoint_url: {aws}
    credentials: default_chain
relays:
  orders:
    org: acme
    aws_account: events
    events: [Order_Placed__e]
    error_recovery: earliest
    destination_bus: orders
"#,
        instance = sim.base_url(),
        aws = sim.urls.aws_endpoint,
    )
}

/// Runs the binary with only the environment it is given (plus PATH).
fn relayform(dir: &Path, args: &[&str], sf_secret: &str) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_relayform"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("TEST_SF_SECRET", sf_secret)
        .env("AWS_ACCESS_KEY_ID", DEMO_ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", DEMO_SECRET_ACCESS_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_org_and_account_are_planned_applied_and_their_credentials_checked() {
    let sim = relayform_simulator::start(relayform_simulator::Options::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spec.yaml"), spec(&sim, DEMO_ACCOUNT_ID)).unwrap();
    let d = dir.path();

    let (code, out, err) = relayform(
        d,
        &["plan", "--detailed-exitcode", "spec.yaml"],
        DEMO_CLIENT_SECRET,
    );
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(out.contains("+ salesforce.relay[orders]"), "{out}");
    assert!(
        !d.join(".relayform").exists(),
        "no embedded simulator for remote orgs"
    );

    let (code, out, err) = relayform(
        d,
        &["apply", "--auto-approve", "spec.yaml"],
        DEMO_CLIENT_SECRET,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Apply complete"), "{out}");
    let (code, out, err) = relayform(
        d,
        &["plan", "--detailed-exitcode", "spec.yaml"],
        DEMO_CLIENT_SECRET,
    );
    assert_eq!(
        (code, out.as_str()),
        (0, "No changes: the orgs and accounts match the spec.\n"),
        "{err}"
    );

    // Refused credentials: a clear error, exit 1, and the secret is not repeated.
    let (code, out, err) = relayform(d, &["plan", "spec.yaml"], "not-the-secret-5f3a");
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("cannot read org `acme`"), "{err}");
    assert!(err.contains("invalid client credentials"), "{err}");
    assert!(
        err.contains("hint: the org refused relayform's credentials: check `auth` of org `acme`"),
        "{err}"
    );
    for text in [&out, &err] {
        assert!(!text.contains("not-the-secret-5f3a"));
        assert!(!text.contains(DEMO_SECRET_ACCESS_KEY));
    }

    // Credentials for another account than the spec pins: stopped before anything is read or changed.
    std::fs::write(d.join("spec.yaml"), spec(&sim, "111111111111")).unwrap();
    let (code, _, err) = relayform(
        d,
        &["apply", "--auto-approve", "spec.yaml"],
        DEMO_CLIENT_SECRET,
    );
    assert_eq!(code, 1);
    assert!(err.contains("cannot use AWS account `events`"), "{err}");
    assert!(err.contains("111111111111"), "{err}");
}
