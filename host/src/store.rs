//! The embedded store: redb, one file in the server's `universe/` (nothing to install). Each
//! commit is one write transaction, durable (fsync) when it returns.

use std::{collections::BTreeMap, path::Path};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableHandle};
use veltrix_sdk::{Record, Storage, StoreError, Write};

/// The store's file name in `universe/`.
pub const FILE: &str = "veltrix.redb";

/// Every table holds byte keys and byte values; what they mean is their owner's business.
fn table(name: &str) -> TableDefinition<'_, &'static [u8], &'static [u8]> {
    TableDefinition::new(name)
}

/// redb behind the [`Storage`] trait.
pub struct RedbStore {
    db: Database,
    path: String,
}

impl RedbStore {
    /// Opens (or creates) the store file. A file that is not a redb database, or is locked by
    /// another server, is an error saying so.
    pub fn open(path: &Path) -> Result<Self, String> {
        let db = Database::create(path).map_err(|e| {
            format!("{}: cannot open the store: {e} (is another server running in this folder?)", path.display())
        })?;
        Ok(Self { db, path: path.display().to_string() })
    }

    fn error(&self, what: &str, e: impl std::fmt::Display) -> StoreError {
        StoreError(format!("{}: {what}: {e}", self.path))
    }
}

impl Storage for RedbStore {
    fn read_all(&self, name: &str) -> Result<Vec<Record>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.error("read", e))?;
        let t = match txn.open_table(table(name)) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.error(&format!("table {name}"), e)),
        };
        let mut out = Vec::new();
        for entry in t.iter().map_err(|e| self.error(&format!("table {name}"), e))? {
            let (k, v) = entry.map_err(|e| self.error(&format!("table {name}"), e))?;
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn get(&self, name: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.error("read", e))?;
        let t = match txn.open_table(table(name)) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.error(&format!("table {name}"), e)),
        };
        Ok(t.get(key).map_err(|e| self.error(&format!("table {name}"), e))?.map(|v| v.value().to_vec()))
    }

    fn commit(&self, writes: &[Write]) -> Result<(), StoreError> {
        // One table open per table; within a table the writes keep their order.
        let mut by_table: BTreeMap<&str, Vec<&Write>> = BTreeMap::new();
        for w in writes {
            by_table.entry(&w.table).or_default().push(w);
        }
        let txn = self.db.begin_write().map_err(|e| self.error("begin a write", e))?;
        for (name, writes) in by_table {
            let mut t = txn.open_table(table(name)).map_err(|e| self.error(&format!("table {name}"), e))?;
            for w in writes {
                match &w.value {
                    Some(v) => t.insert(w.key.as_slice(), v.as_slice()).map(drop),
                    None => t.remove(w.key.as_slice()).map(drop),
                }
                .map_err(|e| self.error(&format!("table {name}"), e))?;
            }
        }
        txn.commit().map_err(|e| self.error("commit", e))
    }

    fn tables(&self) -> Result<Vec<String>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.error("read", e))?;
        let mut names: Vec<String> =
            txn.list_tables().map_err(|e| self.error("list tables", e))?.map(|t| t.name().to_string()).collect();
        names.sort();
        Ok(names)
    }
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
    fn a_file_that_is_not_a_store_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        std::fs::write(&path, b"not a database, just some text that is long enough to be read").unwrap();
        let err = RedbStore::open(&path).err().expect("refused");
        assert!(err.contains("cannot open the store"), "{err}");
    }
}
