//! Tooling API sobjects for Event Relays: `NamedCredential`, `PlatformEventChannel`,
//! `PlatformEventChannelMember` and `EventRelayConfig`, with Salesforce's rules.
//!
//! Records are created from `{"FullName", "Metadata"}` bodies and stored as the records a GET returns.

use super::{Ctx, Route, SfError, json_body};
use crate::clock::sf_datetime;
use crate::config::{LabelUpdate, ToolingPatch};
use crate::reply::{Reply, Request};
use crate::world::{Record, RelayRuntime, Scheduled, Stored, World};
use serde_json::{Map, Value, json};

pub const TYPES: [&str; 4] = [
    "NamedCredential",
    "PlatformEventChannel",
    "PlatformEventChannelMember",
    "EventRelayConfig",
];

fn prefix(t: &str) -> &'static str {
    match t {
        "NamedCredential" => "0XA",
        "PlatformEventChannel" => "0YL",
        "PlatformEventChannelMember" => "0v8",
        _ => "7k2",
    }
}

/// The canonical type name for a path segment (sObject names are case-insensitive).
pub fn canonical(t: &str) -> Option<&'static str> {
    TYPES.into_iter().find(|x| x.eq_ignore_ascii_case(t))
}

pub fn handle(
    world: &mut World,
    ctx: &Ctx,
    req: &Request,
    route: &Route,
) -> Result<Reply, SfError> {
    if route.operation == "tooling.query" {
        return super::data::query_call(world, ctx, req, route, true);
    }
    let Some(object) = route.object.as_deref() else {
        return Err(SfError::not_found());
    };
    let Some(t) = canonical(object) else {
        return Err(SfError::new(
            404,
            "NOT_FOUND",
            "The requested resource does not exist",
        ));
    };
    let id = route.rest.get(3).cloned();
    match (route.operation.as_str(), id) {
        ("tooling.create", _) => create(world, ctx, t, &json_body(req)?),
        ("tooling.get", Some(id)) => get(world, ctx, t, &id),
        ("tooling.update", Some(id)) => update(world, ctx, t, &id, &json_body(req)?),
        ("tooling.delete", Some(id)) => delete(world, ctx, t, &id),
        _ => Err(SfError::not_found()),
    }
}

/// The DeveloperName rule, as Salesforce words it.
fn check_developer_name(name: &str) -> Result<(), SfError> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.contains("__")
        && !name.ends_with('_')
        && name.len() <= 80;
    if ok {
        Ok(())
    } else {
        Err(SfError::new(
            400,
            "FIELD_INTEGRITY_EXCEPTION",
            format!("The name '{name}' can only contain underscores and alphanumeric characters. It must be unique, begin with a letter, not include spaces, not end with an underscore, and not contain two consecutive underscores."),
        )
        .fields(&["DeveloperName"]))
    }
}

fn meta_str<'a>(meta: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    meta.get(key).and_then(Value::as_str)
}

fn required<'a>(meta: &'a Map<String, Value>, key: &str) -> Result<&'a str, SfError> {
    meta_str(meta, key)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            SfError::new(
                400,
                "REQUIRED_FIELD_MISSING",
                format!("Required fields are missing: [{key}]"),
            )
            .fields(&[key])
        })
}

/// The records of a type, for adding or removing some: drops the org's derived event selection
/// (which relays select which events). Updates cannot change it: a relay's channel and a member's
/// channel and event are immutable.
fn records<'w>(
    world: &'w mut World,
    ctx: &Ctx,
    t: &str,
) -> &'w mut std::collections::BTreeMap<String, Stored> {
    let org = world.orgs.get_mut(&ctx.org).expect("org");
    org.selection = None;
    org.tooling.entry(t.to_owned()).or_default()
}

/// Stores an updated record, keeping the derived event selection unless a member's filter may have
/// changed.
fn store_update(world: &mut World, ctx: &Ctx, t: &str, id: &str, rec: &Record) {
    let org = world.orgs.get_mut(&ctx.org).expect("org");
    if t == "PlatformEventChannelMember" {
        org.selection = None;
    }
    org.tooling
        .entry(t.to_owned())
        .or_default()
        .insert(id.to_owned(), Stored::new(rec));
}

/// A name as the org stores it: with the org's namespace prefix (`ns__name`) when it has one.
fn namespaced(world: &World, ctx: &Ctx, name: &str) -> String {
    match &world.orgs[&ctx.org].namespace {
        Some(ns) if !name.starts_with(&format!("{ns}__")) => format!("{ns}__{name}"),
        _ => name.to_owned(),
    }
}

