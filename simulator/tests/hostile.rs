//! Hostile input to the simulator: each case was a crash, an unbounded growth or a reply in the
//! wrong shape before; each now gets the vendor's refusal, and the world stays as it was.

mod common;

use common::*;
use serde_json::{Value, json};

async fn post(
    sim: &relayform_simulator::Running,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", sim.base_url()))
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn regions(sim: &relayform_simulator::Running) -> usize {
    sim.with_world(|w, _| w.accounts.values().map(|a| a.regions.len()).sum())
}

/// Any region string in a SigV4 scope used to create a region in the world, even on reads.
#[tokio::test]
async fn unknown_regions_are_refused_and_create_nothing() {
    let sim = start().await;
    let before = regions(&sim);
    let long = "x".repeat(30_000);
    for region in ["", "xx-fake-1", "us-east-1 ", long.as_str()] {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=SIMDEMOACCESSKEY0000/20261128/{region}/events/aws4_request, SignedHeaders=host, Signature=0"
        );
        let (s, b) = post(
            &sim,
            "/",
            &[
                ("x-amz-target", "AWSEvents.ListEventBuses"),
                ("authorization", &auth),
                ("content-type", "application/x-amz-json-1.1"),
            ],
            b"{}".to_vec(),
        )
        .await;
        let shown: String = region.chars().take(20).collect();
        assert_eq!(s, 400, "{shown}: {b}");
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["__type"], "InvalidSignatureException", "{b}");
        assert!(
            b.len() < 500,
            "the message quotes a bounded part: {}",
            b.len()
        );
    }
    // IAM and STS answer in XML.
    let (s, b) = post(
        &sim,
        "/",
        &[(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=SIMDEMOACCESSKEY0000/20261128/mars-north-9/sts/aws4_request, SignedHeaders=host, Signature=0",
        )],
        b"Action=GetCallerIdentity&Version=2011-06-15".to_vec(),
    )
    .await;
    assert_eq!(s, 403, "{b}");
    assert!(b.contains("<Code>SignatureDoesNotMatch</Code>"), "{b}");
    assert_eq!(regions(&sim), before, "no region was created");
}

#[tokio::test]
async fn admin_inputs_are_bounded() {
    let sim = start().await;
    let admin_post = |path: &'static str, body: Value| {
        let url = format!("{}/_sim{path}", sim.base_url());
        let token = sim.admin_token().to_owned();
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .header("x-sim-admin-token", token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let now = |sim: &relayform_simulator::Running| sim.with_world(|_, now| now);
    let start_time = now(&sim);
    // Overflowing or absurd advances are refused; time never runs backwards.
    for body in [
        json!({"ms": i64::MAX}),
        json!({"seconds": 1e300}),
        json!({"seconds": -1}),
        json!({"ms": 1, "seconds": 1}),
        json!({"ms": "soon"}),
    ] {
        let (s, b) = admin_post("/clock/advance", body.clone()).await;
        assert_eq!(s, 400, "{body}: {b}");
    }
    assert_eq!(now(&sim), start_time);
    // A century at a time, up to the year 9999 and no further.
    let mut refused = false;
    for _ in 0..100 {
        let (s, _) = admin_post("/clock/advance", json!({"ms": 100 * 366 * 86_400_000_i64})).await;
        if s == 400 {
            refused = true;
            break;
        }
        assert_eq!(s, 200);
    }
    assert!(refused, "the clock stops at the year 9999");
    let last = now(&sim);
    assert!(last > start_time && last <= 253_402_300_799_999, "{last}");

    // Faults that cannot be answered in a vendor's shape, or would hold calls for ever.
    for fault in [
        json!({"action": {"type": "error", "status": 0, "code": "X", "message": "m"}}),
        json!({"action": {"type": "error", "status": 200, "code": "X", "message": "m"}}),
        json!({"action": {"type": "error", "status": 400, "code": "", "message": "m"}}),
        json!({"action": {"type": "latency", "ms": 86_400_000}}),
        json!({"action": {"type": "throttle", "retry_after_ms": 1}, "when": {"type": "probability", "p": 7, "seed": 1}}),
        json!({"action": {"type": "throttle", "retry_after_ms": 1}, "when": {"type": "call", "k": 0}}),
    ] {
        let (s, b) = admin_post("/faults", fault.clone()).await;
        assert_eq!(s, 400, "{fault}: {b}");
    }
    assert!(sim.with_world(|w, _| w.faults.rules.is_empty()));
}

/// Throttling of the token endpoint answers in OAuth's shape, and an oversized AWS body in the
/// service's own shape.
#[tokio::test]
async fn throttles_and_oversized_bodies_in_the_vendor_s_shape() {
    let sim = start().await;
    admin(
        &sim,
        reqwest::Method::POST,
        "/faults",
        Some(json!({"api": "salesforce", "operation": "oauth.token", "action": {"type": "throttle", "retry_after_ms": 1500}, "when": {"type": "next", "n": 1}})),
    )
    .await;
    let r = reqwest::Client::new()
        .post(format!(
            "{}/services/oauth2/token",
            sim.instance_url("demo").unwrap()
        ))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["retry-after"], "2");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "temporarily_unavailable", "{v}");
    assert!(v["error_description"].is_string(), "{v}");

    let big = vec![b'a'; 2 << 20];
    let (s, b) = post(
        &sim,
        "/",
        &[
            ("x-amz-target", "AWSEvents.PutEvents"),
            ("content-type", "application/x-amz-json-1.1"),
        ],
        big.clone(),
    )
    .await;
    assert_eq!(s, 413);
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["__type"], "RequestEntityTooLargeException", "{b}");
    let (s, b) = post(
        &sim,
        "/",
        &[(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=SIMDEMOACCESSKEY0000/20261128/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        )],
        big,
    )
    .await;
    assert_eq!(s, 413);
    assert!(b.contains("<Code>RequestEntityTooLarge</Code>"), "{b}");
}

