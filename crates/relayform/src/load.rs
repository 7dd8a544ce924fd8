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
        } else if !meta.is_file() {
            bail!(
                "`{}` is not a regular file (it is a {}): spec files are regular files\nhint: name the file itself, not a pipe or device (or a link to one)",
                path.display(),
                kind(&meta)
            );
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
            // What a link points at, too: a `*.yaml` pipe or device is never read.
            let meta = std::fs::metadata(&path)
                .with_context(|| format!("cannot read spec file `{}`", path.display()))?;
            if !meta.is_file() {
                bail!(
                    "`{}` is not a regular file (it is a {}): spec files are regular files\nhint: move it out of the spec directory, or rename it",
                    path.display(),
                    kind(&meta)
                );
            }
            files.push(path);
        }
    }
    Ok(())
}

fn kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_fifo() {
        "named pipe"
    } else if t.is_char_device() || t.is_block_device() {
        "device"
    } else if t.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

/// A small text file the user names (simulator settings or config, a secret file): a regular file
/// of at most `max` bytes, so that a pipe or a device never hangs or exhausts memory.
pub fn read_small(path: &Path, max: u64) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind, Read};
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("it is a {}, not a regular file", kind(&meta)),
        ));
    }
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > max {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("it is larger than {max} bytes"),
        ));
    }
    Ok(text)
}

/// Reads the files, each at most one byte past [`relayform_spec::MAX_FILE_BYTES`] (a larger file,
/// or one that is not UTF-8, becomes a located diagnostic); names in diagnostics are the paths as
/// found. Only regular files are opened (`find` checked; checked again on the open file).
pub fn read(paths: &[PathBuf]) -> Result<Vec<SourceFile>> {
    use std::io::Read;
    paths
        .iter()
        .map(|p| {
            let context = || format!("cannot read spec file `{}`", p.display());
            let meta = std::fs::metadata(p).with_context(context)?;
            if !meta.is_file() {
                bail!(
                    "`{}` is not a regular file (it is a {}): spec files are regular files",
                    p.display(),
                    kind(&meta)
                );
            }
            let file = std::fs::File::open(p).with_context(context)?;
            let mut bytes = Vec::new();
            file.take(relayform_spec::MAX_FILE_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
                .with_context(context)?;
            Ok(SourceFile::from_bytes(p.display().to_string(), bytes))
        })
        .collect()
}
