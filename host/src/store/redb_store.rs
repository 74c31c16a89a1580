//! redb behind the sdk's [`Storage`] trait: one file, each commit one durable transaction; a
//! file redb cannot read is an error, never a panic.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use parking_lot::{Mutex, RwLock};
use redb::{Database, ReadableDatabase, ReadableTableMetadata, TableDefinition, TableHandle};
use veltrix_sdk::{KeyRange, Record, Storage, StoreError, Write};

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
    pub(super) db: RwLock<Option<Database>>,
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
    pub(super) fn open_as(path: &Path, shown: &Path) -> Result<Self, String> {
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

    fn read_ranges(&self, ranges: &[KeyRange<'_>]) -> Result<Vec<Vec<Record>>, StoreError> {
        self.with_db(|db| {
            let txn = db.begin_read().map_err(|e| self.error("read", e))?;
            let mut out = Vec::with_capacity(ranges.len());
            for range in ranges {
                let mut records = Vec::new();
                let t = match txn.open_table(table(range.table)) {
                    Ok(t) => Some(t),
                    Err(redb::TableError::TableDoesNotExist(_)) => None,
                    Err(e) => return Err(self.error(&format!("table {}", range.table), e)),
                };
                if let Some(t) = t.filter(|_| range.from < range.to) {
                    let read = |e| self.error(&format!("table {}", range.table), e);
                    for entry in t.range(range.from..range.to).map_err(read)? {
                        let (k, v) = entry.map_err(read)?;
                        records.push((k.value().to_vec(), v.value().to_vec()));
                    }
                }
                out.push(records);
            }
            Ok(out)
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
