//! What the end-to-end suites share: a temporary directory with a spec and the embedded simulator's
//! state, `relayform` run in it through `run_args` (bounded in time), clients of the saved world, and
//! the world's inventory.

#![allow(dead_code, unreachable_pub)]

use relayform_aws::{Aws, Credentials, Target};
use relayform_provider::Secret;
use relayform_salesforce::{Client, Grant, OAuth};
use std::path::PathBuf;
use std::sync::Arc;

pub const DEMO: &str = include_str!("../../specs/demo.relayform.yaml");

/// The suite runs under either timing profile of the simulator: `fast` (seconds; the default) or,
/// with `RELAYFORM_E2E_TIMING=documented`, the delays Salesforce documents (minutes: 300 s to
/// register a partner source, 30 s more for AWS to show it, 180 s per state change) on a simulated
/// clock running 100 times the wall clock. The vendor rules are the strict defaults either way.
pub fn timing_settings() -> Option<&'static str> {
    match std::env::var("RELAYFORM_E2E_TIMING").as_deref() {
        Ok("documented") => Some("timing: documented\nclock_speed: 100\n"),
        Ok("fast") | Err(_) => None,
        Ok(other) => panic!("RELAYFORM_E2E_TIMING={other}: use fast or documented"),
    }
}

pub struct Dir {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
}

impl Dir {
    pub fn new(spec: &str) -> Dir {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_owned();
        std::fs::write(root.join("spec.yaml"), spec).unwrap();
        if let Some(settings) = timing_settings() {
            std::fs::write(root.join("simulator-settings.yaml"), settings).unwrap();
        }
        Dir { _tmp: tmp, root }
    }

    pub fn spec(&self) -> String {
        self.root.join("spec.yaml").display().to_string()
    }

    pub fn set_spec(&self, spec: &str) {
        std::fs::write(self.root.join("spec.yaml"), spec).unwrap();
    }

    pub fn state(&self) -> PathBuf {
        self.root.join("simulator.json")
    }

    /// Runs `relayform <args> [--simulator-state ...] [spec]`; returns (exit code, stdout, stderr).
    /// A run that does not end within two minutes fails the test rather than hanging the suite.
    pub fn run(&self, args: &[&str], with_spec: bool) -> (u8, String, String) {
        let mut argv: Vec<String> = vec!["relayform".into()];
        argv.extend(args.iter().map(|a| a.to_string()));
        argv.extend([
            "--simulator-state".into(),
            self.state().display().to_string(),
        ]);
        let settings = self.root.join("simulator-settings.yaml");
        if settings.exists() {
            argv.extend([
                "--simulator-settings".into(),
                settings.display().to_string(),
            ]);
        }
        if with_spec {
            argv.push(self.spec());
        }
        let (done, wait) = std::sync::mpsc::channel();
        let shown = argv.join(" ");
        std::thread::spawn(move || {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let code = relayform::run_args(argv, &mut out, &mut err);
            let _ = done.send((
                code,
                String::from_utf8(out).unwrap(),
                String::from_utf8(err).unwrap(),
            ));
        });
        wait.recv_timeout(std::time::Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("`{shown}` did not finish within 120 s"))
    }

    pub fn apply(&self) -> (u8, String, String) {
        self.run(&["apply", "--auto-approve", "--wait-timeout", "60s"], true)
    }

    pub fn plan(&self) -> (u8, String) {
        let (code, out, err) = self.run(&["plan", "--detailed-exitcode"], true);
        assert_ne!(code, 1, "plan failed: {err}");
        (code, out)
    }

    /// Opens the saved simulated world, runs `f` against it, saves it again.
    pub fn with_sim<T>(&self, f: impl AsyncFnOnce(&relayform_simulator::Running) -> T) -> T {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let sim = relayform_simulator::start(relayform_simulator::Options {
                state_file: Some(self.state()),
                ..Default::default()
            })
            .await
            .unwrap();
            let out = f(&sim).await;
            sim.shutdown().await.unwrap();
            out
        })
    }
}

pub fn salesforce(sim: &relayform_simulator::Running) -> Client {
    Client::new(Arc::new(OAuth::new(
        &sim.instance_url("demo").unwrap(),
        Grant::ClientCredentials {
            client_id: relayform_simulator::config::DEMO_CLIENT_ID.into(),
            client_secret: Secret::new(relayform_simulator::config::DEMO_CLIENT_SECRET),
        },
    )))
}