/// A name without the org's namespace prefix.
fn bare<'a>(world: &World, ctx: &Ctx, name: &'a str) -> &'a str {
    match &world.orgs[&ctx.org].namespace {
        Some(ns) => name.strip_prefix(&format!("{ns}__")).unwrap_or(name),
        None => name,
    }
}

/// A relay's reference to its named credential, as the org stores it: `callout:<ns__>Name`.
fn callout(world: &World, ctx: &Ctx, developer_name: &str) -> String {
    format!("callout:{}", namespaced(world, ctx, developer_name))
}

/// A reference in a Metadata body (`eventChannel`, `destinationResourceName`) as the org stores it.
fn stored_reference(world: &World, ctx: &Ctx, key: &str, v: &Value) -> Value {
    match (key, v.as_str()) {
        ("eventChannel", Some(c)) => json!(namespaced(world, ctx, c)),
        ("destinationResourceName", Some(d)) => match d.strip_prefix("callout:") {
            Some(n) => json!(callout(world, ctx, bare(world, ctx, n))),
            None => v.clone(),
        },
        _ => v.clone(),
    }
}

fn find_by(world: &World, ctx: &Ctx, t: &str, field: &str, value: &str) -> Option<Record> {
    let value = Value::from(value);
    let is = crate::world::FieldIs::new(field, &value);
    world.orgs[&ctx.org]
        .tooling
        .get(t)?
        .values()
        .find(|r| is.matches(r))
        .map(Stored::record)
}

/// The longest filter expression taken, and its deepest nesting: bounds that keep the recursive
/// parser far from the stack's end whatever a client sends.
const MAX_FILTER_CHARS: usize = 1000;
const MAX_FILTER_DEPTH: usize = 32;

/// A member's filter expression, parsed: the `WHERE` part of a SOQL query over the event's fields.
fn parse_filter(filter: &str) -> Result<super::soql::Cond, String> {
    if filter.chars().count() > MAX_FILTER_CHARS {
        return Err(format!("it is longer than {MAX_FILTER_CHARS} characters"));
    }
    let (mut depth, mut deepest, mut quoted) = (0usize, 0usize, false);
    for c in filter.chars() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' if !quoted => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > MAX_FILTER_DEPTH {
        return Err(format!(
            "it nests parentheses deeper than {MAX_FILTER_DEPTH}"
        ));
    }
    super::soql::parse(&format!("SELECT Id FROM Event WHERE {filter}"))?
        .filter
        .ok_or_else(|| "the filter expression is empty".to_owned())
}

/// Whether an event's fields pass a member's filter expression (an unparsable one passes nothing).
pub fn filter_matches(filter: &str, payload: &Value) -> bool {
    let (Ok(cond), Some(fields)) = (parse_filter(filter), payload.as_object()) else {
        return false;
    };
    super::soql::eval(&cond, fields)
}

/// Checks a member's `filterExpression`: SOQL `WHERE` syntax over fields the event has.
fn check_filter(org: &crate::world::Org, entity: &str, filter: &Value) -> Result<(), SfError> {
    let Some(text) = filter.as_str().filter(|t| !t.trim().is_empty()) else {
        return Ok(());
    };
    let shown: String = text.chars().take(100).collect();
    let bad = |why: String| {
        SfError::new(
            400,
            "FIELD_INTEGRITY_EXCEPTION",
            format!("The filter expression {shown:?} isn't valid for {entity}: {why}"),
        )
        .fields(&["FilterExpression"])
    };
    let cond = parse_filter(text).map_err(bad)?;
    if let Some(fields) = org.platform_events.get(entity) {
        let mut used = Vec::new();
        super::soql::cond_fields(&cond, &mut used);
        for f in used {
            if !fields.iter().any(|x| x.eq_ignore_ascii_case(&f)) {
                return Err(bad(format!("{entity} has no field {f}")));
            }
        }
    }
    Ok(())
}

