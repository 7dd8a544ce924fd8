//! Finding and reading spec files.

use anyhow::{Context, Result, bail};
use relayform_spec::SourceFile;
use std::path::{Path, PathBuf};

/// The spec files named by `paths`: files as given, directories searched recursively for `*.yaml` and
/// `*.yml` (in sorted order, hidden entries skipped). A path named twice is read once.
pub fn find(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("cannot read spec path `{}`", path.display()))?;
        if meta.is_dir() {
            let before = files.len();
            walk(path, &mut files)?;
            if files.len() == before {
                bail!(
                    "no spec files (`*.yaml`, `*.yml`) under `{}`\nhint: name a spec file, or a directory that holds some",
                    path.display()
                );
            }
        } else {
            files.push(path.clone());
        }
    }
    let mut seen = std::collections::HashSet::new();
    files.retain(|f| seen.insert(f.clone()));
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list directory `{}`", dir.display()))?
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(|| format!("cannot list directory `{}`", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.file_type()?.is_dir() {
            walk(&path, files)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            files.push(path);
        }
    }
    Ok(())
}

/// Reads the files; names in diagnostics are the paths as found.
pub fn read(paths: &[PathBuf]) -> Result<Vec<SourceFile>> {
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read spec file `{}`", p.display()))?;
            Ok(SourceFile::new(p.display().to_string(), text))
        })
        .collect()
}
