//! The commands that reach orgs and accounts: `plan`, `apply`, `destroy`, `output`, and `show` of a
//! saved plan. This module holds what they share (loading and checking the spec, the scope checks,
//! connecting, refreshing and planning: [`prepare`]); each command has its file.

mod apply;
mod output;
mod plan;
pub(crate) mod planfile;

pub(crate) use apply::{apply, destroy};
pub(crate) use output::output;
pub(crate) use plan::plan;
pub(crate) use planfile::show;

use crate::cli::Scope;
use crate::{apply as executor, engine};
use anyhow::{Context, bail};
use relayform_plan::diff::Observed;
use relayform_plan::plan::Plan;
use relayform_plan::{Address, Kind};
use relayform_simulator::store::Preload;
use relayform_spec::Spec;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

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
    conn: executor::Connections,
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
    let relay_of = |a: &Address| a.owner().to_owned();
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

/// Starts reading the embedded simulator's state file, if there is one, while the spec is checked
/// (on a fleet, each takes a few tenths of a second); the simulator uses what was read only if the
/// file is unchanged once it holds the file's lock.
fn preload(scope: &Scope) -> Option<Arc<Preload>> {
    Preload::start(&scope.simulator_state).map(Arc::new)
}

/// Connects, refreshes what `scope` reaches, and plans `planned` against it; with `restrict`, the
/// plan keeps only what `--target`/`--org` leave in play (destroy's scope chose what is absent
/// instead).
async fn prepare(
    spec: &Spec,
    planned: &Spec,
    scope: &Scope,
    restrict: bool,
    preload: Option<Arc<Preload>>,
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
        preload,
    )
    .await?;
    let conn = engine::connect(spec, sim.as_ref(), scope.patience()).await;
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
