//! A refresh reads an org in a fixed number of queries whatever the number of relays, counted through
//! the simulator's journal.

use relayform_salesforce::*;
use serde_json::json;
use std::sync::Arc;

async fn client(sim: &relayform_simulator::Running) -> Client {
    let oauth = OAuth::new(
        &sim.instance_url("demo").unwrap(),
        Grant::ClientCredentials {
            client_id: relayform_simulator::config::DEMO_CLIENT_ID.into(),
            client_secret: Secret::new(relayform_simulator::config::DEMO_CLIENT_SECRET),
        },
    );
    Client::new(Arc::new(oauth))
}

async fn add_relays(c: &Client, from: usize, to: usize) {
    for i in from..to {
        c.tooling_create("PlatformEventChannel", &json!({"FullName": format!("r{i}__chn"), "Metadata": {"channelType": "event", "label": format!("r{i}")}})).await.unwrap();
        c.tooling_create("PlatformEventChannelMember", &json!({"FullName": format!("r{i}_chn_Order_Placed_e"), "Metadata": {"eventChannel": format!("r{i}__chn"), "selectedEntity": "Order_Placed__e"}})).await.unwrap();
        c.tooling_create("EventRelayConfig", &json!({"FullName": format!("r{i}"), "Metadata": {"destinationResourceName": "callout:Relayform_000000000000_us_east_1", "eventChannel": format!("r{i}__chn"), "relayOption": "{\"ReplayRecovery\":\"EARLIEST\"}"}})).await.unwrap();
    }
}

async fn queries(sim: &relayform_simulator::Running) -> u64 {
    sim.with_world(|w, _| {
        w.journal
            .entries
            .iter()
            .filter(|e| {
                e.api == "salesforce" && (e.operation == "query" || e.operation == "tooling.query")
            })
            .count() as u64
    })
}

#[tokio::test]
async fn six_queries_whatever_the_number_of_relays() {
    let sim = relayform_simulator::start(relayform_simulator::Options::default())
        .await
        .unwrap();
    let c = client(&sim).await;
    c.tooling_create("NamedCredential", &json!({"FullName": "Relayform_000000000000_us_east_1", "Metadata": {"label": "x", "endpoint": "arn:aws:US-EAST-1:000000000000"}})).await.unwrap();
    add_relays(&c, 0, 2).await;
    sim.advance(5_000);

    let before = queries(&sim).await;
    let small = observe_org(&c).await.unwrap();
    assert_eq!(queries(&sim).await - before, 6);
    assert_eq!(small.org_id, sim.urls.orgs[0].1);
    assert_eq!(
        (
            small.named_credentials.len(),
            small.channels.len(),
            small.members.len(),
            small.relays.len()
        ),
        (1, 2, 2, 2)
    );
    let r0 = small.relays.iter().find(|r| r.name == "r0").unwrap();
    assert_eq!(r0.channel.as_deref(), Some("r0__chn"));
    assert_eq!(
        r0.destination.as_deref(),
        Some("callout:Relayform_000000000000_us_east_1")
    );
    assert_eq!(r0.state.as_deref(), Some("STOP"));
    assert_eq!(r0.status.as_deref(), Some("STOPPED"));
    let channel = small.channels.iter().find(|ch| ch.name == "r0").unwrap();
    assert!(
        r0.remote_resource
            .as_deref()
            .unwrap()
            .ends_with(&channel.id),
        "the source name ends in the channel id"
    );
    assert!(
        small
            .members
            .iter()
            .any(|m| m.channel_id.as_deref() == Some(channel.id.as_str())
                && m.event.as_deref() == Some("Order_Placed__e"))
    );

    add_relays(&c, 2, 25).await;
    let before = queries(&sim).await;
    let large = observe_org(&c).await.unwrap();
    assert_eq!(large.relays.len(), 25);
    assert_eq!(
        queries(&sim).await - before,
        6,
        "the same six queries for 25 relays as for 2"
    );
}
