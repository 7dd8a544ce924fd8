//! The client against wiremock (each error mapping, the retries, paging, session renewal) and against
//! the simulator (the real flow).

use relayform_salesforce::*;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const V: &str = "/services/data/v59.0";

#[derive(Debug, Default)]
struct Calls(Mutex<Vec<Call>>);

impl Observer for Calls {
    fn observe(&self, call: &Call) {
        self.0.lock().unwrap().push(call.clone());
    }
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    }
}

/// Retries for 300 ms in all.
fn brief() -> Patience {
    Patience {
        connect: Duration::from_secs(1),
        attempt: Duration::from_secs(2),
        total: Duration::from_millis(300),
    }
}

fn client(server: &MockServer, token: &str) -> (Client, Arc<Calls>) {
    let calls = Arc::new(Calls::default());
    let session = Session {
        access_token: Secret::new(token),
        instance_url: server.uri(),
    };
    let c = Client::new(Arc::new(StaticToken(session)))
        .with_retry(fast())
        .with_patience(brief())
        .with_observer(calls.clone());
    (c, calls)
}

fn sf_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!([{"message": message, "errorCode": code}]))
}

#[tokio::test]
async fn each_error_is_classified() {
    let server = MockServer::start().await;
    let cases: Vec<(&str, ResponseTemplate, ErrorKind, Option<&str>)> = vec![
        (
            "NotFound",
            sf_error(404, "NOT_FOUND", "The requested resource does not exist"),
            ErrorKind::NotFound,
            Some("NOT_FOUND"),
        ),
        (
            "Dup",
            sf_error(400, "DUPLICATE_DEVELOPER_NAME", "There's already one."),
            ErrorKind::Conflict,
            Some("DUPLICATE_DEVELOPER_NAME"),
        ),
        (
            "Bound",
            sf_error(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                "The channel X__chn is referenced by an existing event relay.",
            ),
            ErrorKind::Conflict,
            Some("FIELD_INTEGRITY_EXCEPTION"),
        ),
        (
            "Invalid",
            sf_error(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                "An event relay can be created only in the STOP state.",
            ),
            ErrorKind::Rejected,
            Some("FIELD_INTEGRITY_EXCEPTION"),
        ),
        (
            "Daily",
            sf_error(
                403,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
            ),
            ErrorKind::Rejected,
            Some("REQUEST_LIMIT_EXCEEDED"),
        ),
        (
            "Busy",
            sf_error(
                403,
                "REQUEST_LIMIT_EXCEEDED",
                "ConcurrentPerOrgLongTxn Limit exceeded.",
            ),
            ErrorKind::Throttled,
            Some("REQUEST_LIMIT_EXCEEDED"),
        ),
        (
            "Down",
            sf_error(503, "SERVER_UNAVAILABLE", "Try later."),
            ErrorKind::Transient,
            Some("SERVER_UNAVAILABLE"),
        ),
        (
            "Html",
            ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>"),
            ErrorKind::Transient,
            None,
        ),
        (
            "Garbage",
            ResponseTemplate::new(200).set_body_string("not json"),
            ErrorKind::Protocol,
            None,
        ),
    ];
    for (name, resp, ..) in &cases {
        Mock::given(method("GET"))
            .and(path(format!("{V}/tooling/sobjects/{name}/x")))
            .respond_with(resp.clone())
            .mount(&server)
            .await;
    }
    let (c, calls) = client(&server, "tok");
    for (name, _, kind, code) in cases {
        let e = c.tooling_get(name, "x").await.unwrap_err();
        assert_eq!((e.kind, e.code.as_deref()), (kind, code), "{name}: {e}");
        assert_eq!(e.operation, format!("tooling.get {name}"));
    }
    // Transient and throttled were retried until the 300 ms were up; the rest tried once.
    let attempts = |n: &str| {
        calls
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.path.contains(&format!("/{n}/")))
            .count()
    };
    for retried in ["Busy", "Down", "Html"] {
        assert!(attempts(retried) > 3, "{retried}: {}", attempts(retried));
    }
    assert_eq!(
        (attempts("NotFound"), attempts("Dup"), attempts("Daily")),
        (1, 1, 1)
    );
}

