//! The REST data API: queries (data and Tooling), platform event publishing, records of objects with
//! change data capture (whose changes publish change events), and the small resources around them.

use super::soql::{self, Query};
use super::tooling::{self, with_attributes};
use super::{Ctx, Route, SfError, json_body};
use crate::clock::sf_datetime;
use crate::config::{ChannelForm, Presence};
use crate::reply::{Reply, Request};
use crate::world::{Cursor, Org, Record, World};
use serde_json::{Map, Value, json};

pub fn handle(
    world: &mut World,
    ctx: &Ctx,
    req: &Request,
    route: &Route,
) -> Result<Reply, SfError> {
    match route.operation.as_str() {
        "resources" => {
            let p = ctx.data_path();
            Ok(Reply::json(
                200,
                &json!({"tooling": format!("{p}/tooling"), "query": format!("{p}/query"), "sobjects": format!("{p}/sobjects"), "limits": format!("{p}/limits")}),
            ))
        }
        "limits" => {
            let o = &world.orgs[&ctx.org];
            Ok(Reply::json(
                200,
                &json!({"DailyApiRequests": {"Max": o.api_limit, "Remaining": o.api_limit.saturating_sub(o.api_used)}}),
            ))
        }
        "query" => query_call(world, ctx, req, route, false),
        "event.publish" => publish(
            world,
            ctx,
            route.object.as_deref().unwrap_or(""),
            &json_body(req)?,
        ),
        "sobject.create" => create_record(
            world,
            ctx,
            route.object.as_deref().unwrap_or(""),
            &json_body(req)?,
        ),
        "sobject.get"
            if route
                .object
                .as_deref()
                .is_some_and(|o| o.eq_ignore_ascii_case("User")) =>
        {
            // The user a session runs as (the sf CLI reads its username this way after a login).
            let id = route.rest.get(2).map(String::as_str).unwrap_or("");
            let org = &world.orgs[&ctx.org];
            let user = org
                .users
                .iter()
                .find(|u| u.id == id || (id.len() == 15 && u.id.starts_with(id)))
                .ok_or_else(SfError::not_found)?;
            let url = format!("{}/sobjects/User/{}", ctx.data_path(), user.id);
            Ok(Reply::json(
                200,
                &json!({"attributes": {"type": "User", "url": url}, "Id": user.id, "Username": user.username, "Name": user.username, "Email": user.username, "IsActive": true}),
            ))
        }
        "sobject.get" | "sobject.update" | "sobject.delete" => {
            let object = route.object.as_deref().unwrap_or("");
            let id = route.rest.get(2).map(String::as_str).unwrap_or("");
            let body = if route.operation == "sobject.update" {
                Some(json_body(req)?)
            } else {
                None
            };
            record_call(world, ctx, object, id, &route.operation, body)
        }
        _ => Err(SfError::not_found()),
    }
}

const AUDIT: [&str; 5] = [
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
    "SystemModstamp",
];

