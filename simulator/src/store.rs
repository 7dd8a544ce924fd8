//! The state file, saved incrementally: a save writes what changed since the last one, serialized
//! after the world's lock is let go.
//!
//! On disk (format 2) a state is two files:
//! - the **state file** itself (the path the user gives): a small JSON manifest with the clock, the
//!   world's small pieces (settings, ids, access keys, what is scheduled, faults) and an index of
//!   where each big piece is in the pack;
//! - the **pack** beside it (`<state file>.pack-<n>`): the big pieces as JSON texts one after
//!   another, only ever appended to. Per org: its head (users, tokens, counters), Tooling objects,
//!   records, relay runtime, and its published events; per account: all of it; the journal and the
//!   deliveries (logs, in chunks of what each save appended); the delivery counters.
//!
//! A save takes (under the world's lock) the [`Part`](crate::part::Part)s that changed, a pointer
//! copy each, and the items the [`Log`](crate::part::Log)s gained; serializes them without the lock;
//! appends them to the pack and syncs it; then replaces the manifest atomically (temporary file,
//! sync, rename). A crash at any point leaves the old manifest, which names only bytes that were
//! synced; what a crash appended past them is cut off on load. When most of the pack is no longer
//! named by the manifest (pieces rewritten, log items forgotten), a save copies what is still
//! named into a new pack, so the pack stays within about twice what it holds, at a cost that each
//! byte pays once.
//!
//! A state file of format 1 (the whole world in one JSON text) still loads; the first save writes
//! format 2.

use crate::clock::ClockState;
use crate::part::{Log, Tail};
use crate::persist;
use crate::world::{Account, Delivery, Journal, JournalEntry, Org, StoredEvent, World};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const FORMAT: u32 = 2;

/// A pack is copied into a new one when it is larger than this and less than half of it is named.
const COMPACT_OVER_BYTES: u64 = 8 << 20;

/// Where one JSON text is in the pack.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
struct Span {
    at: u64,
    len: u64,
}

/// Where a log's items are: chunks of consecutive items, each a JSON array.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct LogSpans {
    /// The absolute index of the first item kept, and of the one after the last saved.
    start: u64,
    end: u64,
    chunks: Vec<LogChunk>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct LogChunk {
    #[serde(flatten)]
    span: Span,
    /// The absolute index of its first item, and how many it holds.
    first: u64,
    count: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct OrgSpans {
    head: Span,
    tooling: Span,
    records: Span,
    relays: Span,
    events: LogSpans,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Index {
    orgs: BTreeMap<String, OrgSpans>,
    accounts: BTreeMap<String, Span>,
    journal: LogSpans,
    deliveries: LogSpans,
    counters: Span,
}

impl Index {
    /// The bytes of the pack it names.
    fn live(&self) -> u64 {
        let log = |l: &LogSpans| l.chunks.iter().map(|c| c.span.len).sum::<u64>();
        let org = |o: &OrgSpans| {
            o.head.len + o.tooling.len + o.records.len + o.relays.len + log(&o.events)
        };
        self.orgs.values().map(org).sum::<u64>()
            + self.accounts.values().map(|s| s.len).sum::<u64>()
            + log(&self.journal)
            + log(&self.deliveries)
            + self.counters.len
    }

    /// Every span, to copy them into a new pack.
    fn spans_mut(&mut self) -> Vec<&mut Span> {
        let mut out = Vec::new();
        for o in self.orgs.values_mut() {
            out.extend([&mut o.head, &mut o.tooling, &mut o.records, &mut o.relays]);
            out.extend(o.events.chunks.iter_mut().map(|c| &mut c.span));
        }
        out.extend(self.accounts.values_mut());
        out.extend(self.journal.chunks.iter_mut().map(|c| &mut c.span));
        out.extend(self.deliveries.chunks.iter_mut().map(|c| &mut c.span));
        out.push(&mut self.counters);
        out
    }
}

#[derive(Serialize)]
struct ManifestOut<'a> {
    format: u32,
    clock: ClockState,
    world: &'a World,
    pack: &'a str,
    pack_len: u64,
    index: &'a Index,
}

/// (Its `format` was read by [`Probe`].)
#[derive(Deserialize)]
struct Manifest {
    clock: ClockState,
    world: World,
    pack: String,
    pack_len: u64,
    index: Index,
}

#[derive(Deserialize)]
struct Probe {
    format: u32,
}

#[derive(Debug)]
struct Pack {
    name: String,
    file: File,
    len: u64,
}

/// What a simulator knows of its state file between saves.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    pack: Option<Pack>,
    index: Index,
    /// The number the next new pack gets.
    next_pack: u64,
    /// The next save writes everything into a new pack (none yet, or a save failed halfway).
    full: bool,
}

