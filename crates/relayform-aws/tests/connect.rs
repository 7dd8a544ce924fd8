//! Connecting to the simulator's AWS endpoint with each kind of credentials, pinning the account,
//! classifying errors and observing calls.

use relayform_aws::*;
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
struct Calls(Mutex<Vec<Call>>);

impl Observer for Calls {
    fn observe(&self, call: &Call) {
        self.0.lock().unwrap().push(call.clone());
    }
}

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole"}]}"#;

fn target(sim: &relayform_simulator::Running, credentials: Credentials) -> Target {
    Target {
        region: "us-east-1".into(),
        endpoint_url: Some(sim.base_url().to_owned()),
        credentials,
        config_file: None,
        patience: Default::default(),
    }
}

fn demo_keys() -> Credentials {
    Credentials::Static {
        access_key_id: relayform_simulator::config::DEMO_ACCESS_KEY_ID.into(),
        secret_access_key: Secret::new(relayform_simulator::config::DEMO_SECRET_ACCESS_KEY),
    }
}

#[tokio::test]
async fn static_keys_pinning_errors_and_observed_calls() {
    let sim = relayform_simulator::start(relayform_simulator::Options::default())
        .await
        .unwrap();
    let calls = Arc::new(Calls::default());
    let aws = Aws::connect(&target(&sim, demo_keys()), Some(calls.clone())).await;
    assert_eq!(aws.caller_account().await.unwrap(), "000000000000");
    aws.pin("000000000000").await.unwrap();
    let e = aws.pin("111111111111").await.unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (ErrorKind::Unauthorized, Some("AccountMismatch"))
    );
    assert!(
        e.to_string().contains(
            "the credentials are for account 000000000000, but the spec says 111111111111"
        ),
        "{e}"
    );

    let missing = aws
        .events
        .describe_event_bus()
        .name("nope")
        .send()
        .await
        .unwrap_err();
    let e = classify("events:DescribeEventBus", &missing);
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (ErrorKind::NotFound, Some("ResourceNotFoundException"))
    );
    aws.events
        .create_event_bus()
        .name("orders")
        .send()
        .await
        .unwrap();
    let dup = aws
        .events
        .create_event_bus()
        .name("orders")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        classify("events:CreateEventBus", &dup).kind,
        ErrorKind::Conflict
    );
    let gone = aws
        .iam
        .get_role()
        .role_name("ghost")
        .send()
        .await
        .unwrap_err();
    assert_eq!(classify("iam:GetRole", &gone).kind, ErrorKind::NotFound);

    let seen: Vec<(String, String, Option<u16>)> = calls
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|c| (c.service.clone(), c.operation.clone(), c.status))
        .collect();
    assert_eq!(
        seen[0],
        ("sts".into(), "GetCallerIdentity".into(), Some(200))
    );
    assert!(seen.contains(&("events".into(), "CreateEventBus".into(), Some(400))));
    assert!(seen.contains(&("iam".into(), "GetRole".into(), Some(404))));
    assert_eq!(seen.len(), 7);

    let stranger = Aws::connect(
        &target(
            &sim,
            Credentials::Static {
                access_key_id: "UNKNOWN".into(),
                secret_access_key: Secret::new("x"),
            },
        ),
        None,
    )
    .await;
    assert_eq!(
        stranger.caller_account().await.unwrap_err().kind,
        ErrorKind::Unauthorized
    );
}