/// The fields of each queryable object; `None` for an object the endpoint does not serve.
fn fields_of(org: &Org, object: &str, tooling: bool) -> Option<(String, Vec<String>)> {
    let base = |own: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "Id",
            "DeveloperName",
            "MasterLabel",
            "NamespacePrefix",
            "Language",
        ]
        .iter()
        .chain(own)
        .chain(AUDIT.iter())
        .map(|s| (*s).to_owned())
        .collect();
        if tooling {
            v.extend(["FullName".to_owned(), "Metadata".to_owned()]);
        }
        v
    };
    if let Some(t) = tooling::canonical(object) {
        let own: &[&str] = match t {
            "NamedCredential" => &["Endpoint", "PrincipalType"],
            "PlatformEventChannel" => &["ChannelType"],
            "PlatformEventChannelMember" => &["EventChannel", "SelectedEntity", "FilterExpression"],
            _ => &[
                "DestinationResourceName",
                "EventChannel",
                "RelayOption",
                "State",
                "UsageType",
            ],
        };
        // EventRelayConfig and NamedCredential also have a (read-only) data-API face.
        return (tooling || t == "EventRelayConfig" || t == "NamedCredential")
            .then(|| (t.to_owned(), base(own)));
    }
    if tooling {
        return None;
    }
    let simple = |name: &str, f: &[&str]| {
        Some((name.to_owned(), f.iter().map(|s| (*s).to_owned()).collect()))
    };
    if object.eq_ignore_ascii_case("EventRelayFeedback") {
        return simple(
            "EventRelayFeedback",
            &[
                "Id",
                "EventRelayConfigId",
                "EventRelayNumber",
                "Status",
                "RemoteResource",
                "LastRelayedEventTime",
                "ErrorCode",
                "ErrorMessage",
                "ErrorTime",
                "ErrorIdentifier",
                "UsageType",
                "IsDeleted",
                "CreatedDate",
                "LastModifiedDate",
            ],
        );
    }
    if object.eq_ignore_ascii_case("Organization") {
        return simple(
            "Organization",
            &[
                "Id",
                "Name",
                "InstanceName",
                "IsSandbox",
                "OrganizationType",
                "NamespacePrefix",
            ],
        );
    }
    if object.eq_ignore_ascii_case("User") {
        return simple("User", &["Id", "Username", "Name", "Email", "IsActive"]);
    }
    let entity = org
        .cdc_entities
        .keys()
        .find(|e| e.eq_ignore_ascii_case(object))?;
    let mut f = vec!["Id".to_owned()];
    f.extend(org.cdc_entities[entity].iter().cloned());
    f.extend(AUDIT.iter().map(|s| (*s).to_owned()));
    Some((entity.clone(), f))
}

/// The rows of an object as full records.
fn rows(world: &World, ctx: &Ctx, entity: &str, tooling: bool) -> Vec<Record> {
    let org = &world.orgs[&ctx.org];
    if tooling::canonical(entity).is_some() {
        let mut out: Vec<Record> = org
            .tooling
            .get(entity)
            .map(|m| m.values().map(crate::world::Stored::record).collect())
            .unwrap_or_default();
        if !tooling {
            for r in &mut out {
                r.remove("FullName");
                r.remove("Metadata");
            }
        }
        return out;
    }
    match entity {
        "EventRelayFeedback" => org
            .relays
            .iter()
            .map(|(relay_id, rt)| {
                let relay = org.tooling.get("EventRelayConfig").and_then(|m| m.get(relay_id)).map(crate::world::Stored::record).unwrap_or_default();
                let mut rel = relay.clone();
                rel.remove("FullName");
                rel.remove("Metadata");
                let rel_url = format!("{}/sobjects/EventRelayConfig/{relay_id}", ctx.data_path());
                let t = |ms: Option<i64>| ms.map(sf_datetime).map_or(Value::Null, Value::from);
                let mut r = Map::new();
                r.insert("Id".into(), json!(rt.feedback_id));
                r.insert("EventRelayConfigId".into(), json!(relay_id));
                r.insert("EventRelayConfig".into(), Value::Object(with_attributes(rel, "EventRelayConfig", rel_url)));
                r.insert("EventRelayNumber".into(), json!(format!("{:08}", rt.number)));
                r.insert("Status".into(), json!(rt.status));
                r.insert("RemoteResource".into(), rt.remote_resource.clone().map_or(Value::Null, Value::from));
                r.insert("LastRelayedEventTime".into(), t(rt.last_relayed));
                r.insert("ErrorCode".into(), rt.error_code.clone().map_or(Value::Null, Value::from));
                r.insert("ErrorMessage".into(), rt.error_message.clone().map_or(Value::Null, Value::from));
                r.insert("ErrorTime".into(), t(rt.error_time));
                r.insert("ErrorIdentifier".into(), Value::Null);
                r.insert("UsageType".into(), Value::Null);
                r.insert("IsDeleted".into(), json!(false));
                r.insert("CreatedDate".into(), json!(sf_datetime(rt.created)));
                r.insert("LastModifiedDate".into(), json!(sf_datetime(ctx.now)));
                r
            })
            .collect(),
        "Organization" => vec![json!({"Id": org.id, "Name": org.my_domain, "InstanceName": "SIM1", "IsSandbox": false, "OrganizationType": "Developer Edition", "NamespacePrefix": org.namespace}).as_object().cloned().unwrap_or_default()],
        "User" => org
            .users
            .iter()
            .map(|u| json!({"Id": u.id, "Username": u.username, "Name": u.username, "Email": u.username, "IsActive": true}).as_object().cloned().unwrap_or_default())
            .collect(),
        other => org.records.values().filter(|r| r.get("attributes").and_then(|a| a.get("type")).and_then(Value::as_str) == Some(other)).cloned().collect(),
    }
}

