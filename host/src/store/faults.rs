//! Commits that fail at random, or every commit that writes a given table ([`FAULTS_VAR`]), for
//! testing what the server does when its store fails.

use parking_lot::Mutex;
use veltrix_sdk::{KeyRange, Record, Storage, StoreError, Write};

/// The environment variable that makes commits fail, for testing what the server does when its
/// store fails: `<chance>` (0 to 1) or `<chance>,<seed>` at random; `table=<name>` every commit
/// that writes to table `<name>` (from the first that does, the same writes are tried again
/// with every tick's, so every commit fails: a server whose disk failed in the middle of a tick).
pub const FAULTS_VAR: &str = "VELTRIX_STORE_FAULTS";

/// A store whose commits fail, before they reach the store ([`FAULTS_VAR`]): what the server
/// does when a commit fails (refuses, keeps the writes, tries again) is tested under load with
/// it.
pub struct FaultyStore<S> {
    inner: S,
    /// The chance of each commit failing, in 2^-64ths.
    threshold: u64,
    state: Mutex<u64>,
    /// A table whose writes fail every commit that has them.
    table: Option<String>,
}

impl<S: Storage> FaultyStore<S> {
    /// `inner` with the faults of `spec` (the value of [`FAULTS_VAR`]).
    pub fn new(inner: S, spec: &str) -> Result<Self, String> {
        if let Some(table) = spec.strip_prefix("table=") {
            return Ok(Self { inner, threshold: 0, state: Mutex::new(0), table: Some(table.to_owned()) });
        }
        let bad = || {
            format!(
                "{FAULTS_VAR}={spec:?}: expected a chance from 0 to 1, then optionally a comma and a seed; or table=<name>"
            )
        };
        let (chance, seed) = spec.split_once(',').unwrap_or((spec, "0"));
        let chance: f64 = chance.trim().parse().map_err(|_| bad())?;
        let seed: u64 = seed.trim().parse().map_err(|_| bad())?;
        if !(0.0..=1.0).contains(&chance) {
            return Err(bad());
        }
        Ok(Self { inner, threshold: (chance * u64::MAX as f64) as u64, state: Mutex::new(seed), table: None })
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

    fn read_ranges(&self, ranges: &[KeyRange<'_>]) -> Result<Vec<Vec<Record>>, StoreError> {
        self.inner.read_ranges(ranges)
    }

    fn commit(&self, writes: &[Write]) -> Result<(), StoreError> {
        if let Some(table) = &self.table
            && writes.iter().any(|w| *w.table == **table)
        {
            return Err(StoreError(format!("{FAULTS_VAR}: a commit that writes to table {table} was made to fail")));
        }
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
