//! Property tests of every parser the simulator has, and of its request handlers as a whole: for
//! any input, no panic, no hang, and every refusal an answer in the vendor's shape (never a 500).
//! proptest's default 256 cases per property in CI; `PROPTEST_CASES=100000` for a long run.

use proptest::prelude::*;
use relayform_simulator::aws::{self, pattern, policy};
use relayform_simulator::config::{Config, DEMO_ACCESS_KEY_ID};
use relayform_simulator::reply::Request;
use relayform_simulator::salesforce::{self, soql};
use relayform_simulator::world::World;

/// Text made of the pieces a parser cares about, so that random input gets past the first token.
fn soup(pieces: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(pieces).prop_map(str::to_owned),
            1 => "[ -~]{0,6}",
            1 => any::<char>().prop_map(String::from),
        ],
        0..60,
    )
    .prop_map(|v| v.join(" "))
}

const SOQL: &[&str] = &[
    "SELECT",
    "Id",
    ",",
    "FROM",
    "EventRelayConfig",
    "WHERE",
    "(",
    ")",
    "AND",
    "OR",
    "NOT",
    "IN",
    "=",
    "!=",
    "<",
    ">=",
    "LIKE",
    "'a%'",
    "'x",
    "12",
    "-3.5",
    "null",
    "true",
    "ORDER",
    "BY",
    "DESC",
    "NULLS",
    "LAST",
    "LIMIT",
    "OFFSET",
    "FIELDS(ALL)",
    "DeveloperName",
];

const JSONISH: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "\"source\"",
    "\"detail\"",
    "\"prefix\"",
    "\"numeric\"",
    "\"exists\"",
    "\"anything-but\"",
    "\"wildcard\"",
    "\"Effect\"",
    "\"Allow\"",
    "\"Action\"",
    "\"Resource\"",
    "\"*\"",
    "\"Statement\"",
    "\"Principal\"",
    "\"Condition\"",
    "true",
    "null",
    "1",
    "-1e400",
    "\"<\"",
    "\"x\"",
];

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-z*<>=-]{0,8}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop::sample::select(
                    &[
                        "source",
                        "detail",
                        "prefix",
                        "numeric",
                        "exists",
                        "anything-but",
                        "wildcard",
                        "x"
                    ][..]
                )
                .prop_map(str::to_owned),
                inner,
                0..5
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn soql_never_panics(q in soup(SOQL)) {
        if let Ok(parsed) = soql::parse(&q)
            && let Some(filter) = &parsed.filter
        {
            let record = serde_json::json!({"Id": "a", "DeveloperName": null}).as_object().unwrap().clone();
            let _ = soql::eval(filter, &record);
        }
    }

    #[test]
    fn event_patterns_never_panic(text in soup(JSONISH), pattern in json_value(), event in json_value()) {
        let _ = pattern::parse(&text);
        if let Ok(p) = pattern::parse(&pattern.to_string()) {
            let _ = pattern::matches(&p, &event);
        }
    }

    #[test]
    fn policies_never_panic(text in soup(JSONISH), doc in json_value()) {
        for t in [text, doc.to_string()] {
            let _ = policy::well_formed(&t);
            let _ = policy::trusts_service(&t, "events.amazonaws.com");
            let _ = policy::resource_allows(&t, "000000000000", "events:PutEvents", "arn:aws:events:us-east-1:000000000000:event-bus/x");
            let _ = policy::service_allows(&t, "events.amazonaws.com", "events:PutEvents", "*");
        }
    }
}