/// Answers with each response in turn, then the last one forever.
struct Sequence(Mutex<Vec<ResponseTemplate>>);

impl Respond for Sequence {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut v = self.0.lock().unwrap();
        if v.len() > 1 {
            v.remove(0)
        } else {
            v[0].clone()
        }
    }
}

#[tokio::test]
async fn transient_failures_are_retried_and_retry_after_is_honoured() {
    let server = MockServer::start().await;
    let seq = Sequence(Mutex::new(vec![
        sf_error(503, "SERVER_UNAVAILABLE", "down"),
        sf_error(
            403,
            "REQUEST_LIMIT_EXCEEDED",
            "ConcurrentPerOrgLongTxn Limit exceeded.",
        )
        .insert_header("Retry-After", "0"),
        ResponseTemplate::new(201)
            .set_body_json(json!({"id": "0XASM0000000001AAA", "success": true, "errors": []})),
    ]));
    Mock::given(method("POST"))
        .and(path(format!("{V}/tooling/sobjects/NamedCredential")))
        .respond_with(seq)
        .mount(&server)
        .await;
    let (c, calls) = client(&server, "tok");
    // A create that failed in transit is not repeated blindly: it may have been made.
    let e = c
        .tooling_create("NamedCredential", &json!({"FullName": "X", "Metadata": {}}))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient);
    // Throttling says it was not made: retried, honouring Retry-After.
    let id = c
        .tooling_create("NamedCredential", &json!({"FullName": "X", "Metadata": {}}))
        .await
        .unwrap();
    assert_eq!(id, "0XASM0000000001AAA");
    let statuses: Vec<Option<u16>> = calls.0.lock().unwrap().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [Some(503), Some(403), Some(201)]);

    // Reads are retried after transient failures too.
    let server = MockServer::start().await;
    let seq = Sequence(Mutex::new(vec![
        sf_error(503, "SERVER_UNAVAILABLE", "down"),
        ResponseTemplate::new(200)
            .set_body_json(json!({"totalSize": 1, "done": true, "records": [{"Id": "1"}]})),
    ]));
    Mock::given(method("GET"))
        .and(path(format!("{V}/query")))
        .respond_with(seq)
        .mount(&server)
        .await;
    let (c, calls) = client(&server, "tok");
    assert_eq!(
        c.query("SELECT Id FROM Organization").await.unwrap().len(),
        1
    );
    let statuses: Vec<Option<u16>> = calls.0.lock().unwrap().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [Some(503), Some(200)]);
    assert_eq!(
        RetryPolicy::default().delay(1, Some(Duration::from_secs(3))),
        Duration::from_secs(3)
    );
    assert_eq!(
        RetryPolicy::default().delay(3, None),
        Duration::from_secs(1)
    );
    assert_eq!(
        RetryPolicy::default().delay(30, None),
        Duration::from_secs(10)
    );
    // Jitter keeps half of the delay and never goes past it; a Retry-After is a floor.
    for _ in 0..100 {
        let j = RetryPolicy::default().jittered(3, None);
        assert!(
            j >= Duration::from_millis(500) && j <= Duration::from_secs(1),
            "{j:?}"
        );
        let j = RetryPolicy::default().jittered(1, Some(Duration::from_secs(3)));
        assert!(
            j >= Duration::from_secs(3) && j <= Duration::from_millis(3250),
            "{j:?}"
        );
    }
}

