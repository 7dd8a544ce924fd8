//! EventBridge (awsJson 1.1): partner sources, buses, rules, targets, tags, PutEvents and the partner
//! side (CreatePartnerEventSource, PutPartnerEvents, DeletePartnerEventSource); and the routing of an
//! event that arrives on a bus through its rules to their targets.

use super::{AwsError, Ctx, pattern, policy, validation};
use crate::clock::Millis;
use crate::config::{DeleteBusWithRules, ReceiverPolicy};
use crate::part::Part;
use crate::reply::Reply;
use crate::world::{Bus, Delivery, Rule, Source, TRUST_PRINCIPAL, World};
use serde_json::{Value, json};
use std::ops::Bound;

type Res = Result<Value, AwsError>;

pub fn handle(world: &mut World, ctx: &Ctx, op: &str, body: &[u8]) -> Result<Reply, AwsError> {
    let input = super::json_input(body)?;
    let out = match op {
        "CreatePartnerEventSource" => create_partner_source(world, ctx, &input),
        "DeletePartnerEventSource" => delete_partner_source(world, ctx, &input),
        "PutPartnerEvents" => put_partner_events(world, ctx, &input),
        "ListEventSources" => list_event_sources(world, ctx, &input),
        "DescribeEventSource" => describe_event_source(world, ctx, &input),
        "ActivateEventSource" => set_source_active(world, ctx, &input, true),
        "DeactivateEventSource" => set_source_active(world, ctx, &input, false),
        "CreateEventBus" => create_event_bus(world, ctx, &input),
        "DescribeEventBus" => describe_event_bus(world, ctx, &input),
        "ListEventBuses" => list_event_buses(world, ctx, &input),
        "DeleteEventBus" => delete_event_bus(world, ctx, &input),
        "PutRule" => put_rule(world, ctx, &input),
        "DescribeRule" => describe_rule(world, ctx, &input),
        "ListRules" => list_rules(world, ctx, &input),
        "DeleteRule" => delete_rule(world, ctx, &input),
        "PutTargets" => put_targets(world, ctx, &input),
        "PutPermission" => put_permission(world, ctx, &input),
        "RemovePermission" => remove_permission(world, ctx, &input),
        "RemoveTargets" => remove_targets(world, ctx, &input),
        "ListTargetsByRule" => list_targets(world, ctx, &input),
        "TagResource" => tag_resource(world, ctx, &input),
        "UntagResource" => untag_resource(world, ctx, &input),
        "ListTagsForResource" => list_tags(world, ctx, &input),
        "PutEvents" => put_events(world, ctx, &input),
        _ => Err(super::unknown_operation(op)),
    }?;
    Ok(super::json_reply(&out))
}

fn str_field<'a>(input: &'a Value, name: &str) -> Result<&'a str, AwsError> {
    match input.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(AwsError::new(
            400,
            "SerializationException",
            format!("{name} must be a string"),
        )),
        None => Err(validation(
            "ValidationException",
            "null",
            name,
            "Member must not be null",
        )),
    }
}

fn opt_str<'a>(input: &'a Value, name: &str) -> Option<&'a str> {
    input.get(name).and_then(Value::as_str)
}

fn check(value: &str, member: &str, ok: bool, constraint: &str) -> Result<(), AwsError> {
    if ok {
        Ok(())
    } else {
        Err(validation("ValidationException", value, member, constraint))
    }
}

/// A list of strings (non-strings skipped), empty when absent.
fn strings(input: &Value, key: &str) -> Vec<String> {
    input
        .get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// A list member with 1 to `max` entries, as the model constrains it.
fn list(input: &Value, key: &str, member: &str, max: usize) -> Result<Vec<Value>, AwsError> {
    let items = input
        .get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    check(
        &items.len().to_string(),
        member,
        (1..=max).contains(&items.len()),
        &format!("Member must have length between 1 and {max}"),
    )?;
    Ok(items)
}

fn name_chars(s: &str, extra: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c) || extra.contains(c))
}

fn check_source_name(name: &str) -> Result<(), AwsError> {
    let ok = name.len() <= 256
        && name.starts_with("aws.partner/")
        && name
            .split('/')
            .skip(1)
            .filter(|s| !s.is_empty() && name_chars(s, ""))
            .count()
            >= 2
        && name
            .split('/')
            .skip(1)
            .all(|s| !s.is_empty() && name_chars(s, ""));
    check(
        name,
        "name",
        ok,
        "Member must satisfy regular expression pattern: aws\\.partner(/[\\.\\-_A-Za-z0-9]+){2,}",
    )
}

fn check_bus_name(name: &str, member: &str) -> Result<(), AwsError> {
    check(
        name,
        member,
        !name.is_empty() && name.len() <= 256 && name_chars(name, "/"),
        "Member must satisfy regular expression pattern: [/\\.\\-_A-Za-z0-9]+",
    )
}

fn check_rule_name(name: &str) -> Result<(), AwsError> {
    check(
        name,
        "name",
        !name.is_empty() && name.len() <= 64 && name_chars(name, ""),
        "Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+",
    )
}

