//! The two halves together: relay creation registers a partner source, association activates it, a
//! running relay delivers published events, rules forward them through a role, and the relay's state
//! machine (PAUSE, STOP, ERROR, EARLIEST/LATEST) behaves as Salesforce documents.

mod common;

use aws_sdk_eventbridge::error::ProvideErrorMetadata;
use common::*;
use relayform_simulator::config::{PendingDelivery, RecoveryMode, Settings};
use serde_json::{Value, json};

const ACCOUNT: &str = "000000000000";

struct World {
    sim: relayform_simulator::Running,
    sf: Sf,
    eb: aws_sdk_eventbridge::Client,
    relay: String,
    source: String,
}

/// NC, channel, member and relay over REST; the partner source appears after the configured delay,
/// and in AWS a little later. Default (strict) settings.
async fn relay_world(option: &str) -> World {
    relay_world_with(option, |_| {}).await
}

async fn relay_world_with(option: &str, settings: impl FnOnce(&mut Settings)) -> World {
    let mut config = relayform_simulator::Config::default();
    settings(&mut config.settings);
    let lag = config.settings.source_visibility_lag_seconds as i64 * 1000;
    let sim = start_with(config).await;
    let sf = Sf::login(&sim).await;
    let mut relay_body = fixture("1.3-relay-create.json");
    relay_body["Metadata"]["relayOption"] = json!(format!("{{\"ReplayRecovery\":\"{option}\"}}"));
    for (t, f) in [
        ("NamedCredential", "2.2-named-credential-create.json"),
        ("PlatformEventChannel", "3.1-channel-create.json"),
        (
            "PlatformEventChannelMember",
            "3.2-channel-member-create.json",
        ),
    ] {
        assert_eq!(
            sf.post(&format!("{V}/tooling/sobjects/{t}"), &fixture(f))
                .await
                .0,
            201
        );
    }
    let (_, r) = sf
        .post(
            &format!("{V}/tooling/sobjects/EventRelayConfig"),
            &relay_body,
        )
        .await;
    let relay = r["id"].as_str().unwrap().to_owned();
    let (_, fb) = sf
        .query(
            "SELECT RemoteResource, Status FROM EventRelayFeedback",
            false,
        )
        .await;
    assert_eq!(
        fb["records"][0]["RemoteResource"],
        Value::Null,
        "the source is not there at once"
    );
    sim.advance(2_000);
    let (_, fb) = sf
        .query(
            "SELECT RemoteResource, Status FROM EventRelayFeedback",
            false,
        )
        .await;
    let source = fb["records"][0]["RemoteResource"]
        .as_str()
        .expect("RemoteResource after the delay")
        .to_owned();
    let org = &sim.urls.orgs[0].1;
    let (_, ch) = sf.query("SELECT Id FROM PlatformEventChannel", true).await;
    assert_eq!(
        source,
        format!(
            "aws.partner/salesforce.com/{org}/{}",
            ch["records"][0]["Id"].as_str().unwrap()
        )
    );
    let eb = eventbridge(&sim).await;
    if lag > 0 {
        // Salesforce has filled RemoteResource; AWS does not know the source yet.
        let e = eb
            .create_event_bus()
            .name(&source)
            .event_source_name(&source)
            .send()
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("ResourceNotFoundException"));
        sim.advance(lag);
    }
    World {
        sim,
        sf,
        eb,
        relay,
        source,
    }
}

impl World {
    /// Sets the relay's state with a full definition: the record's Metadata with a new state.
    async fn set_state(&self, state: &str) {
        let url = format!("{V}/tooling/sobjects/EventRelayConfig/{}", self.relay);
        let (_, rec) = self.sf.get(&url).await;
        let mut meta = rec["Metadata"].clone();
        meta["state"] = json!(state);
        let (s, e) = self
            .sf
            .patch(
                &url,
                &json!({"FullName": rec["FullName"], "Metadata": meta}),
            )
            .await;
        assert_eq!(s, 204, "{e}");
        self.sim.advance(1_000);
    }