/// A log's items taken for a save.
struct TakenLog<T> {
    /// The log was replaced (or the save writes everything): its old chunks are gone.
    fresh: bool,
    start: u64,
    tail: Tail<T>,
}

struct TakenOrg {
    key: String,
    head: Option<Arc<Org>>,
    tooling: Option<Arc<crate::world::Tooling>>,
    records: Option<Arc<BTreeMap<String, crate::world::Record>>>,
    relays: Option<Arc<BTreeMap<String, crate::world::RelayRuntime>>>,
    events: TakenLog<StoredEvent>,
}

/// What a save writes, taken under the world's lock.
pub struct Taken {
    clock: ClockState,
    core: World,
    orgs: Vec<TakenOrg>,
    org_keys: Vec<String>,
    accounts: Vec<(String, Arc<Account>)>,
    account_keys: Vec<String>,
    journal: TakenLog<JournalEntry>,
    deliveries: TakenLog<Delivery>,
    counters: Option<Arc<BTreeMap<String, crate::world::TargetCounters>>>,
}

impl std::fmt::Debug for Taken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Taken")
            .field("orgs", &self.orgs.len())
            .field("accounts", &self.accounts.len())
            .field("journal", &self.journal.tail.len())
            .finish_non_exhaustive()
    }
}

fn take_log<T>(log: &mut Log<T>, spans: &LogSpans, full: bool) -> TakenLog<T> {
    // A log whose saved mark is not where the index ends was replaced since (a reset, a test).
    let fresh = full || log.saved() != spans.end || log.start() < spans.start;
    if fresh {
        log.mark_unsaved();
    }
    TakenLog {
        fresh,
        start: log.start(),
        tail: log.take_unsaved(),
    }
}

fn take_part<T>(part: &mut crate::part::Part<T>, full: bool) -> Option<Arc<T>> {
    if full {
        Some(part.take())
    } else {
        part.take_changed()
    }
}

/// Serializes a log's new items as one JSON array.
struct TailJson<'a, T>(&'a Tail<T>);

impl<T: Serialize> Serialize for TailJson<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter())
    }
}

fn io_error(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// Appends texts at the end of the pack, through a buffer (a piece is never held whole in memory):
/// their spans in the pack.
struct Appender<'f> {
    /// The pack's length before this save, and what this save has appended since.
    base: u64,
    written: u64,
    out: std::io::BufWriter<&'f mut File>,
}

/// Counts what passes through it.
struct Counted<'a, W> {
    inner: &'a mut W,
    count: u64,
}

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl Appender<'_> {
    fn put(&mut self, value: &impl Serialize) -> std::io::Result<Span> {
        let at = self.base + self.written;
        let mut counted = Counted {
            inner: &mut self.out,
            count: 0,
        };
        serde_json::to_writer(&mut counted, value).map_err(io_error)?;
        counted.write_all(b"\n")?;
        self.written += counted.count;
        Ok(Span {
            at,
            len: counted.count,
        })
    }

    fn log<T: Serialize>(
        &mut self,
        spans: &mut LogSpans,
        taken: &TakenLog<T>,
    ) -> std::io::Result<()> {
        if taken.fresh {
            spans.chunks.clear();
        }
        spans.start = taken.start;
        if !taken.tail.is_empty() {
            let span = self.put(&TailJson(&taken.tail))?;
            spans.chunks.push(LogChunk {
                span,
                first: taken.tail.start,
                count: taken.tail.len() as u64,
            });
        }
        spans.end = taken.tail.start + taken.tail.len() as u64;
        // Chunks whose every item is forgotten are named no more.
        spans.chunks.retain(|c| c.first + c.count > spans.start);
        Ok(())
    }
}

impl Store {
    /// A store for a state file that has no pack yet: the first save writes everything.
    pub fn new(path: &Path) -> Store {
        Store {
            path: path.to_owned(),
            pack: None,
            index: Index::default(),
            next_pack: 1,
            full: true,
        }
    }

    fn pack_path(&self, name: &str) -> PathBuf {
        self.path.with_file_name(name)
    }