/// Paging over a sorted list: (page, next token).
fn page<T: Clone>(items: &[T], input: &Value) -> Result<(Vec<T>, Option<String>), AwsError> {
    let limit = match input.get("Limit").and_then(Value::as_i64) {
        Some(l) if !(1..=100).contains(&l) => {
            return Err(validation(
                "ValidationException",
                &l.to_string(),
                "limit",
                "Member must have value between 1 and 100",
            ));
        }
        Some(l) => l as usize,
        None => 100,
    };
    let start = match opt_str(input, "NextToken") {
        None => 0,
        Some(t) => t
            .strip_prefix("sim-page-")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= items.len())
            .ok_or_else(|| {
                AwsError::new(
                    400,
                    "ValidationException",
                    "The NextToken provided is invalid.",
                )
            })?,
    };
    let end = (start + limit).min(items.len());
    let next = (end < items.len()).then(|| format!("sim-page-{end}"));
    Ok((items[start..end].to_vec(), next))
}

/// A page of `all` under `key`, each item shown by `show` (only the page's items are).
fn paged_with<T>(key: &str, all: &[&T], input: &Value, show: impl Fn(&T) -> Value) -> Res {
    let (items, next) = page(all, input)?;
    let items: Vec<Value> = items.into_iter().map(show).collect();
    let mut out = json!({ key: items });
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

fn secs(ms: Millis) -> Value {
    json!(ms as f64 / 1000.0)
}

/// A region to read: empty when the account has never used it.
fn region<'w>(world: &'w World, ctx: &Ctx) -> &'w crate::world::Region {
    static EMPTY: std::sync::LazyLock<crate::world::Region> =
        std::sync::LazyLock::new(Default::default);
    world.region(&ctx.account, &ctx.region).unwrap_or(&EMPTY)
}

fn ensure_default(world: &mut World, ctx: &Ctx) {
    if region(world, ctx).buses.contains_key("default") {
        return;
    }
    let arn = format!(
        "arn:aws:events:{}:{}:event-bus/default",
        ctx.region, ctx.account
    );
    let now = ctx.now;
    world
        .region_mut(&ctx.account, &ctx.region)
        .buses
        .entry("default".into())
        .or_insert_with(|| {
            Part::new(Bus {
                name: "default".into(),
                arn,
                created: now,
                modified: now,
                description: None,
                event_source: None,
                rules: Default::default(),
                received: 0,
                policy: None,
            })
        });
}

/// A bus name from a name or an ARN (`arn:aws:events:<region>:<account>:event-bus/<name>`).
fn bus_name(s: &str) -> &str {
    match s.split_once(":event-bus/") {
        Some((_, name)) if s.starts_with("arn:") => name,
        _ => s,
    }
}

fn bus<'w>(
    world: &'w mut World,
    ctx: &Ctx,
    name_or_arn: Option<&str>,
) -> Result<&'w mut Bus, AwsError> {
    ensure_default(world, ctx);
    let name = bus_name(name_or_arn.unwrap_or("default")).to_owned();
    world
        .region_mut(&ctx.account, &ctx.region)
        .buses
        .get_mut(&name)
        .map(|b| &mut **b)
        .ok_or_else(|| {
            AwsError::new(
                400,
                "ResourceNotFoundException",
                format!("Event bus {name} does not exist."),
            )
        })
}

/// A bus to read (the default bus is made on first use, as every region has one).
fn bus_ref<'w>(
    world: &'w mut World,
    ctx: &Ctx,
    name_or_arn: Option<&str>,
) -> Result<&'w Bus, AwsError> {
    ensure_default(world, ctx);
    let name = bus_name(name_or_arn.unwrap_or("default"));
    region(world, ctx)
        .buses
        .get(name)
        .map(|b| &**b)
        .ok_or_else(|| {
            AwsError::new(
                400,
                "ResourceNotFoundException",
                format!("Event bus {name} does not exist."),
            )
        })
}

/// A rule to read, with its bus's name.
fn rule_ref<'w>(
    world: &'w mut World,
    ctx: &Ctx,
    input: &Value,
    field: &str,
) -> Result<(&'w Rule, &'w str), AwsError> {
    let name = str_field(input, field)?.to_owned();
    let b = bus_ref(world, ctx, opt_str(input, "EventBusName"))?;
    b.rules
        .get(&name)
        .map(|r| (&**r, b.name.as_str()))
        .ok_or_else(|| {
            AwsError::new(
                400,
                "ResourceNotFoundException",
                format!("Rule {name} does not exist on EventBus {}.", b.name),
            )
        })
}

fn source_json(s: &Source) -> Value {
    json!({
        "Arn": s.arn, "CreatedBy": s.created_by, "CreationTime": secs(s.created),
        "ExpirationTime": secs(s.expiration), "Name": s.name, "State": s.state,
    })
}

fn create_partner_source(world: &mut World, ctx: &Ctx, input: &Value) -> Res {
    let name = str_field(input, "Name")?.to_owned();
    let account = str_field(input, "Account")?.to_owned();
    check_source_name(&name)?;
    check(
        &account,
        "account",
        account.len() == 12 && account.chars().all(|c| c.is_ascii_digit()),
        "Member must satisfy regular expression pattern: \\d{12}",
    )?;
    let region = world.region_mut(&account, &ctx.region);
    if region
        .sources
        .get(&name)
        .is_some_and(|s| s.state != "DELETED")
    {
        return Err(AwsError::new(
            400,
            "ResourceAlreadyExistsException",
            format!("Event source {name} already exists."),
        ));
    }
    let arn = format!("arn:aws:events:{}::event-source/{name}", ctx.region);
    let state = if region.buses.contains_key(&name) {
        "ACTIVE"
    } else {
        "PENDING"
    };
    let created_by = format!("aws.partner/{}", name.split('/').nth(1).unwrap_or(""));
    region.sources.insert(
        name.clone(),
        Part::new(Source {
            name: name.clone(),
            arn: arn.clone(),
            created_by,
            created: ctx.now,
            expiration: ctx.now + 14 * 24 * 3600 * 1000,
            state: state.into(),
            account,
        }),
    );
    Ok(json!({"EventSourceArn": arn}))
}

