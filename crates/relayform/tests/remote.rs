//! The binary against "real" endpoints: a simulator started here, reached the way a real org and
//! account are (instance URL with client-credentials OAuth, AWS credentials from the environment and
//! an endpoint URL), not through the embedded mode. Checks plan → apply → plan, refused credentials,
//! and account pinning, and that no secret reaches the output.

use relayform_simulator::config::{
    DEMO_ACCOUNT_ID, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_SECRET_ACCESS_KEY,
};
use std::path::Path;

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

mod common;

/// Runs the binary with the AWS demo keys and `sf_secret` as `TEST_SF_SECRET`.
fn relayform(dir: &Path, args: &[&str], sf_secret: &str) -> (i32, String, String) {
    common::relayform(dir, args, &[("TEST_SF_SECRET", sf_secret)])
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
    // The org is the plan's unread part (the rest would be planned), with the reason.
    let (code, out, err) = relayform(d, &["plan", "spec.yaml"], "not-the-secret-5f3a");
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("cannot read org `acme`"), "{out}");
    assert!(out.contains("invalid client credentials"), "{out}");
    assert!(
        out.contains("hint: the org refused relayform's credentials: check `auth` of org `acme`"),
        "{out}"
    );
    assert!(
        err.contains("error: org `acme` (relay `orders`) could not be read"),
        "{err}"
    );
    for text in [&out, &err] {
        assert!(!text.contains("not-the-secret-5f3a"));
        assert!(!text.contains(DEMO_SECRET_ACCESS_KEY));
    }

    // Credentials for another account than the spec pins: stopped before anything is read or changed.
    std::fs::write(d.join("spec.yaml"), spec(&sim, "111111111111")).unwrap();
    let (code, out, err) = relayform(
        d,
        &["apply", "--auto-approve", "spec.yaml"],
        DEMO_CLIENT_SECRET,
    );
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("cannot use AWS account `events`"), "{out}");
    assert!(out.contains("111111111111"), "{out}");
    assert!(
        out.contains("No changes in the orgs and accounts that could be read."),
        "nothing of the relay is touched: {out}"
    );
}