fn invalid_field(field: &str, entity: &str) -> SfError {
    SfError::new(
        400,
        "INVALID_FIELD",
        format!(
            "No such column '{field}' on entity '{entity}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."
        ),
    )
}

fn known(fields: &[String], f: &str) -> Option<String> {
    fields.iter().find(|k| k.eq_ignore_ascii_case(f)).cloned()
}

/// Checks a field path; returns it in canonical case.
fn resolve_field(org: &Org, entity: &str, fields: &[String], f: &str) -> Result<String, SfError> {
    if let Some((rel, rest)) = f.split_once('.') {
        if entity == "EventRelayFeedback" && rel.eq_ignore_ascii_case("EventRelayConfig") {
            let (_, relf) = fields_of(org, "EventRelayConfig", false).expect("known");
            return known(&relf, rest)
                .map(|k| format!("EventRelayConfig.{k}"))
                .ok_or_else(|| invalid_field(f, entity));
        }
        return Err(SfError::new(
            400,
            "INVALID_FIELD",
            format!(
                "Didn't understand relationship '{rel}' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names."
            ),
        ));
    }
    known(fields, f).ok_or_else(|| invalid_field(f, entity))
}

pub fn query_call(
    world: &mut World,
    ctx: &Ctx,
    req: &Request,
    route: &Route,
    tooling: bool,
) -> Result<Reply, SfError> {
    let tail = if tooling {
        route.rest.get(2)
    } else {
        route.rest.get(1)
    };
    if let Some(locator) = tail {
        return next_page(world, ctx, locator, tooling);
    }
    let q = req.query("q").ok_or_else(|| {
        SfError::new(
            400,
            "MALFORMED_QUERY",
            "A query string must be given with the q parameter.",
        )
    })?;
    let parsed = soql::parse(q).map_err(|e| SfError::new(400, "MALFORMED_QUERY", e))?;
    let (entity, selected, records) = run(world, ctx, &parsed, tooling)?;
    if req.query("columns") == Some("true") {
        return Ok(Reply::json(200, &columns(&entity, &selected)));
    }
    let locator = format!("01gSM{}", crate::ids::random(&mut world.rng, 10));
    respond(
        world,
        ctx,
        Cursor {
            records,
            tooling,
            entity,
        },
        locator,
        0,
    )
}

/// The column metadata of a query (`?columns=true`, which the `sf` CLI asks for before it runs one).
fn columns(entity: &str, selected: &[String]) -> Value {
    let column = |name: &str, joins: Vec<Value>| {
        json!({
            "aggregate": false, "apexType": null, "booleanType": false, "columnName": name,
            "custom": name.ends_with("__c"), "displayName": name, "foreignKeyName": null,
            "insertable": false, "joinColumns": joins, "numberType": false, "textType": false,
            "updatable": false,
        })
    };
    let mut out: Vec<Value> = Vec::new();
    for f in selected {
        match f.split_once('.') {
            Some((rel, sub)) => {
                let at = out.iter().position(|c| c["columnName"] == rel);
                let i = at.unwrap_or_else(|| {
                    out.push(column(rel, Vec::new()));
                    out.len() - 1
                });
                if let Some(j) = out[i]["joinColumns"].as_array_mut() {
                    j.push(column(sub, Vec::new()));
                }
            }
            None => out.push(column(f, Vec::new())),
        }
    }
    json!({"columnMetadata": out, "entityName": entity, "groupBy": false, "idSelect": true, "keyPrefix": null})
}

