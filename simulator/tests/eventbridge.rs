//! EventBridge, driven by the real aws-sdk-eventbridge client: every operation, success and errors.

mod common;

use aws_sdk_eventbridge::error::ProvideErrorMetadata;
use aws_sdk_eventbridge::types::{
    EventSourceState, PutEventsRequestEntry, PutPartnerEventsRequestEntry, Tag, Target,
};
use common::*;

const SRC: &str = "aws.partner/salesforce.com/00DSM000000001AAA/0YLSM000000001AAA";
const ACCOUNT: &str = "000000000000";

#[tokio::test]
async fn partner_source_lifecycle() {
    let sim = start().await;
    let eb = eventbridge(&sim).await;
    let arn = eb
        .create_partner_event_source()
        .name(SRC)
        .account(ACCOUNT)
        .send()
        .await
        .unwrap()
        .event_source_arn()
        .unwrap()
        .to_owned();
    assert_eq!(arn, format!("arn:aws:events:us-east-1::event-source/{SRC}"));
    let dup = eb
        .create_partner_event_source()
        .name(SRC)
        .account(ACCOUNT)
        .send()
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Some("ResourceAlreadyExistsException"));

    let listed = eb
        .list_event_sources()
        .name_prefix("aws.partner/salesforce.com/00DSM")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.event_sources().len(), 1);
    let d = eb.describe_event_source().name(SRC).send().await.unwrap();
    assert_eq!(d.state(), Some(&EventSourceState::Pending));
    assert!(d.expiration_time().is_some() && d.creation_time().is_some());
    assert_eq!(d.created_by(), Some("aws.partner/salesforce.com"));

    // Associating: a bus named after the source makes it ACTIVE.
    let bus = eb
        .create_event_bus()
        .name(SRC)
        .event_source_name(SRC)
        .send()
        .await
        .unwrap();
    assert_eq!(
        bus.event_bus_arn(),
        Some(format!("arn:aws:events:us-east-1:{ACCOUNT}:event-bus/{SRC}").as_str())
    );
    let state =
        |d: aws_sdk_eventbridge::operation::describe_event_source::DescribeEventSourceOutput| {
            d.state().cloned()
        };
    assert_eq!(
        state(eb.describe_event_source().name(SRC).send().await.unwrap()),
        Some(EventSourceState::Active)
    );
    let again = eb
        .create_event_bus()
        .name(SRC)
        .event_source_name(SRC)
        .send()
        .await
        .unwrap_err();
    assert!(
        again
            .into_service_error()
            .is_resource_already_exists_exception()
    );

    eb.deactivate_event_source().name(SRC).send().await.unwrap();
    assert_eq!(
        state(eb.describe_event_source().name(SRC).send().await.unwrap()),
        Some(EventSourceState::Pending)
    );
    let e = eb
        .deactivate_event_source()
        .name(SRC)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_invalid_state_exception());
    eb.activate_event_source().name(SRC).send().await.unwrap();
    let e = eb
        .activate_event_source()
        .name(SRC)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_invalid_state_exception());

    // Deleting the bus returns the source to PENDING; the partner deleting it shows DELETED.
    eb.delete_event_bus().name(SRC).send().await.unwrap();
    assert_eq!(
        state(eb.describe_event_source().name(SRC).send().await.unwrap()),
        Some(EventSourceState::Pending)
    );
    eb.delete_partner_event_source()
        .name(SRC)
        .account(ACCOUNT)
        .send()
        .await
        .unwrap();
    assert_eq!(
        state(eb.describe_event_source().name(SRC).send().await.unwrap()),
        Some(EventSourceState::Deleted)
    );

    let missing = eb
        .describe_event_source()
        .name("aws.partner/salesforce.com/x/y")
        .send()
        .await
        .unwrap_err();
    assert!(
        missing
            .into_service_error()
            .is_resource_not_found_exception()
    );
    let bad = eb
        .create_partner_event_source()
        .name("not-a-partner-name")
        .account(ACCOUNT)
        .send()
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Some("ValidationException"));
}