#[tokio::test]
async fn profiles_and_assumed_roles() {
    let sim = relayform_simulator::start(relayform_simulator::Options::default())
        .await
        .unwrap();
    let admin = Aws::connect(&target(&sim, demo_keys()), None).await;
    admin
        .iam
        .create_role()
        .role_name("deployer")
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!(
            "[profile sim]\nregion = us-east-1\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            relayform_simulator::config::DEMO_ACCESS_KEY_ID,
            relayform_simulator::config::DEMO_SECRET_ACCESS_KEY
        ),
    )
    .unwrap();
    let with_file = |credentials| Target {
        config_file: Some(config.clone()),
        patience: Default::default(),
        ..target(&sim, credentials)
    };
    let by_profile = Aws::connect(&with_file(Credentials::Profile("sim".into())), None).await;
    assert_eq!(by_profile.caller_account().await.unwrap(), "000000000000");

    let calls = Arc::new(Calls::default());
    let assumed = Aws::connect(
        &with_file(Credentials::AssumeRole {
            role_arn: "arn:aws:iam::000000000000:role/deployer".into(),
            external_id: None,
            session_name: Some("relayform-test".into()),
            source_profile: Some("sim".into()),
        }),
        Some(calls.clone()),
    )
    .await;
    assert_eq!(assumed.caller_account().await.unwrap(), "000000000000");
    // The simulator's journal shows the role being assumed with the profile's keys.
    let assumed_roles = sim.with_world(|w, _| {
        w.journal
            .entries
            .iter()
            .filter(|e| e.operation == "AssumeRole")
            .count()
    });
    assert_eq!(assumed_roles, 1);

    let missing_role = Aws::connect(
        &with_file(Credentials::AssumeRole {
            role_arn: "arn:aws:iam::000000000000:role/ghost".into(),
            external_id: None,
            session_name: None,
            source_profile: Some("sim".into()),
        }),
        None,
    )
    .await;
    assert!(missing_role.caller_account().await.is_err());
}

/// An endpoint that accepts connections and never answers: the call ends with the patience, and
/// the message names the endpoint.
#[tokio::test]
async fn a_black_holed_endpoint_times_out_naming_it() {
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", hole.local_addr().unwrap());
    let calls = Arc::new(Calls::default());
    let aws = Aws::connect(
        &Target {
            region: "us-east-1".into(),
            endpoint_url: Some(url.clone()),
            credentials: demo_keys(),
            config_file: None,
            patience: Patience {
                connect: std::time::Duration::from_secs(1),
                attempt: std::time::Duration::from_millis(300),
                total: std::time::Duration::from_millis(1500),
            },
        },
        Some(calls.clone()),
    )
    .await;
    let started = std::time::Instant::now();
    let e = aws.caller_account().await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    assert!(e.message.contains(&url), "{e}");
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    // More than one attempt was made in the time allowed.
    assert!(
        calls.0.lock().unwrap().len() >= 2,
        "{:?}",
        calls.0.lock().unwrap()
    );
    drop(hole);
}

/// A credential-provider failure used to be reported as a connection failure. It says what it is,
/// names the profile, and says what to run (for SSO, `aws sso login`). Nothing is sent.
#[tokio::test]
async fn missing_profiles_and_expired_sso_sessions_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        "[profile sso]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Admin\nregion = us-east-1\n[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\n",
    )
    .unwrap();
    let connect = |profile: &str| Target {
        region: "us-east-1".into(),
        // Nothing may leave this machine, whatever happens.
        endpoint_url: Some("http://127.0.0.1:1".into()),
        credentials: Credentials::Profile(profile.into()),
        config_file: Some(config.clone()),
        patience: Patience::per_attempt(std::time::Duration::from_secs(2)),
    };
    // The profile is consulted whatever keys the environment has: a spec's profile is its
    // credentials, as `aws --profile` makes it.
    let e = Aws::connect(&connect("sso"), None)
        .await
        .caller_account()
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (ErrorKind::Unauthorized, Some("NoCredentials")),
        "{e}"
    );
    assert!(e.message.contains("aws sso login --profile sso"), "{e}");
    assert!(
        !e.message.contains("DispatchFailure("),
        "no Debug dump: {e}"
    );
    let e = Aws::connect(&connect("nosuch"), None)
        .await
        .caller_account()
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized, "{e}");
    assert!(e.message.contains("profile `nosuch`"), "{e}");
    assert!(!e.message.contains("connection failed"), "{e}");
}