/// The org's allocations for a new channel (`channel_type`) or a new member selecting `entity`.
fn check_allocations(
    world: &World,
    ctx: &Ctx,
    channel_type: Option<&str>,
    entity: Option<&str>,
) -> Result<(), SfError> {
    let org = &world.orgs[&ctx.org];
    let a = org.allocations;
    let limit = |what: String| SfError::new(400, "LIMIT_EXCEEDED", what);
    if let Some(ct) = channel_type {
        // Counted on the stored text (no record is parsed), as this runs on every channel create.
        let ct_value = Value::from(ct);
        let is = crate::world::FieldIs::new("ChannelType", &ct_value);
        let n = org
            .tooling
            .get("PlatformEventChannel")
            .map_or(0, |m| m.values().filter(|c| is.matches(c)).count());
        let max = if ct == "data" {
            a.data_channels
        } else {
            a.event_channels
        };
        if n >= max {
            return Err(limit(format!(
                "You've reached the maximum number of {max} custom {} channels for your org.",
                if ct == "data" {
                    "change data capture"
                } else {
                    "platform event"
                }
            )));
        }
    }
    if let Some(entity) = entity {
        // An entity already selected by a member takes no new allocation (the usual case: checked
        // without parsing every member).
        let entity_value = Value::from(entity);
        let is = crate::world::FieldIs::new("SelectedEntity", &entity_value);
        let members = org.tooling.get("PlatformEventChannelMember");
        if members.is_some_and(|m| m.values().any(|x| is.matches(x))) {
            return Ok(());
        }
        // The entities selected so far, each member's one field read without parsing the rest.
        let selected: std::collections::BTreeSet<String> = members
            .into_iter()
            .flat_map(|m| m.values())
            .filter_map(|m| m.str_field("SelectedEntity"))
            .collect();
        if selected.contains(entity) {
            return Ok(());
        }
        let (count, max, what) = if entity.ends_with("__e") {
            (
                selected.iter().filter(|e| e.ends_with("__e")).count(),
                a.platform_events_in_channels,
                "distinct custom platform events in channel members",
            )
        } else {
            (
                selected
                    .iter()
                    .filter(|e| e.ends_with("ChangeEvent"))
                    .count(),
                a.cdc_entities_in_channels,
                "entities selected for change data capture",
            )
        };
        if count >= max {
            return Err(limit(format!(
                "You've reached your org's allocation of {max} {what}; {entity} can't be added."
            )));
        }
    }
    Ok(())
}

/// An event name in the org's own casing: a platform event (`Order_Placed__e`) or the change event of
/// a CDC entity (`AccountChangeEvent`, `Invoice__ChangeEvent`); `None` when the org has no such event.
fn canonical_entity(org: &crate::world::Org, entity: &str) -> Option<String> {
    if let Some(e) = org
        .platform_events
        .keys()
        .find(|e| e.eq_ignore_ascii_case(entity))
    {
        return Some(e.clone());
    }
    let cut = entity.len().checked_sub("ChangeEvent".len())?;
    let (base, suffix) = (entity.get(..cut)?, entity.get(cut..)?);
    if !suffix.eq_ignore_ascii_case("ChangeEvent") {
        return None;
    }
    org.cdc_entities.keys().find_map(|e| {
        let event = match e.strip_suffix("__c") {
            Some(stem) => format!("{stem}__"),
            None => e.clone(),
        };
        event
            .eq_ignore_ascii_case(base)
            .then(|| format!("{event}ChangeEvent"))
    })
}

/// The AWS account and region a named credential endpoint `arn:aws:<REGION>:<account>` points at.
pub fn endpoint_target(endpoint: &str) -> Option<(String, String)> {
    let rest = endpoint.strip_prefix("arn:aws:")?;
    let (region, account) = rest.split_once(':')?;
    (account.len() == 12 && account.chars().all(|c| c.is_ascii_digit()) && !region.is_empty())
        .then(|| (account.to_owned(), region.to_lowercase()))
}

fn relay_using(world: &World, ctx: &Ctx, field: &str, value: &str) -> Option<Record> {
    find_by(world, ctx, "EventRelayConfig", field, value)
}

fn audit(rec: &mut Record, ctx: &Ctx, created: bool) {
    let now = json!(sf_datetime(ctx.now));
    if created {
        rec.insert("CreatedDate".into(), now.clone());
        rec.insert("CreatedById".into(), json!(ctx.user));
    }
    rec.insert("LastModifiedDate".into(), now.clone());
    rec.insert("LastModifiedById".into(), json!(ctx.user));
    rec.insert("SystemModstamp".into(), now);
}