    /// What the names of this state file's packs start with: `<state file>.pack-`.
    fn pack_prefix(&self) -> String {
        let stem = self
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("state");
        format!("{stem}.pack-")
    }

    fn pack_name(&self, n: u64) -> String {
        format!("{}{n}", self.pack_prefix())
    }

    /// Takes what the next save writes; called with the world's lock held, so it copies only
    /// pointers and the items the logs gained.
    pub fn take(&self, world: &mut World, clock: ClockState) -> Taken {
        let full = self.full;
        let empty = LogSpans::default();
        let mut orgs = Vec::new();
        for (key, part) in world.orgs.iter_mut() {
            let spans = self.index.orgs.get(key);
            let full = full || spans.is_none();
            let o = part.bookkeeping();
            let tooling = take_part(&mut o.tooling, full);
            let records = take_part(&mut o.records, full);
            let relays = take_part(&mut o.relays, full);
            let events = take_log(&mut o.events, spans.map_or(&empty, |s| &s.events), full);
            let head = take_part(part, full);
            if head.is_some()
                || tooling.is_some()
                || records.is_some()
                || relays.is_some()
                || !events.tail.is_empty()
                || events.fresh
            {
                orgs.push(TakenOrg {
                    key: key.clone(),
                    head,
                    tooling,
                    records,
                    relays,
                    events,
                });
            }
        }
        let accounts = world
            .accounts
            .iter_mut()
            .filter_map(|(key, part)| {
                let full = full || !self.index.accounts.contains_key(key);
                take_part(part, full).map(|a| (key.clone(), a))
            })
            .collect();
        let journal = take_log(&mut world.journal.entries, &self.index.journal, full);
        let deliveries = take_log(&mut world.deliveries.recent, &self.index.deliveries, full);
        let counters = take_part(&mut world.deliveries.counters, full);
        Taken {
            clock,
            core: world.core(),
            orgs,
            org_keys: world.orgs.keys().cloned().collect(),
            accounts,
            account_keys: world.accounts.keys().cloned().collect(),
            journal,
            deliveries,
            counters,
        }
    }

    /// Writes what was taken. On failure the next save starts a new pack with everything.
    pub fn write(&mut self, taken: Taken) -> std::io::Result<()> {
        let result = self.write_inner(taken);
        if result.is_err() {
            self.full = true;
        }
        result
    }

    fn write_inner(&mut self, taken: Taken) -> std::io::Result<()> {
        let mut index = if self.full {
            Index::default()
        } else {
            self.index.clone()
        };
        let mut old_pack = None;
        if self.full || self.pack.is_none() {
            let name = self.pack_name(self.next_pack);
            self.next_pack += 1;
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(self.pack_path(&name))?;
            old_pack = self.pack.replace(Pack { name, file, len: 0 });
        }
        let pack = self.pack.as_mut().expect("a pack is open");
        pack.file.seek(SeekFrom::Start(pack.len))?;
        let mut out = Appender {
            base: pack.len,
            written: 0,
            out: std::io::BufWriter::with_capacity(1 << 16, &mut pack.file),
        };
        index
            .orgs
            .retain(|k, _| taken.org_keys.binary_search(k).is_ok());
        index
            .accounts
            .retain(|k, _| taken.account_keys.binary_search(k).is_ok());
        for o in &taken.orgs {
            let spans = index.orgs.entry(o.key.clone()).or_default();
            if let Some(head) = &o.head {
                spans.head = out.put(&head.head_only())?;
            }
            if let Some(t) = &o.tooling {
                spans.tooling = out.put(&**t)?;
            }
            if let Some(r) = &o.records {
                spans.records = out.put(&**r)?;
            }
            if let Some(r) = &o.relays {
                spans.relays = out.put(&**r)?;
            }
            out.log(&mut spans.events, &o.events)?;
        }
        for (key, account) in &taken.accounts {
            index.accounts.insert(key.clone(), out.put(&**account)?);
        }
        out.log(&mut index.journal, &taken.journal)?;
        out.log(&mut index.deliveries, &taken.deliveries)?;
        if let Some(c) = &taken.counters {
            index.counters = out.put(&**c)?;
        }
        let written = out.written;
        out.out.flush()?;
        drop(out);
        if written > 0 {
            pack.file.sync_data()?;
            pack.len += written;
        }
        self.write_manifest(taken.clock, &taken.core, &index)?;
        self.index = index;
        self.full = false;
        if let Some(old) = old_pack {
            drop(old.file);
            let _ = std::fs::remove_file(self.pack_path(&old.name));
        }
        let live = self.index.live();
        let len = self.pack.as_ref().map_or(0, |p| p.len);
        if len > COMPACT_OVER_BYTES && live * 2 < len {
            // The pieces taken are written: let go of them before compacting, or every change
            // the world makes meanwhile copies a piece a save no longer needs.
            let Taken { clock, core, .. } = taken;
            self.compact(clock, &core)?;
        }
        Ok(())
    }