fn delete_partner_source(world: &mut World, ctx: &Ctx, input: &Value) -> Res {
    let name = str_field(input, "Name")?.to_owned();
    let account = str_field(input, "Account")?.to_owned();
    if let Some(s) = world
        .region_mut(&account, &ctx.region)
        .sources
        .get_mut(&name)
    {
        s.state = "DELETED".into();
    }
    Ok(json!({}))
}

fn put_partner_events(world: &mut World, ctx: &Ctx, input: &Value) -> Res {
    let entries = list(input, "Entries", "entries", 20)?;
    let mut results = Vec::new();
    let mut failed = 0;
    for e in entries {
        let (Some(source), Some(dt), Some(detail)) = (
            opt_str(&e, "Source"),
            opt_str(&e, "DetailType"),
            opt_str(&e, "Detail"),
        ) else {
            failed += 1;
            results.push(json!({"ErrorCode": "InvalidArgument", "ErrorMessage": "Source, DetailType and Detail are required."}));
            continue;
        };
        let Ok(detail) = serde_json::from_str::<Value>(detail) else {
            failed += 1;
            results.push(
                json!({"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}),
            );
            continue;
        };
        let id = crate::ids::uuid(&mut world.rng);
        // The source's customer account receives the event, if the source is associated.
        let target = world.accounts.iter().find_map(|(acct, a)| {
            let s = a.regions.get(&ctx.region)?.sources.get(source)?;
            (s.state == "ACTIVE").then(|| acct.clone())
        });
        if let Some(acct) = target {
            let envelope = json!({
                "version": "0", "id": id, "detail-type": dt, "source": source, "account": acct,
                "time": crate::clock::iso(ctx.now).replace(".000Z", "Z"), "region": ctx.region,
                "resources": e.get("Resources").cloned().unwrap_or(json!([])), "detail": detail,
            });
            let region = ctx.region.clone();
            put_on_bus(world, &acct, &region, source, envelope, ctx.now, 0);
        }
        results.push(json!({"EventId": id}));
    }
    Ok(json!({"FailedEntryCount": failed, "Entries": results}))
}

fn list_event_sources(world: &mut World, ctx: &Ctx, input: &Value) -> Res {
    let prefix = opt_str(input, "NamePrefix").unwrap_or("");
    let all: Vec<&Source> = region(world, ctx)
        .sources
        .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
        .take_while(|(name, _)| name.starts_with(prefix))
        .map(|(_, s)| &**s)
        .collect();
    paged_with("EventSources", &all, input, source_json)
}

fn find_source<'w>(
    world: &'w mut World,
    ctx: &Ctx,
    name: &str,
) -> Result<&'w mut Source, AwsError> {
    world
        .region_mut(&ctx.account, &ctx.region)
        .sources
        .get_mut(name)
        .map(|s| &mut **s)
        .ok_or_else(|| {
            AwsError::new(
                400,
                "ResourceNotFoundException",
                format!("Event source {name} does not exist."),
            )
        })
}

fn describe_event_source(world: &mut World, ctx: &Ctx, input: &Value) -> Res {
    let name = str_field(input, "Name")?;
    region(world, ctx)
        .sources
        .get(name)
        .map(|s| source_json(s))
        .ok_or_else(|| {
            AwsError::new(
                400,
                "ResourceNotFoundException",
                format!("Event source {name} does not exist."),
            )
        })
}

fn set_source_active(world: &mut World, ctx: &Ctx, input: &Value, active: bool) -> Res {
    let name = str_field(input, "Name")?.to_owned();
    let s = find_source(world, ctx, &name)?;
    let (from, to) = if active {
        ("PENDING", "ACTIVE")
    } else {
        ("ACTIVE", "PENDING")
    };
    if s.state != from {
        return Err(AwsError::new(
            400,
            "InvalidStateException",
            format!("Event source {name} is in state {}, not {from}.", s.state),
        ));
    }
    s.state = to.into();
    world.source_changed(&name, ctx.now);
    Ok(json!({}))
}

fn bus_json(b: &Bus) -> Value {
    let mut v = json!({"Name": b.name, "Arn": b.arn, "CreationTime": secs(b.created), "LastModifiedTime": secs(b.modified)});
    if let Some(d) = &b.description {
        v["Description"] = json!(d);
    }
    if let Some(p) = &b.policy {
        v["Policy"] = json!(p);
    }
    v
}

