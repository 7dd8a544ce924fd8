//! Reading what an org holds, in a fixed number of queries.

use crate::client::Client;
use relayform_provider::Error;
use relayform_provider::{
    ObservedChannel, ObservedMember, ObservedNamedCredential, ObservedOrg, ObservedRelay,
};
use serde_json::Value;

/// The queries of one refresh: one per object type, whatever the number of relays (paging aside).
/// `FullName` and `Metadata` are left out on purpose: Salesforce refuses them for more than one row.
pub const ORG_QUERY: &str = "SELECT Id, NamespacePrefix FROM Organization";
/// On the data API: `Endpoint` is documented on the data-API `NamedCredential` object, not (in what
/// could be read) on its Tooling face.
pub const NAMED_CREDENTIALS: &str =
    "SELECT Id, DeveloperName, MasterLabel, Endpoint FROM NamedCredential";
pub const CHANNELS: &str =
    "SELECT Id, DeveloperName, MasterLabel, ChannelType FROM PlatformEventChannel";
pub const MEMBERS: &str =
    "SELECT Id, DeveloperName, EventChannel, SelectedEntity FROM PlatformEventChannelMember";
pub const RELAYS: &str = "SELECT Id, DeveloperName, MasterLabel, EventChannel, DestinationResourceName, RelayOption, State FROM EventRelayConfig";
pub const FEEDBACK: &str = "SELECT EventRelayConfigId, Status, RemoteResource, ErrorCode, ErrorMessage FROM EventRelayFeedback";

fn s(r: &Value, k: &str) -> Option<String> {
    r.get(k).and_then(Value::as_str).map(str::to_owned)
}

/// Reads the org's relay objects: six queries, run concurrently (named credentials, the organization
/// and relay feedback on the data API, the rest on the Tooling API).
pub async fn observe_org(client: &Client) -> Result<ObservedOrg, Error> {
    let (org, ncs, channels, members, relays, feedback) = tokio::try_join!(
        client.query(ORG_QUERY),
        client.query(NAMED_CREDENTIALS),
        client.tooling_query(CHANNELS),
        client.tooling_query(MEMBERS),
        client.tooling_query(RELAYS),
        crate::ops::feedback_all(client),
    )?;
    let id = |r: &Value| s(r, "Id").unwrap_or_default();
    let mut out = ObservedOrg {
        org_id: org.first().map(id).unwrap_or_default(),
        namespace: org
            .first()
            .and_then(|r| s(r, "NamespacePrefix"))
            .filter(|n| !n.is_empty()),
        named_credentials: ncs
            .iter()
            .map(|r| ObservedNamedCredential {
                id: id(r),
                name: s(r, "DeveloperName").unwrap_or_default(),
                label: s(r, "MasterLabel"),
                endpoint: s(r, "Endpoint"),
            })
            .collect(),
        channels: channels
            .iter()
            .map(|r| ObservedChannel {
                id: id(r),
                name: s(r, "DeveloperName").unwrap_or_default(),
                label: s(r, "MasterLabel"),
                channel_type: s(r, "ChannelType"),
            })
            .collect(),
        members: members
            .iter()
            .map(|r| ObservedMember {
                id: id(r),
                name: s(r, "DeveloperName").unwrap_or_default(),
                channel_id: s(r, "EventChannel"),
                event: s(r, "SelectedEntity"),
            })
            .collect(),
        relays: relays
            .iter()
            .map(|r| ObservedRelay {
                id: id(r),
                name: s(r, "DeveloperName").unwrap_or_default(),
                label: s(r, "MasterLabel"),
                channel: s(r, "EventChannel"),
                destination: s(r, "DestinationResourceName"),
                relay_option: s(r, "RelayOption"),
                state: s(r, "State"),
                ..ObservedRelay::default()
            })
            .collect(),
    };
    for (relay, f) in feedback {
        if let Some(r) = out
            .relays
            .iter_mut()
            .find(|r| crate::ops::same_id(&r.id, &relay))
        {
            r.status = f.status;
            r.remote_resource = f.remote_resource;
            r.error_code = f.error_code;
            r.error_message = f.error_message;
        }
    }
    Ok(out)
}
