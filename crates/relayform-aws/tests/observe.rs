//! The AWS refresh: a fixed number of list calls plus two per forwarded relay and two per role,
//! counted through the simulator's journal.

use relayform_aws::observe::{Interest, observe_account};
use relayform_aws::*;

const ACCOUNT: &str = "000000000000";
const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

async fn aws_calls(sim: &relayform_simulator::Running, since: u64) -> (u64, Vec<String>) {
    sim.with_world(|w, _| {
        let entries: Vec<_> = w
            .journal
            .entries
            .iter()
            .filter(|e| e.seq > since && e.api == "aws")
            .collect();
        let last = entries.last().map_or(since, |e| e.seq);
        (
            last,
            entries.iter().map(|e| e.operation.to_string()).collect(),
        )
    })
}

async fn forwarded_relays(aws: &Aws, from: usize, to: usize) -> Interest {
    let mut interest = Interest::default();
    for i in from..to {
        let src = format!("aws.partner/salesforce.com/00DSM000000001AAA/0YLSM00000000{i:02}AAA");
        aws.events
            .create_partner_event_source()
            .name(&src)
            .account(ACCOUNT)
            .send()
            .await
            .unwrap();
        aws.events
            .create_event_bus()
            .name(&src)
            .event_source_name(&src)
            .send()
            .await
            .unwrap();
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
            .arn(format!(
                "arn:aws:events:us-east-1:{ACCOUNT}:event-bus/orders"
            ))
            .role_arn(format!(
                "arn:aws:iam::{ACCOUNT}:role/relayform-us-east-1-orders"
            ))
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
        interest.forwarding.push((src, "relayform-forward".into()));
    }
    interest
}

#[tokio::test]
async fn a_fixed_number_of_calls_plus_two_per_forwarded_relay_and_role() {
    let sim = relayform_simulator::start(relayform_simulator::Options::default())
        .await
        .unwrap();
    let target = Target {
        region: "us-east-1".into(),
        endpoint_url: Some(sim.base_url().to_owned()),
        credentials: Credentials::Static {
            access_key_id: relayform_simulator::config::DEMO_ACCESS_KEY_ID.into(),
            secret_access_key: Secret::new(relayform_simulator::config::DEMO_SECRET_ACCESS_KEY),
        },
        config_file: None,
        patience: Default::default(),
    };
    let aws = Aws::connect(&target, None).await;
    aws.iam
        .create_role()
        .role_name("relayform-us-east-1-orders")
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .unwrap();
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"events:PutEvents","Resource":"arn:aws:events:us-east-1:000000000000:event-bus/orders"}]}"#;
    aws.iam
        .put_role_policy()
        .role_name("relayform-us-east-1-orders")
        .policy_name("relayform-forward")
        .policy_document(policy)
        .send()
        .await
        .unwrap();
    let mut interest = forwarded_relays(&aws, 0, 2).await;
    interest.roles.push((
        "relayform-us-east-1-orders".into(),
        "relayform-forward".into(),
    ));
    interest
        .roles
        .push(("relayform-missing".into(), "relayform-forward".into()));

    let (since, _) = aws_calls(&sim, 0).await;
    let seen = observe_account(&aws, ACCOUNT, &interest).await.unwrap();
    let (since, ops) = aws_calls(&sim, since).await;
    // 2 lists + 2 per forwarded relay (2) + 2 for the role that exists + 1 for the one that does not.
    assert_eq!(ops.len(), 2 + 2 * 2 + 2 + 1, "{ops:?}");
    assert_eq!(seen.sources.len(), 2);
    assert!(
        seen.sources
            .iter()
            .all(|s| s.state.as_deref() == Some("ACTIVE"))
    );
    assert_eq!(seen.buses.len(), 2, "only partner buses are listed");
    assert_eq!(seen.rules.len(), 2);
    assert_eq!(
        seen.rules[0].targets[0].role_arn.as_deref(),
        Some("arn:aws:iam::000000000000:role/relayform-us-east-1-orders")
    );
    assert_eq!(seen.roles.len(), 1);
    let (name, doc) = seen.roles[0].policy.clone().unwrap();
    assert_eq!(name, "relayform-forward");
    assert!(doc.starts_with("%7B"), "as IAM returns it: {doc}");

    let more = forwarded_relays(&aws, 2, 12).await;
    interest.forwarding.extend(more.forwarding);
    let (since, _) = aws_calls(&sim, since).await;
    let seen = observe_account(&aws, ACCOUNT, &interest).await.unwrap();
    let (_, ops) = aws_calls(&sim, since).await;
    assert_eq!(ops.len(), 2 + 2 * 12 + 3);
    assert_eq!(seen.rules.len(), 12);
}