/// `PutPermission`: a statement on the bus's resource policy, from `Action` + `Principal` +
/// `StatementId` (replacing a statement with that id), or a whole `Policy` document.
fn put_permission(world: &mut World, ctx: &Ctx, input: &Value) -> Res {
    let b = bus(world, ctx, opt_str(input, "EventBusName"))?;
    if let Some(doc) = opt_str(input, "Policy") {
        policy::well_formed(doc).map_err(|m| AwsError::new(400, "ValidationException", m))?;
        b.policy = Some(doc.to_owned());
        return Ok(json!({}));
    }
    let action = str_field(input, "Action")?;
    if action != "events:PutEvents" {
        return Err(AwsError::new(
            400,
            "ValidationException",
            format!(
                "Provided value in parameter 'action' is not supported: {action}. Use events:PutEvents."
            ),
        ));
    }
    let principal = str_field(input, "Principal")?;
    let ok = principal == "*"
        || (principal.len() == 12 && principal.bytes().all(|c| c.is_ascii_digit()));
    if !ok {
        return Err(AwsError::new(
            400,
            "ValidationException",
            format!(
                "Provided value in parameter 'principal' is not valid: {principal}. Use a 12-digit account id or *."
            ),
        ));
    }
    let sid = str_field(input, "StatementId")?;
    check(
        sid,
        "statementId",
        !sid.is_empty() && sid.len() <= 64 && name_chars(sid, ""),
        "Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+",
    )?;
    let mut doc: Value = b
        .policy
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_else(|| json!({"Version": "2012-10-17", "Statement": []}));
    let principal_json = if principal == "*" {
        json!("*")
    } else {
        json!({"AWS": format!("arn:aws:iam::{principal}:root")})
    };
    let statement = json!({"Sid": sid, "Effect": "Allow", "Principal": principal_json, "Action": action, "Resource": b.arn});
    let list = doc["Statement"].as_array_mut();
    match list {
        Some(list) => {
            list.retain(|s| s.get("Sid").and_then(Value::as_str) != Some(sid));
            list.push(statement);
        }
        None => doc["Statement"] = json!([statement]),
    }
    b.policy = Some(doc.to_string());
    Ok(json!({}))
}

/// `RemovePermission`: one statement by id, or the whole policy (`RemoveAllPermissions`).
fn remove_permission(world: &mut World, ctx: &Ctx, input: &Value) -> Res {
    let b = bus(world, ctx, opt_str(input, "EventBusName"))?;
    if input.get("RemoveAllPermissions").and_then(Value::as_bool) == Some(true) {
        b.policy = None;
        return Ok(json!({}));
    }
    let sid = str_field(input, "StatementId")?;
    let mut doc: Value = b
        .policy
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or(Value::Null);
    let Some(list) = doc.get_mut("Statement").and_then(Value::as_array_mut) else {
        return Err(AwsError::new(
            400,
            "ResourceNotFoundException",
            format!("Statement with the provided id {sid} does not exist."),
        ));
    };
    let before = list.len();
    list.retain(|s| s.get("Sid").and_then(Value::as_str) != Some(sid));
    if list.len() == before {
        return Err(AwsError::new(
            400,
            "ResourceNotFoundException",
            format!("Statement with the provided id {sid} does not exist."),
        ));
    }
    b.policy = (!list.is_empty()).then(|| doc.to_string());
    Ok(json!({}))
}

/// For an event-bus target in another account or region: whether the destination bus's resource
/// policy lets `account` send to it (always true with `receiver_bus_policy: ignore`, and for a bus in
/// the same account and region).
fn receiver_allows(world: &World, account: &str, region: &str, target_arn: &str) -> bool {
    let Some((prefix, name)) = target_arn.split_once(":event-bus/") else {
        return true;
    };
    let parts: Vec<&str> = prefix.split(':').collect();
    let [_, _, "events", t_region, t_account] = parts[..] else {
        return true;
    };
    if (t_account == account && t_region == region)
        || world.settings.receiver_bus_policy == ReceiverPolicy::Ignore
    {
        return true;
    }
    world
        .accounts
        .get(t_account)
        .and_then(|a| a.regions.get(t_region))
        .and_then(|r| r.buses.get(name))
        .and_then(|b| b.policy.as_deref())
        .is_some_and(|p| policy::resource_allows(p, account, "events:PutEvents", target_arn))
}

fn create_event_bus(world: &mut World, ctx: &Ctx, input: &Value) -> Res {
    let new_tags = input_tags(input)?;
    let name = str_field(input, "Name")?.to_owned();
    check_bus_name(&name, "name")?;
    ensure_default(world, ctx);
    let source = opt_str(input, "EventSourceName").map(str::to_owned);
    match &source {
        Some(src) => {
            check_source_name(src)?;
            if *src != name {
                return Err(AwsError::new(
                    400,
                    "ValidationException",
                    format!("Event bus name {name} must match event source name {src}."),
                ));
            }
            let s = region(world, ctx).sources.get(src);
            match s {
                None => {
                    return Err(AwsError::new(
                        400,
                        "ResourceNotFoundException",
                        format!("Event source {src} does not exist."),
                    ));
                }
                Some(s) if s.state == "DELETED" => {
                    return Err(AwsError::new(
                        400,
                        "InvalidStateException",
                        format!("Event source {src} is deleted."),
                    ));
                }
                Some(_) => {}
            }
        }
        None => {
            if name.contains('/') || name.starts_with("aws.") {
                return Err(AwsError::new(
                    400,
                    "ValidationException",
                    format!(
                        "Event bus name {name} is not valid: custom event bus names cannot contain '/' or start with 'aws.'."
                    ),
                ));
            }
        }
    }
    let region = world.region_mut(&ctx.account, &ctx.region);
    if region.buses.contains_key(&name) {
        return Err(AwsError::new(
            400,
            "ResourceAlreadyExistsException",
            format!("Event bus {name} already exists."),
        ));
    }
    let arn = format!(
        "arn:aws:events:{}:{}:event-bus/{name}",
        ctx.region, ctx.account
    );
    let description = opt_str(input, "Description").map(str::to_owned);
    region.buses.insert(
        name.clone(),
        Part::new(Bus {
            name: name.clone(),
            arn: arn.clone(),
            created: ctx.now,
            modified: ctx.now,
            description: description.clone(),
            event_source: source.clone(),
            rules: Default::default(),
            received: 0,
            policy: None,
        }),
    );
    if !new_tags.is_empty() {
        region.tags.entry(arn.clone()).or_default().extend(new_tags);
    }
    if let Some(src) = source {
        if let Some(s) = region.sources.get_mut(&src) {
            s.state = "ACTIVE".into();
        }
        world.source_changed(&src, ctx.now);
    }
    let mut out = json!({"EventBusArn": arn});
    if let Some(d) = description {
        out["Description"] = json!(d);
    }
    Ok(out)
}

