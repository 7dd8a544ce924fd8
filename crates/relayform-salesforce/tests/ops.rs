//! Creates that converge: a lost response is found by name (not created again), an existing object
//! that matches is adopted, one that differs is reported.

use relayform_provider::{ErrorKind, Secret};
use relayform_salesforce::ops::{self, create_or_adopt};
use relayform_salesforce::{Client, Grant, OAuth};
use relayform_simulator::config::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET};
use std::sync::Arc;

fn client(sim: &relayform_simulator::Running) -> Client {
    Client::new(Arc::new(OAuth::new(
        &sim.instance_url("demo").unwrap(),
        Grant::ClientCredentials {
            client_id: DEMO_CLIENT_ID.into(),
            client_secret: Secret::new(DEMO_CLIENT_SECRET),
        },
    )))
}

fn creates(sim: &relayform_simulator::Running) -> usize {
    sim.with_world(|w, _| {
        w.journal
            .entries
            .iter()
            .filter(|e| e.operation == "tooling.create")
            .count()
    })
}

#[tokio::test]
async fn a_lost_create_is_found_by_name_and_adopted_without_a_second_create() {
    let sim = relayform_simulator::start(relayform_simulator::Options::default())
        .await
        .unwrap();
    sim.with_world(|w, _| {
        w.faults.add(
            serde_json::from_value(serde_json::json!({
                "api": "salesforce",
                "operation": "tooling.create:NamedCredential",
                "action": {"type": "lose_response"},
                "when": {"type": "next", "n": 1}
            }))
            .unwrap(),
        );
    });
    let c = client(&sim);
    let nc = ops::named_credential(
        "Relayform_000000000000_us_east_1",
        "arn:aws:US-EAST-1:000000000000",
    );
    let (id, adopted) = create_or_adopt(&c, &nc).await.unwrap();
    assert!(adopted);
    assert_eq!(creates(&sim), 1, "looked up, not created again");
    let found = ops::find(&c, "NamedCredential", &nc.developer_name, &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found["Id"], id.as_str());

    // Created again (a second run): adopted through the duplicate answer.
    let (again, adopted) = create_or_adopt(&c, &nc).await.unwrap();
    assert_eq!((again.as_str(), adopted), (id.as_str(), true));

    // The same name, another account: not adopted, and the difference said.
    let other = ops::named_credential(
        "Relayform_000000000000_us_east_1",
        "arn:aws:US-EAST-1:111111111111",
    );
    let e = create_or_adopt(&c, &other).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert!(
        e.message.contains("exists already and differs: Endpoint is \"arn:aws:US-EAST-1:000000000000\", the spec wants \"arn:aws:US-EAST-1:111111111111\""),
        "{e}"
    );
}