/// `relayform conformance` against a simulator served and reached as a real org and account: its
/// answers are the simulator's settings, a changed setting changes the answer, and it leaves nothing
/// behind.
#[tokio::test(flavor = "multi_thread")]
async fn conformance_reports_the_settings_of_the_simulator_it_asks() {
    use relayform_simulator::config::{
        ChannelForm, Config, DeleteBusWithRules, LabelUpdate, PendingDelivery, Presence,
        ReceiverPolicy, ToolingPatch,
    };
    let strict = Config::default();
    // A namespaced org answers like any other (conformance names its prefixed full names).
    let mut namespaced = Config::default();
    namespaced.orgs[0].namespace_prefix = Some("acme_ns".into());
    let mut lenient = Config::default();
    let s = &mut lenient.settings;
    s.tooling_patch = ToolingPatch::Merge;
    s.relay_label_update = LabelUpdate::Ignore;
    s.relay_event_channel = ChannelForm::Id;
    s.tooling_named_credential_endpoint = Presence::Present;
    s.pending_source_delivery = PendingDelivery::Error;
    s.receiver_bus_policy = ReceiverPolicy::Ignore;
    s.delete_bus_with_rules = DeleteBusWithRules::Cascade;
    s.partner_source_delay_seconds = 0;
    s.source_visibility_lag_seconds = 0;
    let strict_answers = serde_json::json!({
        "tooling_patch": "replace", "relay_label_update": "reject",
        "relay_event_channel": "full_name", "tooling_named_credential_endpoint": "absent",
        "pending_source_delivery": "drop", "receiver_bus_policy": "enforce",
        "delete_bus_with_rules": "refuse",
    });
    for (config, want) in [
        (namespaced, strict_answers.clone()),
        (
            strict,
            serde_json::json!({
                "tooling_patch": "replace", "relay_label_update": "reject",
                "relay_event_channel": "full_name", "tooling_named_credential_endpoint": "absent",
                "pending_source_delivery": "drop", "receiver_bus_policy": "enforce",
                "delete_bus_with_rules": "refuse",
            }),
        ),
        (
            lenient,
            serde_json::json!({
                "tooling_patch": "merge", "relay_label_update": "ignore",
                "relay_event_channel": "id", "tooling_named_credential_endpoint": "present",
                "pending_source_delivery": "error", "receiver_bus_policy": "ignore",
                "delete_bus_with_rules": "cascade", "partner_source_delay_seconds": 0,
                "source_visibility_lag_seconds": 0,
            }),
        ),
    ] {
        let sim = relayform_simulator::start(relayform_simulator::Options {
            config,
            ..Default::default()
        })
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        // A change event too, for the CDC question.
        let text = spec(&sim, DEMO_ACCOUNT_ID)
            + "  accounts: {org: acme, aws_account: events, events: [AccountChangeEvent], error_recovery: latest}\n";
        std::fs::write(dir.path().join("spec.yaml"), text).unwrap();
        let (code, out, err) = relayform(
            dir.path(),
            &[
                "conformance",
                "spec.yaml",
                "--org",
                "acme",
                "--aws",
                "events",
                "--wait-timeout",
                "60s",
                "--json",
            ],
            DEMO_CLIENT_SECRET,
        );
        assert_eq!(code, 0, "{out}\n{err}");
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["complete"], true, "{doc:#}");
        assert_eq!(doc["left_behind"], serde_json::json!([]), "{doc:#}");
        for (k, v) in want.as_object().unwrap() {
            assert_eq!(&doc["settings"][k], v, "{k}: {doc:#}");
        }
        assert!(!out.contains(DEMO_CLIENT_SECRET) && !err.contains(DEMO_CLIENT_SECRET));
        // Nothing of it is left: no Tooling object, no bus but the destination and the defaults, no role.
        let left = sim.with_world(|w, _| {
            let tooling: usize = w
                .orgs
                .values()
                .flat_map(|o| o.tooling.values().map(|m| m.len()))
                .sum();
            let buses: Vec<String> = w
                .accounts
                .values()
                .flat_map(|a| a.regions.values())
                .flat_map(|r| r.buses.keys().cloned())
                .filter(|b| b.starts_with("rfconf") || b.starts_with("aws.partner/"))
                .collect();
            let roles: usize = w.accounts.values().map(|a| a.roles.len()).sum();
            let logs: usize = w
                .accounts
                .values()
                .flat_map(|a| a.regions.values())
                .map(|r| r.log_groups.len() + r.log_policies.len())
                .sum();
            let records: usize = w.orgs.values().map(|o| o.records.len()).sum();
            (tooling, buses, roles, logs, records)
        });
        assert_eq!(left, (0, Vec::<String>::new(), 0, 0, 0), "{out}");
        // The envelopes were read back from the log group.
        let answers = doc["answers"].as_array().unwrap();
        let answer = |q: &str| {
            answers
                .iter()
                .find(|a| a["question"] == q)
                .map(|a| a["answer"].as_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        assert!(
            answer("the envelope of a relayed platform event").contains("detail keys: payload"),
            "{doc:#}"
        );
        assert!(
            answer("the envelope of a relayed CDC update").contains("ChangeEventHeader"),
            "{doc:#}"
        );
    }
}

/// A namespaced org (a packaging or scratch org): full names and references carry the prefix; apply,
/// an update in place (a PATCH naming the full name with its prefix) and destroy all converge.
#[tokio::test(flavor = "multi_thread")]
async fn a_namespaced_org_converges() {
    let mut config = relayform_simulator::Config::default();
    config.orgs[0].namespace_prefix = Some("acme_ns".into());
    let sim = relayform_simulator::start(relayform_simulator::Options {
        config,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = spec(&sim, DEMO_ACCOUNT_ID);
    std::fs::write(d.join("spec.yaml"), &text).unwrap();
    let apply = |d: &Path| {
        relayform(
            d,
            &["apply", "--auto-approve", "spec.yaml"],
            DEMO_CLIENT_SECRET,
        )
    };
    let plan = |d: &Path| {
        relayform(
            d,
            &["plan", "--detailed-exitcode", "spec.yaml"],
            DEMO_CLIENT_SECRET,
        )
    };
    let (code, out, err) = apply(d);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = plan(d);
    assert_eq!(code, 0, "{out}\n{err}");
    let relay = sim.with_world(|w, _| {
        let org = w.orgs.values().next().unwrap();
        org.tooling["EventRelayConfig"]
            .values()
            .next()
            .unwrap()
            .record()
    });
    assert_eq!(relay["FullName"], "acme_ns__orders");
    assert_eq!(relay["EventChannel"], "acme_ns__orders__chn");
    assert_eq!(
        relay["DestinationResourceName"],
        "callout:acme_ns__Relayform_000000000000_us_east_1"
    );
    // An update in place: the relay's recovery option.
    std::fs::write(
        d.join("spec.yaml"),
        text.replace("error_recovery: earliest", "error_recovery: latest"),
    )
    .unwrap();
    let (code, out, err) = apply(d);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("~ salesforce.relay[orders]"), "{out}");
    let (code, out, err) = plan(d);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = relayform(
        d,
        &["destroy", "--auto-approve", "spec.yaml"],
        DEMO_CLIENT_SECRET,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let left: usize = sim.with_world(|w, _| {
        w.orgs
            .values()
            .flat_map(|o| o.tooling.values().map(|m| m.len()))
            .sum()
    });
    assert_eq!(left, 0);
}

/// A spec account's `credentials: {profile: NAME}` is that profile's, as `aws --profile NAME` is,
/// even with keys in the environment: they used to win (they come first in the SDK's default
/// chain), so the profile's account pin failed, or worse, another identity of the same account acted.
#[tokio::test(flavor = "multi_thread")]
async fn a_profile_in_the_spec_wins_over_keys_in_the_environment() {
    let mut config = relayform_simulator::Config::default();
    config
        .aws_accounts
        .push(relayform_simulator::config::AccountConfig {
            account_id: "100000000002".into(),
            access_keys: vec![relayform_simulator::config::AccessKeyConfig {
                access_key_id: "KEYOFACCOUNTTWO".into(),
                secret_access_key: "two".into(),
            }],
            event_buses: Vec::new(),
        });
    let sim = relayform_simulator::start(relayform_simulator::Options {
        config,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("aws-config"),
        "[profile two]\naws_access_key_id = KEYOFACCOUNTTWO\naws_secret_access_key = two\n",
    )
    .unwrap();
    let spec = spec(&sim, "100000000002")
        .replace("credentials: default_chain", "credentials: {profile: two}");
    std::fs::write(d.join("spec.yaml"), spec).unwrap();
    // The environment has the demo keys (account 000000000000): the profile's account must win.
    let config_file = d.join("aws-config").display().to_string();
    let (code, out, err) = common::relayform(
        d,
        &["plan", "--detailed-exitcode", "spec.yaml"],
        &[
            ("TEST_SF_SECRET", DEMO_CLIENT_SECRET),
            ("AWS_CONFIG_FILE", config_file.as_str()),
        ],
    );
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(out.contains("+ aws.role[events/"), "{out}");
}