#[tokio::test]
async fn queries_follow_next_records_url() {
    let server = MockServer::start().await;
    let rec = |n: u32| json!({"attributes": {"type": "EventRelayConfig"}, "DeveloperName": format!("R{n}")});
    Mock::given(method("GET")).and(path(format!("{V}/tooling/query"))).and(query_param("q", "SELECT DeveloperName FROM EventRelayConfig"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"size": 3, "totalSize": 3, "done": false, "records": [rec(1), rec(2)], "nextRecordsUrl": format!("{V}/tooling/query/01gXX-2")})))
        .mount(&server).await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/tooling/query/01gXX-2")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"size": 3, "totalSize": 3, "done": true, "records": [rec(3)]}),
            ),
        )
        .mount(&server)
        .await;
    let (c, calls) = client(&server, "tok");
    let rows = c
        .tooling_query("SELECT DeveloperName FROM EventRelayConfig")
        .await
        .unwrap();
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["DeveloperName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["R1", "R2", "R3"]);
    assert_eq!(calls.0.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_refused_session_is_renewed_once() {
    let server = MockServer::start().await;
    // The token endpoint hands out "first" then "second"; the API accepts only "second".
    struct Tokens(String, std::sync::atomic::AtomicUsize);
    impl Respond for Tokens {
        fn respond(&self, _: &Request) -> ResponseTemplate {
            let n = self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let token = if n == 0 { "first" } else { "second" };
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": token, "instance_url": self.0}))
        }
    }
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .and(body_string_contains("grant_type=client_credentials"))
        .respond_with(Tokens(server.uri(), Default::default()))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/query")))
        .and(header("authorization", "Bearer second"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"totalSize": 0, "done": true, "records": []})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/query")))
        .and(header("authorization", "Bearer first"))
        .respond_with(sf_error(
            401,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        ))
        .mount(&server)
        .await;
    let oauth = OAuth::new(
        &server.uri(),
        Grant::ClientCredentials {
            client_id: "app".into(),
            client_secret: Secret::new("s3cret-value"),
        },
    );
    let c = Client::new(Arc::new(oauth)).with_retry(fast());
    assert!(
        c.query("SELECT Id FROM Organization")
            .await
            .unwrap()
            .is_empty()
    );
    // Debug output of everything holding a credential stays clean.
    let dump = format!("{c:?}");
    assert!(
        !dump.contains("s3cret-value") && !dump.contains("second"),
        "{dump}"
    );
}

#[tokio::test]
async fn a_session_refused_twice_is_an_error_without_secrets() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(sf_error(
            401,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        ))
        .mount(&server)
        .await;
    let (c, calls) = client(&server, "00D000000000062!secret-token-value");
    let e = c.query("SELECT Id FROM Organization").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized);
    assert_eq!(
        calls.0.lock().unwrap().len(),
        1,
        "a static token cannot be renewed: one call, then the error"
    );
    assert!(
        !e.to_string().contains("secret-token-value")
            && !format!("{e:?}").contains("secret-token-value")
    );

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": "invalid_client", "error_description": "invalid client credentials"}),
        ))
        .mount(&server)
        .await;
    let oauth = OAuth::new(
        &server.uri(),
        Grant::ClientCredentials {
            client_id: "app".into(),
            client_secret: Secret::new("s3cret-value"),
        },
    );
    let e = Client::new(Arc::new(oauth))
        .query("SELECT Id FROM Organization")
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (ErrorKind::Unauthorized, Some("invalid_client"))
    );
    assert_eq!(
        e.to_string(),
        "Salesforce query (session): invalid_client: invalid client credentials (HTTP 400)"
    );
}