fn describe_event_bus(world: &mut World, ctx: &Ctx, input: &Value) -> Res {
    Ok(bus_json(bus_ref(world, ctx, opt_str(input, "Name"))?))
}

fn list_event_buses(world: &mut World, ctx: &Ctx, input: &Value) -> Res {
    ensure_default(world, ctx);
    let prefix = opt_str(input, "NamePrefix").unwrap_or("");
    let all: Vec<&Bus> = region(world, ctx)
        .buses
        .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
        .take_while(|(name, _)| name.starts_with(prefix))
        .map(|(_, b)| &**b)
        .collect();
    paged_with("EventBuses", &all, input, bus_json)
}

fn delete_event_bus(world: &mut World, ctx: &Ctx, input: &Value) -> Res {
    let name = bus_name(str_field(input, "Name")?).to_owned();
    if name == "default" {
        return Err(AwsError::new(
            400,
            "ValidationException",
            "Cannot delete event bus default.",
        ));
    }
    let refuse = world.settings.delete_bus_with_rules == DeleteBusWithRules::Refuse;
    let region = world.region_mut(&ctx.account, &ctx.region);
    if let Some(b) = region.buses.get(&name)
        && refuse
        && !b.rules.is_empty()
    {
        let rules: Vec<&str> = b.rules.keys().map(String::as_str).collect();
        return Err(AwsError::new(
            400,
            "ValidationException",
            format!(
                "Cannot delete event bus {name}: it has rules ({}). Delete its rules first.",
                rules.join(", ")
            ),
        ));
    }
    if let Some(b) = region.buses.remove(&name) {
        region.tags.remove(&b.arn);
        if let Some(src) = &b.event_source {
            if let Some(s) = region.sources.get_mut(src)
                && s.state == "ACTIVE"
            {
                s.state = "PENDING".into();
            }
            world.source_changed(src, ctx.now);
        }
    }
    Ok(json!({}))
}

fn rule_json(r: &Rule, bus: &str) -> Value {
    let mut v = json!({"Name": r.name, "Arn": r.arn, "State": r.state, "EventBusName": bus});
    for (k, val) in [
        ("EventPattern", &r.event_pattern),
        ("ScheduleExpression", &r.schedule_expression),
        ("Description", &r.description),
        ("RoleArn", &r.role_arn),
    ] {
        if let Some(x) = val {
            v[k] = json!(x);
        }
    }
    v
}

/// The `Tags` of a request, checked as AWS checks them (each a Key and a Value, AWS's pattern).
fn input_tags(input: &Value) -> Result<Vec<(String, String)>, AwsError> {
    let mut out = Vec::new();
    for tag in input
        .get("Tags")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let (Some(k), Some(v)) = (opt_str(tag, "Key"), opt_str(tag, "Value")) else {
            return Err(AwsError::new(
                400,
                "ValidationException",
                "Each tag needs a Key and a Value.",
            ));
        };
        out.push((k.to_owned(), v.to_owned()));
    }
    super::check_tags(
        "ValidationException",
        out.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )?;
    if out.len() > 50 {
        return Err(AwsError::new(
            400,
            "LimitExceededException",
            "A resource can have at most 50 tags.",
        ));
    }
    Ok(out)
}

fn put_rule(world: &mut World, ctx: &Ctx, input: &Value) -> Res {
    let name = str_field(input, "Name")?.to_owned();
    let new_tags = input_tags(input)?;
    check_rule_name(&name)?;
    let pattern = opt_str(input, "EventPattern").map(str::to_owned);
    let schedule = opt_str(input, "ScheduleExpression").map(str::to_owned);
    if pattern.is_none() && schedule.is_none() {
        return Err(AwsError::new(
            400,
            "ValidationException",
            "Parameter(s) EventPattern or ScheduleExpression must be specified.",
        ));
    }
    if let Some(p) = &pattern {
        if p.len() > 4096 {
            return Err(validation(
                "ValidationException",
                "...",
                "eventPattern",
                "Member must have length less than or equal to 4096",
            ));
        }
        pattern::parse(p).map_err(|e| AwsError::new(400, "InvalidEventPatternException", e))?;
    }
    let state = opt_str(input, "State").unwrap_or("ENABLED").to_owned();
    check(
        &state,
        "state",
        [
            "ENABLED",
            "DISABLED",
            "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS",
        ]
        .contains(&state.as_str()),
        "Member must satisfy enum value set: [ENABLED, DISABLED, ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS]",
    )?;
    let (region, account) = (ctx.region.clone(), ctx.account.clone());
    let b = bus(world, ctx, opt_str(input, "EventBusName"))?;
    let arn = if b.name == "default" {
        format!("arn:aws:events:{region}:{account}:rule/{name}")
    } else {
        format!("arn:aws:events:{region}:{account}:rule/{}/{name}", b.name)
    };
    if !b.rules.contains_key(&name) && b.rules.len() >= 300 {
        return Err(AwsError::new(
            400,
            "LimitExceededException",
            "The requested resource exceeds the maximum number allowed.",
        ));
    }
    let targets = b
        .rules
        .get(&name)
        .map(|r| r.targets.clone())
        .unwrap_or_default();
    b.rules.insert(
        name.clone(),
        Box::new(Rule {
            name,
            arn: arn.clone(),
            event_pattern: pattern,
            schedule_expression: schedule,
            state,
            description: opt_str(input, "Description").map(str::to_owned),
            role_arn: opt_str(input, "RoleArn").map(str::to_owned),
            targets,
            matched: 0,
            parsed: Default::default(),
        }),
    );
    if !new_tags.is_empty() {
        let t = world
            .region_mut(&account, &region)
            .tags
            .entry(arn.clone())
            .or_default();
        t.extend(new_tags);
    }
    Ok(json!({"RuleArn": arn}))
}

