//! The embedded store: redb, one file in the server's `universe/` (nothing to install). Each
//! commit is one write transaction, durable (fsync) when it returns.
//!
//! [`export`] and [`import`] move a whole store to and from a file in an engine-independent
//! format (JSON Lines, described in docs/storage.md): for backups, and for moving a universe
//! to another server or another engine.

use std::{
    collections::BTreeMap,
    io::BufRead,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use parking_lot::{Mutex, RwLock};
use redb::{Database, ReadableDatabase, ReadableTableMetadata, TableDefinition, TableHandle};
use serde::{Deserialize, Serialize, de::IgnoredAny};
use veltrix_sdk::{Record, Storage, StoreError, Write, rmp_serde};

/// The store's file name in `universe/`.
pub const FILE: &str = "veltrix.redb";

/// Every table holds byte keys and byte values; what they mean is their owner's business.
fn table(name: &str) -> TableDefinition<'_, &'static [u8], &'static [u8]> {
    TableDefinition::new(name)
}

/// redb behind the [`Storage`] trait.
///
/// After a failed commit the database is closed and opened again (redb refuses every later
/// transaction after an I/O error, "Previous I/O error occurred"): the commit's writes are still
/// the caller's, so a full disk that gets room again loses nothing.
pub struct RedbStore {
    /// `None` while it could not be opened again after a failed commit.
    db: RwLock<Option<Database>>,
    path: PathBuf,
    /// The file as messages name it (a copy being checked is named as its original).
    shown: String,
    /// When the last try to open it again failed: the next try waits [`REOPEN_EVERY`].
    reopen_failed: Mutex<Option<Instant>>,
}

/// How often a store that could not be opened again after a failed commit is tried again (an
/// open may scan the whole file).
const REOPEN_EVERY: Duration = Duration::from_secs(1);

/// What an owner does with a store redb cannot read.
pub const DAMAGED_ADVICE: &str = "the store file is damaged: stop the server, move the file away and restore the \
     last backup with `veltrix-server import FILE` (see \"When something goes wrong\" in docs/storage.md)";

impl RedbStore {
    /// Opens (or creates) the store file. A file that is not a redb database, is damaged (cut
    /// short, overwritten), or is locked by another server, is an error saying so and what to
    /// do; never a panic.
    pub fn open(path: &Path) -> Result<Self, String> {
        Self::open_as(path, path)
    }

