//! The Salesforce half over HTTP, checked against request/response fixtures from the API reference.

mod common;

use common::*;
use relayform_simulator::config::*;
use serde_json::{Value, json};

#[tokio::test]
async fn oauth_flows() {
    let mut config = Config::default();
    let pubkey = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/test-only-jwt-key.pub.pem"
    ))
    .unwrap();
    config.orgs[0].connected_apps.push(AppConfig {
        client_id: "jwt-app".into(),
        client_secret: None,
        certificate: Some(pubkey),
        run_as: None,
    });
    config.orgs[0].connected_apps.push(AppConfig {
        client_id: "no-user-app".into(),
        client_secret: Some("s".into()),
        certificate: None,
        run_as: None,
    });
    let sim = start_with(config).await;
    let base = sim.base_url().to_owned();
    let http = reqwest::Client::new();
    let token = |form: Vec<(&'static str, String)>| {
        let http = http.clone();
        let url = format!("{base}/services/oauth2/token");
        async move {
            let r = http.post(url).form(&form).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, body) = token(vec![
        ("grant_type", "password".into()),
        ("client_id", DEMO_CLIENT_ID.into()),
        ("client_secret", DEMO_CLIENT_SECRET.into()),
        ("username", DEMO_USERNAME.into()),
        ("password", DEMO_PASSWORD.into()),
    ])
    .await;
    assert_eq!(s, 200, "{body}");
    for k in fixture("6.1-token-response-keys.json").as_array().unwrap() {
        assert!(
            body.get(k.as_str().unwrap()).is_some(),
            "token response lacks {k}: {body}"
        );
    }
    let org = sim.urls.orgs[0].1.clone();
    assert!(
        body["access_token"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}!", &org[..15]))
    );
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["issued_at"].as_str().unwrap().parse::<i64>().is_ok());
    assert_eq!(body["instance_url"], format!("{base}/sf/demo"));
    assert!(body.get("refresh_token").is_none());

    // Client credentials: secret in the form, or in HTTP Basic.
    let (s, _) = token(vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", DEMO_CLIENT_ID.into()),
        ("client_secret", DEMO_CLIENT_SECRET.into()),
    ])
    .await;
    assert_eq!(s, 200);
    let r = http
        .post(format!("{base}/services/oauth2/token"))
        .basic_auth(DEMO_CLIENT_ID, Some(DEMO_CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (s, e) = token(vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", DEMO_CLIENT_ID.into()),
        ("client_secret", "wrong".into()),
    ])
    .await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_client")));
    let (_, e) = token(vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", "nobody".into()),
        ("client_secret", "x".into()),
    ])
    .await;
    assert_eq!(e["error"], "invalid_client_id");
    let (_, e) = token(vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", "no-user-app".into()),
        ("client_secret", "s".into()),
    ])
    .await;
    assert_eq!(e["error_description"], "no client credentials user enabled");
    let (_, e) = token(vec![
        ("grant_type", "password".into()),
        ("client_id", DEMO_CLIENT_ID.into()),
        ("client_secret", DEMO_CLIENT_SECRET.into()),
        ("username", DEMO_USERNAME.into()),
        ("password", "nope".into()),
    ])
    .await;
    assert_eq!(
        (e["error"].as_str(), e["error_description"].as_str()),
        (Some("invalid_grant"), Some("authentication failure"))
    );

    // JWT bearer, RS256, checked against the app's certificate.
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/test-only-jwt-key.pem"
        ))
        .unwrap(),
    )
    .unwrap();
    let now = sim.with_world(|_, now| now / 1000);
    let jwt = |claims: Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &key,
        )
        .unwrap()
    };
    let grant = "urn:ietf:params:oauth:grant-type:jwt-bearer";
    let good = json!({"iss": "jwt-app", "sub": DEMO_USERNAME, "aud": "https://login.salesforce.com", "exp": now + 300});
    let (s, body) = token(vec![
        ("grant_type", grant.into()),
        ("assertion", jwt(good.clone())),
    ])
    .await;
    assert_eq!(s, 200, "{body}");
    let mut expired = good.clone();
    expired["exp"] = json!(now - 10);
    let (_, e) = token(vec![
        ("grant_type", grant.into()),
        ("assertion", jwt(expired)),
    ])
    .await;
    assert_eq!(e["error"], "invalid_grant");
    let mut wrong_aud = good.clone();
    wrong_aud["aud"] = json!("https://evil.example");
    let (_, e) = token(vec![
        ("grant_type", grant.into()),
        ("assertion", jwt(wrong_aud)),
    ])
    .await;
    assert_eq!(e["error_description"], "audience is invalid");
    let mut stranger = good.clone();
    stranger["sub"] = json!("nobody@example.com");
    let (_, e) = token(vec![
        ("grant_type", grant.into()),
        ("assertion", jwt(stranger)),
    ])
    .await;
    assert_eq!(e["error_description"], "user hasn't approved this consumer");
    // A signature by another key is refused.
    // Claims changed after signing: the signature no longer matches.
    let signed = jwt(good.clone());
    let parts: Vec<&str> = signed.split('.').collect();
    let mut forged = good.clone();
    forged["sub"] = json!("someone-else@example.com");
    let payload = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        forged.to_string(),
    );
    let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
    let (s, _) = token(vec![("grant_type", grant.into()), ("assertion", tampered)]).await;
    assert_eq!(s, 400);

    // Refresh tokens come from an interactive flow; the admin API mints one.
    let minted = admin(
        &sim,
        reqwest::Method::POST,
        "/orgs/demo/refresh-tokens",
        Some(json!({"username": DEMO_USERNAME, "client_id": DEMO_CLIENT_ID})),
    )
    .await;
    let rt = minted["refresh_token"].as_str().unwrap().to_owned();
    let (s, _) = token(vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", rt.clone()),
        ("client_id", DEMO_CLIENT_ID.into()),
        ("client_secret", DEMO_CLIENT_SECRET.into()),
    ])
    .await;
    assert_eq!(s, 200);
    let (_, e) = token(vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", "bogus".into()),
        ("client_id", DEMO_CLIENT_ID.into()),
    ])
    .await;
    assert_eq!(e["error"], "invalid_grant");
    let (_, e) = token(vec![("grant_type", "authorization_code".into())]).await;
    assert_eq!(e["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn sessions_versions_and_limits() {
    let mut config = Config::default();
    config.orgs[0].api_request_limit = 4;
    config.settings.token_lifetime_seconds = 60;
    let sim = start_with(config).await;
    let sf = Sf::login(&sim).await;
    let http = reqwest::Client::new();
    let versions: Value = http
        .get(format!("{}/services/data/", sf.instance))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        versions
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["version"] == "59.0" && v["url"] == "/services/data/v59.0")
    );
    let r = http
        .get(format!("{}{V}", sf.instance))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
    );

    let (s, _) = sf.get(V).await;
    assert_eq!(s, 200);
    let r = http
        .get(format!("{}{V}/", sf.instance))
        .bearer_auth(&sf.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["sforce-limit-info"], "api-usage=2/4");
    let (s, _) = sf.get("/services/data/v99.0").await;
    assert_eq!(s, 404);
    // Calls 3 and 4 of 4 pass; the fifth is over the allocation.
    assert_eq!(sf.get(V).await.0, 200);
    assert_eq!(sf.get(V).await.0, 200);
    let (s, e) = sf.get(V).await;
    assert_eq!(
        (s, e[0]["errorCode"].as_str()),
        (403, Some("REQUEST_LIMIT_EXCEEDED"))
    );

    // userinfo, and the base URL serving the org the token names.
    let info: Value = http
        .get(format!("{}/services/oauth2/userinfo", sim.base_url()))
        .bearer_auth(&sf.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["organization_id"], sim.urls.orgs[0].1);
    assert_eq!(info["preferred_username"], DEMO_USERNAME);
    let r = http
        .get(format!("{}/services/oauth2/userinfo", sim.base_url()))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);

    // Tokens expire in simulated time.
    sim.advance(61_000);
    let (s, e) = sf.get(V).await;
    assert_eq!(
        (s, e[0]["errorCode"].as_str()),
        (401, Some("INVALID_SESSION_ID"))
    );
}