fn rule<'w>(
    world: &'w mut World,
    ctx: &Ctx,
    input: &Value,
    field: &str,
) -> Result<(&'w mut Rule, String), AwsError> {
    let name = str_field(input, field)?.to_owned();
    let b = bus(world, ctx, opt_str(input, "EventBusName"))?;
    let bus_name = b.name.clone();
    b.rules
        .get_mut(&name)
        .map(|r| (&mut **r, bus_name.clone()))
        .ok_or_else(|| {
            AwsError::new(
                400,
                "ResourceNotFoundException",
                format!("Rule {name} does not exist on EventBus {bus_name}."),
            )
        })
}

fn describe_rule(world: &mut World, ctx: &Ctx, input: &Value) -> Res {
    let account = ctx.account.clone();
    let (r, b) = rule_ref(world, ctx, input, "Name")?;
    let mut v = rule_json(r, b);
    v["CreatedBy"] = json!(account);
    Ok(v)
}

fn list_rules(world: &mut World, ctx: &Ctx, input: &Value) -> Res {
    let prefix = opt_str(input, "NamePrefix").unwrap_or("").to_owned();
    let b = bus_ref(world, ctx, opt_str(input, "EventBusName"))?;
    let all: Vec<&Rule> = b
        .rules
        .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
        .take_while(|(name, _)| name.starts_with(&prefix))
        .map(|(_, r)| &**r)
        .collect();
    paged_with("Rules", &all, input, |r| rule_json(r, &b.name))
}

fn delete_rule(world: &mut World, ctx: &Ctx, input: &Value) -> Res {
    let name = str_field(input, "Name")?.to_owned();
    let b = bus(world, ctx, opt_str(input, "EventBusName"))?;
    if let Some(r) = b.rules.get(&name) {
        if !r.targets.is_empty() {
            return Err(AwsError::new(
                400,
                "ValidationException",
                "Rule can't be deleted since it has targets.",
            ));
        }
        let arn = r.arn.clone();
        b.rules.remove(&name);
        world
            .region_mut(&ctx.account, &ctx.region)
            .tags
            .remove(&arn);
    }
    Ok(json!({}))
}

fn put_targets(world: &mut World, ctx: &Ctx, input: &Value) -> Res {
    let targets = list(input, "Targets", "targets", 100)?;
    for t in &targets {
        let id = opt_str(t, "Id").unwrap_or("");
        check(
            id,
            "targets.member.id",
            !id.is_empty() && id.len() <= 64 && name_chars(id, ""),
            "Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+",
        )?;
        let arn = opt_str(t, "Arn").unwrap_or("");
        check(
            arn,
            "targets.member.arn",
            arn.starts_with("arn:"),
            "Member must have length greater than or equal to 1",
        )?;
    }
    for t in &targets {
        let arn = opt_str(t, "Arn").unwrap_or("");
        if !receiver_allows(world, &ctx.account, &ctx.region, arn) {
            return Err(AwsError::new(
                400,
                "AccessDeniedException",
                format!(
                    "Access to the resource {arn} is denied: the event bus's resource policy does not allow account {} to put events on it.",
                    ctx.account
                ),
            ));
        }
    }
    let (r, _) = rule(world, ctx, input, "Rule")?;
    let new_ids = targets
        .iter()
        .filter(|t| !r.targets.contains_key(opt_str(t, "Id").unwrap_or("")))
        .count();
    if r.targets.len() + new_ids > 5 {
        return Err(AwsError::new(
            400,
            "LimitExceededException",
            "The requested resource exceeds the maximum number allowed: 5 targets per rule.",
        ));
    }
    for t in targets {
        let Value::Object(target) = &t else {
            continue; // Unreachable: the `Id` check above refused a target that is not an object.
        };
        r.targets.insert(
            opt_str(&t, "Id").unwrap_or("").to_owned(),
            crate::world::Stored::new(target),
        );
    }
    Ok(json!({"FailedEntryCount": 0, "FailedEntries": []}))
}

fn remove_targets(world: &mut World, ctx: &Ctx, input: &Value) -> Res {
    let ids = strings(input, "Ids");
    check(
        &ids.len().to_string(),
        "ids",
        (1..=100).contains(&ids.len()),
        "Member must have length between 1 and 100",
    )?;
    let (r, _) = rule(world, ctx, input, "Rule")?;
    let mut failed = Vec::new();
    for id in ids {
        if r.targets.remove(&id).is_none() {
            failed.push(json!({"TargetId": id, "ErrorCode": "ResourceNotFoundException", "ErrorMessage": format!("Target {id} does not exist on rule {}.", r.name)}));
        }
    }
    Ok(json!({"FailedEntryCount": failed.len(), "FailedEntries": failed}))
}

