//! redb behind the sdk's [`Storage`] trait, with its write-ahead log in front: a commit is
//! durable once its record is in the log ([`super::log`]); the applier thread then writes the
//! commits into the redb file, the newest write of each key that came meanwhile in one durable
//! transaction, and reads see the file with the writes it has not taken yet laid over it. A file
//! redb cannot read is an error, never a panic.
//!
//! Why: a redb commit of a tick's writes rewrites pages all over the file and waits for each to
//! reach the disk; the log's record is one sequential write. The tick waits for the record
//! only, and the file's work is done beside it, for several ticks at once.

use std::{
    collections::{BTreeMap, HashMap},
    ops::Bound,
    path::{Path, PathBuf},
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex, RwLock};
use prometheus_client::metrics::gauge::Gauge;
use redb::{Database, ReadableDatabase, ReadableTableMetadata, TableDefinition, TableHandle};
use veltrix_sdk::{KeyRange, Record, Storage, StoreError, Write};

use super::log::{self, Log};

/// The store's file name in `universe/`.
pub const FILE: &str = "veltrix.redb";

/// How long the applier gathers commits before it writes them into the file, unless the store
/// is closing or [`APPLY_AT_ONCE_BYTES`] wait. One transaction of several ticks' writes
/// rewrites each page of the file's trees once, not once a tick. Longer saves a little more
/// CPU in a clue drop but holds the transaction's pages in memory longer: at 12,000 players,
/// half a second kept about 450 bytes a player more than this (docs/benchmarks.md, "The store's
/// log").
const APPLY_EVERY: Duration = Duration::from_millis(100);

/// Pending writes (bytes of keys and values) that are applied without waiting.
const APPLY_AT_ONCE_BYTES: usize = 16 << 20;

/// The applier's nice value: it gives way to the threads a player waits on.
const APPLIER_NICE: libc::c_int = 10;

/// `ioprio_set(2)`: a thread, by its id; the idle class (no level), in the value's top bits.
const IOPRIO_WHO_PROCESS: libc::c_int = 1;
const IOPRIO_IDLE: libc::c_int = 3 << 13;

/// The most the log may hold that the file has not taken (bytes of keys and values): past it,
/// commits fail until the applier catches up (the file cannot be written: a failing disk).
const BEHIND_LIMIT: usize = 256 << 20;

/// Every table holds byte keys and byte values; what they mean is their owner's business.
fn table(name: &str) -> TableDefinition<'_, &'static [u8], &'static [u8]> {
    TableDefinition::new(name)
}

/// The store: the redb file, its log, and the applier thread between them.
pub struct RedbStore {
    shared: Arc<Shared>,
    /// The log's append side; `None` once the store is closed.
    log: Arc<Mutex<Option<Log>>>,
    applier: Option<std::thread::JoinHandle<()>>,
}

/// What the committing threads, the readers and the applier share.
struct Shared {
    file: RedbFile,
    /// Writes in the log the file has not taken yet.
    pending: RwLock<Pending>,
    /// The applier's transactions, counted twice: as one begins (odd) and once it has ended
    /// (even). A read that saw the same count before and after it took the pending writes and
    /// the file as one commit left them (see [`RedbStore::consistent`]); readers never wait.
    cycle: AtomicU64,
    /// Whether the store is closing; the lock the applier waits on for commits (the last one
    /// is `Pending::last`).
    queue: Mutex<Queue>,
    /// Where the pending bytes are shown (`veltrix_store_log_behind_bytes`), once the server
    /// has given it.
    behind: OnceLock<Gauge>,
    wake: Condvar,
}

#[derive(Default)]
struct Queue {
    closing: bool,
    /// A test's crash: the applier stops where it is, and nothing more reaches the file.
    #[cfg(test)]
    halted: bool,
}

/// The log's writes the file has not taken, by table and key: only the newest of each (a
/// player's record rewritten every tick is held once).
///
/// In two layers: the writes since the applier last took them, over those its transaction is
/// putting into the file. The applier takes the newer layer whole as its transaction begins
/// and drops the older whole once the file holds it, so a commit, which waits for this lock,
/// never waits for a copy or a forgetting of every key (held by a thread at nice 10 that the
/// others kept off the processor, that was 25 to 70 ms at a clue drop).
#[derive(Default)]
struct Pending {
    tables: Tables,
    /// The writes the applier's transaction under way puts into the file: empty between
    /// transactions; after a failed one, kept, and the newer writes joined to it at the next
    /// try.
    applying: Arc<Tables>,
    /// Bytes of the keys and values held, in both layers.
    bytes: usize,
    /// Of those, in `applying`.
    applying_bytes: usize,
    /// The sequence number of the last commit (0: none since the store opened); the applier
    /// has work while it is past what it applied.
    last: u64,
}

/// Pending writes by table.
type Tables = HashMap<Arc<str>, PendingTable>;

