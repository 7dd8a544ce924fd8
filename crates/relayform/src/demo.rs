//! After an apply on the embedded simulator: publish a test event through the running relays that
//! forward platform events (one per org and event type, which all of them carry), and show that
//! each relay's copy reached its destination bus (all relays at once).

use crate::apply::Connections;
use crate::engine::SIM_EVENT_FIELD;
use relayform_spec::names;
use relayform_spec::{AwsConnection, Ensure, OrgConnection, RelayState, Spec};
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
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

/// Publishes one test event per org and event type, which every running forwarded relay of the
/// embedded simulator that selects it carries, then watches for all of them at once (so a fleet's
/// check takes about as long as its slowest relay, not the sum), and says what became of each relay's
/// copy: it arrived when its destination bus got the marked event from the relay's own partner
/// source.
pub(crate) async fn check_delivery(
    spec: &Spec,
    sim: &relayform_simulator::Running,
    conn: &Connections,
) -> anyhow::Result<Vec<Delivery>> {
    // The relays to check, grouped by what one test event covers: (org, event) → relays.
    let mut groups: BTreeMap<(String, String), Vec<Delivery>> = BTreeMap::new();
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
        groups
            .entry((r.org.value.clone(), event.value.clone()))
            .or_default()
            .push(Delivery {
                relay: name.clone(),
                org: r.org.value.clone(),
                event: event.value.clone(),
                bus: dest.bus_name.clone(),
                account_id: dest.account_id.clone(),
                region: dest.region.clone(),
                arrived: false,
                ms: 0,
            });
    }
    // What reached a bus from a partner source, with a marker: (account, region, bus, source, marker).
    let mut seen: HashSet<(String, String, String, String, String)> = HashSet::new();
    let mut cursor = 0u64;
    let mut scan = |seen: &mut HashSet<_>| {
        sim.with_world(|w, _| {
            let log = &w.deliveries.recent;
            for x in log.range_from(cursor.saturating_sub(log.start()) as usize) {
                if !x.rule.is_empty() {
                    continue;
                }
                let Ok(event) = serde_json::from_str::<Marked>(x.event.text()) else {
                    continue;
                };
                let marker = event.detail.payload.get(SIM_EVENT_FIELD);
                if let (Some(marker), Some(source)) =
                    (marker.and_then(|m| m.as_str()), event.source)
                {
                    seen.insert((
                        x.account.clone(),
                        x.region.clone(),
                        x.bus.clone(),
                        source,
                        marker.to_owned(),
                    ));
                }
            }
            cursor = log.end();
        })
    };
    // Each relay in flight: what it is, the marker it carries, its partner source, and when.
    let mut sent: Vec<(Delivery, String, Option<String>, Instant)> = Vec::new();
    for ((org, event), relays) in groups {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let marker = format!("relayform test event for {org}: {event} ({now})");
        conn.orgs[&org]
            .publish(&event, &json!({ SIM_EVENT_FIELD: marker }))
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "the relays are applied, but the test event could not be published: {e}\nhint: the embedded simulator's world may come from an older relayform; delete .relayform/ (or the --simulator-state file) to start afresh"
                )
            })?;
        let published = Instant::now();
        // Read what was delivered after every publish: the simulator keeps only its recent deliveries.
        scan(&mut seen);
        let sources = partner_sources(sim, &org);
        for d in relays {
            let source = sources.get(&names::api_name(&d.relay)).cloned();
            sent.push((d, marker.clone(), source, published));
        }
    }
    let mut waiting: Vec<usize> = (0..sent.len()).collect();
    while !waiting.is_empty() {
        scan(&mut seen);
        waiting.retain(|&i| {
            let (d, marker, source, started) = &mut sent[i];
            let Some(source) = source else { return true };
            let key = (
                d.account_id.clone(),
                d.region.clone(),
                d.bus.clone(),
                source.clone(),
                marker.clone(),
            );
            if seen.contains(&key) {
                d.arrived = true;
                d.ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                return false;
            }
            true
        });
        if waiting.iter().all(|&i| sent[i].3.elapsed() > ARRIVAL) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(sent
        .into_iter()
        .map(|(mut d, _, _, started)| {
            if !d.arrived {
                d.ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            }
            d
        })
        .collect())
}

/// What the check reads of a delivered event: its source and the test event's marker (the rest of
/// the event is skipped, not parsed).
#[derive(serde::Deserialize)]
struct Marked {
    source: Option<String>,
    #[serde(default)]
    detail: MarkedDetail,
}

#[derive(Default, serde::Deserialize)]
struct MarkedDetail {
    /// The platform event's fields (a few).
    #[serde(default)]
    payload: serde_json::Map<String, serde_json::Value>,
}

/// The partner source of each relay of a simulated org, by the relay's DeveloperName.
fn partner_sources(sim: &relayform_simulator::Running, org: &str) -> HashMap<String, String> {
    sim.with_world(|w, _| {
        let Some(o) = w.org_by_domain(org) else {
            return HashMap::new();
        };
        let Some(configs) = o.tooling.get("EventRelayConfig") else {
            return HashMap::new();
        };
        configs
            .iter()
            .filter_map(|(id, config)| {
                let source = o.relays.get(id)?.remote_resource.clone()?;
                Some((config.str_field("DeveloperName")?, source))
            })
            .collect()
    })
}