#[tokio::test]
async fn buses_rules_targets_and_tags() {
    let sim = start().await;
    let eb = eventbridge(&sim).await;
    eb.create_event_bus()
        .name("orders")
        .description("orders bus")
        .send()
        .await
        .unwrap();
    eb.create_event_bus().name("audit").send().await.unwrap();
    let names: Vec<String> = eb
        .list_event_buses()
        .send()
        .await
        .unwrap()
        .event_buses()
        .iter()
        .filter_map(|b| b.name().map(str::to_owned))
        .collect();
    assert_eq!(names, ["audit", "default", "orders"]);
    let first = eb.list_event_buses().limit(1).send().await.unwrap();
    assert_eq!(first.event_buses().len(), 1);
    let second = eb
        .list_event_buses()
        .limit(2)
        .next_token(first.next_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(second.event_buses().len(), 2);
    assert!(second.next_token().is_none());
    assert_eq!(
        eb.describe_event_bus()
            .name("orders")
            .send()
            .await
            .unwrap()
            .description(),
        Some("orders bus")
    );
    assert!(
        eb.describe_event_bus()
            .name("nope")
            .send()
            .await
            .unwrap_err()
            .into_service_error()
            .is_resource_not_found_exception()
    );
    assert_eq!(
        eb.create_event_bus()
            .name("a/b")
            .send()
            .await
            .unwrap_err()
            .code(),
        Some("ValidationException")
    );
    assert_eq!(
        eb.delete_event_bus()
            .name("default")
            .send()
            .await
            .unwrap_err()
            .code(),
        Some("ValidationException")
    );
    eb.delete_event_bus()
        .name("never-existed")
        .send()
        .await
        .unwrap();

    let pattern =
        r#"{"source":[{"prefix":"aws.partner/salesforce.com"}],"detail-type":["Order_Placed__e"]}"#;
    let rule_arn = eb
        .put_rule()
        .name("fwd")
        .event_bus_name("orders")
        .event_pattern(pattern)
        .send()
        .await
        .unwrap()
        .rule_arn()
        .unwrap()
        .to_owned();
    assert_eq!(
        rule_arn,
        format!("arn:aws:events:us-east-1:{ACCOUNT}:rule/orders/fwd")
    );
    let r = eb
        .describe_rule()
        .name("fwd")
        .event_bus_name("orders")
        .send()
        .await
        .unwrap();
    assert_eq!(r.event_pattern(), Some(pattern));
    assert_eq!(
        eb.list_rules()
            .event_bus_name("orders")
            .send()
            .await
            .unwrap()
            .rules()
            .len(),
        1
    );
    let e = eb
        .put_rule()
        .name("bad")
        .event_bus_name("orders")
        .event_pattern("{\"source\": \"x\"}")
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_invalid_event_pattern_exception());
    let e = eb
        .put_rule()
        .name("fwd")
        .event_bus_name("nope")
        .event_pattern(pattern)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_resource_not_found_exception());

    let target = Target::builder()
        .id("to-audit")
        .arn(format!(
            "arn:aws:events:us-east-1:{ACCOUNT}:event-bus/audit"
        ))
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/fwd"))
        .build()
        .unwrap();
    let out = eb
        .put_targets()
        .rule("fwd")
        .event_bus_name("orders")
        .targets(target)
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_entry_count(), 0);
    let targets = eb
        .list_targets_by_rule()
        .rule("fwd")
        .event_bus_name("orders")
        .send()
        .await
        .unwrap();
    assert_eq!(
        targets.targets()[0].role_arn(),
        Some(format!("arn:aws:iam::{ACCOUNT}:role/fwd").as_str())
    );
    let e = eb
        .put_targets()
        .rule("nope")
        .event_bus_name("orders")
        .targets(
            Target::builder()
                .id("x")
                .arn("arn:aws:sqs:us-east-1:1:q")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_resource_not_found_exception());
    let e = eb
        .delete_rule()
        .name("fwd")
        .event_bus_name("orders")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ValidationException"));
    assert_eq!(
        e.message(),
        Some("Rule can't be deleted since it has targets.")
    );

    // A bus asked for with a tag AWS refuses is not made.
    let e = eb
        .create_event_bus()
        .name("badly-tagged")
        .tags(Tag::builder().key("k").value("semi;colon").build().unwrap())
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ValidationException"));
    assert!(
        eb.describe_event_bus()
            .name("badly-tagged")
            .send()
            .await
            .is_err()
    );
    let bus_arn = format!("arn:aws:events:us-east-1:{ACCOUNT}:event-bus/orders");
    for arn in [&bus_arn, &rule_arn] {
        eb.tag_resource()
            .resource_arn(arn)
            .tags(
                Tag::builder()
                    .key("app")
                    .value("relayform")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let tags = eb
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .unwrap();
        assert_eq!(tags.tags().len(), 1);
        let e = eb
            .tag_resource()
            .resource_arn(arn)
            .tags(Tag::builder().key("aws:owner").value("x").build().unwrap())
            .send()
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("ValidationException"));
        eb.untag_resource()
            .resource_arn(arn)
            .tag_keys("app")
            .send()
            .await
            .unwrap();
        assert!(
            eb.list_tags_for_resource()
                .resource_arn(arn)
                .send()
                .await
                .unwrap()
                .tags()
                .is_empty()
        );
    }
    let e = eb
        .list_tags_for_resource()
        .resource_arn("arn:aws:events:us-east-1:000000000000:event-bus/nope")
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_resource_not_found_exception());

    let removed = eb
        .remove_targets()
        .rule("fwd")
        .event_bus_name("orders")
        .ids("to-audit")
        .ids("ghost")
        .send()
        .await
        .unwrap();
    assert_eq!(removed.failed_entry_count(), 1);
    eb.delete_rule()
        .name("fwd")
        .event_bus_name("orders")
        .send()
        .await
        .unwrap();
    assert!(
        eb.list_rules()
            .event_bus_name("orders")
            .send()
            .await
            .unwrap()
            .rules()
            .is_empty()
    );
}