fn run(
    world: &World,
    ctx: &Ctx,
    q: &Query,
    tooling: bool,
) -> Result<(String, Vec<String>, Vec<Value>), SfError> {
    let org = &world.orgs[&ctx.org];
    let (entity, mut fields) = fields_of(org, &q.object, tooling).ok_or_else(|| {
        SfError::new(400, "INVALID_TYPE", format!("sObject type '{}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.", q.object))
    })?;
    if tooling
        && entity == "NamedCredential"
        && world.settings.tooling_named_credential_endpoint == Presence::Absent
    {
        fields.retain(|f| f != "Endpoint");
    }
    let mut selected: Vec<String> = if q.all_fields {
        fields.clone()
    } else {
        Vec::new()
    };
    for f in &q.fields {
        let canon = resolve_field(org, &entity, &fields, f)?;
        if !selected.contains(&canon) {
            selected.push(canon);
        }
    }
    let mut used = Vec::new();
    if let Some(c) = &q.filter {
        soql::cond_fields(c, &mut used);
    }
    for f in &used {
        let canon = resolve_field(org, &entity, &fields, f)?;
        if canon == "FullName" || canon == "Metadata" {
            return Err(SfError::new(
                400,
                "INVALID_FIELD",
                format!("field '{canon}' can not be filtered in a query call"),
            ));
        }
    }
    for (f, ..) in &q.order {
        resolve_field(org, &entity, &fields, f)?;
    }
    let mut rows = rows(world, ctx, &entity, tooling);
    if entity == "EventRelayConfig" && world.settings.relay_event_channel == ChannelForm::Id {
        let channels = org.tooling.get("PlatformEventChannel");
        for r in &mut rows {
            let name = r.get("EventChannel").cloned().unwrap_or(Value::Null);
            let id = channels
                .and_then(|m| m.values().find(|c| c.field_is("FullName", &name)))
                .and_then(|c| c.str_field("Id"));
            if let Some(id) = id {
                r.insert("EventChannel".into(), json!(id));
            }
        }
    }
    let mut rows: Vec<Record> = rows
        .into_iter()
        .filter(|r| q.filter.as_ref().is_none_or(|c| soql::eval(c, r)))
        .collect();
    soql::sort(&mut rows, &q.order);
    let rows: Vec<Record> = rows
        .into_iter()
        .skip(q.offset)
        .take(q.limit.unwrap_or(usize::MAX))
        .collect();
    let heavy = selected.iter().any(|f| f == "FullName" || f == "Metadata");
    if heavy && rows.len() > 1 {
        return Err(SfError::new(
            400,
            "MALFORMED_QUERY",
            format!(
                "When retrieving results with Metadata or FullName fields, the query qualifications must specify no more than one row for retrieval. Result size: {}",
                rows.len()
            ),
        ));
    }
    let api = if tooling { "/tooling" } else { "" };
    let out = rows
        .iter()
        .map(|r| {
            let mut o = Map::new();
            let id = r.get("Id").and_then(Value::as_str).unwrap_or("");
            o.insert("attributes".into(), json!({"type": entity, "url": format!("{}{api}/sobjects/{entity}/{id}", ctx.data_path())}));
            for f in &selected {
                match f.split_once('.') {
                    Some((rel, sub)) => {
                        let relrec = r.get(rel).and_then(Value::as_object);
                        let entry = o.entry(rel.to_owned()).or_insert_with(|| {
                            json!({"attributes": relrec.and_then(|x| x.get("attributes")).cloned().unwrap_or(Value::Null)})
                        });
                        let v = relrec.and_then(|x| soql::get(x, sub)).cloned().unwrap_or(Value::Null);
                        if let Some(m) = entry.as_object_mut() {
                            m.insert(sub.to_owned(), v);
                        }
                    }
                    None => {
                        o.insert(f.clone(), r.get(f).cloned().unwrap_or(Value::Null));
                    }
                }
            }
            Value::Object(o)
        })
        .collect();
    Ok((entity, selected, out))
}