#[tokio::test]
async fn tooling_objects_and_their_rules() {
    let sim = start().await;
    let sf = Sf::login(&sim).await;
    let (nc, channel, member, relay) = create_relay_objects(&sf).await;
    assert!(nc.starts_with("0XA") && channel.starts_with("0YL") && relay.starts_with("7k2"));
    assert_eq!(relay.len(), 18);
    let (s, r) = sf
        .get(&format!("{V}/tooling/sobjects/EventRelayConfig/{relay}"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(r["attributes"]["type"], "EventRelayConfig");
    assert_eq!(r["State"], "STOP");
    assert_eq!(r["DeveloperName"], "Carbon_Comparison_Relay");
    assert_eq!(
        r["Metadata"]["eventChannel"],
        "Carbon_Comparison_Channel__chn"
    );
    let (_, created) = sf
        .post(
            &format!("{V}/tooling/sobjects/PlatformEventChannel"),
            &json!({"FullName": "Second__chn", "Metadata": {"channelType": "event", "label": "x"}}),
        )
        .await;
    assert_eq!(
        created.as_object().unwrap().keys().collect::<Vec<_>>(),
        fixture("1.3-create-response.json")
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>()
    );

    let err = |v: &Value| v[0]["errorCode"].as_str().unwrap_or("").to_owned();
    let mut relay2 = fixture("1.3-relay-create.json");
    relay2["FullName"] = json!("Another_Relay");
    let (s, e) = sf
        .post(&format!("{V}/tooling/sobjects/EventRelayConfig"), &relay2)
        .await;
    assert_eq!((s, err(&e).as_str()), (400, "FIELD_INTEGRITY_EXCEPTION"));
    assert!(
        e[0]["message"]
            .as_str()
            .unwrap()
            .contains("referenced by an existing event relay")
    );
    relay2["Metadata"]["eventChannel"] = json!("Second__chn");
    relay2["FullName"] = json!("Carbon_Comparison_Relay");
    let (_, e) = sf
        .post(&format!("{V}/tooling/sobjects/EventRelayConfig"), &relay2)
        .await;
    assert_eq!(err(&e), "DUPLICATE_DEVELOPER_NAME");
    relay2["FullName"] = json!("Another_Relay");
    relay2["Metadata"]["state"] = json!("RUN");
    let (_, e) = sf
        .post(&format!("{V}/tooling/sobjects/EventRelayConfig"), &relay2)
        .await;
    assert_eq!(err(&e), "FIELD_INTEGRITY_EXCEPTION");
    relay2["Metadata"]["state"] = json!("STOP");
    relay2["Metadata"]["eventChannel"] = json!("Nope__chn");
    let (_, e) = sf
        .post(&format!("{V}/tooling/sobjects/EventRelayConfig"), &relay2)
        .await;
    assert_eq!(err(&e), "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST");
    relay2["Metadata"]["eventChannel"] = json!("Second__chn");
    relay2["Metadata"]["destinationResourceName"] = json!("callout:Nope");
    let (_, e) = sf
        .post(&format!("{V}/tooling/sobjects/EventRelayConfig"), &relay2)
        .await;
    assert_eq!(err(&e), "FIELD_INTEGRITY_EXCEPTION");
    let (_, e) = sf.post(&format!("{V}/tooling/sobjects/NamedCredential"), &json!({"FullName": "Bad__Name", "Metadata": {"endpoint": "arn:aws:US-EAST-1:000000000000"}})).await;
    assert_eq!(err(&e), "FIELD_INTEGRITY_EXCEPTION");
    let (_, e) = sf.post(&format!("{V}/tooling/sobjects/PlatformEventChannelMember"), &json!({"FullName": "M", "Metadata": {"eventChannel": "Second__chn", "selectedEntity": "AccountChangeEvent"}})).await;
    assert_eq!(err(&e), "FIELD_INTEGRITY_EXCEPTION");
    let (_, e) = sf
        .post(
            &format!("{V}/tooling/sobjects/NamedCredential"),
            &json!({"Metadata": {}}),
        )
        .await;
    assert_eq!(err(&e), "REQUIRED_FIELD_MISSING");

    // Updates: a PATCH is the whole definition (the strict reading): the guide's state-only body is
    // refused, a full one is taken.
    let relay_url = format!("{V}/tooling/sobjects/EventRelayConfig/{relay}");
    let (_, e) = sf
        .patch(&relay_url, &fixture("1.5-relay-update-state.json"))
        .await;
    assert_eq!(err(&e), "REQUIRED_FIELD_MISSING");
    assert!(
        e[0]["message"]
            .as_str()
            .unwrap()
            .contains("include the full definition"),
        "{e}"
    );
    let mut full = fixture("1.3-relay-create.json");
    full["Metadata"]["state"] = json!("RUN");
    full["Metadata"]["relayOption"] = json!(r#"{"ReplayRecovery":"EARLIEST"}"#);
    let (s, body) = sf.patch(&relay_url, &full).await;
    assert_eq!((s, body), (204, Value::Null));
    let (_, r) = sf.get(&relay_url).await;
    assert_eq!(r["State"], "RUN");
    assert_eq!(r["RelayOption"], r#"{"ReplayRecovery":"EARLIEST"}"#);
    // Optional fields left out of a whole definition return to their defaults (LATEST, STOP).
    let mut bare = fixture("1.3-relay-create.json");
    bare["Metadata"]
        .as_object_mut()
        .unwrap()
        .remove("relayOption");
    bare["Metadata"].as_object_mut().unwrap().remove("state");
    assert_eq!(sf.patch(&relay_url, &bare).await.0, 204);
    let (_, r) = sf.get(&relay_url).await;
    assert_eq!(
        (r["State"].as_str(), r["RelayOption"].as_str()),
        (Some("STOP"), Some(r#"{"ReplayRecovery":"LATEST"}"#))
    );
    // Only state and relayOption change: a new label is refused, and so is a label over 80.
    let mut relabelled = full.clone();
    relabelled["Metadata"]["label"] = json!("Another label");
    let (_, e) = sf.patch(&relay_url, &relabelled).await;
    assert_eq!(err(&e), "FIELD_INTEGRITY_EXCEPTION");
    assert!(
        e[0]["message"]
            .as_str()
            .unwrap()
            .contains("only the state and relayOption")
    );
    let mut long = fixture("3.1-channel-create.json");
    long["FullName"] = json!("Long__chn");
    long["Metadata"]["label"] = json!("x".repeat(81));
    let (_, e) = sf
        .post(&format!("{V}/tooling/sobjects/PlatformEventChannel"), &long)
        .await;
    assert_eq!(err(&e), "STRING_TOO_LONG");
    let mut other_channel = full.clone();
    other_channel["Metadata"]["eventChannel"] = json!("Second__chn");
    let (_, e) = sf.patch(&relay_url, &other_channel).await;
    assert_eq!(err(&e), "FIELD_INTEGRITY_EXCEPTION");
    let mut bad_state = full.clone();
    bad_state["Metadata"]["state"] = json!("DELETE");
    let (_, e) = sf.patch(&relay_url, &bad_state).await;
    assert_eq!(err(&e), "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST");
    let nc_url = format!("{V}/tooling/sobjects/NamedCredential/{nc}");
    let (_, e) = sf
        .patch(
            &nc_url,
            &json!({"Metadata": {"endpoint": "arn:aws:US-EAST-1:111111111111"}}),
        )
        .await;
    assert_eq!(
        err(&e),
        "REQUIRED_FIELD_MISSING",
        "a partial credential PATCH"
    );
    let mut nc_full = fixture("2.2-named-credential-create.json");
    nc_full["Metadata"]["endpoint"] = json!("arn:aws:US-EAST-1:111111111111");
    let (_, e) = sf.patch(&nc_url, &nc_full).await;
    assert!(
        e[0]["message"]
            .as_str()
            .unwrap()
            .contains("can't change the AWS account")
    );
    let (_, e) = sf.patch(&format!("{V}/tooling/sobjects/PlatformEventChannelMember/{member}"), &json!({"Metadata": {"eventChannel": "Carbon_Comparison_Channel__chn", "selectedEntity": "Order_Shipped__e"}})).await;
    assert_eq!(
        e[0]["message"],
        "Update is not supported for the selectedEntity field on platform event channel members."
    );
    let (_, e) = sf
        .patch(
            &format!("{V}/tooling/sobjects/PlatformEventChannelMember/{member}"),
            &json!({"Metadata": {"selectedEntity": "Order_Placed__e"}}),
        )
        .await;
    assert_eq!(err(&e), "REQUIRED_FIELD_MISSING");

    // Deletes: a channel or credential in use is kept; deleting a channel deletes its members.
    let (_, e) = sf
        .delete(&format!(
            "{V}/tooling/sobjects/PlatformEventChannel/{channel}"
        ))
        .await;
    assert_eq!(err(&e), "FIELD_INTEGRITY_EXCEPTION");
    assert_eq!(
        sf.delete(&format!("{V}/tooling/sobjects/EventRelayConfig/{relay}"))
            .await
            .0,
        204
    );
    assert_eq!(
        sf.delete(&format!(
            "{V}/tooling/sobjects/PlatformEventChannel/{channel}/"
        ))
        .await
        .0,
        204
    );
    assert_eq!(
        sf.get(&format!(
            "{V}/tooling/sobjects/PlatformEventChannelMember/{member}"
        ))
        .await
        .0,
        404
    );
    assert_eq!(
        sf.delete(&format!("{V}/tooling/sobjects/NamedCredential/{nc}"))
            .await
            .0,
        204
    );
    let (s, e) = sf
        .get(&format!("{V}/tooling/sobjects/EventRelayConfig/{relay}"))
        .await;
    assert_eq!((s, err(&e).as_str()), (404, "NOT_FOUND"));
    let (s, e) = sf
        .get(&format!("{V}/tooling/sobjects/EventRelayConfig/bad-id"))
        .await;
    assert_eq!((s, err(&e).as_str()), (400, "MALFORMED_ID"));
    let r = sf
        .http
        .post(format!(
            "{}{V}/tooling/sobjects/NamedCredential",
            sf.instance
        ))
        .bearer_auth(&sf.token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()[0]["errorCode"],
        "JSON_PARSER_ERROR"
    );
}

#[tokio::test]
async fn queries() {
    let mut config = Config::default();
    config.settings.query_page_size = 2;
    let sim = start_with(config).await;
    let sf = Sf::login(&sim).await;
    let (_, _, _, relay) = create_relay_objects(&sf).await;
    for i in 0..4 {
        sf.post(&format!("{V}/tooling/sobjects/NamedCredential"), &json!({"FullName": format!("NC_{i}"), "Metadata": {"endpoint": "arn:aws:US-EAST-1:000000000000"}})).await;
    }
    // The base URL serves the org the token belongs to, as the instance URL does.
    let root = Sf {
        instance: sim.base_url().to_owned(),
        http: sf.http.clone(),
        token: sf.token.clone(),
    };
    assert_eq!(
        root.query("SELECT Id FROM EventRelayConfig", true).await.1["totalSize"],
        1
    );
    let (s, r) = sf.query("SELECT Id, DeveloperName FROM EventRelayConfig WHERE DeveloperName = 'Carbon_Comparison_Relay'", true).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        (
            r["size"].as_u64(),
            r["totalSize"].as_u64(),
            r["done"].as_bool()
        ),
        (Some(1), Some(1), Some(true))
    );
    assert_eq!(r["entityTypeName"], "EventRelayConfig");
    assert_eq!(r["records"][0]["Id"], relay);
    assert_eq!(
        r["records"][0]["attributes"]["url"],
        format!("{V}/tooling/sobjects/EventRelayConfig/{relay}")
    );
    // The guide's own URL form, with `+` for spaces.
    let (s, r) = sf.get(&format!("{V}/tooling/query/?q=SELECT+Id,DeveloperName+FROM+EventRelayConfig+WHERE+DeveloperName='Carbon_Comparison_Relay'")).await;
    assert_eq!((s, r["totalSize"].as_u64()), (200, Some(1)));

    // Paging through nextRecordsUrl.
    let (_, page) = sf
        .query(
            "SELECT Id, DeveloperName FROM NamedCredential ORDER BY DeveloperName",
            true,
        )
        .await;
    assert_eq!(
        (
            page["totalSize"].as_u64(),
            page["done"].as_bool(),
            page["records"].as_array().unwrap().len()
        ),
        (Some(5), Some(false), 2)
    );
    let mut names: Vec<String> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["DeveloperName"].as_str().unwrap().to_owned())
        .collect();
    let mut next = page["nextRecordsUrl"].as_str().map(str::to_owned);
    while let Some(url) = next {
        let (s, p) = sf.get(&url).await;
        assert_eq!(s, 200, "{p}");
        names.extend(
            p["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["DeveloperName"].as_str().unwrap().to_owned()),
        );
        next = p["nextRecordsUrl"].as_str().map(str::to_owned);
    }
    assert_eq!(
        names,
        ["MyRelayNamedCredential", "NC_0", "NC_1", "NC_2", "NC_3"]
    );

    let code = |r: &Value| r[0]["errorCode"].as_str().unwrap_or("").to_owned();
    let (_, r) = sf
        .query("SELECT Id, Metadata FROM NamedCredential", true)
        .await;
    assert_eq!(code(&r), "MALFORMED_QUERY");
    let (s, r) = sf
        .query(
            "SELECT Id, Metadata FROM NamedCredential WHERE DeveloperName = 'NC_1'",
            true,
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        r["records"][0]["Metadata"]["endpoint"],
        "arn:aws:US-EAST-1:000000000000"
    );
    let (_, r) = sf
        .query("SELECT Id FROM EventRelayConfig WHERE FullName = 'x'", true)
        .await;
    assert_eq!(code(&r), "INVALID_FIELD");
    let (_, r) = sf
        .query("SELECT Id, Nope__c FROM EventRelayConfig", true)
        .await;
    assert_eq!(code(&r), "INVALID_FIELD");
    let (_, r) = sf
        .query("SELECT Id FROM EventRelayConfig WHERE", true)
        .await;
    assert_eq!(code(&r), "MALFORMED_QUERY");
    let (_, r) = sf.query("SELECT Id FROM Nothing__c", false).await;
    assert_eq!(code(&r), "INVALID_TYPE");
    let (_, r) = sf.query("SELECT Id FROM EventRelayFeedback", true).await;
    assert_eq!(
        code(&r),
        "INVALID_TYPE",
        "EventRelayFeedback is not a Tooling object"
    );
    let (_, r) = sf.query("SELECT Id FROM PlatformEventChannel", false).await;
    assert_eq!(
        code(&r),
        "INVALID_TYPE",
        "PlatformEventChannel is not a data-API object (NamedCredential is: the object reference documents it)"
    );

    // The data API: EventRelayFeedback with its relationship, the read-only relay, the org.
    let (s, r) = sf.query("SELECT EventRelayConfig.DeveloperName, Status, RemoteResource FROM EventRelayFeedback WHERE Status IN ('STOPPED', 'ERROR')", false).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        r["records"][0]["EventRelayConfig"]["DeveloperName"],
        "Carbon_Comparison_Relay"
    );
    assert_eq!(r["records"][0]["Status"], "STOPPED");
    assert!(
        r.get("size").is_none(),
        "data queries have no Tooling fields"
    );
    let (_, r) = sf
        .query("SELECT Id, Name, IsSandbox FROM Organization", false)
        .await;
    assert_eq!(r["records"][0]["Id"], sim.urls.orgs[0].1);
    let (_, r) = sf
        .query("SELECT Id, State FROM EventRelayConfig", false)
        .await;
    assert_eq!(r["records"][0]["State"], "STOP");
    let (_, r) = sf
        .query("SELECT Id, FullName FROM EventRelayConfig", false)
        .await;
    assert_eq!(
        code(&r),
        "INVALID_FIELD",
        "the data-API relay has no FullName"
    );
}

#[tokio::test]
async fn publishing_and_change_events() {
    let sim = start().await;
    let sf = Sf::login(&sim).await;
    let (s, r) = sf
        .post(
            &format!("{V}/sobjects/Order_Placed__e/"),
            &json!({"Order_Id__c": "o-1", "Amount__c": 42}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let shape = fixture("5.2-publish-response.json");
    assert_eq!(
        r["errors"][0]["statusCode"],
        shape["errors"][0]["statusCode"]
    );
    assert_eq!(r["success"], true);
    assert_eq!(r["errors"][0]["message"].as_str().unwrap().len(), 36);
    let (s, r) = sf
        .post(
            &format!("{V}/sobjects/Order_Placed__e"),
            &json!({"Nope__c": 1}),
        )
        .await;
    assert_eq!(
        (s, r[0]["errorCode"].as_str()),
        (400, Some("INVALID_FIELD"))
    );
    let (s, _) = sf
        .post(&format!("{V}/sobjects/Unknown__e"), &json!({}))
        .await;
    assert_eq!(s, 404);

    let (s, r) = sf
        .post(&format!("{V}/sobjects/Account"), &json!({"Name": "Acme"}))
        .await;
    assert_eq!(s, 201, "{r}");
    let id = r["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("001"));
    assert_eq!(
        sf.patch(
            &format!("{V}/sobjects/Account/{id}"),
            &json!({"Industry": "Retail"})
        )
        .await
        .0,
        204
    );
    let (_, acct) = sf.get(&format!("{V}/sobjects/Account/{id}")).await;
    assert_eq!(
        (acct["Name"].as_str(), acct["Industry"].as_str()),
        (Some("Acme"), Some("Retail"))
    );
    assert_eq!(
        sf.delete(&format!("{V}/sobjects/Account/{id}")).await.0,
        204
    );
    let events = sim.with_world(|w, _| {
        w.orgs
            .values()
            .next()
            .unwrap()
            .events
            .iter()
            .map(|e| {
                (
                    e.name.clone(),
                    e.payload["ChangeEventHeader"]["changeType"].clone(),
                )
            })
            .collect::<Vec<_>>()
    });
    assert_eq!(events.len(), 4);
    assert_eq!(
        events[1],
        ("AccountChangeEvent".to_owned(), json!("CREATE"))
    );
    assert_eq!(events[2].1, json!("UPDATE"));
    assert_eq!(events[3].1, json!("DELETE"));
}

#[tokio::test]
async fn lenient_readings_are_settings() {
    let mut config = relayform_simulator::Config::default();
    config.settings.tooling_patch = relayform_simulator::config::ToolingPatch::Merge;
    config.settings.relay_label_update = relayform_simulator::config::LabelUpdate::Ignore;
    let sim = start_with(config).await;
    let sf = Sf::login(&sim).await;
    let (_, _, _, relay) = create_relay_objects(&sf).await;
    let url = format!("{V}/tooling/sobjects/EventRelayConfig/{relay}");
    // merge: the guide's state-only body keeps the rest.
    assert_eq!(
        sf.patch(&url, &fixture("1.5-relay-update-state.json"))
            .await
            .0,
        204
    );
    let (_, r) = sf.get(&url).await;
    assert_eq!(r["State"], "RUN");
    assert_eq!(r["MasterLabel"], "Carbon Comparison Relay");
    // ignore: a label PATCH answers 204 and changes nothing.
    let (s, _) = sf
        .patch(&url, &json!({"Metadata": {"label": "Renamed"}}))
        .await;
    assert_eq!(s, 204);
    let (_, r) = sf.get(&url).await;
    assert_eq!(r["MasterLabel"], "Carbon Comparison Relay");
}

#[tokio::test]
async fn named_credential_endpoints_entity_casing_and_the_relay_channel_form() {
    let sim = start().await;
    let sf = Sf::login(&sim).await;
    create_relay_objects(&sf).await;
    // Endpoint is a data-API column of NamedCredential; the Tooling face has none (by default).
    let (s, r) = sf
        .query("SELECT DeveloperName, Endpoint FROM NamedCredential", false)
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        r["records"][0]["Endpoint"],
        "arn:aws:US-EAST-1:000000000000"
    );
    let (_, e) = sf
        .query("SELECT DeveloperName, Endpoint FROM NamedCredential", true)
        .await;
    assert_eq!(e[0]["errorCode"], "INVALID_FIELD");
    // A member names its entity in any case; Salesforce keeps the entity's own.
    let (s, r) = sf
        .post(
            &format!("{V}/tooling/sobjects/PlatformEventChannelMember"),
            &json!({"FullName": "Carbon_Comparison_Channel_chn_Order_Shipped_e", "Metadata": {"eventChannel": "Carbon_Comparison_Channel__chn", "selectedEntity": "order_shipped__E"}}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let (_, m) = sf
        .query(
            "SELECT SelectedEntity FROM PlatformEventChannelMember WHERE DeveloperName = 'Carbon_Comparison_Channel_chn_Order_Shipped_e'",
            true,
        )
        .await;
    assert_eq!(m["records"][0]["SelectedEntity"], "Order_Shipped__e");

    // relay_event_channel: id gives the channel's id where the reference says the full name.
    let mut config = relayform_simulator::Config::default();
    config.settings.relay_event_channel = relayform_simulator::config::ChannelForm::Id;
    config.settings.tooling_named_credential_endpoint =
        relayform_simulator::config::Presence::Present;
    let sim = start_with(config).await;
    let sf = Sf::login(&sim).await;
    let (_, channel, _, _) = create_relay_objects(&sf).await;
    let (_, r) = sf
        .query("SELECT EventChannel FROM EventRelayConfig", true)
        .await;
    assert_eq!(r["records"][0]["EventChannel"], channel.as_str());
    let (s, _) = sf.query("SELECT Endpoint FROM NamedCredential", true).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn allocations_and_high_volume_events_bound_channels_and_members() {
    let mut config = relayform_simulator::Config::default();
    let org = &mut config.orgs[0];
    org.allocations.event_channels = 1;
    org.allocations.platform_events_in_channels = 1;
    org.standard_volume_events = vec!["Order_Cancelled__e".into()];
    let sim = start_with(config).await;
    let sf = Sf::login(&sim).await;
    let post = |t: &'static str, body: Value| {
        let sf = &sf;
        async move { sf.post(&format!("{V}/tooling/sobjects/{t}"), &body).await }
    };
    let channel = |name: &str| json!({"FullName": format!("{name}__chn"), "Metadata": {"channelType": "event", "label": name}});
    let member = |name: &str, channel: &str, event: &str| json!({"FullName": name, "Metadata": {"eventChannel": format!("{channel}__chn"), "selectedEntity": event}});
    assert_eq!(post("PlatformEventChannel", channel("A")).await.0, 201);
    let (s, e) = post("PlatformEventChannel", channel("B")).await;
    assert_eq!(
        (s, e[0]["errorCode"].as_str()),
        (400, Some("LIMIT_EXCEEDED")),
        "{e}"
    );
    // A data channel has an allocation of its own.
    let (s, _) = post(
        "PlatformEventChannel",
        json!({"FullName": "C__chn", "Metadata": {"channelType": "data", "label": "C"}}),
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(
        post(
            "PlatformEventChannelMember",
            member("A_1", "A", "Order_Placed__e")
        )
        .await
        .0,
        201
    );
    let (s, e) = post(
        "PlatformEventChannelMember",
        member("A_2", "A", "Order_Shipped__e"),
    )
    .await;
    assert_eq!(
        (s, e[0]["errorCode"].as_str()),
        (400, Some("LIMIT_EXCEEDED")),
        "{e}"
    );
    let (s, e) = post(
        "PlatformEventChannelMember",
        member("A_3", "A", "Order_Cancelled__e"),
    )
    .await;
    assert_eq!(
        (s, e[0]["errorCode"].as_str()),
        (400, Some("FIELD_INTEGRITY_EXCEPTION")),
        "{e}"
    );
    assert!(
        e[0]["message"].as_str().unwrap().contains("high-volume"),
        "{e}"
    );
}

#[tokio::test]
async fn a_namespaced_org_prefixes_full_names_and_references() {
    let mut config = relayform_simulator::Config::default();
    config.orgs[0].namespace_prefix = Some("ns".into());
    let sim = start_with(config).await;
    let sf = Sf::login(&sim).await;
    let (_, _, _, relay) = create_relay_objects(&sf).await;
    let url = format!("{V}/tooling/sobjects/EventRelayConfig/{relay}");
    let (_, r) = sf.get(&url).await;
    assert_eq!(r["FullName"], "ns__Carbon_Comparison_Relay");
    assert_eq!(r["DeveloperName"], "Carbon_Comparison_Relay");
    assert_eq!(r["NamespacePrefix"], "ns");
    assert_eq!(r["EventChannel"], "ns__Carbon_Comparison_Channel__chn");
    assert_eq!(
        r["DestinationResourceName"],
        "callout:ns__MyRelayNamedCredential"
    );
    // A PATCH must name the full name with its prefix.
    let mut body = fixture("1.3-relay-create.json");
    let (_, e) = sf.patch(&url, &body).await;
    assert!(
        e[0]["message"]
            .as_str()
            .unwrap()
            .contains("does not match the full name ns__Carbon_Comparison_Relay"),
        "{e}"
    );
    body["FullName"] = json!("ns__Carbon_Comparison_Relay");
    body["Metadata"]["state"] = json!("RUN");
    let (s, e) = sf.patch(&url, &body).await;
    assert_eq!(s, 204, "{e}");
    let (_, o) = sf
        .query("SELECT NamespacePrefix FROM Organization", false)
        .await;
    assert_eq!(o["records"][0]["NamespacePrefix"], "ns");
}
