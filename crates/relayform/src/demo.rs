//! After an apply on the embedded simulator: publish a test event through each running relay that
//! forwards platform events, and show that it reached the destination bus.

use crate::apply::Connections;
use crate::engine::SIM_EVENT_FIELD;
use relayform_spec::{AwsConnection, Ensure, OrgConnection, RelayState, Spec};
use serde_json::json;
use std::io::Write;
use std::time::{Duration, Instant};

/// One test event: where it went and whether it arrived.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Delivery {
    pub relay: String,
    pub org: String,
    pub event: String,
    pub bus: String,
    pub account_id: String,
    pub region: String,
    pub arrived: bool,
    /// From publishing to arrival (or to giving up).
    pub ms: u64,
}

impl Delivery {
    pub(crate) fn render(&self, out: &mut dyn Write) -> std::io::Result<()> {
        if self.arrived {
            writeln!(
                out,
                "Test event: published {} in org `{}`; it reached event bus `{}` ({}, {}) through relay `{}` in {} ms.",
                self.event, self.org, self.bus, self.account_id, self.region, self.relay, self.ms
            )
        } else {
            writeln!(
                out,
                "Test event: published {} in org `{}`, but it did not reach event bus `{}` within 10 s.\nhint: `relayform sim serve --state .relayform/simulator.json` and GET /_sim/deliveries show what happened to it",
                self.event, self.org, self.bus
            )
        }
    }
}

/// Publishes a test event through each running forwarded relay of the embedded simulator, one
/// after another, and says what became of each.
pub(crate) async fn check_delivery(
    spec: &Spec,
    sim: &relayform_simulator::Running,
    conn: &Connections,
) -> anyhow::Result<Vec<Delivery>> {
    let mut all = Vec::new();
    for (name, r) in &spec.relays {
        let simulated = matches!(spec.orgs[&r.org.value].connection, OrgConnection::Simulator)
            && matches!(
                spec.aws_accounts[&r.aws_account.value].connection,
                AwsConnection::Simulator
            );
        let (Some(dest), Some(event)) = (
            &r.destination,
            r.events.iter().find(|e| e.value.ends_with("__e")),
        ) else {
            continue;
        };
        if !simulated || r.ensure != Ensure::Present || r.state != RelayState::Running {
            continue;
        }
        let dest = &dest.value;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let marker = format!("relayform test event for {name} ({now})");
        let client = &conn.orgs[&r.org.value];
        client
            .publish(&event.value, &json!({ SIM_EVENT_FIELD: marker }))
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "the relays are applied, but the test event could not be published: {e}\nhint: the embedded simulator's world may come from an older relayform; delete .relayform/ (or the --simulator-state file) to start afresh"
                )
            })?;
        let started = Instant::now();
        let arrived = loop {
            let seen = sim.with_world(|w, _| {
                w.deliveries.recent.iter().any(|d| {
                    d.account == dest.account_id
                        && d.region == dest.region
                        && d.bus == dest.bus_name
                        && d.rule.is_empty()
                        && d.event.to_string().contains(&marker)
                })
            });
            if seen || started.elapsed() > Duration::from_secs(10) {
                break seen;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        all.push(Delivery {
            relay: name.clone(),
            org: r.org.value.clone(),
            event: event.value.clone(),
            bus: dest.bus_name.clone(),
            account_id: dest.account_id.clone(),
            region: dest.region.clone(),
            arrived,
            ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        });
    }
    Ok(all)
}
