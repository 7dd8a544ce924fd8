//! The changes apply makes in an org, one object at a time.
//!
//! Creates are idempotent in effect: when Salesforce answers that the object exists already (the
//! response to an earlier attempt was lost, or a previous run failed half-way), the object is looked up
//! by its DeveloperName and **adopted** if it is what was asked for; if it is something else, the
//! conflict is reported with what differs. Nothing is ever created twice.

use crate::client::Client;
use relayform_provider::{Error, ErrorKind, act};
use serde_json::{Value, json};

/// A Tooling object relayform creates, with the Metadata it is created from and what must match for an
/// existing object of the same name to be adopted.
#[derive(Debug, Clone)]
pub struct NewObject {
    /// `NamedCredential`, `PlatformEventChannel`, `PlatformEventChannelMember` or `EventRelayConfig`.
    pub sobject: &'static str,
    /// The FullName (`X__chn` for channels).
    pub full_name: String,
    /// The DeveloperName to look the object up by.
    pub developer_name: String,
    pub metadata: Value,
    /// (query column, expected value) pairs an existing object must have to be adopted. Values compare
    /// case-insensitively (Salesforce names are).
    pub must_match: Vec<(&'static str, String)>,
}

/// A named credential's whole definition: a legacy named credential for relays, endpoint
/// `arn:aws:<REGION>:<account>`, Named Principal, No Authentication, with the authorization header
/// left on as the Event Relay guide says.
pub fn named_credential_definition(label: &str, endpoint: &str) -> Value {
    json!({
        "label": label,
        "endpoint": endpoint,
        "principalType": "NamedUser",
        "protocol": "NoAuthentication",
        "generateAuthorizationHeader": true,
    })
}

/// A named credential for relays.
pub fn named_credential(name: &str, endpoint: &str) -> NewObject {
    NewObject {
        sobject: "NamedCredential",
        full_name: name.to_owned(),
        developer_name: name.to_owned(),
        metadata: named_credential_definition(name, endpoint),
        must_match: vec![("Endpoint", endpoint.to_owned())],
    }
}

/// A channel's whole definition.
pub fn channel_definition(channel_type: &str, label: &str) -> Value {
    json!({"channelType": channel_type, "label": label})
}

/// A platform event channel (`name` is the DeveloperName, without `__chn`).
pub fn channel(name: &str, channel_type: &str, label: &str) -> NewObject {
    NewObject {
        sobject: "PlatformEventChannel",
        full_name: format!("{name}__chn"),
        developer_name: name.to_owned(),
        metadata: channel_definition(channel_type, label),
        must_match: vec![("ChannelType", channel_type.to_owned())],
    }
}

/// A member of a channel (`channel` is the channel's DeveloperName).
pub fn channel_member(name: &str, channel: &str, event: &str) -> NewObject {
    NewObject {
        sobject: "PlatformEventChannelMember",
        full_name: name.to_owned(),
        developer_name: name.to_owned(),
        metadata: json!({"eventChannel": format!("{channel}__chn"), "selectedEntity": event}),
        must_match: vec![("SelectedEntity", event.to_owned())],
    }
}

/// An event relay's whole definition, as a Tooling PATCH must carry it: only `state` and
/// `relay_option` may differ from what the relay was created with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayDefinition {
    pub label: String,
    /// The channel's full name (`X__chn`).
    pub channel: String,
    /// `callout:<named credential>`.
    pub destination: String,
    pub relay_option: String,
    /// `RUN`, `PAUSE` or `STOP`.
    pub state: String,
}

impl RelayDefinition {
    pub fn metadata(&self) -> Value {
        json!({
            "label": self.label,
            "eventChannel": self.channel,
            "destinationResourceName": self.destination,
            "relayOption": self.relay_option,
            "state": self.state,
        })
    }