fn respond(
    world: &mut World,
    ctx: &Ctx,
    cursor: Cursor,
    locator: String,
    start: usize,
) -> Result<Reply, SfError> {
    let size = world.settings.query_page_size.max(1);
    let total = cursor.records.len();
    let end = (start + size).min(total);
    let page: Vec<Value> = cursor.records[start..end].to_vec();
    let done = end >= total;
    let api = if cursor.tooling { "/tooling" } else { "" };
    let mut body = json!({"totalSize": total, "done": done, "records": page});
    if !done {
        body["nextRecordsUrl"] = json!(format!("{}{api}/query/{locator}-{end}", ctx.data_path()));
    }
    if cursor.tooling {
        body["size"] = json!(total);
        body["queryLocator"] = if done {
            Value::Null
        } else {
            json!(format!("{locator}-{end}"))
        };
        body["entityTypeName"] = json!(cursor.entity);
    }
    if !done {
        if world.cursors.len() >= 1000 {
            let oldest = world.cursors.keys().next().cloned();
            if let Some(k) = oldest {
                world.cursors.remove(&k);
            }
        }
        world.cursors.insert(locator, cursor);
    }
    Ok(Reply::json(200, &body))
}

fn next_page(world: &mut World, ctx: &Ctx, locator: &str, tooling: bool) -> Result<Reply, SfError> {
    let invalid = || SfError::new(400, "INVALID_QUERY_LOCATOR", "invalid query locator");
    let (id, start) = locator.rsplit_once('-').ok_or_else(invalid)?;
    let start: usize = start.parse().map_err(|_| invalid())?;
    let cursor = world
        .cursors
        .get(id)
        .filter(|c| c.tooling == tooling)
        .cloned()
        .ok_or_else(invalid)?;
    if start > cursor.records.len() {
        return Err(invalid());
    }
    let last = start + world.settings.query_page_size.max(1) >= cursor.records.len();
    let reply = respond(world, ctx, cursor, id.to_owned(), start)?;
    if last {
        world.cursors.remove(id);
    }
    Ok(reply)
}

fn publish(
    world: &mut World,
    ctx: &Ctx,
    object: &str,
    body: &Map<String, Value>,
) -> Result<Reply, SfError> {
    let org = &world.orgs[&ctx.org];
    let Some((name, fields)) = org
        .platform_events
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(object))
    else {
        return Err(SfError::new(
            404,
            "NOT_FOUND",
            "The requested resource does not exist",
        ));
    };
    let name = name.clone();
    let mut payload = Map::new();
    for (k, v) in body {
        if k == "attributes" {
            continue;
        }
        let Some(f) = fields.iter().find(|f| f.eq_ignore_ascii_case(k)) else {
            return Err(SfError::new(
                400,
                "INVALID_FIELD",
                format!("No such column '{k}' on sobject of type {name}"),
            )
            .fields(&[k]));
        };
        payload.insert(f.clone(), v.clone());
    }
    payload.insert("CreatedDate".into(), json!(sf_datetime(ctx.now)));
    payload.insert("CreatedById".into(), json!(ctx.user));
    let e = world.publish(&ctx.org, &name, Value::Object(payload), ctx.now);
    let id = world.next_id("e00");
    Ok(Reply::json(
        201,
        &json!({"id": id, "success": true, "errors": [{"statusCode": "OPERATION_ENQUEUED", "message": e.uuid, "fields": []}]}),
    ))
}

fn key_prefix(entity: &str) -> &'static str {
    match entity {
        "Account" => "001",
        "Contact" => "003",
        "Lead" => "00Q",
        "Opportunity" => "006",
        "Case" => "500",
        _ => "a0S",
    }
}

/// `Account` → `AccountChangeEvent`; `Invoice__c` → `Invoice__ChangeEvent`.
pub fn change_event_name(entity: &str) -> String {
    match entity.strip_suffix("__c") {
        Some(base) => format!("{base}__ChangeEvent"),
        None => format!("{entity}ChangeEvent"),
    }
}

fn entity_of(world: &World, ctx: &Ctx, object: &str) -> Result<(String, Vec<String>), SfError> {
    world.orgs[&ctx.org]
        .cdc_entities
        .iter()
        .find(|(e, _)| e.eq_ignore_ascii_case(object))
        .map(|(e, f)| (e.clone(), f.clone()))
        .ok_or_else(SfError::not_found)
}

