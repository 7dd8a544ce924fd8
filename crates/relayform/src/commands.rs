//! `plan`, `apply` and `destroy`: connect, refresh, plan, and (for the last two) confirm and execute.

use crate::apply::{self, Progress, Report};
use crate::cli::{ApplyArgs, DestroyArgs, Execution, OutputArgs, PlanArgs, Scope, ShowArgs};
use crate::{demo, engine};
use anyhow::{Context, bail};
use relayform_plan::diff::Observed;
use relayform_plan::plan::Plan;
use relayform_plan::{Address, Kind};
use relayform_spec::{Ensure, Spec};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The largest saved plan read (a thousand relays' plan is a few MiB).
const MAX_PLAN_BYTES: u64 = 64 << 20;

/// Marks a saved plan file (and its version).
const SAVED_PLAN: &str = "relayform_saved_plan";

/// A loaded spec and a digest of the files it came from (for saved plans).
pub(crate) struct Loaded {
    pub spec: Spec,
    pub digest: String,
    pub paths: Vec<PathBuf>,
}

pub(crate) fn load(paths: &[PathBuf], err: &mut dyn Write) -> anyhow::Result<Loaded> {
    let files = crate::load::read(&crate::load::find(paths)?)?;
    // Over the files' contents, in the order they are read: the same spec gives the same digest
    // whichever way its paths are written (relative, absolute, from another checkout).
    let mut bytes = Vec::new();
    for f in &files {
        bytes.extend_from_slice(f.text.as_bytes());
        bytes.push(0);
    }
    let h = relayform_spec::names::fnv1a_64(&bytes);
    let spec = crate::check_spec(&files, err)?;
    let paths = paths
        .iter()
        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
        .collect();
    Ok(Loaded {
        spec,
        digest: format!("{h:016x}"),
        paths,
    })
}

/// Everything a command needs after refresh.
struct Prepared {
    sim: Option<relayform_simulator::Running>,
    conn: apply::Connections,
    observed: Observed,
    plan: Plan,
}

impl Prepared {
    async fn close(self) -> anyhow::Result<()> {
        if let Some(sim) = self.sim {
            sim.shutdown()
                .await
                .context("cannot save the embedded simulator's state")?;
        }
        Ok(())
    }
}

/// Every `--org` names an org of the spec.
fn check_orgs(spec: &Spec, orgs: &[String]) -> anyhow::Result<()> {
    if let Some(o) = orgs.iter().find(|o| !spec.orgs.contains_key(*o)) {
        let known: Vec<_> = spec.orgs.keys().map(String::as_str).collect();
        let guess = relayform_spec::rules::did_you_mean(o, known.iter().copied())
            .map(|g| format!("\nhint: did you mean `--org {g}`?"))
            .unwrap_or_default();
        bail!(
            "--org {o}: the spec has no such org (it has: {}){guess}",
            known.join(", ")
        );
    }
    Ok(())
}

/// Every `--target` is an address (checked before anything is read); one the spec does not hold
/// may still name something to delete, which only the plan knows.
fn check_targets(targets: &[String]) -> anyhow::Result<()> {
    for t in targets {
        t.parse::<Address>().map_err(|e| {
            anyhow::anyhow!("--target {t}: {e}\nhint: `relayform graph` lists the addresses, e.g. `salesforce.relay[orders]`")
        })?;
    }
    Ok(())
}

/// "did you mean" for an address the spec does not hold.
fn target_guess(spec: &Spec, target: &str) -> String {
    let graph = relayform_plan::desired(spec);
    let known: Vec<String> = graph.nodes().map(|r| r.address.to_string()).collect();
    relayform_spec::rules::did_you_mean(target, known.iter().map(String::as_str))
        .map(|g| {
            format!("\nhint: did you mean `--target {g}`? (`relayform graph` lists the addresses)")
        })
        .unwrap_or_else(|| "\nhint: `relayform graph` lists the addresses".to_owned())
}

/// What `destroy` plans from: the spec with the relays in scope marked absent (all of them without
/// `--target`/`--org`; with them, the relays of those orgs and the relays the addresses belong to).
/// The planner then removes what only those relays use, so a credential or role another relay still
/// needs stays.
fn destroying(spec: &Spec, scope: &Scope) -> anyhow::Result<Spec> {
    check_orgs(spec, &scope.orgs)?;
    let mut chosen = BTreeSet::new();
    for t in &scope.targets {
        let a: Address = t.parse().map_err(anyhow::Error::msg)?;
        let relay = a.key.split('/').next().unwrap_or_default();
        if matches!(a.kind, Kind::NamedCredential | Kind::Role | Kind::BusPolicy)
            || !spec.relays.contains_key(relay)
        {
            bail!(
                "destroy --target {a}: destroy takes the address of a relay's resource (such as `salesforce.relay[orders]`); shared credentials and roles go when no relay needs them\nhint: `relayform graph` lists the addresses"
            );
        }
        chosen.insert(relay.to_owned());
    }
    let everything = scope.targets.is_empty() && scope.orgs.is_empty();
    let mut s = spec.clone();
    for (name, r) in s.relays.iter_mut() {
        if everything || chosen.contains(name) || scope.orgs.contains(&r.org.value) {
            r.ensure = Ensure::Absent;
        }
    }
    Ok(s)
}

/// The addresses `--target` and `--org` leave in play, or `None` for everything.
fn scope_addresses(
    spec: &Spec,
    plan: &Plan,
    scope: &Scope,
) -> anyhow::Result<Option<BTreeSet<Address>>> {
    if scope.targets.is_empty() && scope.orgs.is_empty() {
        return Ok(None);
    }
    let graph = relayform_plan::desired(spec);
    let relay_of = |a: &Address| a.key.split('/').next().unwrap_or_default().to_owned();
    let mut by_target: Option<BTreeSet<Address>> = None;
    if !scope.targets.is_empty() {
        let mut set = BTreeSet::new();
        for t in &scope.targets {
            let a: Address = t.parse().map_err(anyhow::Error::msg)?;
            let known = graph.get(&a).is_some() || plan.changes.iter().any(|c| c.address == a);
            if !known {
                bail!(
                    "--target {a}: the spec has no such resource{}",
                    target_guess(spec, t)
                );
            }
            set.extend(graph.with_dependencies(std::slice::from_ref(&a)));
            set.insert(a);
        }
        by_target = Some(set);
    }
    let mut by_org: Option<BTreeSet<Address>> = None;
    if !scope.orgs.is_empty() {
        check_orgs(spec, &scope.orgs)?;
        let mut set = BTreeSet::new();
        for (name, r) in &spec.relays {
            if !scope.orgs.contains(&r.org.value) {
                continue;
            }
            set.extend(graph.with_dependencies(&[Address::new(Kind::RelayState, name.clone())]));
            for c in &plan.changes {
                if relay_of(&c.address) == *name
                    || (c.address.kind == Kind::NamedCredential
                        && relay_of(&c.address) == r.org.value)
                {
                    set.insert(c.address.clone());
                }
            }
        }
        by_org = Some(set);
    }
    Ok(Some(match (by_target, by_org) {
        (Some(t), Some(o)) => t.intersection(&o).cloned().collect(),
        (Some(s), None) | (None, Some(s)) => s,
        (None, None) => unreachable!("one of them is set"),
    }))
}

/// Connects, refreshes what `scope` reaches, and plans `planned` against it; with `restrict`, the
/// plan keeps only what `--target`/`--org` leave in play (destroy's scope chose what is absent
/// instead).
async fn prepare(
    spec: &Spec,
    planned: &Spec,
    scope: &Scope,
    restrict: bool,
    err: &mut dyn Write,
) -> anyhow::Result<Prepared> {
    // Scope names first: a misspelt one fails before anything is started or read.
    check_orgs(spec, &scope.orgs)?;
    check_targets(&scope.targets)?;
    // With `--org` or `--target`, only what is in scope is read.
    let reach = engine::reach(spec, &scope.orgs, &scope.targets).map_err(|t| {
        anyhow::anyhow!(
            "--target {t}: the spec has no such resource{}",
            target_guess(spec, &t)
        )
    })?;
    let sim = engine::embedded(
        spec,
        &scope.simulator_state,
        scope.simulator_settings.as_deref(),
    )
    .await?;
    let conn = engine::connect(spec, sim.as_ref(), scope.patience()).await?;
    let observed = engine::refresh(spec, &conn, reach.as_ref(), err).await?;
    let mut plan = relayform_plan::diff::plan(planned, &observed);
    if restrict && let Some(keep) = scope_addresses(planned, &plan, scope)? {
        plan.restrict(&keep);
    }
    Ok(Prepared {
        sim,
        conn,
        observed,
        plan,
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub(crate) fn plan(
    args: &PlanArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<u8> {
    let loaded = load(&args.paths, err)?;
    let plan = runtime()?.block_on(async {
        let p = prepare(&loaded.spec, &loaded.spec, &args.scope, true, err).await?;
        let plan = p.plan.clone();
        p.close().await?;
        Ok::<_, anyhow::Error>(plan)
    })?;
    let unsaved = args.out.is_some() && !plan.unread.is_empty();
    if let Some(file) = args.out.as_ref().filter(|_| !unsaved) {
        // Paths relative to the plan file's directory: the plan moves with its checkout.
        let base = plan_dir(file);
        let relative = |p: &Path| {
            let p = std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
            pathdiff::diff_paths(&p, &base).unwrap_or(p)
        };
        let doc = json!({
            SAVED_PLAN: 2,
            "spec_paths": loaded.paths.iter().map(|p| relative(p)).collect::<Vec<_>>(),
            "spec_digest": loaded.digest,
            "targets": args.scope.targets,
            "orgs": args.scope.orgs,
            "simulator_state": relative(&args.scope.simulator_state),
            "text": plan.render(false),
            "plan": plan.to_json(),
        });
        write_atomically(file, &serde_json::to_vec_pretty(&doc)?)
            .with_context(|| format!("cannot save the plan to {}", file.display()))?;
        writeln!(
            err,
            "saved the plan to {}; `relayform apply {}` applies exactly it",
            file.display(),
            file.display()
        )?;
    }
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &plan.to_json())?;
        writeln!(out)?;
    } else {
        write!(out, "{}", plan.render(true))?;
    }
    if !plan.unread.is_empty() {
        let also = if unsaved {
            "; the plan was not saved (a saved plan is applied whole)"
        } else {
            ""
        };
        let message = format!(
            "{}{also}\nhint: the rest is planned; run again once it can be read, or leave it out with --org",
            unread_summary(&plan)
        );
        if args.json {
            // The document (with its `unread`) is stdout's one document; the error goes to stderr.
            writeln!(err, "error: {message}")?;
            return Ok(1);
        }
        bail!(message);
    }
    Ok(if args.detailed_exitcode && !plan.is_empty() {
        2
    } else {
        0
    })
}

/// "org `lost` could not be read (relays stranded left out)" for every unread org and account.
fn unread_summary(plan: &Plan) -> String {
    let each: Vec<String> = plan
        .unread
        .iter()
        .map(|u| {
            let what = if u.system == "salesforce" {
                "org"
            } else {
                "AWS account"
            };
            let relays: Vec<String> = u.relays.iter().map(|r| format!("`{r}`")).collect();
            match relays.as_slice() {
                [] => format!("{what} `{}`", u.scope),
                [one] => format!("{what} `{}` (relay {one})", u.scope),
                many => format!("{what} `{}` (relays {})", u.scope, many.join(", ")),
            }
        })
        .collect();
    format!(
        "{} could not be read, and what needs {} is not planned",
        each.join(", "),
        if each.len() == 1 { "it" } else { "them" }
    )
}

/// The version of `output --json`.
const OUTPUT_FORMAT_VERSION: u32 = 1;

/// `relayform output`: per relay of the spec (in scope, present), what it is made of now, read from
/// the orgs and accounts: `null` for what does not exist (yet).
pub(crate) fn output(
    args: &OutputArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<u8> {
    use relayform_plan::diff::{FORWARD_RULE, same_name};
    let loaded = load(&args.paths, err)?;
    let spec = &loaded.spec;
    let (observed, plan) = runtime()?.block_on(async {
        let p = prepare(spec, spec, &args.scope, true, err).await?;
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

/// The directory a plan file is in, absolute: what its paths are relative to.
fn plan_dir(file: &Path) -> PathBuf {
    let file = std::path::absolute(file).unwrap_or_else(|_| file.to_owned());
    file.parent().map(Path::to_owned).unwrap_or_default()
}

/// `relayform show PLANFILE`: the saved plan as `plan` printed it, or its JSON.
pub(crate) fn show(args: &ShowArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let doc = saved_plan(std::slice::from_ref(&args.plan))?
        .with_context(|| format!("`{}` is a spec file, not a saved plan\nhint: `relayform plan {0}` shows what it would change; `relayform plan --out FILE` saves a plan to show", args.plan.display()))?;
    check_version(&doc)?;
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &doc["plan"])?;
        writeln!(out)?;
    } else {
        write!(out, "{}", doc["text"].as_str().unwrap_or_default())?;
    }
    Ok(0)
}

fn check_version(doc: &Value) -> anyhow::Result<()> {
    match doc[SAVED_PLAN].as_u64() {
        Some(2) => Ok(()),
        Some(1) => bail!(
            "this plan file was written by an older relayform (its paths were absolute); make a new plan with `relayform plan --out FILE`"
        ),
        _ => bail!("this plan file was written by another version of relayform; make a new plan"),
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// A saved plan, when `paths` is one file that is one.
fn saved_plan(paths: &[PathBuf]) -> anyhow::Result<Option<Value>> {
    let [path] = paths else { return Ok(None) };
    if path.is_dir()
        || matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        )
    {
        return Ok(None);
    }
    // A plan file is a regular file of modest size (a pipe or device would never end).
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    if !meta.is_file() || meta.len() > MAX_PLAN_BYTES {
        bail!(
            "`{}` is not a plan saved by `relayform plan --out` (not a regular file of at most {} MiB)",
            path.display(),
            MAX_PLAN_BYTES >> 20
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    match serde_json::from_str::<Value>(&text) {
        Ok(v) if v.get(SAVED_PLAN).is_some() => Ok(Some(v)),
        Ok(_) | Err(_) => bail!(
            "`{}` is neither a spec file (`*.relayform.yaml`, or any `*.yaml` named) nor a plan saved by `relayform plan --out`",
            path.display()
        ),
    }
}

pub(crate) fn apply(
    args: &ApplyArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<u8> {
    let mut scope = args.scope.clone();
    let saved = saved_plan(&args.paths)?;
    let loaded = match &saved {
        Some(doc) => {
            check_version(doc)?;
            let base = plan_dir(&args.paths[0]);
            let paths: Vec<PathBuf> =
                serde_json::from_value::<Vec<PathBuf>>(doc["spec_paths"].clone())
                    .context("the plan file has no spec paths")?
                    .into_iter()
                    .map(|p| base.join(p))
                    .collect();
            scope.targets = serde_json::from_value(doc["targets"].clone()).unwrap_or_default();
            scope.orgs = serde_json::from_value(doc["orgs"].clone()).unwrap_or_default();
            if let Some(s) = doc["simulator_state"].as_str() {
                scope.simulator_state = base.join(s);
            }
            scope.simulator_settings = args.scope.simulator_settings.clone();
            let loaded = load(&paths, err)?;
            if doc["spec_digest"].as_str() != Some(loaded.digest.as_str()) {
                bail!(
                    "the saved plan is stale: the spec files changed since it was made\nhint: run `relayform plan --out FILE` again and review the new plan"
                );
            }
            loaded
        }
        None => load(&args.paths, err)?,
    };
    let planned = loaded.spec.clone();
    execute(
        &loaded.spec,
        &planned,
        &scope,
        true,
        &args.execution,
        saved.as_ref(),
        "apply",
        out,
        err,
    )
}

pub(crate) fn destroy(
    args: &DestroyArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<u8> {
    let loaded = load(&args.paths, err)?;
    let planned = destroying(&loaded.spec, &args.scope)?;
    // The scope chose what is absent; the plan is not restricted further. What is read: with a
    // scope, the orgs of the relays that go, and the accounts they use (what a relay is made of in
    // AWS depends on it, so reading by the target's dependencies would miss it).
    let everything = args.scope.targets.is_empty() && args.scope.orgs.is_empty();
    let read = Scope {
        targets: Vec::new(),
        orgs: if everything {
            Vec::new()
        } else {
            planned
                .relays
                .values()
                .filter(|r| r.ensure == Ensure::Absent)
                .map(|r| r.org.value.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        },
        ..args.scope.clone()
    };
    execute(
        &loaded.spec,
        &planned,
        &read,
        false,
        &args.execution,
        None,
        "destroy",
        out,
        err,
    )
}

#[allow(clippy::too_many_arguments)]
fn execute(
    spec: &Spec,
    planned: &Spec,
    scope: &Scope,
    restrict: bool,
    execution: &Execution,
    saved: Option<&Value>,
    verb: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<u8> {
    let json = execution.json;
    if json && !execution.auto_approve && saved.is_none() {
        bail!(
            "{verb} --json cannot ask for confirmation (its stdout is the document)\nhint: review `relayform plan` and add --auto-approve, or apply a plan saved by `relayform plan --out FILE`"
        );
    }
    let rt = runtime()?;
    rt.block_on(async {
        let mut p = prepare(spec, planned, scope, restrict, err).await?;
        if verb == "destroy" {
            // Destroy removes; it never creates or changes anything: a relay outside its scope
            // whose spec differs from its org is left for apply.
            p.plan
                .changes
                .retain(|c| c.action == relayform_plan::plan::Action::Delete);
            p.plan.manual.clear();
            // Destroy plans as if the relays were `ensure: absent`; say what the user asked for.
            for c in &mut p.plan.changes {
                if c.reason.as_deref() == Some("ensure: absent") {
                    c.reason = Some("relayform destroy".into());
                }
            }
        }
        if let Some(doc) = saved
            && doc["plan"] != p.plan.to_json() {
                p.close().await?;
                bail!(
                    "the saved plan is stale: the orgs or accounts changed since it was made, so it is no longer what apply would do\nhint: run `relayform plan --out FILE` again and review the new plan"
                );
            }
        if !json {
            write!(out, "{}", p.plan.render(true))?;
        }
        // Orgs and accounts that could not be read: what needs them is not in the plan; the rest
        // is applied, and the run ends with exit 1 saying so.
        let unread = (!p.plan.unread.is_empty()).then(|| unread_summary(&p.plan));
        let left_out = |err: &mut dyn Write| -> std::io::Result<()> {
            if let Some(u) = &unread {
                writeln!(err, "error: {u}\nhint: run {verb} again once it can be read, or leave it out with --org")?;
            }
            Ok(())
        };
        if p.plan.is_empty() {
            let plan = p.plan.clone();
            p.close().await?;
            let code = if unread.is_some() { 1 } else { 0 };
            if json {
                let doc = outcome(verb, &plan, None, false, &[], code);
                serde_json::to_writer_pretty(&mut *out, &doc)?;
                writeln!(out)?;
            }
            left_out(err)?;
            return Ok(code);
        }
        if !execution.auto_approve && saved.is_none() && !confirm(verb, err)? {
            writeln!(out, "{verb} cancelled: nothing was changed.")?;
            p.close().await?;
            return Ok(1);
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let options = apply::Options {
            parallelism: usize::from(execution.parallelism),
            wait_timeout: execution.wait_timeout,
            first_poll: std::time::Duration::from_millis(200),
            // Salesforce documents minutes for these steps: polls settle at one per 15 s per org.
            max_poll: std::time::Duration::from_secs(15),
        };
        // Ctrl-C: start nothing new, let running calls finish (so nothing is left half-made), report.
        // A second Ctrl-C stops at once.
        let stop = Arc::new(AtomicBool::new(false));
        let interrupts = tokio::spawn({
            // A weak sender: the progress channel closes when the executor is done with it.
            let (stop, tx) = (stop.clone(), tx.downgrade());
            async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    stop.store(true, Ordering::SeqCst);
                    if let Some(tx) = tx.upgrade() {
                        let _ = tx.send(Progress::Interrupted);
                    }
                    if tokio::signal::ctrl_c().await.is_ok() {
                        std::process::exit(130);
                    }
                }
            }
        });
        let job = tokio::spawn({
            let (planned, plan, observed, conn) =
                (planned.clone(), p.plan.clone(), p.observed.clone(), p.conn.clone());
            let stop = stop.clone();
            async move { apply::apply(&planned, &plan, &observed, conn, options, tx, stop).await }
        });
        // Progress is for the reader: a closed stderr (`2>&- `, a reader gone) must not stop the
        // apply half-way, so the view ignores write errors.
        let mut view = crate::progress::View::new(execution.live);
        while let Some(ev) = rx.recv().await {
            view.show(&ev, err);
        }
        view.finish();
        let report = job.await.context("apply stopped unexpectedly")?;
        interrupts.abort();
        let interrupted = stop.load(Ordering::SeqCst);
        if !json {
            summary(&report, verb, interrupted, out)?;
        }
        // 0 done; 3 nothing failed but some changes still wait on the vendors; 1 failures; 130
        // interrupted (as shells report Ctrl-C), whatever was done by then.
        let mut code = if interrupted && !report.succeeded() {
            130
        } else if report.succeeded() {
            0
        } else if report.only_pending() {
            3
        } else {
            1
        };
        // Only a whole apply leaves every relay of the spec in place to carry a test event.
        let whole = scope.targets.is_empty() && scope.orgs.is_empty() && unread.is_none();
        let mut deliveries = Vec::new();
        if code == 0 && verb == "apply" && whole
            && let Some(sim) = &p.sim {
                deliveries = demo::check_delivery(spec, sim, &p.conn).await?;
                if deliveries.iter().any(|d| !d.arrived) {
                    code = 1;
                }
                if !json {
                    for d in &deliveries {
                        d.render(out)?;
                    }
                }
            }
        if unread.is_some() && code != 130 {
            code = 1;
        }
        let plan = p.plan.clone();
        p.close().await?;
        left_out(err)?;
        if json {
            let doc = outcome(verb, &plan, Some(&report), interrupted, &deliveries, code);
            serde_json::to_writer_pretty(&mut *out, &doc)?;
            writeln!(out)?;
        }
        Ok(code)
    })
}

/// The version of the `apply --json` and `destroy --json` document.
pub(crate) const OUTCOME_FORMAT_VERSION: u32 = 1;

/// The document `apply --json` and `destroy --json` print: the plan that was applied, each step's
/// outcome, the counts, the test events, and the exit code (`docs/json/apply.schema.json`).
fn outcome(
    verb: &str,
    plan: &Plan,
    report: Option<&Report>,
    interrupted: bool,
    deliveries: &[demo::Delivery],
    code: u8,
) -> Value {
    let status = match report {
        _ if !plan.unread.is_empty() && code == 1 => "incomplete",
        None => "no_changes",
        Some(_) if interrupted && code == 130 => "interrupted",
        Some(r) if r.succeeded() => "complete",
        Some(r) if r.only_pending() => "pending",
        Some(_) => "incomplete",
    };
    let mut steps = Vec::new();
    let counted = |c: &apply::Counts| {
        json!({
            "done": c.done,
            "failed": c.failed,
            "pending": c.pending,
            "not_done": c.not_done,
            "total": c.total(),
        })
    };
    let mut counts = counted(&apply::Counts::default());
    let mut scopes = Vec::new();
    if let Some(r) = report {
        let plain = |outcome: &str, list: &[(String, String)]| -> Vec<Value> {
            list.iter()
                .map(|(step, detail)| json!({"step": step, "outcome": outcome, "detail": detail}))
                .collect()
        };
        steps.extend(plain("done", &r.done));
        for (step, failure) in &r.failed {
            steps.push(json!({
                "step": step,
                "outcome": "failed",
                "detail": failure.message,
                "error_kind": failure.kind.map(relayform_provider::ErrorKind::as_str),
            }));
        }
        steps.extend(plain("pending", &r.pending));
        steps.extend(plain("skipped", &r.skipped));
        counts = counted(&r.changes);
        for (scope, c) in &r.scopes {
            let (system, name) = match scope {
                apply::Scope::Org(n) => ("salesforce", n),
                apply::Scope::Account(n) => ("aws", n),
            };
            let mut entry = counted(c);
            entry["system"] = json!(system);
            entry["scope"] = json!(name);
            scopes.push(entry);
        }
    }
    json!({
        "format_version": OUTCOME_FORMAT_VERSION,
        "command": verb,
        "ok": code == 0,
        "exit_code": code,
        "status": status,
        "plan": plan.to_json(),
        "changes": counts,
        "scopes": scopes,
        "steps": steps,
        "test_events": deliveries,
    })
}

fn confirm(verb: &str, err: &mut dyn Write) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "{verb} asks for confirmation, and stdin is not a terminal\nhint: review the plan above and run again with --auto-approve, or save a plan with `relayform plan --out FILE` and apply that"
        );
    }
    let what = if verb == "destroy" {
        "these resources"
    } else {
        "these changes"
    };
    write!(
        err,
        "\nDo you want to {verb} {what}? Only `yes` is accepted: "
    )?;
    err.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim() == "yes")
}

fn summary(
    report: &Report,
    verb: &str,
    interrupted: bool,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let c = &report.changes;
    if report.succeeded() {
        return writeln!(
            out,
            "\n{} complete: {} change{} made.",
            capitalised(verb),
            c.done,
            if c.done == 1 { "" } else { "s" }
        );
    }
    let mut parts = vec![format!("{} done", c.done)];
    if c.failed > 0 || c.pending == 0 {
        parts.push(format!("{} failed", c.failed));
    }
    if c.pending > 0 {
        parts.push(format!("{} still pending at Salesforce or AWS", c.pending));
    }
    parts.push(format!("{} not done because of them", c.not_done));
    writeln!(
        out,
        "\n{} incomplete: of {} changes, {}.",
        capitalised(verb),
        c.total(),
        parts.join(", ")
    )?;
    // Per org and account, when there are several: which ones the trouble is in.
    if report.scopes.len() > 1 {
        for (scope, c) in &report.scopes {
            let what = match scope {
                apply::Scope::Org(n) => format!("org `{n}`"),
                apply::Scope::Account(n) => format!("AWS account `{n}`"),
            };
            let mut parts = vec![format!("{} done", c.done)];
            if c.failed > 0 {
                parts.push(format!("{} failed", c.failed));
            }
            if c.pending > 0 {
                parts.push(format!("{} pending", c.pending));
            }
            if c.not_done > 0 {
                parts.push(format!("{} not done", c.not_done));
            }
            writeln!(out, "  {what}: {}", parts.join(", "))?;
        }
    }
    for (step, why) in &report.failed {
        writeln!(out, "  failed:  {step}: {why}")?;
    }
    for (step, why) in &report.pending {
        writeln!(out, "  pending: {step}: {why}")?;
    }
    for (step, why) in &report.skipped {
        writeln!(out, "  skipped: {step} ({why})")?;
    }
    if interrupted {
        writeln!(
            out,
            "hint: interrupted (Ctrl-C); the calls under way were let finish. Run {verb} again to carry on: what was done is found and kept, nothing is created twice."
        )
    } else if report.only_pending() {
        writeln!(
            out,
            "hint: nothing failed; Salesforce and AWS take minutes for some steps. Run {verb} again later (or with a longer --wait-timeout): it carries on where this one stopped."
        )
    } else {
        writeln!(
            out,
            "hint: fix what failed and run {verb} again: what was done is found and kept, nothing is created twice."
        )
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}