fn create(
    world: &mut World,
    ctx: &Ctx,
    t: &str,
    body: &Map<String, Value>,
) -> Result<Reply, SfError> {
    let full_name = body
        .get("FullName")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            SfError::new(
                400,
                "REQUIRED_FIELD_MISSING",
                "Required fields are missing: [FullName]",
            )
            .fields(&["FullName"])
        })?
        .to_owned();
    let empty = Map::new();
    let meta = body
        .get("Metadata")
        .and_then(Value::as_object)
        .unwrap_or(&empty)
        .clone();
    let label = meta_str(&meta, "label").unwrap_or(&full_name).to_owned();
    check_label(&label)?;
    // In a namespaced org the full name carries the prefix (given or not); the DeveloperName not.
    let full_name = namespaced(world, ctx, &full_name);
    let developer_name = match t {
        "PlatformEventChannel" => bare(world, ctx, &full_name)
            .strip_suffix("__chn")
            .ok_or_else(|| {
                SfError::new(
                    400,
                    "FIELD_INTEGRITY_EXCEPTION",
                    format!("The channel name {full_name} must end with __chn."),
                )
                .fields(&["FullName"])
            })?
            .to_owned(),
        _ => bare(world, ctx, &full_name).to_owned(),
    };
    check_developer_name(&developer_name)?;
    let mut rec = Map::new();
    let mut relay_target = None;
    match t {
        "NamedCredential" => {
            let endpoint = required(&meta, "endpoint")?;
            let principal = meta_str(&meta, "principalType").unwrap_or("NamedUser");
            rec.insert("Endpoint".into(), json!(endpoint));
            rec.insert("PrincipalType".into(), json!(principal));
        }
        "PlatformEventChannel" => {
            let ct = required(&meta, "channelType")?;
            if ct != "event" && ct != "data" {
                return Err(SfError::new(
                    400,
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    format!("Channel Type: bad value for restricted picklist field: {ct}"),
                )
                .fields(&["ChannelType"]));
            }
            check_allocations(world, ctx, Some(ct), None)?;
            rec.insert("ChannelType".into(), json!(ct));
        }
        "PlatformEventChannelMember" => {
            let channel = namespaced(world, ctx, required(&meta, "eventChannel")?);
            let channel = channel.as_str();
            let entity = required(&meta, "selectedEntity")?;
            // Entity names are case-insensitive; Salesforce stores the entity's own casing.
            let canonical_entity = canonical_entity(&world.orgs[&ctx.org], entity)
                .unwrap_or_else(|| entity.to_owned());
            let entity = canonical_entity.as_str();
            let ch = find_by(world, ctx, "PlatformEventChannel", "FullName", channel).ok_or_else(
                || {
                    SfError::new(
                        400,
                        "FIELD_INTEGRITY_EXCEPTION",
                        format!("The event channel {channel} doesn't exist."),
                    )
                    .fields(&["EventChannel"])
                },
            )?;
            let ct = ch
                .get("ChannelType")
                .and_then(Value::as_str)
                .unwrap_or("event");
            let org = &world.orgs[&ctx.org];
            let valid = match ct {
                "event" => org.platform_events.contains_key(entity),
                _ => entity
                    .strip_suffix("ChangeEvent")
                    .map(|e| {
                        e.strip_suffix("__")
                            .map_or(e.to_owned(), |c| format!("{c}__c"))
                    })
                    .is_some_and(|e| org.cdc_entities.contains_key(&e)),
            };
            if !valid {
                return Err(SfError::new(
                    400,
                    "FIELD_INTEGRITY_EXCEPTION",
                    format!(
                        "The selected entity {entity} isn't valid for the {ct} channel {channel}."
                    ),
                )
                .fields(&["SelectedEntity"]));
            }
            if org
                .standard_volume_events
                .iter()
                .any(|e| e.eq_ignore_ascii_case(entity))
            {
                return Err(SfError::new(
                    400,
                    "FIELD_INTEGRITY_EXCEPTION",
                    format!("{entity} is a standard-volume platform event: custom channels take only high-volume platform events."),
                )
                .fields(&["SelectedEntity"]));
            }
            if let Some(f) = meta.get("filterExpression") {
                check_filter(org, entity, f)?;
            }
            check_allocations(world, ctx, None, Some(entity))?;
            let channel_id = ch["Id"].clone();
            let entity_value = Value::from(entity);
            let (in_channel, selects) = (
                crate::world::FieldIs::new("EventChannel", &channel_id),
                crate::world::FieldIs::new("SelectedEntity", &entity_value),
            );
            let dup = world.orgs[&ctx.org].tooling.get(t).is_some_and(|m| {
                m.values()
                    .any(|r| in_channel.matches(r) && selects.matches(r))
            });
            if dup {
                return Err(SfError::new(
                    400,
                    "DUPLICATE_VALUE",
                    format!("The entity {entity} is already a member of channel {channel}."),
                ));
            }
            rec.insert("EventChannel".into(), channel_id);
            rec.insert("SelectedEntity".into(), json!(entity));
            rec.insert(
                "FilterExpression".into(),
                meta.get("filterExpression").cloned().unwrap_or(Value::Null),
            );
        }
        _ => {
            let channel = namespaced(world, ctx, required(&meta, "eventChannel")?);
            let channel = channel.as_str();
            let destination = required(&meta, "destinationResourceName")?.to_owned();
            if find_by(world, ctx, "PlatformEventChannel", "FullName", channel).is_none() {
                return Err(SfError::new(
                    400,
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    format!("Event Channel: bad value for restricted picklist field: {channel}"),
                )
                .fields(&["EventChannel"]));
            }
            // Salesforce checks the channel binding before name uniqueness.
            if relay_using(world, ctx, "EventChannel", channel).is_some() {
                return Err(SfError::new(400, "FIELD_INTEGRITY_EXCEPTION", format!("The channel {channel} is referenced by an existing event relay. A channel can be used by only one event relay.")).fields(&["EventChannel"]));
            }
            let nc = destination.strip_prefix("callout:").and_then(|n| {
                find_by(
                    world,
                    ctx,
                    "NamedCredential",
                    "DeveloperName",
                    bare(world, ctx, n),
                )
            });
            let Some(nc) = nc else {
                return Err(SfError::new(400, "FIELD_INTEGRITY_EXCEPTION", format!("The destination {destination} doesn't refer to an existing named credential (callout:<NamedCredential>).")).fields(&["DestinationResourceName"]));
            };
            let state = meta_str(&meta, "state").unwrap_or("STOP");
            if state != "STOP" {
                return Err(SfError::new(
                    400,
                    "FIELD_INTEGRITY_EXCEPTION",
                    "An event relay can be created only in the STOP state.",
                )
                .fields(&["State"]));
            }
            let option = relay_option(meta.get("relayOption"))?;
            let stored =
                stored_reference(world, ctx, "destinationResourceName", &json!(destination));
            rec.insert("DestinationResourceName".into(), stored);
            rec.insert("EventChannel".into(), json!(channel));
            rec.insert("RelayOption".into(), json!(option));
            rec.insert("State".into(), json!("STOP"));
            rec.insert("UsageType".into(), Value::Null);
            relay_target = nc
                .get("Endpoint")
                .and_then(Value::as_str)
                .and_then(endpoint_target);
        }
    }
    if find_by(world, ctx, t, "DeveloperName", &developer_name).is_some() {
        return Err(SfError::new(
            400,
            "DUPLICATE_DEVELOPER_NAME",
            format!("There's already a {t} with the name {developer_name}."),
        )
        .fields(&["DeveloperName"]));
    }
    let id = world.next_id(prefix(t));
    rec.insert("Id".into(), json!(id));
    rec.insert("DeveloperName".into(), json!(developer_name));
    rec.insert("MasterLabel".into(), json!(label));
    rec.insert(
        "NamespacePrefix".into(),
        world.orgs[&ctx.org]
            .namespace
            .clone()
            .map_or(Value::Null, Value::from),
    );
    rec.insert("Language".into(), json!("en_US"));
    rec.insert("FullName".into(), json!(full_name));
    audit(&mut rec, ctx, true);
    let mut meta = meta;
    meta.insert("label".into(), json!(label));
    if t == "EventRelayConfig" {
        meta.insert("state".into(), json!("STOP"));
        meta.insert("relayOption".into(), rec["RelayOption"].clone());
        let target = relay_target;
        let number = world.orgs[&ctx.org].relays.len() as u64 + 1;
        let feedback_id = world.next_id("0wF");
        world.orgs.get_mut(&ctx.org).expect("org").relays.insert(
            id.clone(),
            RelayRuntime {
                feedback_id,
                number,
                status: "STOPPED".into(),
                remote_resource: None,
                last_relayed: None,
                error_code: None,
                error_message: None,
                error_time: None,
                position: None,
                target,
                created: ctx.now,
                admin_state: "STOP".into(),
                relay_option: rec["RelayOption"].as_str().unwrap_or_default().to_owned(),
            },
        );
        let due = ctx.now + world.settings.partner_source_delay_seconds as i64 * 1000;
        world.schedule(Scheduled::RegisterSource {
            due,
            org: ctx.org.clone(),
            relay: id.clone(),
        });
    }
    rec.insert("Metadata".into(), Value::Object(meta));
    records(world, ctx, t).insert(id.clone(), Stored::new(&rec));
    let location = format!(
        "{}{}/tooling/sobjects/{t}/{id}",
        ctx.prefix,
        ctx.data_path()
    );
    Ok(Reply::json(
        201,
        &json!({"id": id, "success": true, "errors": [], "warnings": [], "infos": []}),
    )
    .header("Location", location))
}