#[tokio::test]
async fn against_the_simulator() {
    let sim = relayform_simulator::start(relayform_simulator::Options::default())
        .await
        .unwrap();
    let oauth = OAuth::new(
        &sim.instance_url("demo").unwrap(),
        Grant::ClientCredentials {
            client_id: relayform_simulator::config::DEMO_CLIENT_ID.into(),
            client_secret: Secret::new(relayform_simulator::config::DEMO_CLIENT_SECRET),
        },
    );
    let calls = Arc::new(Calls::default());
    let c = Client::new(Arc::new(oauth)).with_observer(calls.clone());
    let id = c.tooling_create("NamedCredential", &json!({"FullName": "Relayform_000000000000_us_east_1", "Metadata": {"label": "x", "endpoint": "arn:aws:US-EAST-1:000000000000", "principalType": "NamedUser", "protocol": "NoAuthentication"}})).await.unwrap();
    let rec = c.tooling_get("NamedCredential", &id).await.unwrap();
    assert_eq!(rec["Endpoint"], "arn:aws:US-EAST-1:000000000000");
    let dup = c.tooling_create("NamedCredential", &json!({"FullName": "Relayform_000000000000_us_east_1", "Metadata": {"endpoint": "arn:aws:US-EAST-1:000000000000"}})).await.unwrap_err();
    assert_eq!(dup.kind, ErrorKind::Conflict);
    let rows = c
        .tooling_query("SELECT Id, DeveloperName FROM NamedCredential")
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    // A PATCH is the whole definition: a partial one is refused, a full one taken.
    let partial = c
        .tooling_update(
            "NamedCredential",
            &id,
            &json!({"Metadata": {"label": "renamed"}}),
        )
        .await
        .unwrap_err();
    assert_eq!(partial.code.as_deref(), Some("REQUIRED_FIELD_MISSING"));
    relayform_salesforce::ops::update(
        &c,
        "NamedCredential",
        &id,
        "Relayform_000000000000_us_east_1",
        relayform_salesforce::ops::named_credential_definition(
            "renamed",
            "arn:aws:US-EAST-1:000000000000",
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        c.tooling_get("NamedCredential", &id).await.unwrap()["MasterLabel"],
        "renamed"
    );
    c.tooling_delete("NamedCredential", &id).await.unwrap();
    assert_eq!(
        c.tooling_get("NamedCredential", &id)
            .await
            .unwrap_err()
            .kind,
        ErrorKind::NotFound
    );
    let uuid = c
        .publish("Order_Placed__e", &json!({"Order_Id__c": "1"}))
        .await
        .unwrap();
    assert_eq!(uuid.map(|u| u.len()), Some(36));
    let ops: Vec<String> = calls
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.operation.clone())
        .collect();
    assert_eq!(ops.len(), 10, "{ops:?}");
    assert_eq!(ops[0], "tooling.create NamedCredential");
}

/// A server that accepts connections and never answers: the call ends with the patience, naming
/// the endpoint, and a GET is retried meanwhile.
#[tokio::test]
async fn a_black_holed_endpoint_times_out_naming_it() {
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = hole.local_addr().unwrap();
    let session = Session {
        access_token: Secret::new("tok"),
        instance_url: format!("http://{addr}"),
    };
    let calls = Arc::new(Calls::default());
    let c = Client::new(Arc::new(StaticToken(session)))
        .with_retry(fast())
        .with_observer(calls.clone())
        .with_patience(Patience {
            connect: Duration::from_secs(1),
            attempt: Duration::from_millis(300),
            total: Duration::from_millis(1000),
        });
    let started = std::time::Instant::now();
    let e = c.query("SELECT Id FROM Organization").await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    assert!(
        e.message
            .contains(&format!("http://{addr} did not answer within")),
        "{e}"
    );
    assert!(e.message.contains("gave up after"), "{e}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(calls.0.lock().unwrap().len() >= 2);
    drop(hole);
}

/// The token endpoint throttled (RFC 6749 `temporarily_unavailable`, with Retry-After) and then
/// failing with a gateway page: the token request is repeated until it succeeds.
#[tokio::test]
async fn a_throttled_token_endpoint_is_retried() {
    let server = MockServer::start().await;
    let seq = Sequence(Mutex::new(vec![
        ResponseTemplate::new(429)
            .insert_header("Retry-After", "0")
            .set_body_json(json!({"error": "temporarily_unavailable", "error_description": "Login rate exceeded."})),
        ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>"),
        ResponseTemplate::new(200)
            .set_body_json(json!({"access_token": "tok", "instance_url": server.uri()})),
    ]));
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .respond_with(seq)
        .expect(3)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/query")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"totalSize": 0, "done": true, "records": []})),
        )
        .mount(&server)
        .await;
    let oauth = OAuth::new(
        &server.uri(),
        Grant::ClientCredentials {
            client_id: "app".into(),
            client_secret: Secret::new("s3cret-value"),
        },
    )
    .with_retry(fast());
    let c = Client::new(Arc::new(oauth));
    assert!(
        c.query("SELECT Id FROM Organization")
            .await
            .unwrap()
            .is_empty()
    );
}