    fn write_manifest(
        &self,
        clock: ClockState,
        core: &World,
        index: &Index,
    ) -> std::io::Result<()> {
        let pack = self.pack.as_ref().expect("a pack is open");
        let bytes = serde_json::to_vec(&ManifestOut {
            format: FORMAT,
            clock,
            world: core,
            pack: &pack.name,
            pack_len: pack.len,
            index,
        })
        .map_err(io_error)?;
        persist::save(&self.path, &bytes)
    }

    /// Copies what the index names into a new pack, then points the manifest at it.
    fn compact(&mut self, clock: ClockState, core: &World) -> std::io::Result<()> {
        let name = self.pack_name(self.next_pack);
        self.next_pack += 1;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.pack_path(&name))?;
        let mut index = self.index.clone();
        let mut spans = index.spans_mut();
        spans.sort_by_key(|s| s.at);
        let old = self.pack.as_mut().expect("a pack is open");
        let mut written = 0u64;
        let mut out = std::io::BufWriter::new(&mut file);
        for span in spans {
            if span.len == 0 {
                continue;
            }
            old.file.seek(SeekFrom::Start(span.at))?;
            let copied = std::io::copy(&mut (&old.file).take(span.len), &mut out)?;
            if copied != span.len {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the pack ends inside a piece its index names",
                ));
            }
            span.at = written;
            written += span.len;
        }
        out.flush()?;
        drop(out);
        file.sync_data()?;
        let old = self.pack.replace(Pack {
            name,
            file,
            len: written,
        });
        if let Err(e) = self.write_manifest(clock, core, &index) {
            // The manifest still names the old pack: keep writing to that one.
            if let Some(new) = std::mem::replace(&mut self.pack, old) {
                drop(new.file);
                let _ = std::fs::remove_file(self.pack_path(&new.name));
            }
            return Err(e);
        }
        self.index = index;
        if let Some(old) = old {
            drop(old.file);
            let _ = std::fs::remove_file(self.pack_path(&old.name));
        }
        Ok(())
    }

    /// The bytes of the pack, and how many of them the manifest names.
    #[cfg(test)]
    pub fn sizes(&self) -> (u64, u64) {
        (self.pack.as_ref().map_or(0, |p| p.len), self.index.live())
    }
}

/// A pack being loaded, read a piece at a time.
struct PackReader {
    file: std::cell::RefCell<File>,
    len: u64,
}

/// What a state file holds.
#[derive(Debug)]
pub struct Loaded {
    pub clock: ClockState,
    pub world: World,
    pub store: Store,
}

fn corrupt(path: &Path, e: impl std::fmt::Display) -> String {
    format!(
        "simulator state file {} is corrupt or not a state file ({e}); move it aside to start afresh, or pass another --state",
        path.display()
    )
}

fn inconsistent(path: &Path, why: impl std::fmt::Display) -> String {
    format!(
        "simulator state file {} is not consistent: {why}; move it aside to start afresh, or pass another --state",
        path.display()
    )
}

/// Reads a state file (format 1 or 2); `Ok(None)` when there is none yet. A file that cannot be read
/// as a state is an error: it is never silently replaced.
pub fn load(path: &Path) -> Result<Option<Loaded>, String> {
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
    load_text(path, &text).map(Some)
}

/// A state file read ahead on a thread of its own, before its lock can be taken (while a command
/// checks its spec, say): the simulator that then starts on that file takes the lock and uses what
/// was read only if the file's manifest is still the one read (a save or compaction since writes a
/// new manifest); otherwise, or if the read failed, it loads the file itself.
#[derive(Debug)]
pub struct Preload {
    path: PathBuf,
    read: std::sync::Mutex<Option<Reading>>,
}

/// The thread reading ahead: the manifest it read and what it loaded, if it could.
type Reading = std::thread::JoinHandle<Option<(Fingerprint, Loaded)>>;

