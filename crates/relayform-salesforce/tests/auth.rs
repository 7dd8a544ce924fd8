//! The token sources that need more than a form post: the JWT bearer flow (checked by the simulator
//! against the app's certificate) and the `sf` CLI's logins (through a stand-in `sf` program).

use relayform_provider::{ErrorKind, Secret};
use relayform_salesforce::{Client, Grant, OAuth, SfCli, TokenSource};
use relayform_simulator::config::{
    AppConfig, Config, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_USERNAME,
};
use std::sync::Arc;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../simulator/tests/fixtures"
);

async fn simulator() -> relayform_simulator::Running {
    let mut config = Config::default();
    config.orgs[0].connected_apps.push(AppConfig {
        client_id: "jwt-app".into(),
        client_secret: None,
        certificate: Some(
            std::fs::read_to_string(format!("{FIXTURES}/test-only-jwt-key.pub.pem")).unwrap(),
        ),
        run_as: None,
    });
    relayform_simulator::start(relayform_simulator::Options {
        config,
        ..Default::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn jwt_bearer_signs_an_assertion_the_org_accepts() {
    let sim = simulator().await;
    let key = std::fs::read_to_string(format!("{FIXTURES}/test-only-jwt-key.pem")).unwrap();
    let jwt = |private_key: &str, username: &str| {
        Client::new(Arc::new(OAuth::new(
            &sim.instance_url("demo").unwrap(),
            Grant::JwtBearer {
                client_id: "jwt-app".into(),
                username: username.into(),
                private_key: Secret::new(private_key),
                audience: "https://login.salesforce.com".into(),
            },
        )))
    };
    let rows = jwt(&key, DEMO_USERNAME)
        .query("SELECT Id FROM Organization")
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);

    // A user the app does not know: refused by the org, in its words.
    let e = jwt(&key, "nobody@example.invalid")
        .query("SELECT Id FROM Organization")
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized, "{e}");

    // Not a key: refused before anything is sent, and the text is not repeated.
    let e = jwt("not-a-key-hunter2", DEMO_USERNAME)
        .query("SELECT Id FROM Organization")
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Rejected);
    assert!(e.to_string().contains("not an RSA key in PEM form"), "{e}");
    assert!(!e.to_string().contains("hunter2"));
}

/// A stand-in for `sf`: answers `org display` with `answer` (exit `status`) and, if given,
/// `org auth show-access-token` with `shown`.
fn fake_sf(dir: &std::path::Path, answer: &str, status: i32) -> String {
    fake_sf_with(dir, answer, status, None)
}

fn fake_sf_with(dir: &std::path::Path, answer: &str, status: i32, shown: Option<&str>) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("sf");
    std::fs::write(dir.join("answer.json"), answer).unwrap();
    std::fs::write(dir.join("shown.json"), shown.unwrap_or("")).unwrap();
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\ncase \"$*\" in\n\"org display --target-org demo-alias --json\") cat '{}'; exit {status};;\n\"org auth show-access-token --target-org demo-alias --json\") [ -s '{shown}' ] || exit 9; cat '{shown}';;\n*) exit 9;;\nesac\n",
            dir.join("answer.json").display(),
            shown = dir.join("shown.json").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn the_sf_cli_login_is_used_and_its_failures_explained() {
    let sim = simulator().await;
    let instance = sim.instance_url("demo").unwrap();
    let session = OAuth::new(
        &instance,
        Grant::ClientCredentials {
            client_id: DEMO_CLIENT_ID.into(),
            client_secret: Secret::new(DEMO_CLIENT_SECRET),
        },
    )
    .session(None)
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let answer = serde_json::json!({"status": 0, "result": {
        "accessToken": session.access_token.expose(),
        "instanceUrl": instance,
        "username": DEMO_USERNAME,
    }});
    let sf = fake_sf(dir.path(), &answer.to_string(), 0);
    let client = Client::new(Arc::new(SfCli::new(&sf, "demo-alias")));
    assert_eq!(
        client
            .query("SELECT Id FROM Organization")
            .await
            .unwrap()
            .len(),
        1
    );

    // Current CLIs hide the token in `org display`: it comes from `org auth show-access-token`.
    let redacted = serde_json::json!({"status": 0, "result": {
        "accessToken": "[REDACTED] Use 'sf org auth show-access-token' to view",
        "instanceUrl": instance,
        "username": DEMO_USERNAME,
    }});
    let shown =
        serde_json::json!({"status": 0, "result": {"accessToken": session.access_token.expose()}});
    let sf = fake_sf_with(
        dir.path(),
        &redacted.to_string(),
        0,
        Some(&shown.to_string()),
    );
    let client = Client::new(Arc::new(SfCli::new(&sf, "demo-alias")));
    assert_eq!(
        client
            .query("SELECT Id FROM Organization")
            .await
            .unwrap()
            .len(),
        1
    );

    let failing = fake_sf(
        dir.path(),
        r#"{"status": 1, "name": "NoOrgFound", "message": "No authorization information found for demo-alias."}"#,
        1,
    );
    let e = Client::new(Arc::new(SfCli::new(&failing, "demo-alias")))
        .query("SELECT Id FROM Organization")
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized);
    assert!(
        e.to_string()
            .contains("No authorization information found for demo-alias"),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("sf org login web --alias demo-alias"),
        "{e}"
    );

    let e = Client::new(Arc::new(SfCli::new(
        dir.path().join("no-such-sf").display().to_string(),
        "demo-alias",
    )))
    .query("SELECT Id FROM Organization")
    .await
    .unwrap_err();
    assert!(
        e.to_string().contains("is not installed or not on PATH"),
        "{e}"
    );
}