/// A relayOption value: the JSON string `{"ReplayRecovery":"LATEST"|"EARLIEST"}` (LATEST when absent).
fn relay_option(v: Option<&Value>) -> Result<String, SfError> {
    let text = match v {
        None | Some(Value::Null) => return Ok(r#"{"ReplayRecovery":"LATEST"}"#.into()),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let parsed: Value = serde_json::from_str(&text).map_err(|_| bad_option(&text))?;
    match parsed.get("ReplayRecovery").and_then(Value::as_str) {
        Some("LATEST" | "EARLIEST") => Ok(text),
        _ => Err(bad_option(&text)),
    }
}

fn bad_option(text: &str) -> SfError {
    SfError::new(400, "FIELD_INTEGRITY_EXCEPTION", format!("The relay option {text} isn't valid. Use {{\"ReplayRecovery\":\"LATEST\"}} or {{\"ReplayRecovery\":\"EARLIEST\"}}.")).fields(&["RelayOption"])
}

fn check_id(id: &str) -> Result<(), SfError> {
    if (id.len() == 15 || id.len() == 18) && id.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(SfError::new(
            400,
            "MALFORMED_ID",
            format!("Id: id value of incorrect type: {id}"),
        )
        .fields(&["Id"]))
    }
}

fn lookup(world: &World, ctx: &Ctx, t: &str, id: &str) -> Result<Record, SfError> {
    check_id(id)?;
    world.orgs[&ctx.org]
        .tooling
        .get(t)
        .and_then(|m| {
            m.get(id).map(Stored::record).or_else(|| {
                // A 15-character id names the same record as its 18-character form.
                (id.len() == 15)
                    .then(|| {
                        m.iter()
                            .find(|(k, _)| k.starts_with(id))
                            .map(|(_, r)| r.record())
                    })
                    .flatten()
            })
        })
        .ok_or_else(SfError::not_found)
}

pub fn with_attributes(mut rec: Record, t: &str, url: String) -> Record {
    let mut out = Map::new();
    out.insert("attributes".into(), json!({"type": t, "url": url}));
    rec.remove("attributes");
    out.append(&mut rec);
    out
}

fn get(world: &mut World, ctx: &Ctx, t: &str, id: &str) -> Result<Reply, SfError> {
    let rec = lookup(world, ctx, t, id)?;
    let url = format!(
        "{}/tooling/sobjects/{t}/{}",
        ctx.data_path(),
        rec["Id"].as_str().unwrap_or(id)
    );
    Ok(Reply::json(
        200,
        &Value::Object(with_attributes(rec, t, url)),
    ))
}

/// The Metadata fields a PATCH must carry when it replaces the whole definition, by type.
fn required_on_patch(t: &str) -> &'static [(&'static str, &'static str)] {
    match t {
        "NamedCredential" => &[
            ("label", "MasterLabel"),
            ("endpoint", "Endpoint"),
            ("principalType", "PrincipalType"),
            ("protocol", "Protocol"),
        ],
        "PlatformEventChannel" => &[("channelType", "ChannelType"), ("label", "MasterLabel")],
        "PlatformEventChannelMember" => &[
            ("eventChannel", "EventChannel"),
            ("selectedEntity", "SelectedEntity"),
        ],
        _ => &[
            ("label", "MasterLabel"),
            ("eventChannel", "EventChannel"),
            ("destinationResourceName", "DestinationResourceName"),
        ],
    }
}