fn list_targets(world: &mut World, ctx: &Ctx, input: &Value) -> Res {
    let (r, _) = rule_ref(world, ctx, input, "Rule")?;
    let all: Vec<&crate::world::Stored> = r.targets.values().collect();
    paged_with("Targets", &all, input, crate::world::Stored::value)
}

/// The tags map of an existing bus or rule, by ARN.
fn tags_of<'w>(
    world: &'w mut World,
    ctx: &Ctx,
    arn: &str,
) -> Result<&'w mut crate::world::TagSet, AwsError> {
    ensure_default(world, ctx);
    if !tagged_exists(region(world, ctx), arn) {
        return Err(AwsError::new(
            400,
            "ResourceNotFoundException",
            format!("Resource {arn} does not exist."),
        ));
    }
    let region = world.region_mut(&ctx.account, &ctx.region);
    Ok(region.tags.entry(arn.to_owned()).or_default())
}

/// Whether a bus or rule has this ARN: `...:event-bus/<bus>`, `...:rule/<rule>` (on the default
/// bus) or `...:rule/<bus>/<rule>` (bus names may hold `/`, rule names may not).
fn tagged_exists(region: &crate::world::Region, arn: &str) -> bool {
    if let Some((_, name)) = arn.split_once(":event-bus/") {
        return region.buses.get(name).is_some_and(|b| b.arn == arn);
    }
    if let Some((_, path)) = arn.split_once(":rule/") {
        let (bus, rule) = path.rsplit_once('/').unwrap_or(("default", path));
        return region
            .buses
            .get(bus)
            .and_then(|b| b.rules.get(rule))
            .is_some_and(|r| r.arn == arn);
    }
    false
}

fn tag_resource(world: &mut World, ctx: &Ctx, input: &Value) -> Res {
    let arn = str_field(input, "ResourceARN")?.to_owned();
    let tags = input_tags(input)?;
    let t = tags_of(world, ctx, &arn)?;
    let mut after = t.clone();
    after.extend(tags);
    if after.len() <= 50 {
        *t = after;
    } else {
        return Err(AwsError::new(
            400,
            "LimitExceededException",
            "A resource can have at most 50 tags.",
        ));
    }
    Ok(json!({}))
}

fn untag_resource(world: &mut World, ctx: &Ctx, input: &Value) -> Res {
    let arn = str_field(input, "ResourceARN")?.to_owned();
    let keys = strings(input, "TagKeys");
    let t = tags_of(world, ctx, &arn)?;
    for k in keys {
        t.remove(&k);
    }
    Ok(json!({}))
}

fn list_tags(world: &mut World, ctx: &Ctx, input: &Value) -> Res {
    let arn = str_field(input, "ResourceARN")?.to_owned();
    ensure_default(world, ctx);
    let region = region(world, ctx);
    if !tagged_exists(region, &arn) {
        return Err(AwsError::new(
            400,
            "ResourceNotFoundException",
            format!("Resource {arn} does not exist."),
        ));
    }
    let none = crate::world::TagSet::default();
    let t = region.tags.get(&arn).map_or(&none, |t| &**t);
    Ok(json!({"Tags": t.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>()}))
}