/// A table's pending writes: key -> the value, or `None`: removed.
type PendingTable = BTreeMap<Vec<u8>, Option<Bytes>>;

impl RedbStore {
    /// Opens (or creates) the store file and applies what its log holds (the commits a server
    /// stopped before the file took them). A file that is not a redb database, is damaged (cut
    /// short, overwritten), or is locked by another server, is an error saying so and what to
    /// do; never a panic.
    pub fn open(path: &Path) -> Result<Self, String> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// [`open`](Self::open), holding at most `cache_bytes` of the file's pages in memory
    /// (`Store.CacheMiB`).
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Self, String> {
        Self::open_as(path, path, cache_bytes)
    }

    /// [`open_with_cache`](Self::open_with_cache), with `shown` for the file's name in messages.
    pub(super) fn open_as(path: &Path, shown: &Path, cache_bytes: usize) -> Result<Self, String> {
        let file = RedbFile::open(path, shown, cache_bytes)?;
        let (mut log, recovered) = Log::open(&log::dir_of(path))?;
        if recovered.torn > 0 {
            tracing::warn!(
                "{}: {} commit(s) cut short at the end of the store's log were never acknowledged: dropped",
                log.dir().display(),
                recovered.torn
            );
        }
        if let Some(&(last, _)) = recovered.records.last() {
            let writes = recovered
                .records
                .iter()
                .flat_map(|(_, w)| w.iter().map(|w| (&*w.table, &w.key[..], w.value.as_deref())));
            file.apply(writes).map_err(|e| format!("cannot apply the store's log to the file: {e}"))?;
            log.applied(last).map_err(|e| format!("{}: cannot remove what was applied: {e}", log.dir().display()))?;
            tracing::info!("applied {} commit(s) from the store's log", recovered.records.len());
        }
        let shared = Arc::new(Shared {
            file,
            pending: RwLock::default(),
            cycle: AtomicU64::new(0),
            queue: Mutex::default(),
            wake: Condvar::new(),
            behind: OnceLock::new(),
        });
        let log = Arc::new(Mutex::new(Some(log)));
        let applier = {
            let (shared, log) = (Arc::clone(&shared), Arc::clone(&log));
            std::thread::Builder::new()
                .name("veltrix-store-apply".into())
                .spawn(move || apply_loop(&shared, &log))
                .map_err(|e| format!("cannot start the store's applier thread: {e}"))?
        };
        Ok(Self { shared, log, applier: Some(applier) })
    }

    /// Shows in `gauge` how many bytes of committed writes the file has not taken yet.
    pub fn report_behind(&self, gauge: Gauge) {
        gauge.set(self.shared.pending.read().bytes as i64);
        let _ = self.shared.behind.set(gauge);
    }

    /// The redb database, for the integrity check.
    pub(super) fn database(&self) -> &RwLock<Option<Database>> {
        &self.shared.file.db
    }

    /// Holds the applier, as a crash would, so that what follows stays in the log alone.
    #[cfg(test)]
    pub(super) fn crash_applier(&self) {
        self.shared.queue.lock().halted = true;
        self.shared.wake.notify_one();
    }

    /// Stops as a crash would: the applier takes nothing more, and the log stays.
    #[cfg(test)]
    pub(super) fn crash(mut self) {
        self.crash_applier();
        self.applier.take().expect("running").join().expect("the applier ends");
        *self.log.lock() = None;
    }
}

