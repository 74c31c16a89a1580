//! The embedded store: redb, one file in the server's `universe/` (nothing to install), with
//! its write-ahead log beside it. Each commit is one record of the log, durable (fdatasync)
//! when it returns; redb takes the records after, several commits in one transaction.
//!
//! One job per file: [`redb_store`] (redb behind the sdk's `Storage` trait, the applier thread
//! between the log and the file, the file opened again after a failed write), [`log`] (the
//! log's segments: appending, reading back at start, removing what the file holds),
//! [`transfer`] ([`export`] and [`import`] move a whole store to and from a file in an
//! engine-independent format, JSON Lines, described in docs/storage.md: for backups, and for
//! moving a universe to another server or another engine), [`check`] (the integrity check of
//! `veltrix-server check`), [`faults`] (commits made to fail at random, for tests).

pub mod check;
pub mod faults;
pub mod log;
pub mod redb_store;
pub mod transfer;

pub use check::{CheckReport, check};
pub use faults::{FAULTS_VAR, FaultyStore};
pub use redb_store::{DAMAGED_ADVICE, DEFAULT_CACHE_BYTES, FILE, RedbStore};
pub use transfer::{EXPORT_FORMAT, EXPORT_VERSION, Imported, Summary, export, export_to_file, import};

#[cfg(test)]
mod tests;
