//! Shared by the simulator's integration tests: start a simulator, build SDK clients and HTTP helpers.
#![allow(dead_code, unreachable_pub)]

use relayform_simulator::config::{ClockMode, Config, DEMO_ACCESS_KEY_ID};
use relayform_simulator::{Options, Running};

/// A simulator on a free loopback port, with a frozen clock that tests move.
pub async fn start() -> Running {
    start_with(Config::default()).await
}

pub async fn start_with(mut config: Config) -> Running {
    config.settings.clock = ClockMode::Frozen;
    relayform_simulator::start(Options {
        config,
        ..Options::default()
    })
    .await
    .expect("simulator starts")
}

pub async fn sdk_config(
    sim: &Running,
    access_key: &str,
    region: &str,
    attempts: u32,
) -> aws_config::SdkConfig {
    let creds =
        aws_sdk_eventbridge::config::Credentials::new(access_key, "secret", None, None, "test");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(sim.base_url())
        .region(aws_config::Region::new(region.to_owned()))
        .credentials_provider(creds)
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(attempts)
                .with_initial_backoff(std::time::Duration::from_millis(5)),
        )
        .load()
        .await
}

pub async fn eventbridge(sim: &Running) -> aws_sdk_eventbridge::Client {
    aws_sdk_eventbridge::Client::new(&sdk_config(sim, DEMO_ACCESS_KEY_ID, "us-east-1", 1).await)
}

pub async fn iam(sim: &Running) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(&sdk_config(sim, DEMO_ACCESS_KEY_ID, "us-east-1", 1).await)
}

pub async fn admin(
    sim: &Running,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    let post = method == reqwest::Method::POST;
    let mut req = reqwest::Client::new()
        .request(method, format!("{}/_sim{path}", sim.base_url()))
        .header("x-sim-admin-token", sim.admin_token());
    if let Some(b) = body {
        req = req.json(&b);
    } else if post {
        req = req.json(&serde_json::json!({}));
    }
    let resp = req.send().await.expect("admin call");
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "admin {path}: {status} {text}");
    if text.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    }
}

/// Journal entries for one operation.
pub async fn calls(sim: &Running, operation: &str) -> usize {
    let j = admin(
        sim,
        reqwest::Method::GET,
        &format!("/journal?operation={operation}"),
        None,
    )
    .await;
    j["count"].as_u64().unwrap() as usize
}

pub const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// A Salesforce REST client for tests: an instance URL and a token.
pub struct Sf {
    pub http: reqwest::Client,
    pub instance: String,
    pub token: String,
}

pub const V: &str = "/services/data/v59.0";

impl Sf {
    /// Logs in to the demo org with the password flow.
    pub async fn login(sim: &Running) -> Sf {
        let instance = sim.instance_url("demo").unwrap();
        let http = reqwest::Client::new();
        let resp: serde_json::Value = http
            .post(format!("{instance}/services/oauth2/token"))
            .form(&[
                ("grant_type", "password"),
                ("client_id", relayform_simulator::config::DEMO_CLIENT_ID),
                (
                    "client_secret",
                    relayform_simulator::config::DEMO_CLIENT_SECRET,
                ),
                ("username", relayform_simulator::config::DEMO_USERNAME),
                ("password", relayform_simulator::config::DEMO_PASSWORD),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Sf {
            http,
            instance: resp["instance_url"].as_str().unwrap().to_owned(),
            token: resp["access_token"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.instance))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            if text.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
            },
        )
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    /// A SOQL query on the data (`tooling = false`) or Tooling API.
    pub async fn query(&self, soql: &str, tooling: bool) -> (u16, serde_json::Value) {
        let api = if tooling { "/tooling" } else { "" };
        let q: String = form_urlencoded::byte_serialize(soql.as_bytes()).collect();
        self.get(&format!("{V}{api}/query?q={q}")).await
    }
}

pub fn fixture(name: &str) -> serde_json::Value {
    let path = format!(
        "{}/tests/fixtures/salesforce/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Creates the fixture named credential, channel, member and relay; returns their ids.
pub async fn create_relay_objects(sf: &Sf) -> (String, String, String, String) {
    let mut ids = Vec::new();
    for (t, f) in [
        ("NamedCredential", "2.2-named-credential-create.json"),
        ("PlatformEventChannel", "3.1-channel-create.json"),
        (
            "PlatformEventChannelMember",
            "3.2-channel-member-create.json",
        ),
        ("EventRelayConfig", "1.3-relay-create.json"),
    ] {
        let (status, body) = sf
            .post(&format!("{V}/tooling/sobjects/{t}/"), &fixture(f))
            .await;
        assert_eq!(status, 201, "{t}: {body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    (
        ids[0].clone(),
        ids[1].clone(),
        ids[2].clone(),
        ids[3].clone(),
    )
}