fn check_fields(
    entity: &str,
    fields: &[String],
    body: &Map<String, Value>,
) -> Result<Map<String, Value>, SfError> {
    let mut out = Map::new();
    for (k, v) in body {
        if k == "attributes" {
            continue;
        }
        let f = fields
            .iter()
            .find(|f| f.eq_ignore_ascii_case(k))
            .ok_or_else(|| {
                SfError::new(
                    400,
                    "INVALID_FIELD",
                    format!("No such column '{k}' on sobject of type {entity}"),
                )
                .fields(&[k])
            })?;
        out.insert(f.clone(), v.clone());
    }
    Ok(out)
}

fn emit_change(
    world: &mut World,
    ctx: &Ctx,
    entity: &str,
    id: &str,
    change: &str,
    fields: &Map<String, Value>,
    nulled: Vec<String>,
) {
    let tx = crate::ids::uuid(&mut world.rng);
    let mut payload = fields.clone();
    payload.insert(
        "ChangeEventHeader".into(),
        json!({
            "entityName": entity, "recordIds": [id], "changeType": change, "changeOrigin": "com/salesforce/api/rest",
            "transactionKey": tx, "sequenceNumber": 1, "commitTimestamp": ctx.now, "commitUser": ctx.user,
            "commitNumber": world.seq, "nulledFields": nulled, "diffFields": [],
            "changedFields": if change == "UPDATE" { fields.keys().cloned().collect::<Vec<_>>() } else { Vec::new() },
        }),
    );
    let name = change_event_name(entity);
    world.publish(&ctx.org, &name, Value::Object(payload), ctx.now);
}

fn create_record(
    world: &mut World,
    ctx: &Ctx,
    object: &str,
    body: &Map<String, Value>,
) -> Result<Reply, SfError> {
    let (entity, fields) = entity_of(world, ctx, object)?;
    let values = check_fields(&entity, &fields, body)?;
    let id = world.next_id(key_prefix(&entity));
    let mut rec = values.clone();
    rec.insert("Id".into(), json!(id));
    for f in ["CreatedDate", "LastModifiedDate", "SystemModstamp"] {
        rec.insert(f.into(), json!(sf_datetime(ctx.now)));
    }
    rec.insert("CreatedById".into(), json!(ctx.user));
    rec.insert("LastModifiedById".into(), json!(ctx.user));
    let url = format!("{}/sobjects/{entity}/{id}", ctx.data_path());
    let rec = with_attributes(rec, &entity, url.clone());
    world
        .orgs
        .get_mut(&ctx.org)
        .expect("org")
        .records
        .insert(id.clone(), rec);
    emit_change(world, ctx, &entity, &id, "CREATE", &values, Vec::new());
    Ok(
        Reply::json(201, &json!({"id": id, "success": true, "errors": []}))
            .header("Location", format!("{}{url}", ctx.prefix)),
    )
}

fn record_call(
    world: &mut World,
    ctx: &Ctx,
    object: &str,
    id: &str,
    op: &str,
    body: Option<Map<String, Value>>,
) -> Result<Reply, SfError> {
    let (entity, fields) = entity_of(world, ctx, object)?;
    let org = world.orgs.get_mut(&ctx.org).expect("org");
    let Some(rec) = org
        .records
        .get(id)
        .filter(|r| {
            r.get("attributes")
                .and_then(|a| a.get("type"))
                .and_then(Value::as_str)
                == Some(entity.as_str())
        })
        .cloned()
    else {
        return Err(SfError::not_found());
    };
    match op {
        "sobject.get" => Ok(Reply::json(200, &Value::Object(rec))),
        "sobject.delete" => {
            org.records.remove(id);
            emit_change(world, ctx, &entity, id, "DELETE", &Map::new(), Vec::new());
            Ok(Reply::empty(204))
        }
        _ => {
            let values = check_fields(&entity, &fields, &body.unwrap_or_default())?;
            let mut rec = rec;
            let nulled: Vec<String> = values
                .iter()
                .filter(|(_, v)| v.is_null())
                .map(|(k, _)| k.clone())
                .collect();
            for (k, v) in &values {
                rec.insert(k.clone(), v.clone());
            }
            rec.insert("LastModifiedDate".into(), json!(sf_datetime(ctx.now)));
            org.records.insert(id.to_owned(), rec);
            emit_change(world, ctx, &entity, id, "UPDATE", &values, nulled);
            Ok(Reply::empty(204))
        }
    }
}
