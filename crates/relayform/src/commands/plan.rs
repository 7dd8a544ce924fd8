//! `relayform plan`: what apply would change, as text or JSON, optionally saved for `apply FILE`.

use super::planfile::SavedPlan;
use super::{load, preload, prepare, runtime, unread_summary};
use crate::cli::PlanArgs;
use anyhow::bail;
use std::io::Write;

pub(crate) fn plan(
    args: &PlanArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<u8> {
    let ahead = preload(&args.scope);
    let loaded = load(&args.paths, err)?;
    let plan = runtime()?.block_on(async {
        let mut p = prepare(&loaded.spec, &loaded.spec, &args.scope, true, ahead, err).await?;
        let plan = std::mem::take(&mut p.plan);
        p.close().await?;
        Ok::<_, anyhow::Error>(plan)
    })?;
    let unsaved = args.out.is_some() && !plan.unread.is_empty();
    if let Some(file) = args.out.as_ref().filter(|_| !unsaved) {
        SavedPlan::new(file, &loaded, &args.scope, &plan).write(file)?;
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