/// A request to the AWS endpoint: awsJson (EventBridge, Logs) or a form (IAM, STS), with a SigV4
/// header that is right, wrong or absent.
fn aws_request() -> impl Strategy<Value = Request> {
    let op = prop::sample::select(
        &[
            "AWSEvents.CreateEventBus",
            "AWSEvents.PutRule",
            "AWSEvents.PutTargets",
            "AWSEvents.PutEvents",
            "AWSEvents.PutPermission",
            "AWSEvents.ListEventSources",
            "AWSEvents.DescribeEventBus",
            "AWSEvents.TestEventPattern",
            "Logs_20140328.CreateLogGroup",
            "Logs_20140328.FilterLogEvents",
            "",
            "AWSEvents.Nope",
        ][..],
    );
    let auth = prop_oneof![
        Just(format!(
            "AWS4-HMAC-SHA256 Credential={DEMO_ACCESS_KEY_ID}/20261128/us-east-1/events/aws4_request, SignedHeaders=host, Signature=0"
        )),
        Just(format!(
            "AWS4-HMAC-SHA256 Credential={DEMO_ACCESS_KEY_ID}/20261128/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0"
        )),
        "AWS4-HMAC-SHA256 Credential=[A-Z0-9/]{0,40}[ -~]{0,20}",
        "[ -~]{0,40}",
    ];
    let body = prop_oneof![
        json_value().prop_map(|v| v.to_string().into_bytes()),
        soup(JSONISH).prop_map(String::into_bytes),
        "(Action=(CreateRole|GetRole|PutRolePolicy|AssumeRole|GetCallerIdentity|DeleteRole)&Version=(2010-05-08|2011-06-15)(&[A-Za-z.0-9]{1,20}=[ -~]{0,30}){0,5})".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..64),
    ];
    (op, auth, body).prop_map(|(op, auth, body)| {
        let mut headers = vec![("authorization".to_owned(), auth)];
        if !op.is_empty() {
            headers.push(("x-amz-target".to_owned(), op.to_owned()));
        }
        Request {
            method: "POST".into(),
            path: "/".into(),
            query: Vec::new(),
            headers,
            body,
        }
    })
}

/// A request to the Salesforce routes, logged in or not.
fn salesforce_request() -> impl Strategy<Value = Request> {
    let path = prop_oneof![
        prop::sample::select(
            &[
                "/services/data/v59.0/tooling/sobjects/EventRelayConfig",
                "/services/data/v59.0/tooling/sobjects/PlatformEventChannel/0YL000000000001AAA",
                "/services/data/v59.0/tooling/query",
                "/services/data/v59.0/query",
                "/services/data/v59.0/sobjects/Order_Placed__e",
                "/services/oauth2/token",
                "/sf/demo/services/data/v59.0/limits",
                "/services/data/",
            ][..]
        )
        .prop_map(str::to_owned),
        "/[ -~]{0,40}",
    ];
    let method = prop::sample::select(&["GET", "POST", "PATCH", "DELETE", "PUT"][..]);
    let q = soup(SOQL);
    let body = prop_oneof![
        json_value().prop_map(|v| v.to_string().into_bytes()),
        "grant_type=(password|client_credentials|refresh_token)&client_id=[a-z-]{0,20}&client_secret=[a-z-]{0,20}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..64),
    ];
    (method, path, q, body).prop_map(|(method, path, q, body)| Request {
        method: method.to_owned(),
        path,
        query: vec![("q".into(), q)],
        headers: vec![(
            "authorization".into(),
            "Bearer 00D000000000001!AQ0nope".into(),
        )],
        body,
    })
}

proptest! {
    #[test]
    fn aws_requests_are_answered_in_shape(reqs in prop::collection::vec(aws_request(), 1..6)) {
        let mut world = World::new(&Config::default()).unwrap();
        for req in reqs {
            let parsed = aws::parse(&req);
            let reply = aws::handle(&mut world, &req, &parsed, 1_800_000_000_000);
            prop_assert!(reply.status < 500 || reply.status == 503, "{} {:?}", reply.status, String::from_utf8_lossy(&reply.body));
            prop_assert!(reply.status >= 200);
        }
        prop_assert!(world.check().is_ok(), "{:?}", world.check());
    }

    #[test]
    fn salesforce_requests_are_answered_in_shape(reqs in prop::collection::vec(salesforce_request(), 1..6)) {
        let mut world = World::new(&Config::default()).unwrap();
        let (org, user) = world.orgs.values().next().map(|o| (o.id.clone(), o.users[0].id.clone())).unwrap();
        let login = salesforce::oauth::issue(&mut world, &org, &user, relayform_simulator::config::DEMO_CLIENT_ID, false, 1_800_000_000_000, "http://127.0.0.1:1");
        let token: serde_json::Value = serde_json::from_slice(&login.body).unwrap();
        let token = token["access_token"].as_str().unwrap().to_owned();
        for mut req in reqs {
            req.headers = vec![("authorization".into(), format!("Bearer {token}"))];
            let route = salesforce::route(&world, &req);
            let reply = salesforce::handle(&mut world, &req, &route, 1_800_000_000_000, "http://127.0.0.1:1");
            prop_assert!(reply.status < 500, "{} {} {}: {}", req.method, req.path, reply.status, String::from_utf8_lossy(&reply.body));
        }
        prop_assert!(world.check().is_ok(), "{:?}", world.check());
    }
}