pub async fn aws(sim: &relayform_simulator::Running) -> Aws {
    Aws::connect(
        &Target {
            region: "us-east-1".into(),
            endpoint_url: Some(sim.urls.aws_endpoint.clone()),
            credentials: Credentials::Static {
                access_key_id: "000000000000".into(),
                secret_access_key: Secret::new("x"),
            },
            config_file: None,
            patience: Default::default(),
        },
        None,
    )
    .await
}

/// The partner buses of the demo account.
pub async fn partner_buses(sim: &relayform_simulator::Running) -> Vec<String> {
    let aws = aws(sim).await;
    let out = aws
        .events
        .list_event_buses()
        .name_prefix("aws.partner/")
        .send()
        .await
        .unwrap();
    out.event_buses()
        .iter()
        .map(|b| b.name().unwrap().to_owned())
        .collect()
}

pub async fn relay_id(sf: &Client, name: &str) -> String {
    sf.tooling_query(&format!(
        "SELECT Id FROM EventRelayConfig WHERE DeveloperName = '{name}'"
    ))
    .await
    .unwrap()[0]["Id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Journal entries from `from` on that changed something.
pub fn mutations(sim: &relayform_simulator::Running, from: usize) -> Vec<String> {
    sim.with_world(|w, _| {
        w.journal
            .entries
            .iter()
            .skip(from)
            .filter(|e| e.is_mutating())
            .map(|e| e.operation.to_string())
            .collect()
    })
}

pub fn journal_len(sim: &relayform_simulator::Running) -> usize {
    sim.with_world(|w, _| w.journal.entries.len())
}

pub fn changes(plan: &str) -> Vec<String> {
    plan.lines()
        .filter(|l| {
            let t = l.trim_start();
            ["+ ", "~ ", "- ", "-/+ "].iter().any(|p| t.starts_with(p)) && !l.starts_with("      ")
        })
        .map(|l| l.split("  #").next().unwrap().trim().to_owned())
        .collect()
}

/// A saved world like the one the embedded simulator derives from the demo, but where Salesforce
/// registers partner sources and applies state changes at once (no waiting): for sweeps.
pub fn instant_world(d: &Dir) {
    use relayform_simulator::config::{AccountConfig, BusConfig, Config, OrgConfig};
    let mut org = OrgConfig::demo("demo");
    for fields in org.platform_events.values_mut() {
        fields.push("Message__c".into());
    }
    org.cdc_entities
        .entry("Account".into())
        .or_insert_with(|| vec!["Name".into()]);
    let mut config = Config {
        orgs: vec![org],
        aws_accounts: vec![AccountConfig {
            account_id: "000000000000".into(),
            access_keys: Vec::new(),
            event_buses: vec![BusConfig {
                region: "us-east-1".into(),
                name: "orders".into(),
            }],
        }],
        settings: Default::default(),
    };
    config.settings.partner_source_delay_seconds = 0;
    config.settings.source_visibility_lag_seconds = 0;
    config.settings.state_change_delay_seconds = 0;
    // Sweeps key their faults by the position of a call, so they need a world without waits (whose
    // polls would vary in number): the instant world keeps its settings whatever the profile.
    let _ = std::fs::remove_file(d.root.join("simulator-settings.yaml"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let sim = relayform_simulator::start(relayform_simulator::Options {
            config,
            state_file: Some(d.state()),
            ..Default::default()
        })
        .await
        .unwrap();
        sim.shutdown().await.unwrap();
    });
}

/// Counts of what the demo consists of once applied, by object.
pub fn inventory(d: &Dir) -> Vec<(String, usize)> {
    d.with_sim(async |sim| {
        let sf = salesforce(sim);
        let mut out = Vec::new();
        for object in [
            "EventRelayConfig",
            "PlatformEventChannel",
            "PlatformEventChannelMember",
            "NamedCredential",
        ] {
            let rows = sf
                .tooling_query(&format!("SELECT Id FROM {object}"))
                .await
                .unwrap();
            out.push((object.to_owned(), rows.len()));
        }
        out.push(("partner buses".into(), partner_buses(sim).await.len()));
        let rules = sim.with_world(|w, _| {
            w.accounts["000000000000"].regions["us-east-1"]
                .buses
                .values()
                .map(|b| b.rules.len())
                .sum::<usize>()
        });
        out.push(("rules".into(), rules));
        out
    })
}