    /// [`open`](Self::open), with `shown` for the file's name in messages.
    fn open_as(path: &Path, shown: &Path) -> Result<Self, String> {
        let shown = shown.display().to_string();
        let db = open_database(path, &shown)?;
        Ok(Self { db: RwLock::new(Some(db)), path: path.to_path_buf(), shown, reopen_failed: Mutex::new(None) })
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
        match open_database(&self.path, &self.shown) {
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

    /// The writes in one transaction.
    fn write(&self, db: &Database, writes: &[Write]) -> Result<(), StoreError> {
        // One table open per table; within a table the writes keep their order.
        let mut by_table: BTreeMap<&str, Vec<&Write>> = BTreeMap::new();
        for w in writes {
            by_table.entry(&w.table).or_default().push(w);
        }
        let txn = db.begin_write().map_err(|e| self.error("begin a write", e))?;
        for (name, writes) in by_table {
            let mut t = txn.open_table(table(name)).map_err(|e| self.error(&format!("table {name}"), e))?;
            for w in writes {
                match &w.value {
                    Some(v) => t.insert(w.key.as_slice(), v.as_slice()).map(drop),
                    None => t.remove(w.key.as_slice()).map(drop),
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
}

impl RedbStore {
    /// Closes `db`: redb writes as it closes, and may panic on a damaged file, which is not the
    /// server's end.
    fn close(&self, db: Database) {
        if let Err(panic) = crate::panics::catch(move || drop(db)) {
            tracing::error!("{}: closing the store: redb panicked: {panic}", self.shown);
        }
    }
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        if let Some(db) = self.db.get_mut().take() {
            self.close(db);
        }
    }
}

/// Opens the redb file, mapping each way it can fail (a panic included) to what it means for
/// an owner.
fn open_database(path: &Path, shown: &str) -> Result<Database, String> {
    let opened = crate::panics::catch(|| Database::create(path));
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

/// A table opened for reading.
type BytesTable = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

impl RedbStore {
    /// A table for reading; `None` when it does not exist (nothing written to it yet).
    fn open_read(&self, db: &Database, name: &str) -> Result<Option<BytesTable>, StoreError> {
        let txn = db.begin_read().map_err(|e| self.error("read", e))?;
        match txn.open_table(table(name)) {
            Ok(t) => Ok(Some(t)),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(self.error(&format!("table {name}"), e)),
        }
    }

    /// The records of a table within `range`, in key order.
    fn read<'a>(&self, name: &str, range: impl std::ops::RangeBounds<&'a [u8]>) -> Result<Vec<Record>, StoreError> {
        self.with_db(|db| {
            let Some(t) = self.open_read(db, name)? else { return Ok(Vec::new()) };
            let mut out = Vec::new();
            for entry in t.range(range).map_err(|e| self.error(&format!("table {name}"), e))? {
                let (k, v) = entry.map_err(|e| self.error(&format!("table {name}"), e))?;
                out.push((k.value().to_vec(), v.value().to_vec()));
            }
            Ok(out)
        })
    }
}

impl Storage for RedbStore {
    fn read_all(&self, name: &str) -> Result<Vec<Record>, StoreError> {
        self.read(name, ..)
    }

    fn read_range(&self, name: &str, from: &[u8], to: &[u8]) -> Result<Vec<Record>, StoreError> {
        if from >= to {
            return Ok(Vec::new());
        }
        self.read(name, from..to)
    }

    fn get(&self, name: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.with_db(|db| {
            let Some(t) = self.open_read(db, name)? else { return Ok(None) };
            Ok(t.get(key).map_err(|e| self.error(&format!("table {name}"), e))?.map(|v| v.value().to_vec()))
        })
    }

    fn commit(&self, writes: &[Write]) -> Result<(), StoreError> {
        // Closed by an earlier failure and not opened again since: now, or this commit fails.
        let closed = self.db.read().is_none();
        if closed {
            self.reopen(&mut self.db.write())?;
        }
        let result = self.with_db(|db| self.write(db, writes));
        let Err(e) = result else { return Ok(()) };
        // redb refuses every transaction after an I/O error: closed and opened again, for the
        // reads meanwhile and the next try.
        match self.reopen(&mut self.db.write()) {
            Ok(()) => Err(e),
            Err(reopen) => Err(StoreError(format!("{e}; {reopen}"))),
        }
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

/// The environment variable that makes commits fail at random, for testing what the server
/// does when its store fails: `<chance>` (0 to 1) or `<chance>,<seed>`.
pub const FAULTS_VAR: &str = "VELTRIX_STORE_FAULTS";

/// A store whose commits fail at random, before they reach the store ([`FAULTS_VAR`]): what
/// the server does when a commit fails (refuses, keeps the writes, tries again) is tested
/// under load with it.
pub struct FaultyStore<S> {
    inner: S,
    /// The chance of each commit failing, in 2^-64ths.
    threshold: u64,
    state: Mutex<u64>,
}

impl<S: Storage> FaultyStore<S> {
    /// `inner` with the faults of `spec` (the value of [`FAULTS_VAR`]).
    pub fn new(inner: S, spec: &str) -> Result<Self, String> {
        let bad =
            || format!("{FAULTS_VAR}={spec:?}: expected a chance from 0 to 1, then optionally a comma and a seed");
        let (chance, seed) = spec.split_once(',').unwrap_or((spec, "0"));
        let chance: f64 = chance.trim().parse().map_err(|_| bad())?;
        let seed: u64 = seed.trim().parse().map_err(|_| bad())?;
        if !(0.0..=1.0).contains(&chance) {
            return Err(bad());
        }
        Ok(Self { inner, threshold: (chance * u64::MAX as f64) as u64, state: Mutex::new(seed) })
    }
}

impl<S: Storage> Storage for FaultyStore<S> {
    fn read_all(&self, table: &str) -> Result<Vec<Record>, StoreError> {
        self.inner.read_all(table)
    }

    fn read_range(&self, table: &str, from: &[u8], to: &[u8]) -> Result<Vec<Record>, StoreError> {
        self.inner.read_range(table, from, to)
    }

    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(table, key)
    }

    fn commit(&self, writes: &[Write]) -> Result<(), StoreError> {
        let roll = {
            let mut state = self.state.lock();
            *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            crate::world::mix64(*state)
        };
        if roll < self.threshold {
            return Err(StoreError(format!("{FAULTS_VAR}: this commit was made to fail")));
        }
        self.inner.commit(writes)
    }

    fn tables(&self) -> Result<Vec<String>, StoreError> {
        self.inner.tables()
    }
}

/// What [`check`] found in a store.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// What was read.
    pub summary: Summary,
    /// Each problem on a line of its own: what is wrong, and where.
    pub problems: Vec<String>,
}

/// Checks the store file at `path` without changing it, on a copy in the temporary folder
/// (redb repairs what it opens and checks): redb's own integrity check (page checksums and
/// structure), then that every record of every table reads, its key and value each exactly one
/// MessagePack value (what the server writes). A record can still be wrong for its owner (a
/// field missing): the owner says so when it reads it.
pub fn check(path: &Path) -> Result<CheckReport, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: cannot open: {e}", path.display()))?;
    // The server holds the file locked (redb's lock): refused while it runs, and the file stays
    // as it is while it is copied.
    file.try_lock_shared().map_err(|_| {
        format!("{}: cannot check the store: it is in use (is another server running in this folder?)", path.display())
    })?;
    let copy = std::env::temp_dir().join(format!("veltrix-check-{}.redb", std::process::id()));
    std::fs::copy(path, &copy).map_err(|e| format!("{}: cannot copy it to {}: {e}", path.display(), copy.display()))?;
    drop(file);
    let report = check_copy(&copy, path);
    let _ = std::fs::remove_file(&copy);
    report
}

/// [`check`] of `copy`, a copy of `original`.
fn check_copy(copy: &Path, original: &Path) -> Result<CheckReport, String> {
    let store = RedbStore::open_as(copy, original)?;
    let mut report = CheckReport::default();
    let integrity = {
        let mut db = store.db.write();
        let db = db.as_mut().expect("just opened");
        crate::panics::catch(|| db.check_integrity())
    };
    match integrity {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => report
            .problems
            .push("redb's integrity check failed: the file's structure or checksums are damaged".to_string()),
        Ok(Err(e)) => report.problems.push(format!("redb's integrity check failed: {e}")),
        Err(panic) => report.problems.push(format!("redb's integrity check failed: redb panicked: {panic}")),
    }
    let tables = store.tables().map_err(|e| format!("cannot list the tables: {e}: {DAMAGED_ADVICE}"))?;
    for name in tables {
        let records = match store.read_all(&name) {
            Ok(records) => records,
            Err(e) => {
                report.problems.push(format!("table {name}: cannot be read: {e}"));
                continue;
            }
        };
        report.summary.tables += 1;
        report.summary.records += records.len();
        for (key, value) in &records {
            let shown = || match msgpack_as_json(key) {
                Some(json) => format!("key {json} (base64 {})", BASE64.encode(key)),
                None => format!("key (base64) {}", BASE64.encode(key)),
            };
            for (what, bytes) in [("key", key), ("value", value)] {
                if let Err(e) = one_msgpack_value(bytes) {
                    report.problems.push(format!("table {name}: {}: the {what} does not decode: {e}", shown()));
                }
            }
        }
    }
    Ok(report)
}

/// Whether `bytes` are exactly one MessagePack value.
fn one_msgpack_value(bytes: &[u8]) -> Result<(), String> {
    let mut de = rmp_serde::Deserializer::new(std::io::Cursor::new(bytes));
    IgnoredAny::deserialize(&mut de).map_err(|e| format!("not MessagePack ({e})"))?;
    match bytes.len() as u64 - de.position() {
        0 => Ok(()),
        more => Err(format!("{more} byte(s) after its MessagePack value")),
    }
}

/// The `Format` of an export's header line.
pub const EXPORT_FORMAT: &str = "veltrix-store";
/// The `Version` of the export format this server writes and reads.
pub const EXPORT_VERSION: u32 = 1;

/// How much an export or import moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub tables: usize,
    pub records: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        write!(f, "{} table{}, {} record{}", self.tables, plural(self.tables), self.records, plural(self.records))
    }
}

/// What [`import`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Imported {
    /// What the file held, now in the store.
    pub imported: Summary,
    /// What the store held before and was cleared (`replace` only).
    pub replaced: Summary,
}

/// The first line of an export.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct Header {
    format: String,
    version: u32,
    tables: usize,
    records: usize,
}

