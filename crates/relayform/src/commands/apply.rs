//! `relayform apply` and `relayform destroy`: plan, confirm, execute (`crate::apply`), report.

use super::planfile::SavedPlan;
use super::{check_orgs, load, preload, prepare, runtime, unread_summary};
use crate::apply::{self, Progress, Report};
use crate::cli::{ApplyArgs, DestroyArgs, Execution, Scope};
use crate::demo;
use anyhow::{Context, bail};
use relayform_plan::Address;
use relayform_plan::diff::Observed;
use relayform_plan::plan::Plan;
use relayform_simulator::store::Preload;
use relayform_spec::{Ensure, Spec};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What `destroy` plans from: the spec with the relays in scope marked absent (all of them without
/// `--target`/`--org`; with them, the relays of those orgs and the relays the addresses belong to).
/// The planner then removes what only those relays use, so a credential or role another relay still
/// needs stays.
fn destroying(spec: &Spec, scope: &Scope) -> anyhow::Result<Spec> {
    check_orgs(spec, &scope.orgs)?;
    let mut chosen = BTreeSet::new();
    for t in &scope.targets {
        let a: Address = t.parse().map_err(anyhow::Error::msg)?;
        let relay = a.owner();
        if a.is_shared() || !spec.relays.contains_key(relay) {
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

pub(crate) fn apply(
    args: &ApplyArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<u8> {
    let mut scope = args.scope.clone();
    let saved = SavedPlan::read(&args.paths)?;
    let (loaded, ahead) = match &saved {
        Some((plan, base)) => {
            let paths: Vec<PathBuf> = plan.spec_paths.iter().map(|p| base.join(p)).collect();
            scope.targets = plan.targets.clone();
            scope.orgs = plan.orgs.clone();
            scope.simulator_state = base.join(&plan.simulator_state);
            scope.simulator_settings = args.scope.simulator_settings.clone();
            let ahead = preload(&scope);
            let loaded = load(&paths, err)?;
            if plan.spec_digest != loaded.digest {
                bail!(
                    "the saved plan is stale: the spec files changed since it was made\nhint: run `relayform plan --out FILE` again and review the new plan"
                );
            }
            (loaded, ahead)
        }
        None => {
            let ahead = preload(&scope);
            (load(&args.paths, err)?, ahead)
        }
    };
    // Apply plans the spec as it is (destroy plans a changed copy).
    execute(
        &loaded.spec,
        &loaded.spec,
        &scope,
        true,
        &args.execution,
        saved.as_ref().map(|(plan, _)| plan),
        ahead,
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
    let ahead = preload(&args.scope);
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
        ahead,
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
    saved: Option<&SavedPlan>,
    ahead: Option<Arc<Preload>>,
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
        let mut p = prepare(spec, planned, scope, restrict, ahead, err).await?;
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
        if let Some(saved) = saved
            && saved.plan != p.plan.to_json() {
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
        let run = apply::apply(planned, &p.plan, &p.observed, p.conn.clone(), options, tx, stop.clone());
        // What the refresh saw is in the program now.
        p.observed = Observed::default();
        let job = tokio::spawn(run);
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
        // Taken, not copied: closing needs only the simulator.
        let plan = std::mem::take(&mut p.plan);
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
                "detail": failure.to_string(),
                "error_kind": failure.kind.map(relayform_provider::ErrorKind::as_str),
                "error_code": failure.code,
                "operation": failure.operation,
                "hint": failure.hint,
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