/// A manifest's length and hash: what a preload compares, without keeping the text (a format-1
/// file is the whole world).
type Fingerprint = (usize, u64);

fn fingerprint(text: &str) -> Fingerprint {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    (text.len(), h.finish())
}

impl Preload {
    /// Starts reading `path`; `None` when there is no such file (nothing to read ahead).
    pub fn start(path: &Path) -> Option<Preload> {
        if !path.is_file() {
            return None;
        }
        let p = path.to_owned();
        let read = std::thread::Builder::new()
            .name("simulator-state-preload".into())
            .spawn(move || {
                let text = std::fs::read_to_string(&p).ok()?;
                load_text(&p, &text)
                    .ok()
                    .map(|loaded| (fingerprint(&text), loaded))
            })
            .ok()?;
        Some(Preload {
            path: path.to_owned(),
            read: std::sync::Mutex::new(Some(read)),
        })
    }

    /// Waits until the read ahead is done (tests: to change the file after it for sure).
    #[cfg(test)]
    fn wait_read(&self) {
        let started = std::time::Instant::now();
        while !self
            .read
            .lock()
            .unwrap()
            .as_ref()
            .is_none_or(|t| t.is_finished())
        {
            assert!(
                started.elapsed().as_secs() < 30,
                "the read ahead never ended"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// What was read of `path`, if it still is what the file holds (call with the lock held).
    pub(crate) fn take(&self, path: &Path) -> Option<Loaded> {
        if self.path != path {
            return None;
        }
        let read = self.read.lock().ok()?.take()?;
        let (read_then, loaded) = read.join().ok()??;
        let now = std::fs::read_to_string(path).ok()?;
        (fingerprint(&now) == read_then).then_some(loaded)
    }
}

fn load_text(path: &Path, text: &str) -> Result<Loaded, String> {
    let probe: Probe = serde_json::from_str(text).map_err(|e| corrupt(path, e))?;
    let loaded = match probe.format {
        persist::FORMAT_1 => {
            let snap: persist::Snapshot =
                serde_json::from_str(text).map_err(|e| corrupt(path, e))?;
            Loaded {
                clock: snap.clock,
                world: snap.world,
                store: Store::new(path),
            }
        }
        FORMAT => load_packed(path, text)?,
        other => {
            return Err(format!(
                "simulator state file {} has format {other}, this simulator reads formats {} and {FORMAT}",
                path.display(),
                persist::FORMAT_1
            ));
        }
    };
    if !(0..=crate::clock::LATEST).contains(&loaded.clock.now) {
        return Err(inconsistent(
            path,
            format!(
                "its clock ({} ms) is outside the years 1970 to 9999",
                loaded.clock.now
            ),
        ));
    }
    loaded.world.check().map_err(|e| inconsistent(path, e))?;
    Ok(loaded)
}

fn load_packed(path: &Path, text: &str) -> Result<Loaded, String> {
    let m: Manifest = serde_json::from_str(text).map_err(|e| corrupt(path, e))?;
    let mut store = Store::new(path);
    if m.pack.contains('/') || m.pack.contains('\\') || m.pack != store.pack_name_like(&m.pack) {
        return Err(inconsistent(
            path,
            format!("it names the pack `{}`", m.pack),
        ));
    }
    let pack_path = store.pack_path(&m.pack);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&pack_path)
        .map_err(|e| inconsistent(path, format!("its pack {}: {e}", pack_path.display())))?;
    let on_disk = file
        .metadata()
        .map_err(|e| inconsistent(path, format!("its pack {}: {e}", pack_path.display())))?
        .len();
    if on_disk < m.pack_len {
        return Err(inconsistent(
            path,
            format!(
                "its pack {} has {on_disk} bytes, the manifest names {}",
                pack_path.display(),
                m.pack_len
            ),
        ));
    }
    // Each piece is read on its own: the pack is never in memory whole.
    let bytes = PackReader {
        file: std::cell::RefCell::new(file),
        len: m.pack_len,
    };
    let bad = |what: &str, e: String| inconsistent(path, format!("{what} in its pack: {e}"));
    fn slice(pack: &PackReader, what: &str, span: Span) -> Result<Vec<u8>, String> {
        if span
            .at
            .checked_add(span.len)
            .is_none_or(|end| end > pack.len)
        {
            return Err(format!(
                "{what}: bytes {}+{} are past its end",
                span.at, span.len
            ));
        }
        let mut buf = vec![0; span.len as usize];
        let mut file = pack.file.borrow_mut();
        file.seek(SeekFrom::Start(span.at))
            .and_then(|_| file.read_exact(&mut buf))
            .map_err(|e| format!("{what}: {e}"))?;
        Ok(buf)
    }
    fn parse<T: DeserializeOwned>(what: &str, b: &[u8]) -> Result<T, String> {
        serde_json::from_slice(b).map_err(|e| format!("{what}: {e}"))
    }
    fn log<T: DeserializeOwned + Clone>(
        what: &str,
        spans: &LogSpans,
        bytes: &PackReader,
    ) -> Result<Log<T>, String> {
        let mut out = Log::starting_at(spans.start);
        for c in &spans.chunks {
            let items: Vec<T> = parse(what, &slice(bytes, what, c.span)?)?;
            if items.len() as u64 != c.count || c.first > out.end() {
                return Err(format!("{what}: a chunk does not follow the one before it"));
            }
            let skip = out.end().saturating_sub(c.first) as usize;
            out.extend(items.into_iter().skip(skip));
        }
        if out.end() != spans.end.max(spans.start) {
            return Err(format!(
                "{what}: its chunks end at {}, not {}",
                out.end(),
                spans.end
            ));
        }
        out.mark_saved();
        Ok(out)
    }
    let mut world = m.world;
    for (key, spans) in &m.index.orgs {
        let what = format!("org {key}");
        let mut org: Org =
            parse(&what, &slice(&bytes, &what, spans.head)?).map_err(|e| bad("a head", e))?;
        org.tooling = crate::part::Part::new(
            parse(&what, &slice(&bytes, &what, spans.tooling)?)
                .map_err(|e| bad("Tooling objects", e))?,
        );
        org.records = crate::part::Part::new(
            parse(&what, &slice(&bytes, &what, spans.records)?).map_err(|e| bad("records", e))?,
        );
        org.relays = crate::part::Part::new(
            parse(&what, &slice(&bytes, &what, spans.relays)?).map_err(|e| bad("relays", e))?,
        );
        org.events = log(&what, &spans.events, &bytes).map_err(|e| bad("events", e))?;
        org.tooling.mark_saved();
        org.records.mark_saved();
        org.relays.mark_saved();
        let mut p = crate::part::Part::new(org);
        p.mark_saved();
        world.orgs.insert(key.clone(), p);
    }
    for (key, span) in &m.index.accounts {
        let what = format!("account {key}");
        let a: Account =
            parse(&what, &slice(&bytes, &what, *span)?).map_err(|e| bad("an account", e))?;
        let mut p = crate::part::Part::new(a);
        p.mark_saved();
        world.accounts.insert(key.clone(), p);
    }
    let dropped = world.journal.dropped;
    world.journal = Journal {
        entries: log("the journal", &m.index.journal, &bytes).map_err(|e| bad("the journal", e))?,
        dropped,
    };
    world.deliveries.recent =
        log("deliveries", &m.index.deliveries, &bytes).map_err(|e| bad("deliveries", e))?;
    world.deliveries.counters = crate::part::Part::new(
        parse("counters", &slice(&bytes, "counters", m.index.counters)?)
            .map_err(|e| bad("delivery counters", e))?,
    );
    world.deliveries.counters.mark_saved();
    // What a crash appended after the last manifest is not named by it: cut it off.
    let file = bytes.file.into_inner();
    file.set_len(m.pack_len)
        .map_err(|e| format!("cannot write the pack {}: {e}", pack_path.display()))?;
    store.next_pack = m
        .pack
        .rsplit_once(".pack-")
        .and_then(|(_, n)| n.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    store.pack = Some(Pack {
        name: m.pack,
        file,
        len: m.pack_len,
    });
    store.index = m.index;
    store.full = false;
    Ok(Loaded {
        clock: m.clock,
        world,
        store,
    })
}

impl Store {
    /// The name a pack of this state file with the same number would have (to refuse a manifest
    /// that points anywhere else).
    fn pack_name_like(&self, name: &str) -> String {
        let n = name
            .rsplit_once(".pack-")
            .and_then(|(_, n)| n.parse::<u64>().ok())
            .unwrap_or(u64::MAX);
        self.pack_name(n)
    }

    /// Removes packs of this state file that the manifest does not name (a crash's leftovers).
    /// Called with the state file's lock held.
    pub fn remove_strays(&self) {
        let Some(dir) = self.path.parent() else {
            return;
        };
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let prefix = self.pack_prefix();
        let current = self.pack.as_ref().map(|p| p.name.as_str());
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if let Some(n) = e.file_name().to_str()
                    && n.starts_with(&prefix)
                    && Some(n) != current
                {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, OrgConfig};
    use crate::world::Stored;
    use serde_json::json;

    fn world(orgs: usize) -> World {
        let config = Config {
            orgs: (0..orgs)
                .map(|i| OrgConfig::demo(&format!("org{i}")))
                .collect(),
            ..Config::default()
        };
        World::new(&config).unwrap()
    }

    fn entry(world: &mut World, n: u64) {
        world.record(JournalEntry {
            seq: 0,
            time: n as i64,
            api: "salesforce".into(),
            service: "data".into(),
            operation: "query".into(),
            object: None,
            org: None,
            account: None,
            region: None,
            status: 200,
            fault: None,
        });
    }

    fn add_object(world: &mut World, org: usize, n: usize) {
        let key = world.orgs.keys().nth(org).unwrap().clone();
        let o = world.orgs.get_mut(&key).unwrap();
        let record = json!({"Id": format!("0XX{n:015}"), "DeveloperName": format!("n{n}"), "Pad": "x".repeat(200)});
        o.tooling
            .entry("NamedCredential".into())
            .or_default()
            .insert(
                format!("0XX{n:015}"),
                Stored::new(record.as_object().unwrap()),
            );
    }

    fn save(store: &mut Store, world: &mut World) -> u64 {
        let before = store.sizes().0;
        let taken = store.take(world, ClockState { now: 1_000 });
        store.write(taken).unwrap();
        store.sizes().0.saturating_sub(before)
    }

    /// A state file of one org with one object, saved once.
    fn saved_one() -> (tempfile::TempDir, std::path::PathBuf, World, Store) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut w = world(1);
        add_object(&mut w, 0, 1);
        let mut store = Store::new(&path);
        save(&mut store, &mut w);
        (dir, path, w, store)
    }

    fn same(a: &World, b: &World) {
        assert_eq!(
            serde_json::to_value(a).unwrap(),
            serde_json::to_value(b).unwrap()
        );
    }

    #[test]
    fn a_preloaded_state_is_used_only_while_the_file_is_unchanged() {
        let (_dir, path, mut w, mut store) = saved_one();
        // Unchanged: what was read ahead is the file's world.
        let ahead = Preload::start(&path).expect("the file exists");
        let loaded = ahead.take(&path).expect("the file is unchanged");
        same(&loaded.world, &w);
        // Taken once.
        assert!(ahead.take(&path).is_none());
        // Another file's preload is not this one's.
        let other = path.with_file_name("other.json");
        std::fs::copy(&path, &other).unwrap();
        assert!(Preload::start(&other).unwrap().take(&path).is_none());
        // Saved again after the read: not used.
        let ahead = Preload::start(&path).unwrap();
        ahead.wait_read();
        add_object(&mut w, 0, 2);
        save(&mut store, &mut w);
        assert!(ahead.take(&path).is_none());
        // No file, nothing to read ahead.
        assert!(Preload::start(&path.with_file_name("absent.json")).is_none());
    }

    #[test]
    fn a_saved_world_loads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut w = world(3);
        let mut store = Store::new(&path);
        for n in 0..5 {
            add_object(&mut w, n % 3, n);
            entry(&mut w, n as u64);
            save(&mut store, &mut w);
        }
        let org = w.orgs.keys().next().unwrap().clone();
        for i in 0..3000 {
            w.publish(&org, "Order_Placed__e", json!({"n": i}), 5_000);
        }
        for n in 0..2000 {
            entry(&mut w, n);
        }
        save(&mut store, &mut w);
        drop(store);
        let loaded = load(&path).unwrap().unwrap();
        same(&w, &loaded.world);
        assert_eq!(loaded.world.orgs[&org].events.len(), 3000);
        assert_eq!(loaded.world.journal.entries.len(), 2005);
        // Loaded, nothing is unsaved: a save writes no piece again.
        let mut w = loaded.world;
        let mut store = loaded.store;
        assert_eq!(
            save(&mut store, &mut w),
            0,
            "nothing changed, nothing appended"
        );
    }

    #[test]
    fn a_save_writes_what_changed_not_the_world() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut w = world(50);
        for n in 0..2000 {
            add_object(&mut w, n % 50, n);
        }
        let mut store = Store::new(&path);
        let first = save(&mut store, &mut w);
        assert!(first > 400_000, "the first save writes everything: {first}");
        // One new object in one org: that org's objects and head, not the other 49.
        add_object(&mut w, 7, 99_999);
        entry(&mut w, 1);
        let second = save(&mut store, &mut w);
        assert!(
            second * 20 < first,
            "a save after one change appended {second} bytes, the world is {first}"
        );
        let taken = store.take(&mut w, ClockState { now: 1 });
        assert!(
            taken.orgs.is_empty() && taken.accounts.is_empty() && taken.journal.tail.is_empty()
        );
    }

    #[test]
    fn what_a_crash_appended_after_the_manifest_is_cut_off() {
        let (dir, path, w, store) = saved_one();
        let (len, _) = store.sizes();
        drop(store);
        let pack = dir.path().join("state.json.pack-1");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&pack)
            .unwrap();
        f.write_all(b"{\"half a save").unwrap();
        drop(f);
        let loaded = load(&path).unwrap().unwrap();
        same(&w, &loaded.world);
        assert_eq!(std::fs::metadata(&pack).unwrap().len(), len);
    }

