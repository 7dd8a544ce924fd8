//! CloudWatch Logs (awsJson 1.1, `X-Amz-Target: Logs_20140328.*`): just what a log-group target of
//! an EventBridge rule needs, so that relayed events can be read back as they arrived (the way
//! real-org checks read `detail.payload`). Log groups, the account's resource policies (EventBridge
//! writes to a group only if one lets `events.amazonaws.com` do so), and the events written.

use super::{AwsError, Ctx};
use crate::clock::Millis;
use crate::reply::Reply;
use crate::world::{LogGroup, World};
use serde_json::{Value, json};

type Res = Result<Value, AwsError>;

pub fn handle(world: &mut World, ctx: &Ctx, op: &str, body: &[u8]) -> Result<Reply, AwsError> {
    let input = super::json_input(body)?;
    let out = match op {
        "CreateLogGroup" => create_group(world, ctx, &input),
        "DeleteLogGroup" => delete_group(world, ctx, &input),
        "DescribeLogGroups" => describe_groups(world, ctx, &input),
        "PutResourcePolicy" => put_policy(world, ctx, &input),
        "DeleteResourcePolicy" => delete_policy(world, ctx, &input),
        "FilterLogEvents" => filter_events(world, ctx, &input),
        _ => Err(super::unknown_operation(op)),
    }?;
    Ok(super::json_reply(&out))
}

fn field<'a>(input: &'a Value, name: &str) -> Result<&'a str, AwsError> {
    input.get(name).and_then(Value::as_str).ok_or_else(|| {
        AwsError::new(
            400,
            "InvalidParameterException",
            format!("1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null"),
        )
    })
}

fn group_name(input: &Value) -> Result<String, AwsError> {
    let name = field(input, "logGroupName")?;
    let ok = !name.is_empty()
        && name.len() <= 512
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-/.#".contains(c));
    if !ok {
        return Err(AwsError::new(
            400,
            "InvalidParameterException",
            format!(
                "1 validation error detected: Value '{name}' at 'logGroupName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+"
            ),
        ));
    }
    Ok(name.to_owned())
}

fn not_found(name: &str) -> AwsError {
    AwsError::new(
        400,
        "ResourceNotFoundException",
        format!("The specified log group does not exist: {name}"),
    )
}

fn create_group(world: &mut World, ctx: &Ctx, input: &Value) -> Res {
    let name = group_name(input)?;
    let region = world.region_mut(&ctx.account, &ctx.region);
    if region.log_groups.contains_key(&name) {
        return Err(AwsError::new(
            400,
            "ResourceAlreadyExistsException",
            "The specified log group already exists",
        ));
    }
    let arn = format!(
        "arn:aws:logs:{}:{}:log-group:{name}",
        ctx.region, ctx.account
    );
    region.log_groups.insert(
        name.clone(),
        LogGroup {
            name,
            arn,
            created: ctx.now,
            events: Vec::new(),
        },
    );
    Ok(json!({}))
}

fn delete_group(world: &mut World, ctx: &Ctx, input: &Value) -> Res {
    let name = group_name(input)?;
    world
        .region_mut(&ctx.account, &ctx.region)
        .log_groups
        .remove(&name)
        .ok_or_else(|| not_found(&name))?;
    Ok(json!({}))
}

fn describe_groups(world: &mut World, ctx: &Ctx, input: &Value) -> Res {
    let prefix = input
        .get("logGroupNamePrefix")
        .and_then(Value::as_str)
        .unwrap_or("");
    let groups: Vec<Value> = world
        .region_mut(&ctx.account, &ctx.region)
        .log_groups
        .values()
        .filter(|g| g.name.starts_with(prefix))
        .map(|g| json!({"logGroupName": g.name, "arn": format!("{}:*", g.arn), "creationTime": g.created, "storedBytes": g.events.iter().map(|(_, m)| m.len()).sum::<usize>()}))
        .collect();
    Ok(json!({"logGroups": groups}))
}

fn put_policy(world: &mut World, ctx: &Ctx, input: &Value) -> Res {
    let name = field(input, "policyName")?.to_owned();
    let doc = field(input, "policyDocument")?.to_owned();
    super::policy::well_formed(&doc)
        .map_err(|m| AwsError::new(400, "InvalidParameterException", m))?;
    let region = world.region_mut(&ctx.account, &ctx.region);
    region.log_policies.insert(name.clone(), doc.clone());
    Ok(
        json!({"resourcePolicy": {"policyName": name, "policyDocument": doc, "lastUpdatedTime": ctx.now}}),
    )
}

fn delete_policy(world: &mut World, ctx: &Ctx, input: &Value) -> Res {
    let name = field(input, "policyName")?;
    world
        .region_mut(&ctx.account, &ctx.region)
        .log_policies
        .remove(name)
        .ok_or_else(|| {
            AwsError::new(
                400,
                "ResourceNotFoundException",
                format!("Policy with name [{name}] does not exist"),
            )
        })?;
    Ok(json!({}))
}

fn filter_events(world: &mut World, ctx: &Ctx, input: &Value) -> Res {
    let name = group_name(input)?;
    let region = world.region_mut(&ctx.account, &ctx.region);
    let g = region
        .log_groups
        .get(&name)
        .ok_or_else(|| not_found(&name))?;
    let since = input.get("startTime").and_then(Value::as_i64).unwrap_or(0);
    let events: Vec<Value> = g
        .events
        .iter()
        .enumerate()
        .filter(|(_, (t, _))| *t >= since)
        .map(|(i, (t, m))| json!({"logStreamName": "eventbridge", "timestamp": t, "ingestionTime": t, "message": m, "eventId": format!("{i:020}")}))
        .collect();
    Ok(json!({"events": events, "searchedLogStreams": []}))
}

/// An EventBridge target `arn:aws:logs:<region>:<account>:log-group:<name>[:*]`: writes the event to
/// the group if it exists and a resource policy of its account and region lets EventBridge write
/// there. Returns whether it was written (a failed invocation otherwise, as in AWS).
pub fn deliver(world: &mut World, target_arn: &str, event: &Value, now: Millis) -> bool {
    let Some((prefix, name)) = target_arn.split_once(":log-group:") else {
        return false;
    };
    let name = name.strip_suffix(":*").unwrap_or(name);
    let parts: Vec<&str> = prefix.split(':').collect();
    let [_, _, "logs", region, account] = parts[..] else {
        return false;
    };
    let Some(r) = world
        .accounts
        .get_mut(account)
        .and_then(|a| a.regions.get_mut(region))
    else {
        return false;
    };
    let group_arn = format!("arn:aws:logs:{region}:{account}:log-group:{name}");
    let allowed = r.log_policies.values().any(|p| {
        super::policy::service_allows(p, "events.amazonaws.com", "logs:PutLogEvents", &group_arn)
    });
    match r.log_groups.get_mut(name) {
        Some(g) if allowed => {
            g.events.push((now, event.to_string()));
            true
        }
        _ => false,
    }
}