/// A record line as written: `KeyJson`/`ValueJson` only when the bytes are MessagePack that
/// JSON can show.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RecordOut<'a> {
    table: &'a str,
    key: String,
    value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_json: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_json: Option<serde_json::Value>,
}

/// A record line as read: only `Table`, `Key` and `Value` count; the JSON views are for people
/// and are ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordIn {
    #[serde(rename = "Table")]
    table: String,
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Value")]
    value: String,
    #[serde(rename = "KeyJson", default)]
    _key_json: Option<IgnoredAny>,
    #[serde(rename = "ValueJson", default)]
    _value_json: Option<IgnoredAny>,
}

/// `bytes` as JSON, when they are exactly one MessagePack value that JSON can hold (string map
/// keys, no binary).
fn msgpack_as_json(bytes: &[u8]) -> Option<serde_json::Value> {
    let mut de = rmp_serde::Deserializer::new(std::io::Cursor::new(bytes));
    let value = serde_json::Value::deserialize(&mut de).ok()?;
    (de.position() == bytes.len() as u64).then_some(value)
}

/// Writes every table of `store` to `out`: a header line, then one line per record, tables and
/// keys in byte order, so the same store always gives the same bytes. The format is in
/// docs/storage.md.
pub fn export(store: &dyn Storage, mut out: impl std::io::Write) -> Result<Summary, String> {
    let mut tables = Vec::new();
    let mut summary = Summary::default();
    for name in store.tables().map_err(|e| e.to_string())? {
        let mut records = store.read_all(&name).map_err(|e| e.to_string())?;
        if records.is_empty() {
            continue;
        }
        records.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        summary.tables += 1;
        summary.records += records.len();
        tables.push((name, records));
    }
    tables.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let write_error = |e: std::io::Error| format!("cannot write the export: {e}");
    let header = Header {
        format: EXPORT_FORMAT.into(),
        version: EXPORT_VERSION,
        tables: summary.tables,
        records: summary.records,
    };
    serde_json::to_writer(&mut out, &header).map_err(|e| format!("cannot write the export: {e}"))?;
    out.write_all(b"\n").map_err(write_error)?;
    for (name, records) in &tables {
        for (key, value) in records {
            let line = RecordOut {
                table: name,
                key: BASE64.encode(key),
                value: BASE64.encode(value),
                key_json: msgpack_as_json(key),
                value_json: msgpack_as_json(value),
            };
            serde_json::to_writer(&mut out, &line).map_err(|e| format!("cannot write the export: {e}"))?;
            out.write_all(b"\n").map_err(write_error)?;
        }
    }
    out.flush().map_err(write_error)?;
    Ok(summary)
}

