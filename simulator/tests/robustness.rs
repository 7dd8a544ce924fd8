//! Bad input gets the vendor's error, never a panic or a 500; state survives restarts; faults fire as
//! configured; many clients are served at once.

mod common;

use common::*;
use serde_json::{Value, json};

async fn raw(
    sim: &relayform_simulator::Running,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .request(method.parse().unwrap(), format!("{}{path}", sim.base_url()))
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

const SIGV4_EVENTS: &str = "AWS4-HMAC-SHA256 Credential=SIMDEMOACCESSKEY0000/20261128/us-east-1/events/aws4_request, SignedHeaders=host, Signature=0";
const SIGV4_IAM: &str = "AWS4-HMAC-SHA256 Credential=SIMDEMOACCESSKEY0000/20261128/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0";

#[tokio::test]
async fn malformed_requests_get_vendor_errors() {
    let sim = start().await;
    let events = |target: &'static str| {
        vec![
            ("x-amz-target", target),
            ("authorization", SIGV4_EVENTS),
            ("content-type", "application/x-amz-json-1.1"),
        ]
    };
    let (s, b) = raw(
        &sim,
        "POST",
        "/",
        &events("AWSEvents.CreateEventBus"),
        b"{not json".to_vec(),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&b).unwrap()["__type"],
        "SerializationException"
    );
    let (s, b) = raw(
        &sim,
        "POST",
        "/",
        &events("AWSEvents.CreateEventBus"),
        b"[1,2]".to_vec(),
    )
    .await;
    assert_eq!(
        (
            s,
            serde_json::from_str::<Value>(&b).unwrap()["__type"].as_str()
        ),
        (400, Some("SerializationException"))
    );
    let (s, b) = raw(
        &sim,
        "POST",
        "/",
        &events("AWSEvents.LaunchRocket"),
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(
        (
            s,
            serde_json::from_str::<Value>(&b).unwrap()["__type"].as_str()
        ),
        (400, Some("UnknownOperationException"))
    );
    let (s, b) = raw(
        &sim,
        "POST",
        "/",
        &[("x-amz-target", "AWSEvents.ListEventBuses")],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(s, 403, "{b}");
    assert!(b.contains("MissingAuthenticationToken"));

    let iam = vec![
        ("authorization", SIGV4_IAM),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let (s, b) = raw(
        &sim,
        "POST",
        "/",
        &iam,
        b"Action=Frobnicate&Version=2010-05-08".to_vec(),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        b.starts_with("<ErrorResponse") && b.contains("<Code>InvalidAction</Code>"),
        "{b}"
    );
    let (s, b) = raw(&sim, "POST", "/", &iam, vec![0xff, 0xfe, b'&', b'=', b'%']).await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = raw(
        &sim,
        "POST",
        "/",
        &iam,
        b"Action=GetRole&Version=2010-05-08".to_vec(),
    )
    .await;
    assert_eq!(s, 400);
    assert!(b.contains("<Code>ValidationError</Code>"), "{b}");

    let sf = Sf::login(&sim).await;
    let (s, e) = sf
        .query("SELECT Id FROM EventRelayConfig WHERE (", true)
        .await;
    assert_eq!(
        (s, e[0]["errorCode"].as_str()),
        (400, Some("MALFORMED_QUERY"))
    );
    let (s, e) = sf.get(&format!("{V}/tooling/query")).await;
    assert_eq!(
        (s, e[0]["errorCode"].as_str()),
        (400, Some("MALFORMED_QUERY"))
    );
    let (s, e) = sf.get("/services/nothing/here").await;
    assert_eq!((s, e[0]["errorCode"].as_str()), (404, Some("NOT_FOUND")));
    let big = vec![b'a'; 2 << 20];
    let (s, _) = raw(
        &sim,
        "POST",
        "/services/data/v59.0/sobjects/Order_Placed__e",
        &[],
        big,
    )
    .await;
    assert_eq!(s, 413);

    // Nothing above, nor any of these, is a 500.
    for (m, p) in [
        ("GET", "/"),
        ("PUT", "/"),
        ("GET", "/sf/nope/services/data/v59.0"),
        ("DELETE", "/services/data/v59.0/query"),
        ("GET", "/_sim/nothing"),
        ("POST", "/services/oauth2/token"),
    ] {
        let (s, b) = raw(&sim, m, p, &[], Vec::new()).await;
        assert!(s < 500, "{m} {p}: {s} {b}");
    }
}

#[tokio::test]
async fn no_data_without_a_token_or_signature() {
    let sim = start().await;
    let sf = Sf::login(&sim).await;
    create_relay_objects(&sf).await;
    let forged = Sf {
        token: format!("{}!forged", &sim.urls.orgs[0].1[..15]),
        http: sf.http.clone(),
        instance: sf.instance.clone(),
    };
    assert_eq!(
        forged
            .query("SELECT Id FROM EventRelayConfig", true)
            .await
            .0,
        401
    );
    let (s, b) = raw(
        &sim,
        "POST",
        "/",
        &[("x-amz-target", "AWSEvents.ListEventSources")],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(s, 403, "{b}");
    // A token of one org does not open another org's instance URL.
    let mut config = relayform_simulator::Config::many(2, 1);
    config.orgs[1].connected_apps[0].client_id = "org2-app".into();
    let two = start_with(config).await;
    let http = reqwest::Client::new();
    let tok: Value = http
        .post(format!(
            "{}/services/oauth2/token",
            two.instance_url("org1").unwrap()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "relayform-org1-client"),
            ("client_secret", "relayform-demo-secret"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = http
        .get(format!(
            "{}/services/data/v59.0",
            two.instance_url("org2").unwrap()
        ))
        .bearer_auth(tok["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test]
async fn many_clients_at_once() {
    let sim = start().await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let conf = sdk_config(
            &sim,
            relayform_simulator::config::DEMO_ACCESS_KEY_ID,
            "us-east-1",
            1,
        )
        .await;
        tasks.push(tokio::spawn(async move {
            let eb = aws_sdk_eventbridge::Client::new(&conf);
            for j in 0..10 {
                eb.create_event_bus()
                    .name(format!("bus-{i}-{j}"))
                    .send()
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let eb = eventbridge(&sim).await;
    assert_eq!(
        eb.list_event_buses()
            .name_prefix("bus-")
            .limit(100)
            .send()
            .await
            .unwrap()
            .event_buses()
            .len(),
        100
    );
    assert_eq!(calls(&sim, "CreateEventBus").await, 240);
}

#[tokio::test]
async fn state_survives_a_restart_and_a_corrupt_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sim").join("state.json");
    let options = || relayform_simulator::Options {
        state_file: Some(file.clone()),
        ..Default::default()
    };
    let sim = relayform_simulator::start(options()).await.unwrap();
    let sf = Sf::login(&sim).await;
    let (_, _, _, relay) = create_relay_objects(&sf).await;
    eventbridge(&sim)
        .await
        .create_event_bus()
        .name("orders")
        .send()
        .await
        .unwrap();
    // A second simulator on the same state file is refused while the first runs.
    let second = relayform_simulator::start(options())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        second.contains("is in use by another simulator"),
        "{second}"
    );
    sim.shutdown().await.unwrap();
    assert!(file.exists());
    let leftovers: Vec<_> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert_eq!(
        leftovers.len(),
        2,
        "the state file and its pack, no temporary files: {leftovers:?}"
    );
    assert!(
        leftovers.iter().any(|n| n.starts_with("state.json.pack-")),
        "{leftovers:?}"
    );

    let again = relayform_simulator::start(options()).await.unwrap();
    // Same world (a new port, so a new instance URL): the old token, the relay and the bus are there.
    let sf2 = Sf {
        instance: again.instance_url("demo").unwrap(),
        ..sf
    };
    let (s, r) = sf2
        .get(&format!("{V}/tooling/sobjects/EventRelayConfig/{relay}"))
        .await;
    assert_eq!(
        (s, r["DeveloperName"].as_str()),
        (200, Some("Carbon_Comparison_Relay"))
    );
    assert!(
        eventbridge(&again)
            .await
            .describe_event_bus()
            .name("orders")
            .send()
            .await
            .is_ok()
    );
    assert!(
        calls(&again, "tooling.create").await >= 4,
        "the journal survives too"
    );
    again.shutdown().await.unwrap();

    std::fs::write(&file, "{\"format\": 1, \"clock\": ").unwrap();
    let err = relayform_simulator::start(options())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("corrupt") && err.contains("state.json"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "{\"format\": 1, \"clock\": ",
        "never silently replaced"
    );
}

#[tokio::test]
async fn faults_fire_as_configured() {
    let sim = start().await;
    let sf = Sf::login(&sim).await;
    // An error, in Salesforce's shape, on one operation and object only.
    admin(&sim, reqwest::Method::POST, "/faults", Some(json!({"api": "salesforce", "operation": "tooling.create:EventRelayConfig", "action": {"type": "error", "status": 503, "code": "SERVER_UNAVAILABLE", "message": "try later"}, "when": {"type": "next", "n": 1}}))).await;
    for (t, f) in [
        ("NamedCredential", "2.2-named-credential-create.json"),
        ("PlatformEventChannel", "3.1-channel-create.json"),
    ] {
        assert_eq!(
            sf.post(&format!("{V}/tooling/sobjects/{t}"), &fixture(f))
                .await
                .0,
            201
        );
    }
    let (s, e) = sf
        .post(
            &format!("{V}/tooling/sobjects/EventRelayConfig"),
            &fixture("1.3-relay-create.json"),
        )
        .await;
    assert_eq!(
        (s, e[0]["errorCode"].as_str()),
        (503, Some("SERVER_UNAVAILABLE"))
    );
    assert_eq!(
        sf.query("SELECT Id FROM EventRelayConfig", true).await.1["totalSize"],
        0,
        "a refused call changes nothing"
    );
    assert_eq!(
        sf.post(
            &format!("{V}/tooling/sobjects/EventRelayConfig"),
            &fixture("1.3-relay-create.json")
        )
        .await
        .0,
        201
    );

    // A lost response: the change is made, the client sees a failure.
    admin(&sim, reqwest::Method::POST, "/faults", Some(json!({"operation": "CreateEventBus", "action": {"type": "lose_response"}, "when": {"type": "call", "k": 1}}))).await;
    let eb = eventbridge(&sim).await;
    assert!(eb.create_event_bus().name("orders").send().await.is_err());
    assert!(
        eb.describe_event_bus().name("orders").send().await.is_ok(),
        "the bus was created"
    );
    let journal = admin(
        &sim,
        reqwest::Method::GET,
        "/journal?operation=CreateEventBus",
        None,
    )
    .await;
    assert_eq!(journal["entries"][0]["fault"], "lose_response");

    // Latency, in real time.
    admin(&sim, reqwest::Method::POST, "/faults", Some(json!({"api": "aws", "operation": "ListEventBuses", "action": {"type": "latency", "ms": 150}}))).await;
    let t = std::time::Instant::now();
    eb.list_event_buses().send().await.unwrap();
    assert!(t.elapsed() >= std::time::Duration::from_millis(150));
    let faults = admin(&sim, reqwest::Method::GET, "/faults", None).await;
    assert_eq!(faults["faults"].as_array().unwrap().len(), 3);
    admin(&sim, reqwest::Method::DELETE, "/faults", None).await;
    assert!(
        admin(&sim, reqwest::Method::GET, "/faults", None).await["faults"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Per account: only the named account's calls fail.
    admin(&sim, reqwest::Method::POST, "/faults", Some(json!({"account": "999999999999", "action": {"type": "error", "status": 500, "code": "InternalException", "message": "boom"}}))).await;
    assert!(eb.list_event_buses().send().await.is_ok());
}

#[tokio::test]
async fn admin_reset_state_and_clock() {
    let sim = start().await;
    eventbridge(&sim)
        .await
        .create_event_bus()
        .name("orders")
        .send()
        .await
        .unwrap();
    let state = admin(&sim, reqwest::Method::GET, "/state", None).await;
    assert!(
        state["world"]["accounts"]["000000000000"]["regions"]["us-east-1"]["buses"]["orders"]
            .is_object()
    );
    let before = admin(&sim, reqwest::Method::GET, "/clock", None).await["now"]
        .as_i64()
        .unwrap();
    let after = admin(
        &sim,
        reqwest::Method::POST,
        "/clock/advance",
        Some(json!({"seconds": 90})),
    )
    .await["now"]
        .as_i64()
        .unwrap();
    assert_eq!(after - before, 90_000);
    admin(&sim, reqwest::Method::POST, "/reset", None).await;
    assert!(
        eventbridge(&sim)
            .await
            .describe_event_bus()
            .name("orders")
            .send()
            .await
            .is_err()
    );
    let index = admin(&sim, reqwest::Method::GET, "", None).await;
    assert_eq!(
        index["orgs"][0]["instance_url"],
        sim.instance_url("demo").unwrap()
    );
}

/// `aws_requests_per_second`: each service of an account and region takes that many requests a
/// second (a bucket holding a second's worth), then answers in the service's throttling shape; other
/// regions and services have buckets of their own, and a bucket fills again with time.
#[tokio::test]
async fn an_aws_request_quota_throttles_per_account_and_region() {
    use aws_sdk_eventbridge::error::ProvideErrorMetadata;
    let mut config = relayform_simulator::config::Config::default();
    config.settings.aws_requests_per_second = Some(5);
    let sim = start_with(config).await;
    let key = relayform_simulator::config::DEMO_ACCESS_KEY_ID;
    let east = aws_sdk_eventbridge::Client::new(&sdk_config(&sim, key, "us-east-1", 1).await);
    let west = aws_sdk_eventbridge::Client::new(&sdk_config(&sim, key, "us-west-2", 1).await);
    let iam = aws_sdk_iam::Client::new(&sdk_config(&sim, key, "us-east-1", 1).await);
    let (mut ok, mut throttled) = (0, 0);
    let started = std::time::Instant::now();
    for _ in 0..20 {
        match east.list_event_buses().send().await {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_eq!(e.code(), Some("ThrottlingException"), "{e:?}");
                throttled += 1;
            }
        }
    }
    // Five in the bucket, and what trickled in meanwhile (5 a second); the rest throttled.
    let trickled = (started.elapsed().as_secs_f64() * 5.0).ceil() as usize;
    assert!(
        ok >= 5 && ok <= 5 + trickled && throttled > 0,
        "{ok} of 20 answered, {throttled} throttled, in {:?}",
        started.elapsed()
    );
    // Each service has its own quota: IAM's bucket is full; emptied, it answers in its own shape.
    let mut iam_throttled = None;
    for _ in 0..50 {
        if let Err(e) = iam.list_roles().send().await {
            iam_throttled = Some(e.code().map(str::to_owned));
            break;
        }
    }
    assert_eq!(iam_throttled, Some(Some("Throttling".to_owned())));
    // Another region has a bucket of its own.
    west.list_event_buses().send().await.unwrap();
    // The bucket fills again.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    east.list_event_buses().send().await.unwrap();
    // The journal says why.
    let quota = sim.with_world(|w, _| {
        w.journal
            .entries
            .iter()
            .filter(|e| e.fault.as_deref() == Some("quota"))
            .count()
    });
    assert_eq!(quota, throttled + 1);
}

/// AWS reads leave an account as it was, so the next save need not write it again: a fleet's plan
/// once made every save rewrite (and copy) all of an account's buses, because reads borrowed the
/// account to change it.
#[tokio::test]
async fn aws_reads_leave_the_account_unchanged_for_the_next_save() {
    let dir = tempfile::tempdir().unwrap();
    let sim = relayform_simulator::start(relayform_simulator::Options {
        state_file: Some(dir.path().join("state.json")),
        ..Default::default()
    })
    .await
    .unwrap();
    let (eb, iam) = (eventbridge(&sim).await, iam(&sim).await);
    eb.create_event_bus().name("orders").send().await.unwrap();
    let rule = eb
        .put_rule()
        .name("fwd")
        .event_bus_name("orders")
        .event_pattern(r#"{"source":["x"]}"#)
        .send()
        .await
        .unwrap()
        .rule_arn
        .unwrap();
    eb.list_event_buses().send().await.unwrap();
    iam.create_role()
        .role_name("fwd")
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .unwrap();
    admin(&sim, reqwest::Method::POST, "/save", None).await;
    let changed = |sim: &relayform_simulator::Running| {
        sim.with_world(|w, _| w.accounts.values().any(|a| a.is_changed()))
    };
    assert!(!changed(&sim), "a save takes every change");

    eb.describe_event_bus().name("orders").send().await.unwrap();
    eb.list_event_buses().send().await.unwrap();
    eb.list_event_sources().send().await.unwrap();
    eb.list_rules()
        .event_bus_name("orders")
        .send()
        .await
        .unwrap();
    eb.describe_rule()
        .name("fwd")
        .event_bus_name("orders")
        .send()
        .await
        .unwrap();
    eb.list_targets_by_rule()
        .rule("fwd")
        .event_bus_name("orders")
        .send()
        .await
        .unwrap();
    eb.list_tags_for_resource()
        .resource_arn(&rule)
        .send()
        .await
        .unwrap();
    iam.get_role().role_name("fwd").send().await.unwrap();
    iam.list_role_policies()
        .role_name("fwd")
        .send()
        .await
        .unwrap();
    iam.list_attached_role_policies()
        .role_name("fwd")
        .send()
        .await
        .unwrap();
    assert!(!changed(&sim), "reads changed the account");

    eb.tag_resource()
        .resource_arn(&rule)
        .tags(
            aws_sdk_eventbridge::types::Tag::builder()
                .key("k")
                .value("v")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert!(changed(&sim), "a write is seen");
    sim.shutdown().await.unwrap();
}