#[tokio::test]
async fn put_events_and_partner_events() {
    let sim = start().await;
    let eb = eventbridge(&sim).await;
    let entry = PutEventsRequestEntry::builder()
        .source("app")
        .detail_type("Thing")
        .detail("{\"a\":1}")
        .build();
    let out = eb.put_events().entries(entry.clone()).send().await.unwrap();
    assert_eq!(out.failed_entry_count(), 0);
    assert!(out.entries()[0].event_id().is_some());
    let missing = PutEventsRequestEntry::builder()
        .source("app")
        .detail_type("Thing")
        .build();
    let out = eb
        .put_events()
        .entries(entry)
        .entries(missing)
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_entry_count(), 1);
    assert_eq!(out.entries()[1].error_code(), Some("InvalidArgument"));
    let partner = PutEventsRequestEntry::builder()
        .source("app")
        .detail_type("T")
        .detail("{}")
        .event_bus_name(SRC)
        .build();
    assert_eq!(
        eb.put_events()
            .entries(partner)
            .send()
            .await
            .unwrap_err()
            .code(),
        Some("ValidationException")
    );

    // Partner events reach the associated bus.
    eb.create_partner_event_source()
        .name(SRC)
        .account(ACCOUNT)
        .send()
        .await
        .unwrap();
    let pe = PutPartnerEventsRequestEntry::builder()
        .source(SRC)
        .detail_type("Order_Placed__e")
        .detail("{\"payload\":{\"Order_Id__c\":\"1\"}}")
        .build();
    eb.put_partner_events()
        .entries(pe.clone())
        .send()
        .await
        .unwrap();
    eb.create_event_bus()
        .name(SRC)
        .event_source_name(SRC)
        .send()
        .await
        .unwrap();
    eb.put_partner_events().entries(pe).send().await.unwrap();
    let d = admin(
        &sim,
        reqwest::Method::GET,
        &format!("/deliveries?bus={SRC}"),
        None,
    )
    .await;
    assert_eq!(
        d["recent"].as_array().unwrap().len(),
        1,
        "only the event sent after association arrives: {d}"
    );
    assert_eq!(
        d["recent"][0]["event"]["detail"]["payload"]["Order_Id__c"],
        "1"
    );
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_and_journalled() {
    let sim = start().await;
    admin(&sim, reqwest::Method::POST, "/faults", Some(serde_json::json!({"api": "aws", "operation": "CreateEventBus", "action": {"type": "throttle", "retry_after_ms": 5}, "when": {"type": "next", "n": 2}}))).await;
    let conf = sdk_config(
        &sim,
        relayform_simulator::config::DEMO_ACCESS_KEY_ID,
        "us-east-1",
        3,
    )
    .await;
    let eb = aws_sdk_eventbridge::Client::new(&conf);
    eb.create_event_bus().name("orders").send().await.unwrap();
    assert_eq!(calls(&sim, "CreateEventBus").await, 3);
    let journal = admin(
        &sim,
        reqwest::Method::GET,
        "/journal?operation=CreateEventBus",
        None,
    )
    .await;
    let statuses: Vec<u64> = journal["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [400, 400, 200]);
}

#[tokio::test]
async fn accounts_and_regions_come_from_the_credential_scope() {
    let mut config = relayform_simulator::Config::many(0, 2);
    config.aws_accounts[0]
        .access_keys
        .push(relayform_simulator::config::AccessKeyConfig {
            access_key_id: "KEYONE".into(),
            secret_access_key: "s".into(),
        });
    let sim = start_with(config).await;
    let one = aws_sdk_eventbridge::Client::new(&sdk_config(&sim, "KEYONE", "eu-west-1", 1).await);
    // A 12-digit access key names an account directly.
    let two =
        aws_sdk_eventbridge::Client::new(&sdk_config(&sim, "100000000002", "eu-west-1", 1).await);
    let two_us =
        aws_sdk_eventbridge::Client::new(&sdk_config(&sim, "100000000002", "us-west-2", 1).await);
    one.create_event_bus().name("orders").send().await.unwrap();
    let arn = |c: aws_sdk_eventbridge::operation::describe_event_bus::DescribeEventBusOutput| {
        c.arn().unwrap().to_owned()
    };
    assert_eq!(
        arn(one
            .describe_event_bus()
            .name("orders")
            .send()
            .await
            .unwrap()),
        "arn:aws:events:eu-west-1:100000000001:event-bus/orders"
    );
    assert!(
        two.describe_event_bus()
            .name("orders")
            .send()
            .await
            .is_err()
    );
    two.create_event_bus().name("orders").send().await.unwrap();
    assert!(
        two_us
            .describe_event_bus()
            .name("orders")
            .send()
            .await
            .is_err()
    );
    let stranger =
        aws_sdk_eventbridge::Client::new(&sdk_config(&sim, "UNKNOWNKEY", "eu-west-1", 1).await);
    let e = stranger.list_event_buses().send().await.unwrap_err();
    assert_eq!(e.code(), Some("UnrecognizedClientException"));
    // LocalStack's and moto's keys are the default (lowest) account's: they see its bus.
    for key in ["test", "testing"] {
        let local = aws_sdk_eventbridge::Client::new(&sdk_config(&sim, key, "eu-west-1", 1).await);
        let bus = local.describe_event_bus().name("orders").send().await;
        assert_eq!(
            bus.unwrap().arn(),
            Some("arn:aws:events:eu-west-1:100000000001:event-bus/orders"),
            "{key}"
        );
    }
}

/// With `strict_access_keys: false`, any key is the default account's, as LocalStack and moto take
/// any key; by default (above) an unknown key is refused, as AWS refuses it.
#[tokio::test]
async fn unknown_access_keys_are_the_default_account_s_when_not_strict() {
    let mut config = relayform_simulator::Config::many(0, 2);
    config.settings.strict_access_keys = false;
    let sim = start_with(config).await;
    let anyone =
        aws_sdk_eventbridge::Client::new(&sdk_config(&sim, "AKIAANYTHING", "eu-west-1", 1).await);
    let made = anyone.create_event_bus().name("mine").send().await.unwrap();
    assert_eq!(
        made.event_bus_arn(),
        Some("arn:aws:events:eu-west-1:100000000001:event-bus/mine")
    );
}

/// Buses a → b → c, each rule forwarding everything to the next through one role.
async fn chain(sim: &relayform_simulator::Running) -> aws_sdk_eventbridge::Client {
    let eb = eventbridge(sim).await;
    let iam = iam(sim).await;
    iam.create_role()
        .role_name("fwd")
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .unwrap();
    let policy = serde_json::json!({"Statement": [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": "*"}]});
    iam.put_role_policy()
        .role_name("fwd")
        .policy_name("put")
        .policy_document(policy.to_string())
        .send()
        .await
        .unwrap();
    for bus in ["a", "b", "c"] {
        eb.create_event_bus().name(bus).send().await.unwrap();
    }
    for (from, to) in [("a", "b"), ("b", "c")] {
        eb.put_rule()
            .name("all")
            .event_bus_name(from)
            .event_pattern(r#"{"source":["app"]}"#)
            .send()
            .await
            .unwrap();
        let t = Target::builder()
            .id("next")
            .arn(format!("arn:aws:events:us-east-1:{ACCOUNT}:event-bus/{to}"))
            .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/fwd"))
            .build()
            .unwrap();
        eb.put_targets()
            .rule("all")
            .event_bus_name(from)
            .targets(t)
            .send()
            .await
            .unwrap();
    }
    let e = PutEventsRequestEntry::builder()
        .source("app")
        .detail_type("T")
        .detail("{}")
        .event_bus_name("a")
        .build();
    eb.put_events().entries(e).send().await.unwrap();
    eb
}

async fn received(sim: &relayform_simulator::Running, bus: &str) -> usize {
    let d = admin(
        sim,
        reqwest::Method::GET,
        &format!("/deliveries?bus={bus}&rule="),
        None,
    )
    .await;
    d["recent"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["rule"] == "")
        .count()
}

#[tokio::test]
async fn an_event_from_another_bus_is_not_routed_on_and_buses_with_rules_are_not_deleted() {
    let sim = start().await;
    let eb = chain(&sim).await;
    assert_eq!(
        (received(&sim, "b").await, received(&sim, "c").await),
        (1, 0)
    );
    let e = eb.delete_event_bus().name("b").send().await.unwrap_err();
    assert_eq!(e.code(), Some("ValidationException"));
    assert!(
        e.message().unwrap().contains("Delete its rules first"),
        "{e:?}"
    );
    eb.remove_targets()
        .rule("all")
        .event_bus_name("b")
        .ids("next")
        .send()
        .await
        .unwrap();
    eb.delete_rule()
        .name("all")
        .event_bus_name("b")
        .send()
        .await
        .unwrap();
    eb.delete_event_bus().name("b").send().await.unwrap();

    // The lenient readings, as settings.
    let mut config = relayform_simulator::Config::default();
    config.settings.bus_to_bus_hops = 2;
    config.settings.delete_bus_with_rules =
        relayform_simulator::config::DeleteBusWithRules::Cascade;
    let sim = start_with(config).await;
    let eb = chain(&sim).await;
    assert_eq!(received(&sim, "c").await, 1);
    eb.delete_event_bus().name("b").send().await.unwrap();
}

#[tokio::test]
async fn cross_region_and_cross_account_targets_need_the_receiver_s_policy() {
    let mut config = relayform_simulator::Config::default();
    config
        .aws_accounts
        .push(relayform_simulator::config::AccountConfig {
            account_id: "111122223333".into(),
            access_keys: Vec::new(),
            event_buses: Vec::new(),
        });
    let sim = start_with(config).await;
    let here = eventbridge(&sim).await;
    let west = aws_sdk_eventbridge::Client::new(
        &sdk_config(
            &sim,
            relayform_simulator::config::DEMO_ACCESS_KEY_ID,
            "us-west-2",
            1,
        )
        .await,
    );
    let other =
        aws_sdk_eventbridge::Client::new(&sdk_config(&sim, "111122223333", "us-east-1", 1).await);
    let iam = iam(&sim).await;
    iam.create_role()
        .role_name("fwd")
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .unwrap();
    let all = serde_json::json!({"Statement": [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": "*"}]});
    iam.put_role_policy()
        .role_name("fwd")
        .policy_name("put")
        .policy_document(all.to_string())
        .send()
        .await
        .unwrap();
    here.create_event_bus().name("src").send().await.unwrap();
    west.create_event_bus().name("sink").send().await.unwrap();
    other.create_event_bus().name("sink").send().await.unwrap();
    here.put_rule()
        .name("fwd")
        .event_bus_name("src")
        .event_pattern(r#"{"source":["app"]}"#)
        .send()
        .await
        .unwrap();
    for (id, arn) in [
        (
            "west",
            format!("arn:aws:events:us-west-2:{ACCOUNT}:event-bus/sink"),
        ),
        (
            "other",
            "arn:aws:events:us-east-1:111122223333:event-bus/sink".to_owned(),
        ),
    ] {
        let target = || {
            Target::builder()
                .id(id)
                .arn(&arn)
                .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/fwd"))
                .build()
                .unwrap()
        };
        let e = here
            .put_targets()
            .rule("fwd")
            .event_bus_name("src")
            .targets(target())
            .send()
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("AccessDeniedException"), "{id}");
        let receiver = if id == "west" { &west } else { &other };
        receiver
            .put_permission()
            .event_bus_name("sink")
            .action("events:PutEvents")
            .principal(ACCOUNT)
            .statement_id(format!("from-{ACCOUNT}"))
            .send()
            .await
            .unwrap();
        let policy = receiver
            .describe_event_bus()
            .name("sink")
            .send()
            .await
            .unwrap()
            .policy()
            .map(str::to_owned)
            .unwrap();
        assert!(
            policy.contains(&format!("arn:aws:iam::{ACCOUNT}:root")),
            "{policy}"
        );
        here.put_targets()
            .rule("fwd")
            .event_bus_name("src")
            .targets(target())
            .send()
            .await
            .unwrap();
    }
    let send = || async {
        let e = PutEventsRequestEntry::builder()
            .source("app")
            .detail_type("T")
            .detail("{}")
            .event_bus_name("src")
            .build();
        here.put_events().entries(e).send().await.unwrap();
    };
    send().await;
    let d = admin(
        &sim,
        reqwest::Method::GET,
        "/deliveries?bus=sink&rule=",
        None,
    )
    .await;
    assert_eq!(d["recent"].as_array().unwrap().len(), 2, "{d}");
    // Without the statement, events are no longer delivered: a failed invocation.
    west.remove_permission()
        .event_bus_name("sink")
        .statement_id(format!("from-{ACCOUNT}"))
        .send()
        .await
        .unwrap();
    send().await;
    let d = admin(&sim, reqwest::Method::GET, "/deliveries", None).await;
    let counters = &d["counters"][format!("{ACCOUNT}/us-east-1/src/fwd/west")];
    assert_eq!(
        (
            counters["invocations"].as_u64(),
            counters["failed_invocations"].as_u64()
        ),
        (Some(1), Some(1)),
        "{d}"
    );
}

#[tokio::test]
async fn a_log_group_target_keeps_events_once_its_policy_lets_eventbridge_write() {
    let sim = start().await;
    let eb = eventbridge(&sim).await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(
        &sdk_config(
            &sim,
            relayform_simulator::config::DEMO_ACCESS_KEY_ID,
            "us-east-1",
            1,
        )
        .await,
    );
    let group = "/aws/events/capture";
    logs.create_log_group()
        .log_group_name(group)
        .send()
        .await
        .unwrap();
    let dup = logs
        .create_log_group()
        .log_group_name(group)
        .send()
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Some("ResourceAlreadyExistsException"));
    let arn = format!("arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{group}");
    eb.create_event_bus().name("src").send().await.unwrap();
    eb.put_rule()
        .name("all")
        .event_bus_name("src")
        .event_pattern(r#"{"source":["app"]}"#)
        .send()
        .await
        .unwrap();
    eb.put_targets()
        .rule("all")
        .event_bus_name("src")
        .targets(Target::builder().id("logs").arn(&arn).build().unwrap())
        .send()
        .await
        .unwrap();
    let send = |n: &'static str| {
        let eb = eb.clone();
        async move {
            let e = PutEventsRequestEntry::builder()
                .source("app")
                .detail_type(n)
                .detail("{\"k\":1}")
                .event_bus_name("src")
                .build();
            eb.put_events().entries(e).send().await.unwrap();
        }
    };
    let messages = || async {
        logs.filter_log_events()
            .log_group_name(group)
            .send()
            .await
            .unwrap()
            .events()
            .iter()
            .map(|e| e.message().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    send("before-policy").await;
    assert!(
        messages().await.is_empty(),
        "no policy: EventBridge may not write"
    );
    let policy = serde_json::json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": format!("{arn}:*")}]});
    logs.put_resource_policy()
        .policy_name("events")
        .policy_document(policy.to_string())
        .send()
        .await
        .unwrap();
    send("after-policy").await;
    let got = messages().await;
    assert_eq!(got.len(), 1, "{got:?}");
    let env: serde_json::Value = serde_json::from_str(&got[0]).unwrap();
    assert_eq!(env["detail-type"], "after-policy");
    assert_eq!(env["detail"]["k"], 1);
    logs.delete_resource_policy()
        .policy_name("events")
        .send()
        .await
        .unwrap();
    logs.delete_log_group()
        .log_group_name(group)
        .send()
        .await
        .unwrap();
    let gone = logs
        .delete_log_group()
        .log_group_name(group)
        .send()
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Some("ResourceNotFoundException"));
}
