//! Files, atomically: writing one whole (temporary file, sync, rename), and the lock that gives a
//! state file one simulator at a time. What a state file holds is `store`'s.

use crate::clock::ClockState;
use crate::world::World;
use serde::Deserialize;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Format 1: the whole world in one JSON text (still read; `store` writes format 2).
pub const FORMAT_1: u32 = 1;

#[derive(Debug, Deserialize)]
pub struct Snapshot {
    pub format: u32,
    pub clock: ClockState,
    pub world: World,
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, and renames it over `path`, so a
/// crash leaves either the old state or the new one, never half of one.
pub fn save(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    // Unique per save, so that two saves (of two simulators in one process, say) never share one.
    static SAVES: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("state"),
        std::process::id(),
        SAVES.fetch_add(1, Ordering::Relaxed)
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

/// A claim on a state file: an exclusive lock on `<state file>.lock`, held until dropped, so that two
/// simulators (two processes, or two in one process) never write one state file and lose each other's
/// work. The lock file holds the holder's process id, for the message the second one gets.
#[derive(Debug)]
pub struct StateLock {
    _file: std::fs::File,
    pub path: PathBuf,
}

impl StateLock {
    pub fn acquire(state: &Path) -> Result<StateLock, String> {
        let mut name = state.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| format!("cannot open the lock file {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "another simulator".to_owned(),
                    pid => format!("another simulator (process {pid})"),
                };
                return Err(format!(
                    "the simulator state file {} is in use by {holder}; two simulators on one state file would lose each other's changes\nhint: stop the other one, or give this one another state file",
                    state.display()
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", path.display()));
            }
        }
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = write!(file, "{}", std::process::id());
        let _ = file.flush();
        // Holding the lock, no other simulator is saving: temporary files beside the state file are
        // what a killed one left half-written.
        if let (Some(dir), Some(stem)) = (
            state.parent().map(|d| {
                if d.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    d
                }
            }),
            state.file_name().and_then(|n| n.to_str()),
        ) && let Ok(entries) = std::fs::read_dir(dir)
        {
            let prefix = format!(".{stem}.tmp-");
            for e in entries.flatten() {
                if e.file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with(&prefix))
                {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(StateLock { _file: file, path })
    }
}

/// How far the id sequence skips ahead when a world is loaded: more ids than a simulator hands out
/// between two saves (at most `MAX_SAVE_INTERVAL`, 5 s: about a million ids would take an hour).
pub const SEQ_GAP_ON_LOAD: u64 = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_file_has_one_simulator_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("sim.json");
        let first = StateLock::acquire(&state).unwrap();
        let e = StateLock::acquire(&state).unwrap_err();
        assert!(e.contains("is in use by another simulator (process"), "{e}");
        assert!(e.contains(&std::process::id().to_string()), "{e}");
        drop(first);
        StateLock::acquire(&state).expect("free again once the first is gone");
    }

    #[test]
    fn concurrent_saves_each_land_whole() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("sim.json");
        std::thread::scope(|s| {
            for i in 0..8 {
                let state = &state;
                s.spawn(move || {
                    for j in 0..20 {
                        save(state, format!("{{\"n\":{}}}", i * 100 + j).as_bytes()).unwrap();
                    }
                });
            }
        });
        let text = std::fs::read_to_string(&state).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap();
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }
}