/// The applier thread: every [`APPLY_EVERY`], the newest pending write of each key in one
/// durable transaction; then those not written since are forgotten (and the log's segments).
fn apply_loop(shared: &Shared, log: &Mutex<Option<Log>>) {
    // Background work: the threads players wait on (tick, network, writers) go first. Raising
    // a thread's nice needs no privilege; if it fails the thread runs at the usual priority.
    // SAFETY: plain system calls on this thread's own id.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, APPLIER_NICE) };
    // Its disk writes too: a transaction writes hundreds of pages and syncs them, and the log's
    // `fdatasync`, which a tick waits on, queued behind them for 10 to 60 ms at a clue drop.
    // The idle class goes last where the I/O scheduler has classes (mq-deadline, bfq; those
    // serve a request that waited seconds anyway), and needs no privilege either.
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, libc::gettid(), IOPRIO_IDLE) };
    let (mut applied, mut failing, mut last_try) = (0, false, false);
    loop {
        {
            let mut queue = shared.queue.lock();
            loop {
                #[cfg(test)]
                if queue.halted {
                    return;
                }
                if shared.pending.read().last > applied || queue.closing {
                    break;
                }
                shared.wake.wait(&mut queue);
            }
            if shared.pending.read().last == applied {
                return;
            }
            // The commits of the next moments join these (see APPLY_EVERY).
            let since = Instant::now();
            while !queue.closing && since.elapsed() < APPLY_EVERY && shared.pending.read().bytes < APPLY_AT_ONCE_BYTES {
                let left = APPLY_EVERY.saturating_sub(since.elapsed());
                shared.wake.wait_for(&mut queue, left);
            }
        }
        // Taken before the cycle begins: see `RedbStore::consistent`.
        let (upto, taken) = shared.pending.write().take();
        shared.cycle.fetch_add(1, Ordering::SeqCst);
        let writes = taken.iter().flat_map(|(t, writes)| writes.iter().map(|(k, v)| (&**t, &k[..], v.as_deref())));
        let result = shared.file.apply(writes);
        shared.cycle.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = result {
            if !failing {
                tracing::error!(
                    "{e}: the store file did not take the log's last commits; they stay in the log (durable) and are tried again"
                );
            }
            failing = true;
            let mut queue = shared.queue.lock();
            // Closing: one more try, once the file may be opened again; then the log keeps them.
            if queue.closing && std::mem::replace(&mut last_try, true) {
                return;
            }
            shared.wake.wait_for(&mut queue, REOPEN_EVERY);
            continue;
        }
        if std::mem::take(&mut failing) {
            tracing::info!("the store file takes the log's commits again");
        }
        applied = upto;
        let behind = {
            let mut pending = shared.pending.write();
            pending.applied();
            pending.bytes
        };
        // The writes taken are freed here, not under the lock.
        drop(taken);
        shared.show_behind(behind);
        // The segments the file now holds go, deleted without the log's lock: a commit waits
        // for that lock, and the deletions' folder syncs took 25 to 55 ms at a clue drop.
        let Some((dir, done)) = log.lock().as_mut().map(|log| (log.dir().to_path_buf(), log.take_applied(upto))) else {
            continue;
        };
        if let Err((e, left)) = log::delete_segments(&dir, done) {
            tracing::warn!("{}: cannot remove a segment the store file holds: {e}", dir.display());
            if let Some(log) = log.lock().as_mut() {
                log.give_back(left);
            }
        }
    }
}

impl Shared {
    fn show_behind(&self, bytes: usize) {
        if let Some(gauge) = self.behind.get() {
            gauge.set(bytes as i64);
        }
    }
}

impl Pending {
    fn note(&mut self, write: &Write) {
        let table = match self.tables.get_mut(&*write.table) {
            Some(t) => t,
            None => self.tables.entry(Arc::clone(&write.table)).or_default(),
        };
        let value = write.value.as_deref().map(Bytes::copy_from_slice);
        let size = write.key.len() + value.as_ref().map_or(0, Bytes::len);
        match table.get_mut(&write.key[..]) {
            Some(held) => {
                let old = std::mem::replace(held, value);
                self.bytes = self.bytes + size - write.key.len() - old.map_or(0, |v| v.len());
            }
            None => {
                table.insert(write.key.clone(), value);
                self.bytes += size;
            }
        }
    }

    /// The writes for the applier's transaction (every pending one: the newer layer becomes the
    /// older), and the last commit they include.
    fn take(&mut self) -> (u64, Arc<Tables>) {
        let newer = std::mem::take(&mut self.tables);
        if self.applying.is_empty() {
            self.applying = Arc::new(newer);
        } else {
            // A transaction that failed, tried again with the newer writes over its own (the
            // applier dropped its share of it: nothing is copied).
            let applying = Arc::make_mut(&mut self.applying);
            for (table, writes) in newer {
                let into = applying.entry(table).or_default();
                for (key, held) in writes {
                    let key_len = key.len();
                    if let Some(older) = into.insert(key, held) {
                        self.bytes -= key_len + older.map_or(0, |v| v.len());
                    }
                }
            }
        }
        self.applying_bytes = self.bytes;
        (self.last, Arc::clone(&self.applying))
    }

    /// The file holds the writes [`take`](Self::take)n: they go.
    fn applied(&mut self) {
        self.applying = Arc::default();
        self.bytes -= std::mem::take(&mut self.applying_bytes);
    }

    /// The newest pending write of `key` in `table`: `None` when there is none, `Some(None)`
    /// when it removed the key.
    fn get(&self, table: &str, key: &[u8]) -> Option<&Option<Bytes>> {
        [&self.tables, &*self.applying].into_iter().find_map(|layer| layer.get(table)?.get(key))
    }

    /// Whether no write is pending.
    fn is_empty(&self) -> bool {
        self.tables.is_empty() && self.applying.is_empty()
    }