    #[test]
    fn a_pack_that_does_not_match_its_manifest_is_refused() {
        let (dir, path, _, store) = saved_one();
        drop(store);
        let pack = dir.path().join("state.json.pack-1");
        let bytes = std::fs::read(&pack).unwrap();
        std::fs::write(&pack, &bytes[..bytes.len() / 2]).unwrap();
        let e = load(&path).unwrap_err();
        assert!(
            e.contains("is not consistent") && e.contains("bytes"),
            "{e}"
        );
        std::fs::remove_file(&pack).unwrap();
        let e = load(&path).unwrap_err();
        assert!(
            e.contains("is not consistent") && e.contains("pack-1"),
            "{e}"
        );
        let mut manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        manifest["pack"] = json!("../elsewhere");
        std::fs::write(&path, manifest.to_string()).unwrap();
        let e = load(&path).unwrap_err();
        assert!(e.contains("names the pack `../elsewhere`"), "{e}");
    }

    #[test]
    fn rewrites_are_compacted_so_the_pack_stays_near_what_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut w = world(2);
        for n in 0..3000 {
            add_object(&mut w, 0, n);
        }
        let mut store = Store::new(&path);
        save(&mut store, &mut w);
        let (_, live) = store.sizes();
        for n in 0..40 {
            add_object(&mut w, 1, 100_000 + n);
            // Every save rewrites org 0's objects too.
            w.orgs.values_mut().next().unwrap().tooling.clear();
            for m in 0..3000 {
                add_object(&mut w, 0, m);
            }
            save(&mut store, &mut w);
            let (len, live) = store.sizes();
            assert!(
                len <= 2 * live + COMPACT_OVER_BYTES + live,
                "{len} bytes for {live}"
            );
        }
        assert!(store.sizes().1 >= live);
        let packs = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(packs, 2, "the manifest and one pack");
        let loaded = load(&path).unwrap().unwrap();
        same(&w, &loaded.world);
    }

    #[test]
    fn a_state_file_of_format_1_loads_and_the_next_save_writes_format_2() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut w = world(1);
        add_object(&mut w, 0, 1);
        entry(&mut w, 1);
        let v1 = json!({"format": 1, "clock": {"now": 5}, "world": &w});
        std::fs::write(&path, v1.to_string()).unwrap();
        let loaded = load(&path).unwrap().unwrap();
        same(&w, &loaded.world);
        let (mut w, mut store) = (loaded.world, loaded.store);
        assert!(save(&mut store, &mut w) > 0);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("{\"format\":2"), "{text}");
        same(&w, &load(&path).unwrap().unwrap().world);
    }

    #[test]
    fn a_replaced_log_is_written_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut w = world(1);
        for n in 0..10 {
            entry(&mut w, n);
        }
        let mut store = Store::new(&path);
        save(&mut store, &mut w);
        w.journal.entries = Log::default();
        entry(&mut w, 99);
        save(&mut store, &mut w);
        let loaded = load(&path).unwrap().unwrap();
        assert_eq!(loaded.world.journal.entries.len(), 1);
        same(&w, &loaded.world);
    }
}