/// State files that parse but that no handler could serve are refused on load, with the reason.
#[tokio::test]
async fn inconsistent_state_files_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    let options = || relayform_simulator::Options {
        state_file: Some(file.clone()),
        ..Default::default()
    };
    let sim = relayform_simulator::start(options()).await.unwrap();
    // The world as a state file of format 1 holds it (one JSON text), which is easy to break here;
    // format 2 runs the same checks on what it loads.
    let good = sim.with_world(|w, now| json!({"format": 1, "clock": {"now": now}, "world": &*w}));
    sim.shutdown().await.unwrap();
    let org = good["world"]["orgs"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let account = good["world"]["accounts"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    type Breaks = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Breaks)> = vec![
        (
            "an org id is 18",
            Box::new(move |v: &mut Value| {
                let o = v["world"]["orgs"][&org].take();
                let mut o = o;
                o["id"] = json!("00Dshort");
                v["world"]["orgs"].as_object_mut().unwrap().remove(&org);
                v["world"]["orgs"]["00Dshort"] = o;
            }),
        ),
        (
            "12-digit id",
            Box::new(move |v: &mut Value| {
                let mut a = v["world"]["accounts"][&account].take();
                a["id"] = json!("42");
                v["world"]["accounts"]
                    .as_object_mut()
                    .unwrap()
                    .remove(&account);
                v["world"]["accounts"]["42"] = a;
            }),
        ),
        (
            "outside the years",
            Box::new(|v: &mut Value| v["clock"]["now"] = json!(i64::MAX)),
        ),
    ];
    for (want, break_it) in cases {
        let mut v = good.clone();
        break_it(&mut v);
        std::fs::write(&file, serde_json::to_vec(&v).unwrap()).unwrap();
        let err = relayform_simulator::start(options())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is not consistent") && err.contains(want),
            "{want}: {err}"
        );
    }
}