    /// The pending writes of `table` within `keys` (an empty range when it starts past its
    /// end), in key order, the newer layer's over the older's.
    fn range(&self, table: &str, keys: Keys<'_>) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        if starts_past_end(keys) {
            return Vec::new();
        }
        fn layer<'a>(
            tables: &'a Tables,
            table: &str,
            keys: Keys<'_>,
        ) -> impl Iterator<Item = (&'a Vec<u8>, &'a Option<Bytes>)> + use<'a> {
            tables.get(table).map(|t| t.range::<[u8], _>(keys)).into_iter().flatten()
        }
        let owned = |(k, v): (&Vec<u8>, &Option<Bytes>)| (k.clone(), v.as_deref().map(<[u8]>::to_vec));
        let mut older = layer(&self.applying, table, keys).peekable();
        let mut out = Vec::new();
        for (key, value) in layer(&self.tables, table, keys) {
            while let Some(write) = older.next_if(|(k, _)| *k < key) {
                out.push(owned(write));
            }
            older.next_if(|(k, _)| *k == key);
            out.push(owned((key, value)));
        }
        out.extend(older.map(owned));
        out
    }
}

/// A range of keys.
type Keys<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// `from..to` as [`Keys`].
fn keys<'a>(from: &'a [u8], to: &'a [u8]) -> Keys<'a> {
    (Bound::Included(from), Bound::Excluded(to))
}

/// Whether `keys` holds nothing by its bounds alone (a `BTreeMap` range panics on it).
fn starts_past_end(keys: Keys<'_>) -> bool {
    match keys {
        (Bound::Included(from), Bound::Excluded(to)) => from >= to,
        _ => false,
    }
}

