//! `relayform output`: per relay, the names and ARNs of what it is made of, from the refreshed state.

use super::{load, prepare, runtime, unread_summary};
use crate::cli::OutputArgs;
use relayform_plan::plan::Plan;
use relayform_spec::Ensure;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::Write;

/// The version of `output --json`.
const OUTPUT_FORMAT_VERSION: u32 = 1;

/// `relayform output`: per relay of the spec (in scope, present), what it is made of now, read from
/// the orgs and accounts: `null` for what does not exist (yet).
pub(crate) fn output(
    args: &OutputArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<u8> {
    use relayform_plan::diff::same_name;
    use relayform_spec::names::FORWARD_RULE;
    let loaded = load(&args.paths, err)?;
    let spec = &loaded.spec;
    let (observed, plan) = runtime()?.block_on(async {
        let p = prepare(spec, spec, &args.scope, true, None, err).await?;
        let seen = (p.observed.clone(), p.plan.clone());
        p.close().await?;
        Ok::<_, anyhow::Error>(seen)
    })?;
    // Relays whose org or account could not be read are not shown as if they had nothing.
    let unread: BTreeSet<&str> = plan
        .unread
        .iter()
        .flat_map(|u| u.relays.iter().map(String::as_str))
        .collect();
    let mut relays = Vec::new();
    for (name, r) in &spec.relays {
        let in_scope = args.scope.orgs.is_empty() || args.scope.orgs.contains(&r.org.value);
        if r.ensure != Ensure::Present || !in_scope || unread.contains(name.as_str()) {
            continue;
        }
        let account = &spec.aws_accounts[&r.aws_account.value];
        let (id, region) = (&account.account_id.value, &account.region.value);
        let partition = relayform_spec::rules::partition(region).unwrap_or("aws");
        let live = observed
            .orgs
            .get(&r.org.value)
            .and_then(|o| o.relays.iter().find(|x| same_name(&x.name, &r.names.relay)));
        let seen = observed.accounts.get(&r.aws_account.value);
        let source = live.and_then(|l| l.remote_resource.clone());
        let bus = source.as_ref().and_then(|s| {
            seen.and_then(|a| a.buses.iter().find(|b| b.name == *s))
                .map(|b| {
                    b.arn.clone().unwrap_or_else(|| {
                        format!("arn:{partition}:events:{region}:{id}:event-bus/{s}")
                    })
                })
        });
        let rule = source.as_ref().filter(|s| {
            seen.is_some_and(|a| {
                a.rules
                    .iter()
                    .any(|x| x.bus == **s && x.name == FORWARD_RULE)
            })
        });
        let role = r.names.role.as_ref().and_then(|n| {
            seen.and_then(|a| a.roles.iter().find(|x| x.name.eq_ignore_ascii_case(n)))
                .map(|x| x.arn.clone())
        });
        relays.push(json!({
            "relay": name,
            "org": r.org.value,
            "aws_account": r.aws_account.value,
            "salesforce": {
                "relay": {"api_name": r.names.relay, "id": live.map(|l| &l.id), "state": live.and_then(|l| l.state.clone()), "status": live.and_then(|l| l.status.clone())},
                "channel": format!("{}__chn", r.names.channel),
                "named_credential": r.names.named_credential,
            },
            "aws": {
                "partner_event_source": source.as_ref().map(|s| json!({"name": s, "arn": format!("arn:{partition}:events:{region}::event-source/{s}")})),
                "partner_event_bus": bus.as_ref().map(|arn| json!({"name": source, "arn": arn})),
                "forwarding_rule": rule.map(|s| json!({"name": FORWARD_RULE, "arn": format!("arn:{partition}:events:{region}:{id}:rule/{s}/{FORWARD_RULE}")})),
                "destination_bus_arn": r.destination.as_ref().map(|d| d.value.arn()),
                "role_arn": role,
            },
        }));
    }
    if args.json {
        serde_json::to_writer_pretty(
            &mut *out,
            &json!({"format_version": OUTPUT_FORMAT_VERSION, "relays": relays}),
        )?;
        writeln!(out)?;
        return output_unread(&plan, err);
    }
    for r in &relays {
        let s = |v: &Value| {
            v.as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| "(not there yet)".into())
        };
        // A relay without a destination keeps its events on the partner bus: no rule, no role.
        let forwarded = !r["aws"]["destination_bus_arn"].is_null();
        let f = |v: &Value| {
            if forwarded {
                s(v)
            } else {
                "(none: no destination)".into()
            }
        };
        writeln!(
            out,
            "{} (org {}, AWS account {})",
            s(&r["relay"]),
            s(&r["org"]),
            s(&r["aws_account"])
        )?;
        writeln!(
            out,
            "  relay:                {} {}",
            s(&r["salesforce"]["relay"]["api_name"]),
            s(&r["salesforce"]["relay"]["id"])
        )?;
        writeln!(
            out,
            "  partner event source: {}",
            s(&r["aws"]["partner_event_source"]["arn"])
        )?;
        writeln!(
            out,
            "  partner event bus:    {}",
            s(&r["aws"]["partner_event_bus"]["arn"])
        )?;
        writeln!(
            out,
            "  forwarding rule:      {}",
            f(&r["aws"]["forwarding_rule"]["arn"])
        )?;
        writeln!(
            out,
            "  destination bus:      {}",
            f(&r["aws"]["destination_bus_arn"])
        )?;
        writeln!(out, "  role:                 {}", f(&r["aws"]["role_arn"]))?;
    }
    output_unread(&plan, err)
}

/// Exit 1, saying which relays `output` left out, when an org or account could not be read.
fn output_unread(plan: &Plan, err: &mut dyn Write) -> anyhow::Result<u8> {
    if plan.unread.is_empty() {
        return Ok(0);
    }
    let details: Vec<String> = plan
        .unread
        .iter()
        .map(|u| format!("  {}: {}", u.scope, u.error.replace('\n', "\n    ")))
        .collect();
    writeln!(
        err,
        "error: {}; those relays are not shown\n{}",
        unread_summary(plan),
        details.join("\n")
    )?;
    Ok(1)
}
