//! `relayform sim serve`.

use crate::cli::ServeArgs;
use anyhow::{Context, bail};
use relayform_simulator::config::{
    Config, DEMO_ACCESS_KEY_ID, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_JWT_CLIENT_ID,
    DEMO_PASSWORD, DEMO_SECRET_ACCESS_KEY, DEMO_USERNAME,
};
use serde_json::json;
use std::io::Write;

pub(crate) fn serve(
    args: &ServeArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<u8> {
    if !args.addr.ip().is_loopback() && !args.listen_beyond_loopback {
        bail!(
            "refusing to listen on {}: the simulator accepts demo credentials and is meant for this machine only\nhint: use 127.0.0.1, or add --listen-beyond-loopback if you really mean it",
            args.addr
        );
    }
    let config = match &args.config {
        None => Config::default(),
        Some(path) => {
            let text = crate::load::read_small(path, 16 << 20)
                .with_context(|| format!("cannot read simulator config `{}`", path.display()))?;
            Config::from_yaml(&text).map_err(|e| {
                anyhow::anyhow!(
                    "simulator config `{}` is not valid: {e}\nhint: see the Configuration section of simulator/README.md",
                    path.display()
                )
            })?
        }
    };
    let demo = config == Config::default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let running = relayform_simulator::start(relayform_simulator::Options {
            addr: args.addr,
            config,
            state_file: args.state.clone(),
            // Settings given in a config file apply to a world loaded from the state file too.
            override_settings: args.config.is_some(),
            admin_token: None,
            preload: None,
        })
        .await
        .map_err(|e| match e {
            relayform_simulator::Error::Bind { addr, source } if source.kind() == std::io::ErrorKind::AddrInUse => anyhow::anyhow!(
                "cannot listen on {addr}: {source}\nhint: another process (perhaps another simulator) uses this port; stop it, or pick a free port with --addr 127.0.0.1:0"
            ),
            other => anyhow::Error::new(other),
        })?;
        let u = &running.urls;
        if args.json {
            let mut doc = u.to_json();
            doc["format_version"] = serde_json::json!(1);
            if demo {
                doc["demo"] = demo_credentials();
            }
            writeln!(out, "{doc}")?;
        } else {
            writeln!(out, "relayform simulator listening on {}", u.base)?;
            for (domain, id, url) in &u.orgs {
                writeln!(out, "  salesforce org {domain} ({id}): {url}")?;
            }
            writeln!(out, "  aws endpoint (IAM, STS, EventBridge): {}", u.aws_endpoint)?;
            writeln!(
                out,
                "  admin api: {} (send X-Sim-Admin-Token: {})",
                u.admin, u.admin_token
            )?;
            if demo {
                writeln!(out, "demo credentials (simulator only):")?;
                writeln!(out, "  salesforce user {DEMO_USERNAME} / {DEMO_PASSWORD}, connected app {DEMO_CLIENT_ID} / {DEMO_CLIENT_SECRET}")?;
                writeln!(out, "  jwt bearer: connected app {DEMO_JWT_CLIENT_ID}, assertions signed with simulator/tests/fixtures/test-only-jwt-key.pem")?;
                writeln!(out, "  aws access key {DEMO_ACCESS_KEY_ID} / {DEMO_SECRET_ACCESS_KEY} (or `test` / `test` as LocalStack has it, or any known 12-digit account id as the key)")?;
                // What to paste: the AWS CLI and SDKs take the endpoint from the environment, and
                // a spec reaches the org at the base URL (a spec's instance_url has no path).
                writeln!(out, "to use it (paste into a shell):")?;
                writeln!(out, "  export AWS_ENDPOINT_URL={} AWS_ACCESS_KEY_ID={DEMO_ACCESS_KEY_ID} AWS_SECRET_ACCESS_KEY={DEMO_SECRET_ACCESS_KEY} AWS_REGION=us-east-1", u.aws_endpoint)?;
                writeln!(out, "  export SF_CLIENT_SECRET={DEMO_CLIENT_SECRET}")?;
                writeln!(out, "and in a spec, for the org:")?;
                writeln!(out, "  instance_url: {}", u.base)?;
                writeln!(out, "  auth: {{client_credentials: {{client_id: {DEMO_CLIENT_ID}, client_secret: {{env: SF_CLIENT_SECRET}}}}}}")?;
            }
            if let Some(state) = &args.state {
                writeln!(out, "  state: {}", state.display())?;
            }
        }
        out.flush()?;
        wait_for_signal().await;
        writeln!(err, "stopping; saving state")?;
        running.shutdown().await.context("cannot save the simulator state")?;
        Ok(0)
    })
}

fn demo_credentials() -> serde_json::Value {
    json!({
        "username": DEMO_USERNAME, "password": DEMO_PASSWORD,
        "client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET,
        "jwt_client_id": DEMO_JWT_CLIENT_ID, "jwt_key": "simulator/tests/fixtures/test-only-jwt-key.pem",
        "access_key_id": DEMO_ACCESS_KEY_ID, "secret_access_key": DEMO_SECRET_ACCESS_KEY,
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
