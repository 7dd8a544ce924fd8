//! Finding and reading spec files.

use anyhow::{Context, Result, bail};
use relayform_spec::SourceFile;
use std::path::{Path, PathBuf};

/// How a spec file's name ends: `orders.relayform.yaml`. In a directory only such files are read, so
/// that no other YAML (CI workflows, fixtures, Kubernetes manifests) is ever taken for a spec.
pub const SPEC_SUFFIXES: [&str; 2] = [".relayform.yaml", ".relayform.yml"];

/// Whether `name` is a spec file's name (see [`SPEC_SUFFIXES`]; hidden files never are).
pub fn is_spec_name(name: &str) -> bool {
    !name.starts_with('.')
        && SPEC_SUFFIXES
            .iter()
            .any(|s| name.len() > s.len() && name.ends_with(s))
}

/// The spec files named by `paths`: files as given (whatever their name: naming a file is asking
/// for it), and for a directory the spec files directly in it, as Terraform reads the `*.tf` files
/// of one directory: not its subdirectories, in sorted order. A path named twice is read once.
pub fn find(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("cannot read spec path `{}`", path.display()))?;
        if meta.is_dir() {
            let before = files.len();
            list(path, &mut files)?;
            if files.len() == before {
                bail!("{}", nothing_in(path));
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

/// The spec files directly in `dir`.
fn list(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    for (name, path) in entries(dir)? {
        if !is_spec_name(&name) {
            continue;
        }
        // What a link points at, too: a `*.relayform.yaml` pipe or device is never read.
        let meta = std::fs::metadata(&path)
            .with_context(|| format!("cannot read spec file `{}`", path.display()))?;
        if meta.is_dir() {
            continue;
        }
        if !meta.is_file() {
            bail!(
                "`{}` is not a regular file (it is a {}): spec files are regular files\nhint: move it out of the spec directory, or rename it",
                path.display(),
                kind(&meta)
            );
        }
        files.push(path);
    }
    Ok(())
}

/// The entries of `dir` with their names, sorted by name.
fn entries(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list directory `{}`", dir.display()))?
        .map(|e| e.map(|e| (e.file_name().to_string_lossy().into_owned(), e.path())))
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(|| format!("cannot list directory `{}`", dir.display()))?;
    entries.sort();
    Ok(entries)
}

/// What to say when `dir` holds no spec file: the YAML files there that are not read, and the spec
/// files (or directories of them) found a little deeper, to name instead.
fn nothing_in(dir: &Path) -> String {
    let mut text = format!(
        "no spec files (`*{}`, `*{}`) in `{}`",
        SPEC_SUFFIXES[0],
        SPEC_SUFFIXES[1],
        dir.display()
    );
    let here = entries(dir).unwrap_or_default();
    let plain: Vec<&str> = here
        .iter()
        .filter(|(n, p)| !n.starts_with('.') && p.is_file())
        .filter(|(n, _)| n.ends_with(".yaml") || n.ends_with(".yml"))
        .map(|(n, _)| n.as_str())
        .take(4)
        .collect();
    if !plain.is_empty() {
        text.push_str(&format!(
            "\nnote: {} not read: only files named `*{}` are specs, so that other YAML is never taken for one",
            quoted(&plain),
            SPEC_SUFFIXES[0],
        ));
    }
    let mut deeper = Vec::new();
    below(dir, 3, &mut deeper);
    if deeper.is_empty() {
        text.push_str(&format!(
            "\nhint: name a spec file, or a directory that holds some (spec files end in `{}`)",
            SPEC_SUFFIXES[0]
        ));
    } else {
        let shown: Vec<String> = deeper
            .iter()
            .take(4)
            .map(|p| p.strip_prefix(".").unwrap_or(p).display().to_string())
            .collect();
        let shown: Vec<&str> = shown.iter().map(String::as_str).collect();
        text.push_str(&format!(
            "\nhint: a directory's subdirectories are not read; name one that holds specs: {}",
            quoted(&shown)
        ));
    }
    text
}

/// Directories up to `depth` levels below `dir` that hold spec files (hidden ones skipped).
fn below(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    if depth == 0 || found.len() >= 4 {
        return;
    }
    let Ok(here) = entries(dir) else { return };
    for (name, path) in here {
        if name.starts_with('.') || name == "target" || name == "node_modules" {
            continue;
        }
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            if entries(&path).is_ok_and(|e| e.iter().any(|(n, p)| is_spec_name(n) && p.is_file())) {
                found.push(path.clone());
            }
            below(&path, depth - 1, found);
        }
    }
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
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
