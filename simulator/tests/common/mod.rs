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
    let mut req = reqwest::Client::new().request(method, format!("{}/_sim{path}", sim.base_url()));
    if let Some(b) = body {
        req = req.json(&b);
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