/// Salesforce's answer to a label longer than its 80 characters.
fn check_label(label: &str) -> Result<(), SfError> {
    if label.chars().count() > 80 {
        return Err(SfError::new(
            400,
            "STRING_TOO_LONG",
            format!("Label: data value too large: {label} (max length=80)"),
        )
        .fields(&["MasterLabel"]));
    }
    Ok(())
}

fn update(
    world: &mut World,
    ctx: &Ctx,
    t: &str,
    id: &str,
    body: &Map<String, Value>,
) -> Result<Reply, SfError> {
    let mut rec = lookup(world, ctx, t, id)?;
    let id = rec["Id"].as_str().unwrap_or(id).to_owned();
    if let Some(full) = body.get("FullName").and_then(Value::as_str)
        && Some(full) != rec["FullName"].as_str()
    {
        return Err(SfError::new(
            400,
            "FIELD_INTEGRITY_EXCEPTION",
            format!(
                "Full name {full} does not match the full name {} of the entity (id: {id})",
                rec["FullName"].as_str().unwrap_or("")
            ),
        ));
    }
    let empty = Map::new();
    let patch = body
        .get("Metadata")
        .and_then(Value::as_object)
        .unwrap_or(&empty)
        .clone();
    let old = rec
        .get("Metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let replace = world.settings.tooling_patch == ToolingPatch::Replace;
    // What the definition becomes: the body alone (replace), or the body over what was (merge).
    let mut meta = if replace {
        for (key, field) in required_on_patch(t) {
            if patch.get(*key).is_none_or(Value::is_null) {
                return Err(SfError::new(
                    400,
                    "REQUIRED_FIELD_MISSING",
                    format!("Required fields are missing: [{key}]. A Tooling API PATCH replaces the whole Metadata: include the full definition."),
                )
                .fields(&[field]));
            }
        }
        patch.clone()
    } else {
        let mut m = old.clone();
        for (k, v) in &patch {
            m.insert(k.clone(), v.clone());
        }
        m
    };
    if let Some(l) = meta.get("label").and_then(Value::as_str) {
        check_label(l)?;
    }
    let immutable = |key: &str, field: &str| -> Result<(), SfError> {
        let norm = |v: Option<&Value>| v.map(|v| stored_reference(world, ctx, key, v));
        match meta.get(key) {
            Some(v) if norm(Some(v)) != norm(old.get(key)) => Err(SfError::new(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                format!("Update is not supported for the {key} field of {t}."),
            )
            .fields(&[field])),
            _ => Ok(()),
        }
    };
    let mut new_state = None;
    match t {
        "NamedCredential" => {
            if let Some(ep) = meta.get("endpoint").and_then(Value::as_str) {
                let current = rec["Endpoint"].as_str().unwrap_or("");
                let name = callout(world, ctx, rec["DeveloperName"].as_str().unwrap_or(""));
                if ep != current
                    && relay_using(world, ctx, "DestinationResourceName", &name).is_some()
                {
                    return Err(SfError::new(400, "FIELD_INTEGRITY_EXCEPTION", "You can't change the AWS account information of a named credential that an event relay uses. Delete the event relay, edit the named credential, and recreate the event relay.").fields(&["Endpoint"]));
                }
                rec.insert("Endpoint".into(), json!(ep));
            }
            if let Some(p) = meta.get("principalType").and_then(Value::as_str) {
                rec.insert("PrincipalType".into(), json!(p));
            }
        }
        "PlatformEventChannel" => immutable("channelType", "ChannelType")?,
        "PlatformEventChannelMember" => {
            // Both immutable fields are required on every member PATCH, whatever the mode.
            for (key, field) in [
                ("eventChannel", "EventChannel"),
                ("selectedEntity", "SelectedEntity"),
            ] {
                if !patch.contains_key(key) {
                    return Err(SfError::new(
                        400,
                        "REQUIRED_FIELD_MISSING",
                        format!("Required field is missing: {key}"),
                    )
                    .fields(&[field]));
                }
            }
            if meta
                .get("selectedEntity")
                .and_then(Value::as_str)
                .map(str::to_lowercase)
                != old
                    .get("selectedEntity")
                    .and_then(Value::as_str)
                    .map(str::to_lowercase)
            {
                return Err(SfError::new(400, "FIELD_INTEGRITY_EXCEPTION", "Update is not supported for the selectedEntity field on platform event channel members.").fields(&["SelectedEntity"]));
            }
            immutable("eventChannel", "EventChannel")?;
            if let Some(f) = meta.get("filterExpression") {
                let entity = rec["SelectedEntity"].as_str().unwrap_or("").to_owned();
                check_filter(&world.orgs[&ctx.org], &entity, f)?;
            }
            rec.insert(
                "FilterExpression".into(),
                meta.get("filterExpression").cloned().unwrap_or(Value::Null),
            );
        }
        _ => {
            immutable("eventChannel", "EventChannel")?;
            immutable("destinationResourceName", "DestinationResourceName")?;
            // "You can update only the state and relayOption fields."
            let label_now = rec["MasterLabel"].as_str().unwrap_or("").to_owned();
            if let Some(l) = meta.get("label").and_then(Value::as_str)
                && l != label_now
            {
                match world.settings.relay_label_update {
                    LabelUpdate::Reject => {
                        return Err(SfError::new(
                                400,
                                "FIELD_INTEGRITY_EXCEPTION",
                                "You can update only the state and relayOption fields of an event relay.",
                            )
                            .fields(&["MasterLabel"]));
                    }
                    LabelUpdate::Ignore => {
                        meta.insert("label".into(), json!(label_now));
                    }
                    LabelUpdate::Accept => {}
                }
            }
            // Left out of a whole definition, the optional fields return to their defaults.
            let s = match meta.get("state") {
                None | Some(Value::Null) => "STOP",
                Some(s) => s.as_str().unwrap_or(""),
            };
            if !["RUN", "PAUSE", "STOP"].contains(&s) {
                return Err(SfError::new(
                    400,
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    format!("State: bad value for restricted picklist field: {s}"),
                )
                .fields(&["State"]));
            }
            let s = s.to_owned();
            let o = relay_option(meta.get("relayOption"))?;
            meta.insert("state".into(), json!(s));
            meta.insert("relayOption".into(), json!(o));
            if rec["State"].as_str() != Some(s.as_str()) || patch.contains_key("state") {
                new_state = Some(s.clone());
            }
            rec.insert("State".into(), json!(s));
            rec.insert("RelayOption".into(), json!(o));
        }
    }
    if let Some(l) = meta.get("label").and_then(Value::as_str) {
        rec.insert("MasterLabel".into(), json!(l));
    }
    rec.insert("Metadata".into(), Value::Object(meta));
    audit(&mut rec, ctx, false);
    if let Some(rt) = world
        .orgs
        .get_mut(&ctx.org)
        .and_then(|o| o.relays.get_mut(&id))
    {
        rt.admin_state = rec["State"].as_str().unwrap_or("STOP").to_owned();
        rt.relay_option = rec["RelayOption"].as_str().unwrap_or_default().to_owned();
    }
    store_update(world, ctx, t, &id, &rec);
    if let Some(state) = new_state {
        let due = ctx.now + world.settings.state_change_delay_seconds as i64 * 1000;
        world.schedule(Scheduled::ApplyState {
            due,
            org: ctx.org.clone(),
            relay: id,
            state,
        });
    }
    Ok(Reply::empty(204))
}

fn delete(world: &mut World, ctx: &Ctx, t: &str, id: &str) -> Result<Reply, SfError> {
    let rec = lookup(world, ctx, t, id)?;
    let id = rec["Id"].as_str().unwrap_or(id).to_owned();
    match t {
        "PlatformEventChannel" => {
            let full = rec["FullName"].as_str().unwrap_or("");
            if relay_using(world, ctx, "EventChannel", full).is_some() {
                return Err(SfError::new(
                    400,
                    "FIELD_INTEGRITY_EXCEPTION",
                    format!(
                        "The channel {full} can't be deleted because an event relay references it."
                    ),
                ));
            }
            // Deleting a channel deletes its members.
            records(world, ctx, "PlatformEventChannelMember")
                .retain(|_, m| m.str_field("EventChannel").as_deref() != Some(id.as_str()));
        }
        "NamedCredential" => {
            let name = callout(world, ctx, rec["DeveloperName"].as_str().unwrap_or(""));
            if relay_using(world, ctx, "DestinationResourceName", &name).is_some() {
                return Err(SfError::new(
                    400,
                    "FIELD_INTEGRITY_EXCEPTION",
                    format!(
                        "The named credential {} can't be deleted because an event relay references it.",
                        rec["DeveloperName"].as_str().unwrap_or("")
                    ),
                ));
            }
        }
        "EventRelayConfig" => {
            // Deleting the relay deletes its partner event source in EventBridge.
            let rt = world
                .orgs
                .get_mut(&ctx.org)
                .expect("org")
                .relays
                .remove(&id);
            let source = rt.as_ref().and_then(|r| r.remote_resource.clone());
            world.scheduled.retain(|s| match s {
                Scheduled::RegisterSource { relay, .. } | Scheduled::ApplyState { relay, .. } => {
                    *relay != id
                }
                Scheduled::SourceVisible { source: s, .. } => Some(&s.name) != source.as_ref(),
            });
            if let Some(RelayRuntime {
                remote_resource: Some(src),
                target: Some((acct, region)),
                ..
            }) = rt
                && let Some(s) = world.region_mut(&acct, &region).sources.get_mut(&src)
            {
                s.state = "DELETED".into();
            }
        }
        _ => {}
    }
    records(world, ctx, t).remove(&id);
    Ok(Reply::empty(204))
}