/// `file`'s records with `over` laid on them (a put replaces or adds, a removal removes).
fn merge(file: Vec<Record>, over: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Vec<Record> {
    if over.is_empty() {
        return file;
    }
    let mut out = Vec::with_capacity(file.len() + over.len());
    let mut file = file.into_iter().peekable();
    for (key, value) in over {
        while let Some(r) = file.next_if(|(k, _)| *k < key) {
            out.push(r);
        }
        file.next_if(|(k, _)| *k == key);
        if let Some(v) = value {
            out.push((key, v));
        }
    }
    out.extend(file);
    out
}

impl RedbStore {
    /// `read` (the pending writes taken first, then the file), again until no transaction of
    /// the applier began or ended meanwhile.
    ///
    /// Why that is one commit's state: the writes of a transaction under way were pending
    /// before it began and are forgotten only after it ended, so the copy holds them whether
    /// or not the file shows them yet; and no later commit reaches the file during the read.
    fn consistent<R>(&self, mut read: impl FnMut() -> Result<R, StoreError>) -> Result<R, StoreError> {
        loop {
            let before = self.shared.cycle.load(Ordering::SeqCst);
            let result = read()?;
            if self.shared.cycle.load(Ordering::SeqCst) == before {
                return Ok(result);
            }
        }
    }

    /// The records of `name` within `keys`: the file's with the pending writes laid over them.
    fn read_merged(&self, name: &str, keys: Keys<'_>) -> Result<Vec<Record>, StoreError> {
        self.consistent(|| {
            let over = self.shared.pending.read().range(name, keys);
            Ok(merge(self.shared.file.read(name, keys)?, over))
        })
    }
}

impl Storage for RedbStore {
    fn read_all(&self, name: &str) -> Result<Vec<Record>, StoreError> {
        self.read_merged(name, (Bound::Unbounded, Bound::Unbounded))
    }

    fn read_range(&self, name: &str, from: &[u8], to: &[u8]) -> Result<Vec<Record>, StoreError> {
        if from >= to {
            return Ok(Vec::new());
        }
        self.read_merged(name, keys(from, to))
    }

    fn get(&self, name: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        // The pending writes first: one the applier forgets after this has reached the file
        // by then. One key needs no more (see `consistent`).
        if let Some(value) = self.shared.pending.read().get(name, key) {
            return Ok(value.as_deref().map(<[u8]>::to_vec));
        }
        self.shared.file.get(name, key)
    }

    fn read_ranges(&self, ranges: &[KeyRange<'_>]) -> Result<Vec<Vec<Record>>, StoreError> {
        self.consistent(|| {
            let over: Vec<_> = {
                let pending = self.shared.pending.read();
                ranges.iter().map(|r| pending.range(r.table, keys(r.from, r.to))).collect()
            };
            let read = self.shared.file.read_ranges(ranges)?;
            Ok(read.into_iter().zip(over).map(|(file, over)| merge(file, over)).collect())
        })
    }

    fn commit(&self, writes: &[Write]) -> Result<(), StoreError> {
        let shown = &self.shared.file.shown;
        let mut log = self.log.lock();
        let log = log.as_mut().ok_or_else(|| StoreError(format!("{shown}: the store is closed")))?;
        let behind = self.shared.pending.read().bytes;
        if behind > BEHIND_LIMIT {
            return Err(StoreError(format!(
                "{shown}: the store file is {} MiB behind its log (it cannot be written: is the disk failing?)",
                behind >> 20
            )));
        }
        let seq = log
            .append(writes)
            .map_err(|e| StoreError(format!("{}: commit: {e} (is the disk full or failing?)", log.dir().display())))?;
        {
            let mut pending = self.shared.pending.write();
            for w in writes {
                pending.note(w);
            }
            // Even with no writes: the applier counts up to the last commit.
            pending.last = seq;
            self.shared.show_behind(pending.bytes);
        }
        // Under the applier's lock, so that the wake cannot fall between its check and its wait.
        let _queue = self.shared.queue.lock();
        self.shared.wake.notify_one();
        Ok(())
    }

    fn tables(&self) -> Result<Vec<String>, StoreError> {
        // The file's tables, and those the pending writes make or empty (rare: a running
        // server lists none; `export` and `check` open a store with nothing pending).
        let mut names = self.shared.file.tables()?;
        let mut touched: Vec<Arc<str>> = {
            let pending = self.shared.pending.read();
            pending.tables.keys().chain(pending.applying.keys()).cloned().collect()
        };
        touched.sort_unstable();
        touched.dedup();
        for name in touched {
            let holds = !self.read_all(&name)?.is_empty();
            match names.binary_search_by(|n| n.as_str().cmp(&name)) {
                Ok(at) if !holds => drop(names.remove(at)),
                Err(at) if holds => names.insert(at, name.to_string()),
                _ => {}
            }
        }
        Ok(names)
    }
}

impl Drop for RedbStore {
    /// The applier takes what is left; once the file holds all of it, the log goes.
    fn drop(&mut self) {
        let Some(applier) = self.applier.take() else { return };
        self.shared.queue.lock().closing = true;
        self.shared.wake.notify_one();
        let _ = applier.join();
        let Some(log) = self.log.lock().take() else { return };
        if !self.shared.pending.read().is_empty() {
            tracing::warn!(
                "{}: the store file did not take the last commits; they stay in the log and are applied at the next start",
                log.dir().display()
            );
            return;
        }
        let dir = log.dir().to_path_buf();
        if let Err(e) = log.remove() {
            tracing::warn!("{}: cannot remove the store's log, whose commits are all in the file: {e}", dir.display());
        }
    }
}

/// The redb file: opened again after a failed commit.
///
/// redb refuses every later transaction after an I/O error ("Previous I/O error occurred"), so
/// after a failed commit the database is closed and opened again: it is back at its last durable
/// commit, and the writes it did not take are still in the log and pending.
pub(super) struct RedbFile {
    /// `None` while it could not be opened again after a failed commit.
    pub(super) db: RwLock<Option<Database>>,
    path: PathBuf,
    /// The file as messages name it (a copy being checked is named as its original).
    shown: String,
    /// When the last try to open it again failed: the next try waits [`REOPEN_EVERY`].
    reopen_failed: Mutex<Option<Instant>>,
    /// The most of the file's pages redb holds in memory.
    cache_bytes: usize,
}

/// The store's page cache by default (`Store.CacheMiB`). redb's own default is 1 GiB, and it
/// keeps every page a commit writes until that is full: a server's memory grew with its file
/// (docs/benchmarks.md, "The store's page cache bounded"). Pages beyond it are read through the
/// system's file cache.
pub const DEFAULT_CACHE_BYTES: usize = 4 << 20;

/// How often a store that could not be opened again after a failed commit is tried again (an
/// open may scan the whole file).
const REOPEN_EVERY: Duration = Duration::from_secs(1);

/// What an owner does with a store redb cannot read.
pub const DAMAGED_ADVICE: &str = "the store file is damaged: stop the server, move the file away and restore the \
     last backup with `veltrix-server import FILE` (see \"When something goes wrong\" in docs/storage.md)";

impl RedbFile {
    fn open(path: &Path, shown: &Path, cache_bytes: usize) -> Result<Self, String> {
        let shown = shown.display().to_string();
        let db = open_database(path, &shown, cache_bytes)?;
        Ok(Self {
            db: RwLock::new(Some(db)),
            path: path.to_path_buf(),
            shown,
            reopen_failed: Mutex::new(None),
            cache_bytes,
        })
    }

    fn error(&self, what: &str, e: impl std::fmt::Display) -> StoreError {
        StoreError(format!("{}: {what}: {e}", self.shown))
    }

    /// Runs `f` on the database; a panic in redb (a damaged file can make it panic) is an error.
    fn with_db<R>(&self, f: impl FnOnce(&Database) -> Result<R, StoreError>) -> Result<R, StoreError> {
        let db = self.db.read();
        let db = db.as_ref().ok_or_else(|| {
            self.error("closed after a failed commit", "it is opened again with the next commit that works")
        })?;
        crate::panics::catch(|| f(db)).unwrap_or_else(|panic| Err(self.error(DAMAGED_ADVICE, panic)))
    }

    /// Closes the database after a failed commit and opens it again, at most once every
    /// [`REOPEN_EVERY`] while that fails.
    fn reopen(&self, db: &mut Option<Database>) -> Result<(), StoreError> {
        let mut failed = self.reopen_failed.lock();
        if let Some(open) = db.take() {
            // Closed first: redb locks the file, a second handle would be refused.
            self.close(open);
        } else if failed.is_some_and(|at| at.elapsed() < REOPEN_EVERY) {
            return Err(self.error("cannot open the store again after a failed commit", "waiting to try again"));
        }
        match open_database(&self.path, &self.shown, self.cache_bytes) {
            Ok(opened) => {
                *db = Some(opened);
                *failed = None;
                Ok(())
            }
            Err(e) => {
                *failed = Some(Instant::now());
                Err(StoreError(e))
            }
        }
    }

    /// `writes` (table, key, value or removal), in order, in one durable transaction; on
    /// failure the file is opened again.
    fn apply<'a>(&self, writes: impl Iterator<Item = WritePart<'a>>) -> Result<(), StoreError> {
        // Closed by an earlier failure and not opened again since: now, or this fails.
        let closed = self.db.read().is_none();
        if closed {
            self.reopen(&mut self.db.write())?;
        }
        let result = self.with_db(|db| self.write(db, writes));
        let Err(e) = result else { return Ok(()) };
        match self.reopen(&mut self.db.write()) {
            Ok(()) => Err(e),
            Err(reopen) => Err(StoreError(format!("{e}; {reopen}"))),
        }
    }

    /// The writes in one transaction.
    fn write<'a>(&self, db: &Database, writes: impl Iterator<Item = WritePart<'a>>) -> Result<(), StoreError> {
        // One table open per table; within a table the writes keep their order.
        let mut by_table: BTreeMap<&str, Vec<WritePart<'a>>> = BTreeMap::new();
        for write in writes {
            by_table.entry(write.0).or_default().push(write);
        }
        let txn = db.begin_write().map_err(|e| self.error("begin a write", e))?;
        for (name, writes) in by_table {
            let mut t = txn.open_table(table(name)).map_err(|e| self.error(&format!("table {name}"), e))?;
            for (_, key, value) in writes {
                match value {
                    Some(v) => t.insert(key, v).map(drop),
                    None => t.remove(key).map(drop),
                }
                .map_err(|e| self.error(&format!("table {name}"), e))?;
            }
            // A table left empty goes: the file holds only tables that hold something.
            let empty = t.is_empty().map_err(|e| self.error(&format!("table {name}"), e))?;
            drop(t);
            if empty {
                txn.delete_table(table(name)).map_err(|e| self.error(&format!("table {name}"), e))?;
            }
        }
        txn.commit().map_err(|e| self.error("commit", e))
    }

    /// Closes `db`: redb writes as it closes, and may panic on a damaged file, which is not the
    /// server's end.
    fn close(&self, db: Database) {
        if let Err(panic) = crate::panics::catch(move || drop(db)) {
            tracing::error!("{}: closing the store: redb panicked: {panic}", self.shown);
        }
    }

    /// Table `name` in the read transaction `txn`; `None` when it does not exist (nothing
    /// written to it yet).
    fn table_in(&self, txn: &redb::ReadTransaction, name: &str) -> Result<Option<BytesTable>, StoreError> {
        match txn.open_table(table(name)) {
            Ok(t) => Ok(Some(t)),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(self.error(&format!("table {name}"), e)),
        }
    }

    /// A table for reading, in a read transaction of its own.
    fn open_read(&self, db: &Database, name: &str) -> Result<Option<BytesTable>, StoreError> {
        let txn = db.begin_read().map_err(|e| self.error("read", e))?;
        self.table_in(&txn, name)
    }

    /// The records of table `t` (named `name`) within `keys`, in key order.
    fn records(&self, t: &BytesTable, name: &str, keys: Keys<'_>) -> Result<Vec<Record>, StoreError> {
        if starts_past_end(keys) {
            return Ok(Vec::new());
        }
        let failed = |e| self.error(&format!("table {name}"), e);
        let mut out = Vec::new();
        for entry in t.range::<&[u8]>(keys).map_err(failed)? {
            let (k, v) = entry.map_err(failed)?;
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// The records of a table within `keys`, in key order.
    fn read(&self, name: &str, keys: Keys<'_>) -> Result<Vec<Record>, StoreError> {
        self.with_db(|db| match self.open_read(db, name)? {
            Some(t) => self.records(&t, name, keys),
            None => Ok(Vec::new()),
        })
    }

    fn get(&self, name: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.with_db(|db| {
            let Some(t) = self.open_read(db, name)? else { return Ok(None) };
            Ok(t.get(key).map_err(|e| self.error(&format!("table {name}"), e))?.map(|v| v.value().to_vec()))
        })
    }

    fn read_ranges(&self, ranges: &[KeyRange<'_>]) -> Result<Vec<Vec<Record>>, StoreError> {
        self.with_db(|db| {
            // One transaction for all: the ranges as one commit left them.
            let txn = db.begin_read().map_err(|e| self.error("read", e))?;
            let mut out = Vec::with_capacity(ranges.len());
            for range in ranges {
                out.push(match self.table_in(&txn, range.table)? {
                    Some(t) => self.records(&t, range.table, keys(range.from, range.to))?,
                    None => Vec::new(),
                });
            }
            Ok(out)
        })
    }

    fn tables(&self) -> Result<Vec<String>, StoreError> {
        self.with_db(|db| {
            let txn = db.begin_read().map_err(|e| self.error("read", e))?;
            let mut names = Vec::new();
            for handle in txn.list_tables().map_err(|e| self.error("list tables", e))? {
                let name = handle.name().to_string();
                // Older files may hold empty tables; they hold nothing, so they are not listed.
                let t = txn.open_table(table(&name)).map_err(|e| self.error(&format!("table {name}"), e))?;
                if !t.is_empty().map_err(|e| self.error(&format!("table {name}"), e))? {
                    names.push(name);
                }
            }
            names.sort();
            Ok(names)
        })
    }
}

impl Drop for RedbFile {
    fn drop(&mut self) {
        if let Some(db) = self.db.get_mut().take() {
            self.close(db);
        }
    }
}

/// Opens the redb file, mapping each way it can fail (a panic included) to what it means for
/// an owner.
fn open_database(path: &Path, shown: &str, cache_bytes: usize) -> Result<Database, String> {
    let opened = crate::panics::catch(|| redb::Builder::new().set_cache_size(cache_bytes).create(path));
    let damaged = |e: &dyn std::fmt::Display| format!("{shown}: cannot open the store: {e}: {DAMAGED_ADVICE}");
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(redb::DatabaseError::DatabaseAlreadyOpen)) => {
            Err(format!("{shown}: cannot open the store: it is in use (is another server running in this folder?)"))
        }
        Ok(Err(redb::DatabaseError::Storage(redb::StorageError::Io(e))))
            if e.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            Err(damaged(&format!("the file ends early ({e})")))
        }
        Ok(Err(redb::DatabaseError::Storage(redb::StorageError::Io(e)))) => {
            Err(format!("{shown}: cannot open the store: {e} (is the disk full or failing? the file is kept as it is)"))
        }
        Ok(Err(e)) => Err(damaged(&e)),
        Err(panic) => Err(damaged(&format!("redb panicked: {panic}"))),
    }
}