/// The admin API used to answer any local web page (`POST /_sim/reset` as `text/plain`, no token)
/// and `/_sim/state` handed out client secrets and live tokens.
#[tokio::test]
async fn the_admin_api_wants_its_token_its_host_and_json_and_hides_secrets() {
    let sim = start().await;
    let sf = Sf::login(&sim).await;
    let url = |p: &str| format!("{}/_sim{p}", sim.base_url());
    let http = reqwest::Client::new();
    let token = sim.admin_token().to_owned();
    // A browser's simple request: no token, text/plain, another origin.
    let r = http
        .post(url("/reset"))
        .header("content-type", "text/plain")
        .header("origin", "https://evil.example")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "another origin");
    let r = http
        .post(url("/reset"))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "no token");
    let r = http
        .post(url("/reset"))
        .header("x-sim-admin-token", &token)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415, "not JSON");
    // A DNS name rebound to 127.0.0.1 arrives with its own Host.
    let r = http
        .get(url("/state"))
        .header("x-sim-admin-token", &token)
        .header("host", "rebound.example:80")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "foreign Host");
    let r = http
        .get(url("/state"))
        .header("x-sim-admin-token", "0".repeat(32))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "wrong token");
    // With everything right: the state, without its secrets unless asked.
    let state = admin(&sim, reqwest::Method::GET, "/state", None)
        .await
        .to_string();
    for secret in [
        relayform_simulator::config::DEMO_CLIENT_SECRET,
        relayform_simulator::config::DEMO_PASSWORD,
        sf.token.as_str(),
    ] {
        assert!(!state.contains(secret), "{secret} in the state dump");
    }
    let full = admin(&sim, reqwest::Method::GET, "/state?secrets=true", None)
        .await
        .to_string();
    assert!(full.contains(&sf.token), "asked for explicitly");
    // And the world was never reset: the session still works.
    assert_eq!(sf.get(&format!("{V}/limits")).await.0, 200);
}

/// A client that sends half a request used to hold its connection open for ever.
#[tokio::test]
async fn half_sent_requests_are_closed_after_the_header_read_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sim = start().await;
    let mut half = tokio::net::TcpStream::connect(sim.addr).await.unwrap();
    half.write_all(b"GET /_sim HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        relayform_simulator::HEADER_READ_TIMEOUT + std::time::Duration::from_secs(20),
        half.read_to_end(&mut buf),
    )
    .await;
    assert!(
        read.is_ok(),
        "the connection was still open after {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed()
            >= relayform_simulator::HEADER_READ_TIMEOUT - std::time::Duration::from_secs(1)
    );
    // Whole requests are still served meanwhile and after.
    assert!(admin(&sim, reqwest::Method::GET, "/clock", None).await["now"].is_i64());
}

/// JSON bodies, event patterns and policies nested without end are refused (serde_json stops at 128
/// levels), never a stack overflow.
#[tokio::test]
async fn deeply_nested_json_is_refused_in_shape() {
    let sim = start().await;
    let deep = |n: usize| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
    let (s, b) = post(
        &sim,
        "/",
        &[
            ("x-amz-target", "AWSEvents.TestEventPattern"),
            ("authorization", "AWS4-HMAC-SHA256 Credential=SIMDEMOACCESSKEY0000/20261128/us-east-1/events/aws4_request, SignedHeaders=host, Signature=0"),
            ("content-type", "application/x-amz-json-1.1"),
        ],
        serde_json::to_vec(&json!({"EventPattern": deep(50_000), "Event": "{}"})).unwrap(),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = post(
        &sim,
        "/",
        &[
            ("x-amz-target", "AWSEvents.CreateEventBus"),
            ("authorization", "AWS4-HMAC-SHA256 Credential=SIMDEMOACCESSKEY0000/20261128/us-east-1/events/aws4_request, SignedHeaders=host, Signature=0"),
            ("content-type", "application/x-amz-json-1.1"),
        ],
        deep(50_000).into_bytes(),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("SerializationException"), "{b}");
    let policy = deep(50_000);
    let body = format!(
        "Action=CreateRole&Version=2010-05-08&RoleName=deep&AssumeRolePolicyDocument={}",
        form_urlencoded::byte_serialize(policy.as_bytes()).collect::<String>()
    );
    let (s, b) = post(
        &sim,
        "/",
        &[("authorization", "AWS4-HMAC-SHA256 Credential=SIMDEMOACCESSKEY0000/20261128/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0")],
        body.into_bytes(),
    )
    .await;
    assert!((400..500).contains(&s), "{s} {b}");
    assert!(b.contains("<ErrorResponse"), "{b}");
}
