//! Saving and loading the whole simulated world, atomically.

use crate::clock::ClockState;
use crate::world::World;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

pub const FORMAT: u32 = 1;

#[derive(Debug, Deserialize)]
pub struct Snapshot {
    pub format: u32,
    pub clock: ClockState,
    pub world: World,
}

/// What is written: the same shape, borrowing the world.
#[derive(Debug, Serialize)]
pub struct SnapshotRef<'a> {
    pub format: u32,
    pub clock: ClockState,
    pub world: &'a World,
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, and renames it over `path`, so a
/// crash leaves either the old state or the new one, never half of one.
pub fn save(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("state"),
        std::process::id()
    ));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads a snapshot; `Ok(None)` when there is no file yet. A file that cannot be read as a snapshot
/// is an error: it is never silently replaced.
pub fn load(path: &Path) -> Result<Option<Snapshot>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(format!(
                "cannot read simulator state file {}: {e}",
                path.display()
            ));
        }
    };
    let snap: Snapshot = serde_json::from_str(&text).map_err(|e| {
        format!(
            "simulator state file {} is corrupt or not a state file ({e}); move it aside to start afresh, or pass another --state",
            path.display()
        )
    })?;
    if snap.format != FORMAT {
        return Err(format!(
            "simulator state file {} has format {}, this simulator reads format {FORMAT}",
            path.display(),
            snap.format
        ));
    }
    Ok(Some(snap))
}