/// One write as the file takes it: table, key, value (`None`: removed).
type WritePart<'a> = (&'a str, &'a [u8], Option<&'a [u8]>);

/// A table opened for reading.
type BytesTable = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

#[cfg(test)]
mod tests {
    use super::*;

    fn put(table: &str, key: &[u8], value: &[u8]) -> Write {
        Write { table: Arc::from(table), key: key.to_vec(), value: Some(value.to_vec()) }
    }

    /// The pending writes in two layers: reads see the newer write of a key over the one the
    /// applier is putting into the file, a failed transaction is tried again with the newer
    /// writes joined to it, and the bytes held count each key's writes still held.
    #[test]
    fn writes_made_while_the_file_takes_others_lie_over_them() {
        let remove = |key: &[u8]| Write { table: Arc::from("t"), key: key.to_vec(), value: None };
        let all = |p: &Pending| p.range("t", (Bound::Unbounded, Bound::Unbounded));
        let some = |pairs: &[(&[u8], Option<&[u8]>)]| -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
            pairs.iter().map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec))).collect()
        };
        let mut pending = Pending::default();
        pending.note(&put("t", b"a", b"1"));
        pending.note(&put("t", b"c", b"3"));
        pending.note(&put("t", b"e", b"5"));
        assert_eq!(pending.bytes, 6);
        let (last, taken) = pending.take();
        assert_eq!((last, taken["t"].len()), (0, 3), "every write taken (last is the caller's to set)");
        // Written while the file takes the first three.
        pending.note(&put("t", b"b", b"22"));
        pending.note(&remove(b"c"));
        pending.note(&put("t", b"e", b"55"));
        let expected: &[(&[u8], Option<&[u8]>)] =
            &[(b"a", Some(b"1")), (b"b", Some(b"22")), (b"c", None), (b"e", Some(b"55"))];
        assert_eq!(all(&pending), some(expected));
        assert_eq!(pending.get("t", b"c"), Some(&None), "removed since");
        assert_eq!(pending.get("t", b"a").cloned(), Some(Some(Bytes::from_static(b"1"))));
        assert_eq!(pending.bytes, 6 + 3 + 1 + 3);
        // The transaction failed: the next takes both, the newer over the older.
        drop(taken);
        let (_, taken) = pending.take();
        assert_eq!(pending.bytes, 2 + 3 + 1 + 3, "a: 2; b: 3; c removed: 1; e: 3");
        assert_eq!(all(&pending), some(expected));
        pending.note(&put("t", b"f", b"6"));
        assert_eq!(pending.bytes, 9 + 2);
        pending.applied();
        drop(taken);
        assert_eq!(all(&pending), some(&[(b"f", Some(b"6"))]));
        assert_eq!(pending.bytes, 2);
        assert!(!pending.is_empty());
    }

    /// The applier gives way on the disk as on the processor: its writes are in the idle I/O
    /// class, so the log's, which commits wait on, go first.
    #[test]
    fn the_applier_writes_in_the_idle_io_class() {
        let dir = tempfile::tempdir().unwrap();
        let _store = RedbStore::open(&dir.path().join(FILE)).unwrap();
        // The thread's system id, by its name (cut to 15 bytes), once it has named itself; every
        // store's applier sets its class as it starts.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let class = loop {
            let tid = std::fs::read_dir("/proc/self/task").unwrap().find_map(|task| {
                let task = task.ok()?.path();
                let name = std::fs::read_to_string(task.join("comm")).ok()?;
                (name.trim() == "veltrix-store-a").then(|| task.file_name()?.to_str()?.parse::<i32>().ok()).flatten()
            });
            // SAFETY: a read of a thread's I/O priority.
            let class = tid.map(|tid| unsafe { libc::syscall(libc::SYS_ioprio_get, IOPRIO_WHO_PROCESS, tid) } as i32);
            if class == Some(IOPRIO_IDLE) || std::time::Instant::now() > deadline {
                break class;
            }
            std::thread::yield_now();
        };
        assert_eq!(class, Some(IOPRIO_IDLE), "the applier is in the idle I/O class");
    }

    #[test]
    fn the_pending_writes_lie_over_the_file_in_key_order() {
        let file = vec![(b"a".to_vec(), b"1".to_vec()), (b"c".to_vec(), b"3".to_vec()), (b"e".to_vec(), b"5".to_vec())];
        let over =
            vec![(b"b".to_vec(), Some(b"2".to_vec())), (b"c".to_vec(), None), (b"e".to_vec(), Some(b"6".to_vec()))];
        let merged = merge(file, over);
        let expected = [(b"a", b"1"), (b"b", b"2"), (b"e", b"6")].map(|(k, v)| (k.to_vec(), v.to_vec()));
        assert_eq!(merged, expected);
    }

    /// A store stopped as by SIGKILL, before the file took its commits: the log holds them, the
    /// next open applies them, and the log then goes.
    #[test]
    fn commits_the_file_never_took_are_applied_from_the_log_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let store = RedbStore::open(&path).unwrap();
        let behind = Gauge::default();
        store.report_behind(behind.clone());
        store.crash_applier();
        store.commit(&[put("a", b"1", b"one"), put("b", b"2", b"two")]).unwrap();
        assert_eq!(behind.get(), 8, "two keys and two values of bytes the file has not taken");
        store
            .commit(&[Write { table: Arc::from("a"), key: b"1".to_vec(), value: None }, put("a", b"3", b"x")])
            .unwrap();
        // Read back before the file has them, through every kind of read.
        assert_eq!(store.read_all("a").unwrap(), vec![(b"3".to_vec(), b"x".to_vec())]);
        assert_eq!(store.get("a", b"1").unwrap(), None);
        assert_eq!(store.get("b", b"2").unwrap(), Some(b"two".to_vec()));
        assert_eq!(store.read_range("a", b"0", b"9").unwrap().len(), 1);
        assert_eq!(store.tables().unwrap(), ["a", "b"]);
        assert!(store.shared.file.tables().unwrap().is_empty(), "the file has taken nothing");
        store.crash();
        assert!(log::dir_of(&path).is_dir(), "the log stays after a crash");

        let store = RedbStore::open(&path).unwrap();
        assert_eq!(store.shared.file.tables().unwrap(), ["a", "b"], "applied to the file as it opened");
        // A live applier takes a commit within its period, and the gauge says so.
        let behind = Gauge::default();
        store.report_behind(behind.clone());
        store.commit(&[put("c", b"1", b"x")]).unwrap();
        let waited = Instant::now();
        while behind.get() != 0 {
            assert!(waited.elapsed() < Duration::from_secs(10), "the applier took nothing");
            std::thread::yield_now();
        }
        assert_eq!(store.shared.file.get("c", b"1").unwrap(), Some(b"x".to_vec()));
        assert_eq!(store.read_all("a").unwrap(), vec![(b"3".to_vec(), b"x".to_vec())]);
        drop(store);
        assert!(!log::dir_of(&path).exists(), "a store closed cleanly leaves no log");
    }
}