    /// Reads a relay's definition from its record (`GET`): for relays adopted rather than created.
    pub async fn read(client: &Client, id: &str) -> Result<RelayDefinition, Error> {
        let rec = client.tooling_get("EventRelayConfig", id).await?;
        let s = |k: &str| {
            rec.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Ok(RelayDefinition {
            label: s("MasterLabel"),
            channel: s("EventChannel"),
            destination: s("DestinationResourceName"),
            relay_option: s("RelayOption"),
            state: s("State"),
        })
    }
}

/// An event relay, created stopped (Salesforce allows no other state at creation).
pub fn relay(
    name: &str,
    label: &str,
    channel: &str,
    named_credential: &str,
    relay_option: &str,
) -> NewObject {
    let def = RelayDefinition {
        label: label.to_owned(),
        channel: format!("{channel}__chn"),
        destination: format!("callout:{named_credential}"),
        relay_option: relay_option.to_owned(),
        state: "STOP".into(),
    };
    NewObject {
        sobject: "EventRelayConfig",
        full_name: name.to_owned(),
        developer_name: name.to_owned(),
        metadata: def.metadata(),
        must_match: vec![
            ("EventChannel", def.channel.clone()),
            ("DestinationResourceName", def.destination.clone()),
        ],
    }
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

/// Looks a Tooling object up by DeveloperName (named credentials on the data API); returns the row
/// with `columns` (and `Id`).
pub async fn find(
    client: &Client,
    sobject: &str,
    developer_name: &str,
    columns: &[&str],
) -> Result<Option<Value>, Error> {
    let mut cols = vec!["Id"];
    cols.extend(columns.iter().copied().filter(|c| *c != "Id"));
    let soql = format!(
        "SELECT {} FROM {sobject} WHERE DeveloperName = '{}'",
        cols.join(", "),
        quote(developer_name)
    );
    // A named credential's Endpoint is documented on the data API's face of the object.
    let rows = if sobject == "NamedCredential" {
        client.query(&soql).await?
    } else {
        client.tooling_query(&soql).await?
    };
    Ok(rows.into_iter().next())
}

/// How many times a create that failed in transit is tried in all.
const CREATE_ATTEMPTS: u32 = 3;

/// Creates the object, or adopts the existing one of the same name if it matches; returns its id and
/// whether it was adopted. A create that failed in transit (its response lost: it may have been made)
/// is looked up by name before it is tried again.
pub async fn create_or_adopt(client: &Client, new: &NewObject) -> Result<(String, bool), Error> {
    let body = json!({"FullName": new.full_name, "Metadata": new.metadata});
    let mut attempt = 1;
    loop {
        match client.tooling_create(new.sobject, &body).await {
            Ok(id) => return Ok((id, false)),
            Err(e) if e.kind == ErrorKind::Transient => {
                if let Some(adopted) = adopt(client, new, &e).await? {
                    return Ok((adopted, true));
                }
                if attempt >= CREATE_ATTEMPTS {
                    return Err(e);
                }
                tokio::time::sleep(std::time::Duration::from_millis(250 << attempt)).await;
                attempt += 1;
            }
            Err(e) if e.kind == ErrorKind::Conflict => {
                // Bound elsewhere (a channel already used by another relay, ...): the vendor's words.
                return adopt(client, new, &e).await?.map(|id| (id, true)).ok_or(e);
            }
            Err(e) => return Err(e),
        }
    }
}

/// The id of the existing object named like `new` if it matches the spec; `None` if there is none; an
/// error saying what differs otherwise.
async fn adopt(client: &Client, new: &NewObject, cause: &Error) -> Result<Option<String>, Error> {
    let columns: Vec<&str> = new.must_match.iter().map(|(c, _)| *c).collect();
    let Some(row) = find(client, new.sobject, &new.developer_name, &columns).await? else {
        return Ok(None);
    };
    let differs: Vec<String> = new
        .must_match
        .iter()
        .filter_map(|(col, want)| {
            let have = row.get(*col).and_then(Value::as_str).unwrap_or("");
            (!same_reference(have, want))
                .then(|| format!("{col} is {have:?}, the spec wants {want:?}"))
        })
        .collect();
    if !differs.is_empty() {
        return Err(Error {
            message: format!(
                "{} {} exists already and differs: {}; relayform adopts only what matches the spec (delete or rename it, or change the spec)",
                new.sobject,
                new.developer_name,
                differs.join("; ")
            ),
            kind: ErrorKind::Conflict,
            ..cause.clone()
        });
    }
    let id = row.get("Id").and_then(Value::as_str).unwrap_or_default();
    Ok(Some(id.to_owned()))
}

/// Updates a Tooling object: the PATCH carries its FullName and its whole definition, since
/// Salesforce takes a PATCH's `Metadata` as the object's full definition (fields left out are
/// refused when required, or reset to their defaults).
pub async fn update(
    client: &Client,
    sobject: &str,
    id: &str,
    full_name: &str,
    definition: Value,
) -> Result<(), Error> {
    client
        .tooling_update(
            sobject,
            id,
            &json!({"FullName": full_name, "Metadata": definition}),
        )
        .await
}

/// Deletes a Tooling object; one that is gone already counts as deleted.
pub async fn delete(client: &Client, sobject: &str, id: &str) -> Result<(), Error> {
    match client.tooling_delete(sobject, id).await {
        Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// A relay's feedback: its status, partner source and error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Feedback {
    /// `RUNNING`, `PAUSED`, `STOPPED` or `ERROR`.
    pub status: Option<String>,
    pub remote_resource: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// Salesforce's identity rules, kept once in the contract crate (the planner compares by them too).
pub use relayform_provider::{same_id, same_reference};

/// Reads every relay's `EventRelayFeedback` in the org (one data query, paged), by relay id.
pub async fn feedback_all(client: &Client) -> Result<Vec<(String, Feedback)>, Error> {
    let rows = client.query(crate::observe::FEEDBACK).await?;
    let s = |r: &Value, k: &str| r.get(k).and_then(Value::as_str).map(str::to_owned);
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some((
                s(r, "EventRelayConfigId")?,
                Feedback {
                    status: s(r, "Status"),
                    remote_resource: s(r, "RemoteResource"),
                    error_code: s(r, "ErrorCode"),
                    error_message: s(r, "ErrorMessage"),
                },
            ))
        })
        .collect())
}

/// The wire form of the contract's relay definition (names as given: a create's are the spec's, an
/// update's as the org stores them).
impl From<&act::RelayDefinition> for RelayDefinition {
    fn from(d: &act::RelayDefinition) -> RelayDefinition {
        RelayDefinition {
            label: d.label.clone(),
            channel: d.channel.clone(),
            destination: act::callout(&d.named_credential),
            relay_option: d.recovery.relay_option().to_owned(),
            state: d.state.as_str().to_owned(),
        }
    }
}

fn sobject(kind: act::ObjectKind) -> &'static str {
    match kind {
        act::ObjectKind::NamedCredential => "NamedCredential",
        act::ObjectKind::Channel => "PlatformEventChannel",
        act::ObjectKind::Member => "PlatformEventChannelMember",
        act::ObjectKind::Relay => "EventRelayConfig",
    }
}

