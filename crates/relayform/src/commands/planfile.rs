//! Saved plans (`plan --out FILE`, `apply FILE`, `show FILE`): a JSON file marked
//! `relayform_saved_plan` with its version, the spec files it was made from (paths relative to the
//! plan file's directory, so that it moves with its checkout or CI workspace) and a digest of their
//! contents, the scope (`--target`, `--org`), the simulator state path (relative too), the plan's
//! text as `plan` printed it, and its JSON. Apply re-reads the live state and refuses a plan that is
//! no longer what it would do.

use super::Loaded;
use crate::cli::{Scope, ShowArgs};
use anyhow::{Context, bail};
use relayform_plan::plan::Plan;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The largest saved plan read (a thousand relays' plan is a few MiB).
const MAX_PLAN_BYTES: u64 = 64 << 20;

/// The key that marks a saved plan file, holding its version.
const MARK: &str = "relayform_saved_plan";

/// This relayform's saved-plan version (1 held absolute paths).
const VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SavedPlan {
    #[serde(rename = "relayform_saved_plan")]
    pub version: u32,
    /// Relative to the plan file's directory.
    pub spec_paths: Vec<PathBuf>,
    /// Of the spec files' contents, in the order they are read.
    pub spec_digest: String,
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub orgs: Vec<String>,
    /// Relative to the plan file's directory.
    pub simulator_state: PathBuf,
    /// The plan as `plan` printed it (without colour).
    pub text: String,
    /// The plan's JSON document, which apply compares with a fresh plan.
    pub plan: Value,
}

impl SavedPlan {
    /// The plan made from `loaded` in `scope`, to be saved as `file`.
    pub(crate) fn new(file: &Path, loaded: &Loaded, scope: &Scope, plan: &Plan) -> SavedPlan {
        let base = dir_of(file);
        let relative = |p: &Path| {
            let p = std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
            pathdiff::diff_paths(&p, &base).unwrap_or(p)
        };
        SavedPlan {
            version: VERSION,
            spec_paths: loaded.paths.iter().map(|p| relative(p)).collect(),
            spec_digest: loaded.digest.clone(),
            targets: scope.targets.clone(),
            orgs: scope.orgs.clone(),
            simulator_state: relative(&scope.simulator_state),
            text: plan.render(false),
            plan: plan.to_json(),
        }
    }

    /// Writes the plan to `file` atomically (a temporary file, synced, then renamed).
    pub(crate) fn write(&self, file: &Path) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec_pretty(self)?;
        let tmp = file.with_extension("tmp");
        let written = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, file)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.with_context(|| format!("cannot save the plan to {}", file.display()))
    }

    /// The saved plan `paths` names, when they are one file that is one (`None`: spec files).
    pub(crate) fn read(paths: &[PathBuf]) -> anyhow::Result<Option<(SavedPlan, PathBuf)>> {
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
        let doc = match serde_json::from_str::<Value>(&text) {
            Ok(v) if v.get(MARK).is_some() => v,
            Ok(_) | Err(_) => bail!(
                "`{}` is neither a spec file (`*.relayform.yaml`, or any `*.yaml` named) nor a plan saved by `relayform plan --out`",
                path.display()
            ),
        };
        match doc[MARK].as_u64() {
            Some(v) if v == u64::from(VERSION) => {}
            Some(1) => bail!(
                "this plan file was written by an older relayform (its paths were absolute); make a new plan with `relayform plan --out FILE`"
            ),
            _ => {
                bail!("this plan file was written by another version of relayform; make a new plan")
            }
        }
        let saved: SavedPlan = serde_json::from_value(doc).with_context(|| {
            format!(
                "`{}` is a damaged saved plan; make a new one with `relayform plan --out FILE`",
                path.display()
            )
        })?;
        Ok(Some((saved, dir_of(path))))
    }
}

/// The directory a plan file is in, absolute: what its paths are relative to.
fn dir_of(file: &Path) -> PathBuf {
    let file = std::path::absolute(file).unwrap_or_else(|_| file.to_owned());
    file.parent().map(Path::to_owned).unwrap_or_default()
}

/// `relayform show PLANFILE`: the saved plan as `plan` printed it, or its JSON.
pub(crate) fn show(args: &ShowArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let (saved, _) = SavedPlan::read(std::slice::from_ref(&args.plan))?.with_context(|| {
        format!(
            "`{}` is a spec file, not a saved plan\nhint: `relayform plan {0}` shows what it would change; `relayform plan --out FILE` saves a plan to show",
            args.plan.display()
        )
    })?;
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &saved.plan)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", saved.text)?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_plan_reads_back_as_written_and_refuses_other_versions() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("release.plan");
        let saved = SavedPlan {
            version: VERSION,
            spec_paths: vec!["specs/demo.relayform.yaml".into()],
            spec_digest: "0123456789abcdef".into(),
            targets: vec![],
            orgs: vec!["demo".into()],
            simulator_state: ".relayform/simulator.json".into(),
            text: "No changes\n".into(),
            plan: serde_json::json!({"format_version": 2}),
        };
        saved.write(&file).unwrap();
        let (back, base) = SavedPlan::read(std::slice::from_ref(&file))
            .unwrap()
            .unwrap();
        assert_eq!(back, saved);
        assert_eq!(base, std::path::absolute(dir.path()).unwrap());
        assert!(!dir.path().join("release.tmp").exists());

        std::fs::write(
            &file,
            r#"{"relayform_saved_plan": 1, "spec_paths": ["/abs"]}"#,
        )
        .unwrap();
        let e = SavedPlan::read(std::slice::from_ref(&file)).unwrap_err();
        assert!(e.to_string().contains("older relayform"), "{e}");
        std::fs::write(&file, r#"{"relayform_saved_plan": 2, "spec_paths": 7}"#).unwrap();
        let e = SavedPlan::read(std::slice::from_ref(&file)).unwrap_err();
        assert!(format!("{e:#}").contains("damaged saved plan"), "{e:#}");
        // A spec file is not a plan.
        let spec = dir.path().join("x.yaml");
        std::fs::write(&spec, "version: 1\n").unwrap();
        assert!(SavedPlan::read(&[spec]).unwrap().is_none());
    }
}