/// [`export`] into the file `path`, by way of `<path>.partial` renamed when complete and on
/// disk: a failed export leaves an earlier file of that name as it was.
pub fn export_to_file(store: &dyn Storage, path: &Path) -> Result<Summary, String> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    let result = (|| {
        let file = std::fs::File::create(&partial).map_err(|e| format!("{}: cannot create: {e}", partial.display()))?;
        let mut out = std::io::BufWriter::new(file);
        let summary = export(store, &mut out).map_err(|e| format!("{}: {e}", partial.display()))?;
        let file = out.into_inner().map_err(|e| format!("{}: cannot write: {}", partial.display(), e.error()))?;
        file.sync_all().map_err(|e| format!("{}: cannot write: {e}", partial.display()))?;
        std::fs::rename(&partial, path)
            .map_err(|e| format!("{}: cannot rename to {}: {e}", partial.display(), path.display()))?;
        Ok(summary)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// A serde_json error without its "at line 1 column N" (each line is parsed on its own; the
/// caller names the line).
fn json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let location = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&location) {
        Some(message) => format!("column {}: {message}", e.column()),
        None => text,
    }
}

const HEADER_SHAPE: &str = r#"the header {"Format": "veltrix-store", "Version": 1, "Tables": N, "Records": N}"#;
const RECORD_SHAPE: &str = r#"a record {"Table": name, "Key": base64, "Value": base64}"#;

/// An imported table: key, then value and the line it came from.
type ImportedTable = BTreeMap<Vec<u8>, (Vec<u8>, usize)>;

/// Reads an export (see [`export`]) and writes it into `store` in one commit: all or nothing.
///
/// A store that already holds any table is refused unless `replace` is set, in which case its
/// tables are cleared in that same commit. The whole file is read and checked before anything
/// is written: its header (format, version, counts), every line (the error names its line
/// number and what was expected) and that no key appears twice in a table.
pub fn import(store: &dyn Storage, input: impl BufRead, replace: bool) -> Result<Imported, String> {
    let existing = store.tables().map_err(|e| e.to_string())?;
    if !existing.is_empty() && !replace {
        return Err(format!(
            "the store is not empty (it holds {}: {}); nothing was imported: import into an empty store, or give \
             --replace to clear it first",
            if existing.len() == 1 { "1 table".to_string() } else { format!("{} tables", existing.len()) },
            existing.join(", ")
        ));
    }

    let mut header: Option<Header> = None;
    let mut tables: BTreeMap<String, ImportedTable> = BTreeMap::new();
    let mut records = 0;
    let mut last_line = 0;
    for (index, line) in input.split(b'\n').enumerate() {
        let number = index + 1;
        last_line = number;
        let line = line.map_err(|e| format!("line {number}: cannot read: {e}"))?;
        let line = std::str::from_utf8(&line).map_err(|e| format!("line {number}: not UTF-8 text: {e}"))?;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let Some(header) = &header else {
            header = Some(parse_header(line).map_err(|e| format!("line {number}: {e}"))?);
            continue;
        };
        let record: RecordIn = serde_json::from_str(line)
            .map_err(|e| format!("line {number}: expected {RECORD_SHAPE}: {}", json_error(&e)))?;
        if record.table.is_empty() {
            return Err(format!("line {number}: expected {RECORD_SHAPE}: the Table name is empty"));
        }
        let key = BASE64
            .decode(&record.key)
            .map_err(|e| format!("line {number}: table {}: the Key is not base64: {e}", record.table))?;
        let value = BASE64
            .decode(&record.value)
            .map_err(|e| format!("line {number}: table {}: the Value is not base64: {e}", record.table))?;
        records += 1;
        if records > header.records {
            return Err(format!(
                "line {number}: the header announced {} records, this is record {records}",
                header.records
            ));
        }
        let table = tables.entry(record.table.clone()).or_default();
        if let Some((_, first)) = table.get(&key) {
            return Err(format!("line {number}: table {}: this Key was already given on line {first}", record.table));
        }
        table.insert(key, (value, number));
    }
    let Some(header) = header else {
        return Err(format!("line 1: expected {HEADER_SHAPE}: the file is empty"));
    };
    let announced = Summary { tables: header.tables, records: header.records };
    let found = Summary { tables: tables.len(), records };
    if found.records < announced.records {
        return Err(format!(
            "line {}: the file ends early: the header announced {announced}, the file holds {found} (a truncated copy?)",
            last_line + 1
        ));
    }
    if found.tables != announced.tables {
        return Err(format!("line 1: the header announced {announced}, the records are {found}"));
    }

    let mut writes = Vec::new();
    let mut replaced = Summary::default();
    for name in &existing {
        let table: Arc<str> = Arc::from(name.as_str());
        let old = store.read_all(name).map_err(|e| e.to_string())?;
        replaced.tables += usize::from(!old.is_empty());
        replaced.records += old.len();
        writes.extend(old.into_iter().map(|(key, _)| Write { table: Arc::clone(&table), key, value: None }));
    }
    for (name, records) in tables {
        let table: Arc<str> = Arc::from(name);
        writes.extend(records.into_iter().map(|(key, (value, _))| Write {
            table: Arc::clone(&table),
            key,
            value: Some(value),
        }));
    }
    store.commit(&writes).map_err(|e| format!("nothing was imported: {e}"))?;
    Ok(Imported { imported: Summary { tables: header.tables, records: header.records }, replaced })
}