/// What a create sends, and what an existing object must match to be adopted.
fn new_object(object: &act::OrgObject) -> NewObject {
    match object {
        act::OrgObject::NamedCredential {
            name,
            label,
            endpoint,
        } => NewObject {
            metadata: named_credential_definition(label, endpoint),
            ..named_credential(name, endpoint)
        },
        act::OrgObject::Channel {
            name,
            channel_type,
            label,
        } => channel(name, channel_type, label),
        act::OrgObject::Member {
            name,
            channel,
            event,
        } => channel_member(name, channel, event),
        act::OrgObject::Relay(d) => {
            let def = RelayDefinition::from(d);
            NewObject {
                sobject: "EventRelayConfig",
                full_name: d.name.clone(),
                developer_name: d.name.clone(),
                metadata: def.metadata(),
                must_match: vec![
                    ("EventChannel", def.channel.clone()),
                    ("DestinationResourceName", def.destination.clone()),
                ],
            }
        }
    }
}

/// The org's relay objects, for the executor.
#[async_trait::async_trait]
impl act::OrgApi for Client {
    async fn create(&self, object: &act::OrgObject) -> Result<act::Created, Error> {
        let (id, adopted) = create_or_adopt(self, &new_object(object)).await?;
        Ok(act::Created { id, adopted })
    }

    async fn update(&self, id: &str, object: &act::OrgObject) -> Result<(), Error> {
        let (full_name, definition) = match object {
            act::OrgObject::NamedCredential {
                name,
                label,
                endpoint,
            } => (name.clone(), named_credential_definition(label, endpoint)),
            act::OrgObject::Channel {
                name,
                channel_type,
                label,
            } => (
                format!("{name}__chn"),
                channel_definition(channel_type, label),
            ),
            act::OrgObject::Member { .. } => {
                let new = new_object(object);
                (new.full_name, new.metadata)
            }
            act::OrgObject::Relay(d) => (d.name.clone(), RelayDefinition::from(d).metadata()),
        };
        update(self, sobject(object.kind()), id, &full_name, definition).await
    }

    async fn delete(&self, kind: act::ObjectKind, id: &str) -> Result<(), Error> {
        delete(self, sobject(kind), id).await
    }

    async fn relay(&self, id: &str) -> Result<act::RelayDefinition, Error> {
        let def = RelayDefinition::read(self, id).await?;
        let unknown = |what: &str, value: &str| {
            Error::new(
                "Salesforce",
                ErrorKind::Protocol,
                "tooling.get EventRelayConfig",
                format!("relay {id} has a {what} relayform does not know: {value:?}"),
            )
        };
        Ok(act::RelayDefinition {
            name: String::new(),
            label: def.label,
            named_credential: act::callout_target(&def.destination)
                .unwrap_or(&def.destination)
                .to_owned(),
            channel: def.channel,
            recovery: act::Recovery::of(&def.relay_option)
                .ok_or_else(|| unknown("relayOption", &def.relay_option))?,
            state: act::AdminState::of(&def.state).ok_or_else(|| unknown("state", &def.state))?,
        })
    }

    async fn feedback(&self) -> Result<Vec<act::Feedback>, Error> {
        Ok(feedback_all(self)
            .await?
            .into_iter()
            .map(|(relay_id, f)| act::Feedback {
                relay_id,
                status: f.status,
                remote_resource: f.remote_resource,
                error_code: f.error_code,
                error_message: f.error_message,
            })
            .collect())
    }
}