    async fn status(&self) -> (String, Value) {
        let (_, fb) = self
            .sf
            .query(
                "SELECT Status, ErrorCode, LastRelayedEventTime FROM EventRelayFeedback",
                false,
            )
            .await;
        (
            fb["records"][0]["Status"].as_str().unwrap().to_owned(),
            fb["records"][0]["ErrorCode"].clone(),
        )
    }

    async fn publish(&self, id: &str) {
        let (s, r) = self
            .sf
            .post(
                &format!("{V}/sobjects/Order_Placed__e"),
                &json!({"Order_Id__c": id}),
            )
            .await;
        assert_eq!(s, 201, "{r}");
    }

    /// Order ids that arrived on a bus, in order.
    async fn arrived(&self, bus: &str) -> Vec<String> {
        let d = admin(
            &self.sim,
            reqwest::Method::GET,
            &format!("/deliveries?bus={bus}&rule="),
            None,
        )
        .await;
        d["recent"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["rule"] == "" && x["outcome"] == "delivered")
            .map(|x| {
                x["event"]["detail"]["payload"]["Order_Id__c"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect()
    }

    async fn associate(&self) {
        self.eb
            .create_event_bus()
            .name(&self.source)
            .event_source_name(&self.source)
            .send()
            .await
            .unwrap();
    }
}

async fn forwarding(w: &World, rule: &str, policy_account: &str) {
    let iam = iam(&w.sim).await;
    let role = format!("fwd-{rule}");
    iam.create_role()
        .role_name(&role)
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .unwrap();
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": format!("arn:aws:events:us-east-1:{policy_account}:event-bus/orders")}]});
    iam.put_role_policy()
        .role_name(&role)
        .policy_name("put")
        .policy_document(policy.to_string())
        .send()
        .await
        .unwrap();
    let _ = w.eb.create_event_bus().name("orders").send().await;
    let pattern =
        r#"{"source":[{"prefix":"aws.partner/salesforce.com"}],"detail-type":["Order_Placed__e"]}"#;
    w.eb.put_rule()
        .name(rule)
        .event_bus_name(&w.source)
        .event_pattern(pattern)
        .send()
        .await
        .unwrap();
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id("orders")
        .arn(format!(
            "arn:aws:events:us-east-1:{ACCOUNT}:event-bus/orders"
        ))
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/{role}"))
        .build()
        .unwrap();
    w.eb.put_targets()
        .rule(rule)
        .event_bus_name(&w.source)
        .targets(target)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn an_event_travels_from_salesforce_to_the_destination_bus() {
    let w = relay_world("LATEST").await;
    let d =
        w.eb.describe_event_source()
            .name(&w.source)
            .send()
            .await
            .unwrap();
    assert_eq!(
        d.state(),
        Some(&aws_sdk_eventbridge::types::EventSourceState::Pending)
    );
    w.associate().await;
    forwarding(&w, "to-orders", ACCOUNT).await;
    w.set_state("RUN").await;
    assert_eq!(w.status().await.0, "RUNNING");
    w.publish("o-1").await;

    let d = admin(&w.sim, reqwest::Method::GET, "/deliveries?bus=orders", None).await;
    let envelope = &d["recent"][0]["event"];
    assert_eq!(envelope["source"], w.source.as_str());
    assert_eq!(envelope["detail-type"], "Order_Placed__e");
    assert_eq!(envelope["detail"]["payload"]["Order_Id__c"], "o-1");
    assert_eq!(envelope["account"], ACCOUNT);
    assert_eq!(envelope["version"], "0");
    let counters = &d["counters"][format!("{ACCOUNT}/us-east-1/{}/to-orders/orders", w.source)];
    assert_eq!(
        (
            counters["invocations"].as_u64(),
            counters["failed_invocations"].as_u64()
        ),
        (Some(1), Some(0))
    );
    let (_, fb) =
        w.sf.query("SELECT LastRelayedEventTime FROM EventRelayFeedback", false)
            .await;
    assert!(fb["records"][0]["LastRelayedEventTime"].is_string());
}

#[tokio::test]
async fn a_role_for_the_wrong_account_drops_the_event_and_counts_a_failure() {
    let w = relay_world("LATEST").await;
    w.associate().await;
    forwarding(&w, "wrong-account", "999999999999").await;
    w.set_state("RUN").await;
    w.publish("o-1").await;
    assert!(w.arrived("orders").await.is_empty(), "dropped silently");
    assert_eq!(
        w.arrived(&w.source).await,
        ["o-1"],
        "but it reached the partner bus"
    );
    let d = admin(&w.sim, reqwest::Method::GET, "/deliveries", None).await;
    let counters = &d["counters"][format!("{ACCOUNT}/us-east-1/{}/wrong-account/orders", w.source)];
    assert_eq!(
        (
            counters["invocations"].as_u64(),
            counters["failed_invocations"].as_u64()
        ),
        (Some(0), Some(1))
    );

    // A role that does not trust EventBridge fails the same way.
    let iam = iam(&w.sim).await;
    iam.update_assume_role_policy()
        .role_name("fwd-wrong-account")
        .policy_document(TRUST.replace("events.amazonaws.com", "lambda.amazonaws.com"))
        .send()
        .await
        .unwrap();
    let policy =
        json!({"Statement": [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": "*"}]});
    iam.put_role_policy()
        .role_name("fwd-wrong-account")
        .policy_name("put")
        .policy_document(policy.to_string())
        .send()
        .await
        .unwrap();
    w.publish("o-2").await;
    assert!(w.arrived("orders").await.is_empty());
}

#[tokio::test]
async fn members_added_later_are_relayed() {
    let w = relay_world("LATEST").await;
    w.associate().await;
    w.set_state("RUN").await;
    w.publish("1").await;
    let (s, _) = w.sf.post(&format!("{V}/tooling/sobjects/PlatformEventChannelMember"), &json!({"FullName": "Carbon_Comparison_Channel_chn_Order_Shipped_e", "Metadata": {"eventChannel": "Carbon_Comparison_Channel__chn", "selectedEntity": "Order_Shipped__e"}})).await;
    assert_eq!(s, 201);
    let (s, _) =
        w.sf.post(
            &format!("{V}/sobjects/Order_Shipped__e"),
            &json!({"Order_Id__c": "2"}),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(w.arrived(&w.source).await, ["1", "2"]);
}

#[tokio::test]
async fn running_before_association_loses_the_events_while_salesforce_reports_running() {
    let w = relay_world("EARLIEST").await;
    w.set_state("RUN").await;
    let (status, code) = w.status().await;
    assert_eq!((status.as_str(), code), ("RUNNING", Value::Null));
    w.publish("before-association").await;
    w.associate().await;
    w.publish("after").await;
    assert_eq!(w.arrived(&w.source).await, ["after"]);
    let d = admin(&w.sim, reqwest::Method::GET, "/deliveries", None).await;
    let dropped: Vec<&Value> = d["recent"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["outcome"].as_str().unwrap().starts_with("dropped"))
        .collect();
    assert_eq!(dropped.len(), 1);
    assert_eq!(
        dropped[0]["event"]["detail"]["payload"]["Order_Id__c"],
        "before-association"
    );
}

#[tokio::test]
async fn running_before_association_can_be_an_error_that_clears_when_associated() {
    let w = relay_world_with("LATEST", |s| {
        s.pending_source_delivery = PendingDelivery::Error;
        s.recovery_mode = RecoveryMode::Resume;
    })
    .await;
    w.set_state("RUN").await;
    let (status, code) = w.status().await;
    assert_eq!(status, "ERROR");
    assert_eq!(
        code,
        "sfdc.platform.eventbus.relay.aws.partner.eventsource.connect.error"
    );
    w.publish("during-error").await;
    w.associate().await;
    assert_eq!(w.status().await.0, "RUNNING");
    // It resumes after the last delivered event: nothing was delivered before, so from where it began.
    assert_eq!(w.arrived(&w.source).await, ["during-error"]);
}

#[tokio::test]
async fn pause_keeps_the_position_and_stop_discards_it() {
    let w = relay_world("LATEST").await;
    w.associate().await;
    w.set_state("RUN").await;
    w.publish("1").await;
    w.set_state("PAUSE").await;
    assert_eq!(w.status().await.0, "PAUSED");
    w.publish("2").await;
    assert_eq!(w.arrived(&w.source).await, ["1"]);
    w.set_state("RUN").await;
    assert_eq!(
        w.arrived(&w.source).await,
        ["1", "2"],
        "PAUSE → RUN continues after the last relayed event"
    );
    w.set_state("STOP").await;
    w.publish("3").await;
    w.set_state("RUN").await;
    w.publish("4").await;
    assert_eq!(
        w.arrived(&w.source).await,
        ["1", "2", "4"],
        "STOP → RUN relays only new events"
    );
}

#[tokio::test]
async fn recovery_after_retention_follows_the_relay_option() {
    // While the source is away, "2" is published and then expires undelivered; "3" is still retained
    // when the relay recovers. The relay cannot resume right after "1", so the option decides.
    for (option, expected) in [
        ("EARLIEST", vec!["1", "3", "4"]),
        ("LATEST", vec!["1", "4"]),
    ] {
        let mut w = relay_world_with(option, |s| {
            s.pending_source_delivery = PendingDelivery::Error;
            s.recovery_mode = RecoveryMode::Resume;
        })
        .await;
        w.associate().await;
        w.set_state("RUN").await;
        w.publish("1").await;
        w.eb.deactivate_event_source()
            .name(&w.source)
            .send()
            .await
            .unwrap();
        w.publish("2").await;
        w.sim.advance(40 * 3600 * 1000);
        // Sessions do not last that long either.
        w.sf = Sf::login(&w.sim).await;
        w.publish("3").await;
        w.sim.advance(40 * 3600 * 1000);
        w.sf = Sf::login(&w.sim).await;
        assert_eq!(w.status().await.0, "ERROR");
        w.eb.activate_event_source()
            .name(&w.source)
            .send()
            .await
            .unwrap();
        w.publish("4").await;
        assert_eq!(w.arrived(&w.source).await, expected, "{option}");
    }
}

#[tokio::test]
async fn after_a_short_outage_the_recovery_mode_decides_what_is_relayed() {
    // (mode, option, what arrives): `resume` continues after the last relayed event; `option_only`
    // (the default) lets the option decide: LATEST skips what was published meanwhile, EARLIEST
    // starts again from the oldest retained event.
    for (mode, option, expected) in [
        (RecoveryMode::Resume, "LATEST", vec!["1", "2"]),
        (RecoveryMode::OptionOnly, "LATEST", vec!["1"]),
        (RecoveryMode::OptionOnly, "EARLIEST", vec!["1", "1", "2"]),
    ] {
        let w = relay_world_with(option, |s| {
            s.pending_source_delivery = PendingDelivery::Error;
            s.recovery_mode = mode;
        })
        .await;
        w.associate().await;
        w.set_state("RUN").await;
        w.publish("1").await;
        w.eb.deactivate_event_source()
            .name(&w.source)
            .send()
            .await
            .unwrap();
        w.publish("2").await;
        assert_eq!(w.status().await.0, "ERROR");
        w.eb.activate_event_source()
            .name(&w.source)
            .send()
            .await
            .unwrap();
        assert_eq!(w.status().await.0, "RUNNING");
        assert_eq!(w.arrived(&w.source).await, expected, "{mode:?} {option}");
    }
}

#[tokio::test]
async fn injected_errors_recover_by_themselves() {
    for (mode, expected) in [
        (RecoveryMode::Resume, vec!["1"]),
        (RecoveryMode::OptionOnly, vec![]),
    ] {
        let w = relay_world_with("LATEST", |s| s.recovery_mode = mode).await;
        w.associate().await;
        w.set_state("RUN").await;
        let org = w.sim.urls.orgs[0].1.clone();
        admin(&w.sim, reqwest::Method::POST, &format!("/orgs/{org}/relays/{}/error", w.relay), Some(json!({"code": "sfdc.platform.eventbus.relay.event.delivery.limit.error", "recover_after_seconds": 30}))).await;
        let (status, code) = w.status().await;
        assert_eq!(
            (status.as_str(), code.as_str()),
            (
                "ERROR",
                Some("sfdc.platform.eventbus.relay.event.delivery.limit.error")
            )
        );
        w.publish("1").await;
        assert!(w.arrived(&w.source).await.is_empty());
        w.sim.advance(30_000);
        assert_eq!(w.status().await.0, "RUNNING");
        w.publish("2").await;
        let mut expected = expected.clone();
        expected.push("2");
        assert_eq!(w.arrived(&w.source).await, expected, "{mode:?}");
    }
}

#[tokio::test]
async fn an_unknown_account_puts_the_relay_in_error_and_deleting_it_deletes_the_source() {
    let w = relay_world("LATEST").await;
    // A second relay whose credential names an account the simulator does not know.
    let nc = json!({"FullName": "Elsewhere", "Metadata": {"endpoint": "arn:aws:US-EAST-1:123456789012", "label": "x", "principalType": "NamedUser", "protocol": "NoAuthentication"}});
    assert_eq!(
        w.sf.post(&format!("{V}/tooling/sobjects/NamedCredential"), &nc)
            .await
            .0,
        201
    );
    w.sf.post(
        &format!("{V}/tooling/sobjects/PlatformEventChannel"),
        &json!({"FullName": "Other__chn", "Metadata": {"channelType": "event"}}),
    )
    .await;
    let (_, r) = w.sf.post(&format!("{V}/tooling/sobjects/EventRelayConfig"), &json!({"FullName": "Lost", "Metadata": {"destinationResourceName": "callout:Elsewhere", "eventChannel": "Other__chn"}})).await;
    let lost = r["id"].as_str().unwrap().to_owned();
    w.sim.advance(2_000);
    let (_, fb) = w.sf.query(&format!("SELECT Status, ErrorCode FROM EventRelayFeedback WHERE EventRelayConfigId = '{lost}'"), false).await;
    assert_eq!(fb["records"][0]["Status"], "ERROR");
    assert_eq!(
        fb["records"][0]["ErrorCode"],
        "sfdc.platform.eventbus.relay.aws.partner.eventsource.invalid"
    );

    w.associate().await;
    assert_eq!(
        w.sf.delete(&format!(
            "{V}/tooling/sobjects/EventRelayConfig/{}",
            w.relay
        ))
        .await
        .0,
        204
    );
    let d =
        w.eb.describe_event_source()
            .name(&w.source)
            .send()
            .await
            .unwrap();
    assert_eq!(
        d.state(),
        Some(&aws_sdk_eventbridge::types::EventSourceState::Deleted)
    );
}

#[tokio::test]
async fn the_journal_counts_calls_per_operation_org_and_account() {
    let w = relay_world("LATEST").await;
    w.associate().await;
    let j = admin(
        &w.sim,
        reqwest::Method::GET,
        "/journal?api=salesforce&operation=tooling.create",
        None,
    )
    .await;
    assert_eq!(j["count"], 4);
    let objects: Vec<&str> = j["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["object"].as_str().unwrap())
        .collect();
    assert_eq!(
        objects,
        [
            "NamedCredential",
            "PlatformEventChannel",
            "PlatformEventChannelMember",
            "EventRelayConfig"
        ]
    );
    let org = &w.sim.urls.orgs[0].1;
    let j = admin(
        &w.sim,
        reqwest::Method::GET,
        &format!("/journal?org={org}"),
        None,
    )
    .await;
    assert!(j["count"].as_u64().unwrap() >= 6);
    let j = admin(
        &w.sim,
        reqwest::Method::GET,
        &format!("/journal?account={ACCOUNT}&operation=CreateEventBus"),
        None,
    )
    .await;
    // The first try came before the source was visible in AWS.
    let statuses: Vec<u64> = j["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [400, 200]);
    assert_eq!(j["entries"][1]["region"], "us-east-1");
}

#[tokio::test]
async fn a_member_s_filter_expression_keeps_what_does_not_match_from_the_relay() {
    let w = relay_world("LATEST").await;
    w.associate().await;
    w.set_state("RUN").await;
    // The member of Order_Placed__e, filtered to one order id (a full-definition PATCH).
    let (_, m) =
        w.sf.query(
            "SELECT Id FROM PlatformEventChannelMember WHERE SelectedEntity = 'Order_Placed__e'",
            true,
        )
        .await;
    let member = m["records"][0]["Id"].as_str().unwrap().to_owned();
    let url = format!("{V}/tooling/sobjects/PlatformEventChannelMember/{member}");
    let (_, rec) = w.sf.get(&url).await;
    let mut meta = rec["Metadata"].clone();
    meta["filterExpression"] = json!("Order_Id__c = 'keep' OR Order_Id__c LIKE 'k%'");
    let (s, e) =
        w.sf.patch(
            &url,
            &json!({"FullName": rec["FullName"], "Metadata": meta}),
        )
        .await;
    assert_eq!(s, 204, "{e}");
    for id in ["keep", "drop", "kept"] {
        w.publish(id).await;
    }
    assert_eq!(w.arrived(&w.source).await, ["keep", "kept"]);
    // A filter over a field the event does not have, or that does not parse, is refused.
    let deep = format!("{}Order_Id__c = 'x'{}", "(".repeat(5000), ")".repeat(5000));
    let long = format!("Order_Id__c = '{}'", "x".repeat(2000));
    for bad in ["Nope__c = 1", "Order_Id__c =", deep.as_str(), long.as_str()] {
        let mut meta = rec["Metadata"].clone();
        meta["filterExpression"] = json!(bad);
        let (s, e) =
            w.sf.patch(
                &url,
                &json!({"FullName": rec["FullName"], "Metadata": meta}),
            )
            .await;
        assert_eq!(
            (s, e[0]["errorCode"].as_str()),
            (400, Some("FIELD_INTEGRITY_EXCEPTION")),
            "{}: {e}",
            &bad[..bad.len().min(40)]
        );
    }
}

/// `max_journal_entries` bounds the journal: the newest calls are kept, the older ones counted.
#[tokio::test]
async fn the_journal_keeps_at_most_max_journal_entries_and_counts_the_rest() {
    let w = relay_world_with("LATEST", |s| s.max_journal_entries = 5).await;
    w.associate().await;
    let (kept, dropped, seqs, last) = w.sim.with_world(|world, _| {
        let seqs: Vec<u64> = world.journal.entries.iter().map(|e| e.seq).collect();
        let last = world
            .journal
            .entries
            .back()
            .map(|e| e.operation.to_string());
        (
            world.journal.entries.len(),
            world.journal.dropped,
            seqs,
            last,
        )
    });
    assert_eq!(kept, 5);
    assert_eq!(last.as_deref(), Some("CreateEventBus"));
    assert!(dropped > 0, "the world's setup made more than 5 calls");
    // The newest, in order.
    assert!(seqs.windows(2).all(|p| p[0] < p[1]), "{seqs:?}");
    let j = admin(&w.sim, reqwest::Method::GET, "/journal", None).await;
    assert_eq!(j["count"], 5);
    assert_eq!(j["dropped"], dropped);
}

/// `max_events_per_org` bounds what an org keeps of its published events: the oldest go first, as
/// past retention.
#[tokio::test]
async fn an_org_keeps_at_most_max_events_per_org() {
    let w = relay_world_with("EARLIEST", |s| s.max_events_per_org = 3).await;
    for id in ["o-1", "o-2", "o-3", "o-4", "o-5"] {
        w.publish(id).await;
    }
    let kept: Vec<String> = w.sim.with_world(|world, _| {
        world
            .orgs
            .values()
            .flat_map(|o| o.events.iter())
            .map(|e| {
                e.payload["Order_Id__c"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    });
    assert_eq!(kept, ["o-3", "o-4", "o-5"]);
}
