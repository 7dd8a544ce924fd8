//! After an apply on the embedded simulator: publish a test event through each running relay that
//! forwards platform events, and show that it reached the destination bus (all relays at once).

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

/// How long a test event has to arrive.
const ARRIVAL: Duration = Duration::from_secs(10);

/// Publishes a test event through each running forwarded relay of the embedded simulator, all of
/// them first, then watches for every one at once (so a fleet's check takes about as long as its
/// slowest relay, not the sum), and says what became of each.
pub(crate) async fn check_delivery(
    spec: &Spec,
    sim: &relayform_simulator::Running,
    conn: &Connections,
) -> anyhow::Result<Vec<Delivery>> {
    // Each event in flight: what it is, its marker, and when it was published.
    let mut sent: Vec<(Delivery, String, Instant)> = Vec::new();
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
        let delivery = Delivery {
            relay: name.clone(),
            org: r.org.value.clone(),
            event: event.value.clone(),
            bus: dest.bus_name.clone(),
            account_id: dest.account_id.clone(),
            region: dest.region.clone(),
            arrived: false,
            ms: 0,
        };
        sent.push((delivery, marker, Instant::now()));
    }
    let mut waiting: Vec<usize> = (0..sent.len()).collect();
    while !waiting.is_empty() {
        let arrived: Vec<usize> = sim.with_world(|w, _| {
            waiting
                .iter()
                .copied()
                .filter(|i| {
                    let (d, marker, _) = &sent[*i];
                    w.deliveries.recent.iter().any(|x| {
                        x.account == d.account_id
                            && x.region == d.region
                            && x.bus == d.bus
                            && x.rule.is_empty()
                            && x.event.to_string().contains(marker.as_str())
                    })
                })
                .collect()
        });
        for i in &arrived {
            let (d, _, started) = &mut sent[*i];
            d.arrived = true;
            d.ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        }
        waiting.retain(|i| !arrived.contains(i));
        if waiting.iter().all(|i| sent[*i].2.elapsed() > ARRIVAL) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(sent
        .into_iter()
        .map(|(mut d, _, started)| {
            if !d.arrived {
                d.ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            }
            d
        })
        .collect())
}
