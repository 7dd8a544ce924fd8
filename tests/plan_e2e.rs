//! `relayform plan` against the embedded simulator, end to end: an empty world plans everything; a
//! world applied by hand (through the same clients the engine uses) plans nothing; a relay paused
//! through the Salesforce API plans its restart and exits 2 with `--detailed-exitcode`.

use relayform_aws::{Aws, Credentials, Target};
use relayform_provider::Secret;
use relayform_salesforce::{Client, Grant, OAuth};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/demo.yaml")
}

fn plan(state: &Path) -> (u8, String) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = relayform::run_args(
        [
            "relayform",
            "plan",
            "--detailed-exitcode",
            "--simulator-state",
            state.to_str().unwrap(),
            demo().to_str().unwrap(),
        ],
        &mut out,
        &mut err,
    );
    assert_ne!(code, 1, "plan failed: {}", String::from_utf8_lossy(&err));
    (code, String::from_utf8(out).unwrap())
}

async fn reopen(state: &Path) -> relayform_simulator::Running {
    relayform_simulator::start(relayform_simulator::Options {
        state_file: Some(state.to_owned()),
        ..Default::default()
    })
    .await
    .unwrap()
}

fn salesforce(sim: &relayform_simulator::Running) -> Client {
    Client::new(Arc::new(OAuth::new(
        &sim.instance_url("demo").unwrap(),
        Grant::ClientCredentials {
            client_id: relayform_simulator::config::DEMO_CLIENT_ID.into(),
            client_secret: Secret::new(relayform_simulator::config::DEMO_CLIENT_SECRET),
        },
    )))
}

/// Does by hand what `apply` will do for `specs/demo.yaml`.
async fn apply_by_hand(sim: &relayform_simulator::Running) {
    let sf = salesforce(sim);
    sf.tooling_create("NamedCredential", &json!({"FullName": "Relayform_000000000000_us_east_1", "Metadata": {"label": "relayform", "endpoint": "arn:aws:US-EAST-1:000000000000", "principalType": "NamedUser", "protocol": "NoAuthentication"}})).await.unwrap();
    for (relay, kind, events, recovery) in [
        (
            "orders",
            "event",
            vec!["Order_Placed__e", "Order_Shipped__e"],
            "EARLIEST",
        ),
        (
            "account_changes",
            "data",
            vec!["AccountChangeEvent"],
            "LATEST",
        ),
    ] {
        sf.tooling_create("PlatformEventChannel", &json!({"FullName": format!("{relay}__chn"), "Metadata": {"channelType": kind, "label": relay}})).await.unwrap();
        for e in events {
            let member = format!("{relay}_chn_{}", e.replace("__", "_"));
            sf.tooling_create("PlatformEventChannelMember", &json!({"FullName": member, "Metadata": {"eventChannel": format!("{relay}__chn"), "selectedEntity": e}})).await.unwrap();
        }
        sf.tooling_create("EventRelayConfig", &json!({"FullName": relay, "Metadata": {"destinationResourceName": "callout:Relayform_000000000000_us_east_1", "eventChannel": format!("{relay}__chn"), "relayOption": format!("{{\"ReplayRecovery\":\"{recovery}\"}}"), "state": "STOP"}})).await.unwrap();
    }
    sim.advance(10_000);
    let aws = Aws::connect(
        &Target {
            region: "us-east-1".into(),
            endpoint_url: Some(sim.urls.aws_endpoint.clone()),
            credentials: Credentials::Static {
                access_key_id: "000000000000".into(),
                secret_access_key: Secret::new("x"),
            },
            config_file: None,
        },
        None,
    )
    .await;
    let dest = "arn:aws:events:us-east-1:000000000000:event-bus/orders";
    aws.events
        .create_event_bus()
        .name("orders")
        .send()
        .await
        .unwrap();
    aws.iam
        .create_role()
        .role_name("relayform-us-east-1-orders")
        .assume_role_policy_document(
            relayform_plan::policy::forwarding_trust("aws", "us-east-1", "000000000000")
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    aws.iam
        .put_role_policy()
        .role_name("relayform-us-east-1-orders")
        .policy_name("relayform-forward")
        .policy_document(relayform_plan::policy::forwarding_permission(dest).to_string())
        .send()
        .await
        .unwrap();
    let feedback = sf
        .query("SELECT EventRelayConfig.DeveloperName, RemoteResource FROM EventRelayFeedback")
        .await
        .unwrap();
    for f in &feedback {
        let src = f["RemoteResource"]
            .as_str()
            .expect("the partner source is registered")
            .to_owned();
        aws.events
            .create_event_bus()
            .name(&src)
            .event_source_name(&src)
            .send()
            .await
            .unwrap();
        if f["EventRelayConfig"]["DeveloperName"] == "orders" {
            aws.events
                .put_rule()
                .name("relayform-forward")
                .event_bus_name(&src)
                .event_pattern(r#"{"source":[{"prefix":"aws.partner/salesforce.com"}]}"#)
                .send()
                .await
                .unwrap();
            let target = aws_sdk_eventbridge::types::Target::builder()
                .id("destination")
                .arn(dest)
                .role_arn("arn:aws:iam::000000000000:role/relayform-us-east-1-orders")
                .build()
                .unwrap();
            aws.events
                .put_targets()
                .rule("relayform-forward")
                .event_bus_name(&src)
                .targets(target)
                .send()
                .await
                .unwrap();
        }
    }
    for r in sf
        .tooling_query("SELECT Id FROM EventRelayConfig")
        .await
        .unwrap()
    {
        sf.tooling_update(
            "EventRelayConfig",
            r["Id"].as_str().unwrap(),
            &json!({"Metadata": {"state": "RUN"}}),
        )
        .await
        .unwrap();
    }
    sim.advance(10_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_then_apply_by_hand_then_plan_nothing_then_drift() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("simulator.json");

    let (code, text) = tokio::task::block_in_place(|| plan(&state));
    assert_eq!(code, 2);
    assert!(
        text.ends_with("Plan: 12 to create, 2 to update, 0 to replace, 0 to delete.\n"),
        "{text}"
    );

    let sim = reopen(&state).await;
    apply_by_hand(&sim).await;
    sim.shutdown().await.unwrap();
    let (code, text) = tokio::task::block_in_place(|| plan(&state));
    assert_eq!(
        (code, text.as_str()),
        (0, "No changes: the orgs and accounts match the spec.\n")
    );

    // Paused by hand through the Salesforce API: the plan starts it again.
    let sim = reopen(&state).await;
    let sf = salesforce(&sim);
    let id = sf
        .tooling_query("SELECT Id FROM EventRelayConfig WHERE DeveloperName = 'orders'")
        .await
        .unwrap()[0]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    sf.tooling_update(
        "EventRelayConfig",
        &id,
        &json!({"Metadata": {"state": "PAUSE"}}),
    )
    .await
    .unwrap();
    sim.shutdown().await.unwrap();
    let (code, text) = tokio::task::block_in_place(|| plan(&state));
    assert_eq!(code, 2);
    assert_eq!(
        text,
        "  ~ salesforce.relay_state[orders]\n      state: \"PAUSE\" → \"RUN\"\nPlan: 0 to create, 1 to update, 0 to replace, 0 to delete.\n"
    );
}