/// The header line: its format and version checked first (a later version may have other
/// fields), then its shape.
fn parse_header(line: &str) -> Result<Header, String> {
    let fields: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(line).map_err(|e| format!("expected {HEADER_SHAPE}: {}", json_error(&e)))?;
    match fields.get("Format") {
        Some(serde_json::Value::String(f)) if f == EXPORT_FORMAT => {}
        Some(other) => {
            return Err(format!("not a Veltrix store export: Format is {other}, expected \"{EXPORT_FORMAT}\""));
        }
        None => return Err(format!("expected {HEADER_SHAPE}: missing field `Format`")),
    }
    match fields.get("Version") {
        Some(v) if v.as_u64() == Some(u64::from(EXPORT_VERSION)) => {}
        Some(other) => {
            return Err(format!(
                "export format version {other} is not supported: this server reads version {EXPORT_VERSION}"
            ));
        }
        None => return Err(format!("expected {HEADER_SHAPE}: missing field `Version`")),
    }
    serde_json::from_value(serde_json::Value::Object(fields))
        .map_err(|e| format!("expected {HEADER_SHAPE}: {}", json_error(&e)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn put(table: &str, key: &[u8], value: &[u8]) -> Write {
        Write { table: Arc::from(table), key: key.to_vec(), value: Some(value.to_vec()) }
    }

    #[test]
    fn commits_survive_reopening_and_deletes_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        {
            let store = RedbStore::open(&path).unwrap();
            store.commit(&[put("a", b"1", b"one"), put("b", b"2", b"two"), put("a", b"3", b"three")]).unwrap();
            let delete = Write { table: Arc::from("a"), key: b"1".to_vec(), value: None };
            store.commit(&[put("a", b"1", b"uno"), delete]).unwrap();
        }
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(store.read_all("a").unwrap(), vec![(b"3".to_vec(), b"three".to_vec())]);
        assert_eq!(store.get("b", b"2").unwrap(), Some(b"two".to_vec()));
        assert_eq!(store.get("c", b"2").unwrap(), None);
        assert!(store.read_all("missing").unwrap().is_empty());
        assert_eq!(store.tables().unwrap(), ["a", "b"]);
    }

    #[test]
    fn a_table_whose_last_key_is_removed_is_no_longer_listed() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join(FILE)).unwrap();
        store.commit(&[put("a", b"1", b"one"), put("b", b"1", b"one")]).unwrap();
        store.commit(&[Write { table: Arc::from("a"), key: b"1".to_vec(), value: None }]).unwrap();
        // Removing a key that was never there does not make a table either.
        store.commit(&[Write { table: Arc::from("c"), key: b"1".to_vec(), value: None }]).unwrap();
        assert_eq!(store.tables().unwrap(), ["b"]);
    }

    /// A store with what the server keeps: MessagePack keys and named-map values, and bytes
    /// that are not MessagePack at all.
    fn sample() -> Vec<Write> {
        let ids: Arc<str> = Arc::from("veltrix/player-ids");
        let hunts: Arc<str> = Arc::from("Veltrix:TreasureHunt/hunts");
        let mut changes = veltrix_sdk::Changes::default();
        changes.put(&ids, "bob", &2u64);
        changes.put(&ids, "alice", &1u64);
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Hunt {
            seed: u64,
            next_seq: u64,
        }
        changes.put(&hunts, "Test", &Hunt { seed: 5, next_seq: 3 });
        let mut writes = changes.writes().to_vec();
        writes.push(put("raw", &[0xc1, 0xff, 0x00], &[0xff, 0xfe]));
        writes.push(put("raw", b"", b""));
        writes
    }

    fn redb(dir: &tempfile::TempDir, name: &str) -> RedbStore {
        RedbStore::open(&dir.path().join(name)).unwrap()
    }

    fn export_bytes(store: &dyn Storage) -> (Vec<u8>, Summary) {
        let mut out = Vec::new();
        let summary = export(store, &mut out).unwrap();
        (out, summary)
    }

    fn contents(store: &dyn Storage) -> Vec<(String, Vec<Record>)> {
        store.tables().unwrap().into_iter().map(|t| (t.clone(), store.read_all(&t).unwrap())).collect()
    }

    #[test]
    fn export_then_import_into_a_fresh_store_gives_the_same_tables() {
        let dir = tempfile::tempdir().unwrap();
        let from = redb(&dir, "from.redb");
        from.commit(&sample()).unwrap();
        let (file, summary) = export_bytes(&from);
        assert_eq!(summary, Summary { tables: 3, records: 5 });
        assert_eq!(summary.to_string(), "3 tables, 5 records");

        let to = redb(&dir, "to.redb");
        let done = import(&to, file.as_slice(), false).unwrap();
        assert_eq!(done, Imported { imported: summary, replaced: Summary::default() });
        assert_eq!(contents(&to), contents(&from));
        assert_eq!(export_bytes(&to).0, file, "an imported store exports to the same bytes");
        // And the reverse: into another engine.
        let memory = veltrix_sdk::MemoryStore::default();
        import(&memory, file.as_slice(), false).unwrap();
        assert_eq!(contents(&memory), contents(&from));
    }

    #[test]
    fn the_export_is_deterministic_and_engine_independent() {
        let dir = tempfile::tempdir().unwrap();
        let store = redb(&dir, "a.redb");
        store.commit(&sample()).unwrap();
        let (first, _) = export_bytes(&store);
        assert_eq!(export_bytes(&store).0, first);
        // The same records written in another order, into another engine.
        let memory = veltrix_sdk::MemoryStore::default();
        let mut writes = sample();
        writes.reverse();
        memory.commit(&writes).unwrap();
        assert_eq!(export_bytes(&memory).0, first);

        let text = String::from_utf8(first).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], r#"{"Format":"veltrix-store","Version":1,"Tables":3,"Records":5}"#);
        assert_eq!(lines.len(), 6);
        assert!(text.ends_with('\n'));
        // Tables in order, keys in byte order; the JSON views where the bytes are MessagePack.
        assert_eq!(
            lines[1],
            r#"{"Table":"Veltrix:TreasureHunt/hunts","Key":"pFRlc3Q=","Value":"gqRTZWVkBadOZXh0U2VxAw==","KeyJson":"Test","ValueJson":{"NextSeq":3,"Seed":5}}"#
        );
        assert_eq!(lines[2], r#"{"Table":"raw","Key":"","Value":""}"#);
        assert_eq!(lines[3], r#"{"Table":"raw","Key":"wf8A","Value":"//4="}"#);
        // Byte order of the encoding: "bob" (0xa3 b o b) before "alice" (0xa5 a l i c e).
        assert_eq!(
            lines[4],
            r#"{"Table":"veltrix/player-ids","Key":"o2JvYg==","Value":"Ag==","KeyJson":"bob","ValueJson":2}"#
        );
        assert_eq!(
            lines[5],
            r#"{"Table":"veltrix/player-ids","Key":"pWFsaWNl","Value":"AQ==","KeyJson":"alice","ValueJson":1}"#
        );
    }

    #[test]
    fn an_empty_store_exports_a_header_only_and_imports_as_nothing() {
        let memory = veltrix_sdk::MemoryStore::default();
        let (file, summary) = export_bytes(&memory);
        assert_eq!(summary, Summary::default());
        assert_eq!(file, b"{\"Format\":\"veltrix-store\",\"Version\":1,\"Tables\":0,\"Records\":0}\n");
        let dir = tempfile::tempdir().unwrap();
        let store = redb(&dir, "a.redb");
        assert_eq!(import(&store, file.as_slice(), false).unwrap().imported, Summary::default());
        assert!(store.tables().unwrap().is_empty());
    }

    #[test]
    fn import_trusts_key_and_value_only() {
        let memory = veltrix_sdk::MemoryStore::default();
        let file = concat!(
            r#"{"Format":"veltrix-store","Version":1,"Tables":1,"Records":1}"#,
            "\r\n\n",
            r#"{"Table":"t","Key":"oWs=","Value":"AQ==","KeyJson":"not k","ValueJson":{"lies":true}}"#,
        );
        import(&memory, file.as_bytes(), false).unwrap();
        assert_eq!(memory.read_all("t").unwrap(), [(vec![0xa1, b'k'], vec![1])]);
    }

    /// The error for `file`, checking that nothing was written.
    fn refused(file: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let store = redb(&dir, "a.redb");
        let err = import(&store, file.as_bytes(), false).expect_err("refused");
        assert!(store.tables().unwrap().is_empty(), "nothing is written: {err}");
        err
    }

    #[test]
    fn a_malformed_file_is_refused_naming_the_line_and_what_was_expected() {
        let header = r#"{"Format":"veltrix-store","Version":1,"Tables":1,"Records":2}"#;
        let good = r#"{"Table":"t","Key":"AQ==","Value":"AQ=="}"#;
        let case = |lines: &[&str]| refused(&lines.join("\n"));
        assert_eq!(
            case(&[header, good, r#"{"Table":"t","Value":"AQ=="}"#]),
            r#"line 3: expected a record {"Table": name, "Key": base64, "Value": base64}: column 28: missing field `Key`"#
        );
        assert_eq!(
            case(&[header, good, "{not json"]),
            r#"line 3: expected a record {"Table": name, "Key": base64, "Value": base64}: column 2: key must be a string"#
        );
        let err = case(&[header, good, r#"{"Table":"t","Key":"A!==","Value":"AQ=="}"#]);
        assert!(err.starts_with("line 3: table t: the Key is not base64: "), "{err}");
        let err = case(&[header, good, r#"{"Table":"t","Key":"Ag==","Value":"AQ==","Extra":1}"#]);
        assert!(err.starts_with("line 3: expected a record") && err.contains("unknown field `Extra`"), "{err}");
        assert_eq!(case(&[header, good, good]), "line 3: table t: this Key was already given on line 2");
        assert_eq!(
            case(&[header, good]),
            "line 3: the file ends early: the header announced 1 table, 2 records, the file holds 1 table, 1 record (a truncated copy?)"
        );
        assert_eq!(
            case(&[
                header,
                good,
                good.replace("AQ==\",\"V", "Ag==\",\"V").as_str(),
                good.replace("\"t\"", "\"u\"").as_str()
            ]),
            "line 4: the header announced 2 records, this is record 3"
        );
        assert_eq!(
            case(&[r#"{"Format":"veltrix-store","Version":1,"Tables":2,"Records":1}"#, good]),
            "line 1: the header announced 2 tables, 1 record, the records are 1 table, 1 record"
        );
    }

    #[test]
    fn the_header_is_checked_first() {
        assert_eq!(
            refused(""),
            r#"line 1: expected the header {"Format": "veltrix-store", "Version": 1, "Tables": N, "Records": N}: the file is empty"#
        );
        assert_eq!(
            refused(r#"{"Format":"sqlite","Version":1}"#),
            r#"line 1: not a Veltrix store export: Format is "sqlite", expected "veltrix-store""#
        );
        assert_eq!(
            refused(r#"{"Format":"veltrix-store","Version":2,"Tables":0,"Records":0,"New":true}"#),
            "line 1: export format version 2 is not supported: this server reads version 1"
        );
        let err = refused(r#"{"Format":"veltrix-store","Version":1,"Tables":0}"#);
        assert!(err.starts_with("line 1: expected the header") && err.ends_with("missing field `Records`"), "{err}");
        let err = refused(r#"{"Table":"t","Key":"AQ==","Value":"AQ=="}"#);
        assert!(err.starts_with("line 1: expected the header") && err.ends_with("missing field `Format`"), "{err}");
        assert!(refused("\u{feff}x\n").starts_with("line 1: expected the header"));
        assert!(refused("\u{ff}").starts_with("line 1: expected the header"));
        let dir = tempfile::tempdir().unwrap();
        let err = import(&redb(&dir, "a.redb"), &[0xff, 0xfe, b'\n'][..], false).unwrap_err();
        assert!(err.starts_with("line 1: not UTF-8 text"), "{err}");
    }

    #[test]
    fn a_store_that_holds_anything_is_refused_without_replace() {
        let dir = tempfile::tempdir().unwrap();
        let source = veltrix_sdk::MemoryStore::default();
        source.commit(&[put("new", b"k", b"v")]).unwrap();
        let (file, _) = export_bytes(&source);
        let store = redb(&dir, "a.redb");
        store.commit(&[put("old", b"1", b"one"), put("veltrix/player-ids", b"2", b"two")]).unwrap();
        let before = contents(&store);
        let err = import(&store, file.as_slice(), false).unwrap_err();
        assert_eq!(
            err,
            "the store is not empty (it holds 2 tables: old, veltrix/player-ids); nothing was imported: import into \
             an empty store, or give --replace to clear it first"
        );
        assert_eq!(contents(&store), before);
    }

    #[test]
    fn replace_clears_every_table_in_the_same_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let source = veltrix_sdk::MemoryStore::default();
        source.commit(&[put("kept", b"1", b"new one"), put("new", b"k", b"v")]).unwrap();
        let (file, _) = export_bytes(&source);
        let store = redb(&dir, "a.redb");
        store.commit(&[put("gone", b"1", b"one"), put("kept", b"1", b"old one"), put("kept", b"2", b"two")]).unwrap();

        // A malformed file changes nothing, replace or not.
        let before = contents(&store);
        let truncated = &file[..file.len() - 5];
        assert!(import(&store, truncated, true).unwrap_err().starts_with("line 3: expected a record"));
        assert_eq!(contents(&store), before);

        let done = import(&store, file.as_slice(), true).unwrap();
        assert_eq!(done.imported, Summary { tables: 2, records: 2 });
        assert_eq!(done.replaced, Summary { tables: 2, records: 3 });
        assert_eq!(contents(&store), contents(&source));
        assert_eq!(export_bytes(&store).0, file);
    }

    #[test]
    fn export_to_file_replaces_the_file_only_when_complete() {
        let dir = tempfile::tempdir().unwrap();
        let store = redb(&dir, "a.redb");
        store.commit(&sample()).unwrap();
        let path = dir.path().join("backup.jsonl");
        std::fs::write(&path, "older backup").unwrap();
        let summary = export_to_file(&store, &path).unwrap();
        assert_eq!(summary, Summary { tables: 3, records: 5 });
        assert_eq!(std::fs::read(&path).unwrap(), export_bytes(&store).0);
        assert!(!dir.path().join("backup.jsonl.partial").exists());
        let err = export_to_file(&store, &dir.path().join("missing/backup.jsonl")).unwrap_err();
        assert!(err.contains("missing/backup.jsonl.partial: cannot create"), "{err}");
    }

    #[test]
    fn ranges_follow_the_key_order_of_encoded_sequence_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let store = veltrix_sdk::Store(Arc::new(RedbStore::open(&dir.path().join(FILE)).unwrap()));
        let mut changes = veltrix_sdk::Changes::default();
        let table: Arc<str> = Arc::from("log");
        // MessagePack's smallest encodings keep unsigned order: 127 (1 byte) < 128 (2) < 70000 (5).
        for seq in [1u64, 127, 128, 255, 256, 70_000, 5_000_000_000] {
            changes.put(&table, &("Hunt", seq), &seq);
        }
        changes.put(&table, &("Other", 2u64), &2u64);
        store.0.commit(changes.writes()).unwrap();
        let got: Vec<((String, u64), u64)> =
            store.load_range("log", &("Hunt".to_string(), 2), &("Hunt".to_string(), u64::MAX)).unwrap();
        let seqs: Vec<u64> = got.iter().map(|(_, v)| *v).collect();
        assert_eq!(seqs, [127, 128, 255, 256, 70_000, 5_000_000_000]);
        let memory = veltrix_sdk::MemoryStore::default();
        memory.commit(changes.writes()).unwrap();
        let from = veltrix_sdk::rmp_serde::to_vec(&("Hunt", 2u64)).unwrap();
        let to = veltrix_sdk::rmp_serde::to_vec(&("Hunt", u64::MAX)).unwrap();
        assert_eq!(memory.read_range("log", &from, &to).unwrap(), store.0.read_range("log", &from, &to).unwrap());
    }

    #[test]
    fn a_file_that_is_not_a_store_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        std::fs::write(&path, b"not a database, just some text that is long enough to be read").unwrap();
        let err = RedbStore::open(&path).err().expect("refused");
        assert!(err.contains("cannot open the store"), "{err}");
    }

    /// A store with `n` records of 200 bytes in table `t` (several pages), closed.
    fn filled(path: &Path, n: u32) {
        let store = RedbStore::open(path).unwrap();
        let writes: Vec<Write> = (0..n)
            .map(|i| {
                let mut changes = veltrix_sdk::Changes::default();
                changes.put(&Arc::from("t"), &i, &vec![7u8; 200]);
                changes.writes()[0].clone()
            })
            .collect();
        store.commit(&writes).unwrap();
    }

    #[test]
    fn a_store_cut_short_is_a_clear_error_never_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        filled(&path, 2000);
        let len = std::fs::metadata(&path).unwrap().len();
        for cut in [len / 2, len / 3, 4096, 100] {
            let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            file.set_len(cut).unwrap();
            drop(file);
            match RedbStore::open(&path) {
                Err(e) => {
                    assert!(e.starts_with(&format!("{}: cannot open the store: ", path.display())), "{e}");
                    assert!(e.contains("damaged") && e.contains("veltrix-server import"), "cut to {cut}: {e}");
                }
                // redb may take a file cut short for one it can repair: then whatever is read is
                // an answer or an error, never a panic.
                Ok(store) => {
                    let _ = store.read_all("t");
                    let _ = store.tables();
                }
            }
        }
    }

    #[test]
    fn check_names_a_record_that_does_not_decode_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        {
            let store = RedbStore::open(&path).unwrap();
            let mut changes = veltrix_sdk::Changes::default();
            changes.put(&Arc::from("players"), &7u64, &"a good record");
            changes.put(&Arc::from("players"), &8u64, &"damaged");
            changes.put(&Arc::from("ids"), "bob", &8u64);
            let mut writes = changes.writes().to_vec();
            // An array of 2 holding 1 value; a string value followed by a stray byte.
            writes[1].value = Some(vec![0x92, 0x01]);
            writes[2].value = Some(vec![0x08, 0x00]);
            store.commit(&writes).unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let report = check(&path).unwrap();
        assert_eq!(report.summary, Summary { tables: 2, records: 3 });
        assert_eq!(report.problems.len(), 2, "{:#?}", report.problems);
        assert_eq!(
            report.problems[0],
            r#"table ids: key "bob" (base64 o2JvYg==): the value does not decode: 1 byte(s) after its MessagePack value"#
        );
        assert!(
            report.problems[1]
                .starts_with("table players: key 8 (base64 CA==): the value does not decode: not MessagePack ("),
            "{}",
            report.problems[1]
        );
        assert!(std::fs::read(&path).unwrap() == before, "check changes nothing");

        // Bytes overwritten in the file where the record lies: redb's checksums tell.
        let at = before.windows(7).position(|w| w == b"a good ").expect("the record is in the file");
        let mut damaged = before.clone();
        damaged[at..at + 7].copy_from_slice(b"\xff\x13\x37\x00\xc1\xc1\xc1");
        std::fs::write(&path, &damaged).unwrap();
        let report = check(&path).unwrap();
        assert!(report.problems[0].starts_with("redb's integrity check failed"), "{:#?}", report.problems);
        assert!(std::fs::read(&path).unwrap() == damaged, "check changes nothing");
    }

    #[test]
    fn faults_fail_commits_at_the_chance_given() {
        let faulty = FaultyStore::new(veltrix_sdk::MemoryStore::default(), "0.25,7").unwrap();
        let failed = (0..4000).filter(|_| faulty.commit(&[put("t", b"k", b"v")]).is_err()).count();
        assert!((800..1200).contains(&failed), "{failed} of 4000 failed");
        assert_eq!(faulty.read_all("t").unwrap().len(), 1);
        assert!(FaultyStore::new(veltrix_sdk::MemoryStore::default(), "1.5").is_err());
        assert!(FaultyStore::new(veltrix_sdk::MemoryStore::default(), "lots").is_err());
        let never = FaultyStore::new(veltrix_sdk::MemoryStore::default(), "0").unwrap();
        assert!((0..100).all(|_| never.commit(&[]).is_ok()));
    }
}