fn put_events(world: &mut World, ctx: &Ctx, input: &Value) -> Res {
    let entries = list(input, "Entries", "entries", 10)?;
    for e in &entries {
        if let Some(b) = opt_str(e, "EventBusName")
            && bus_name(b).contains('/')
        {
            return Err(validation(
                "ValidationException",
                b,
                "entries.member.eventBusName",
                "Member must satisfy regular expression pattern: (arn:aws[\\w-]*:events:[a-z]+-[a-z]+-[\\w-]+:[0-9]{12}:event-bus\\/)?[\\.\\-_A-Za-z0-9]+",
            ));
        }
    }
    let mut out = Vec::new();
    let mut failed = 0;
    for e in entries {
        let missing = ["Source", "DetailType", "Detail"]
            .into_iter()
            .find(|k| opt_str(&e, k).is_none());
        if let Some(k) = missing {
            failed += 1;
            out.push(json!({"ErrorCode": "InvalidArgument", "ErrorMessage": format!("Parameter {k} is not valid. Reason: {k} is a required argument.")}));
            continue;
        }
        let Ok(detail) = serde_json::from_str::<Value>(opt_str(&e, "Detail").unwrap_or("")) else {
            failed += 1;
            out.push(
                json!({"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}),
            );
            continue;
        };
        let name = bus_name(opt_str(&e, "EventBusName").unwrap_or("default")).to_owned();
        if bus(world, ctx, Some(&name)).is_err() {
            failed += 1;
            out.push(json!({"ErrorCode": "ResourceNotFoundException", "ErrorMessage": format!("Event bus {name} does not exist.")}));
            continue;
        }
        let id = crate::ids::uuid(&mut world.rng);
        let envelope = json!({
            "version": "0", "id": id, "detail-type": opt_str(&e, "DetailType"), "source": opt_str(&e, "Source"),
            "account": ctx.account, "time": crate::clock::iso(ctx.now).replace(".000Z", "Z"), "region": ctx.region,
            "resources": e.get("Resources").cloned().unwrap_or(json!([])), "detail": detail,
        });
        let (account, region) = (ctx.account.clone(), ctx.region.clone());
        put_on_bus(world, &account, &region, &name, envelope, ctx.now, 0);
        out.push(json!({"EventId": id}));
    }
    Ok(json!({"FailedEntryCount": failed, "Entries": out}))
}

/// An event arrives on a bus: record it, then run it through the bus's enabled rules to their
/// targets. An event-bus target is reached through the target's `RoleArn`: a role that does not trust
/// EventBridge, or lacks `events:PutEvents` on the target bus, drops the event and counts a failed
/// invocation, as AWS does.
pub fn put_on_bus(
    world: &mut World,
    account: &str,
    region: &str,
    bus: &str,
    event: impl Into<std::sync::Arc<Value>>,
    now: Millis,
    depth: u8,
) {
    // One event, shared by the hop to another bus; its text by every delivery record it makes here.
    let event: std::sync::Arc<Value> = event.into();
    let text = crate::world::Stored::of(&event);
    let Some(b) = world
        .accounts
        .get_mut(account)
        .and_then(|a| a.regions.get_mut(region))
        .and_then(|r| r.buses.get_mut(bus))
    else {
        return;
    };
    b.received += 1;
    let mut hits: Vec<(String, Vec<Value>)> = Vec::new();
    for r in b.rules.values_mut() {
        if r.state == "DISABLED" {
            continue;
        }
        let matched = r
            .parsed_pattern()
            .is_some_and(|p| pattern::matches(p, &event));
        if matched {
            r.matched += 1;
            hits.push((
                r.name.clone(),
                r.targets
                    .values()
                    .map(crate::world::Stored::value)
                    .collect(),
            ));
        }
    }
    world.log_delivery(Delivery {
        time: now,
        account: account.into(),
        region: region.into(),
        bus: bus.into(),
        rule: String::new(),
        target: String::new(),
        outcome: "delivered".into(),
        event: text.clone(),
    });
    for (rule, targets) in hits {
        for t in targets {
            let target_id = opt_str(&t, "Id").unwrap_or("").to_owned();
            let arn = opt_str(&t, "Arn").unwrap_or("").to_owned();
            let allowed = receiver_allows(world, account, region, &arn);
            if arn.contains(":logs:") && arn.contains(":log-group:") {
                let ok = super::logs::deliver(world, &arn, &event, now);
                world.log_delivery(Delivery {
                    time: now,
                    account: account.into(),
                    region: region.into(),
                    bus: bus.into(),
                    rule: rule.clone(),
                    target: target_id,
                    outcome: if ok { "delivered" } else { "failed" }.into(),
                    event: text.clone(),
                });
                continue;
            }
            let outcome = match forward_target(world, account, &t, &arn) {
                Ok(Some(_)) if !allowed => "failed",
                // An event that arrived from another bus is not routed on to a third.
                Ok(Some((ta, tr, tb))) if depth < world.settings.bus_to_bus_hops => {
                    put_on_bus(world, &ta, &tr, &tb, event.clone(), now, depth + 1);
                    "delivered"
                }
                Ok(Some(_)) => "failed",
                Ok(None) => "delivered",
                Err(()) => "failed",
            };
            world.log_delivery(Delivery {
                time: now,
                account: account.into(),
                region: region.into(),
                bus: bus.into(),
                rule: rule.clone(),
                target: target_id,
                outcome: outcome.into(),
                event: text.clone(),
            });
        }
    }
}

/// For an event-bus target: the bus to deliver to, if the role allows it. `Ok(None)` for targets the
/// simulator only records (queues, functions, ...).
fn forward_target(
    world: &World,
    account: &str,
    target: &Value,
    arn: &str,
) -> Result<Option<(String, String, String)>, ()> {
    let Some((prefix, name)) = arn.split_once(":event-bus/") else {
        return Ok(None);
    };
    let parts: Vec<&str> = prefix.split(':').collect();
    let [_, _, "events", region, target_account] = parts[..] else {
        return Err(());
    };
    let role_arn = opt_str(target, "RoleArn").ok_or(())?;
    let role_account = role_arn.split(':').nth(4).ok_or(())?;
    let role_name = role_arn.rsplit('/').next().ok_or(())?;
    if role_account != account {
        return Err(());
    }
    let role = world
        .accounts
        .get(account)
        .and_then(|a| a.roles.get(&role_name.to_lowercase()))
        .ok_or(())?;
    if !policy::trusts_service(&role.assume_role_policy, TRUST_PRINCIPAL) {
        return Err(());
    }
    let mut policies: Vec<&str> = role.inline_policies.values().map(String::as_str).collect();
    const FULL: &str = r#"{"Statement":[{"Effect":"Allow","Action":"events:*","Resource":"*"}]}"#;
    if role
        .attached
        .keys()
        .any(|a| a.ends_with("/AmazonEventBridgeFullAccess") || a.ends_with("/AdministratorAccess"))
    {
        policies.push(FULL);
    }
    if !policy::allows(policies, "events:PutEvents", arn) {
        return Err(());
    }
    let exists = world
        .accounts
        .get(target_account)
        .and_then(|a| a.regions.get(region))
        .is_some_and(|r| r.buses.contains_key(name));
    if !exists {
        return Err(());
    }
    Ok(Some((
        target_account.to_owned(),
        region.to_owned(),
        name.to_owned(),
    )))
}
