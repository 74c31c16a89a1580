//! Storage: what the host and its mods keep across restarts.
//!
//! A [`Storage`] holds named tables of byte keys and values. Systems never write to it
//! directly: during a tick they record their writes in the [`Changes`] resource, and at the
//! start of `PostTick` the host commits all of the tick's changes in one durable transaction,
//! BEFORE any message of that tick leaves the server (saved before announced). If the commit
//! fails, the tick's messages are held (its refusals go out), the changes are kept and retried
//! with the next tick's, the held messages go out once that works, and [`StoreHealth`] says
//! so: systems that grant anything refuse until the store is writable again.
//!
//! At start, mods read their tables through the [`Store`] resource. Table names are namespaced
//! by their owner: `Veltrix:TreasureHunt/players`.

use std::sync::Arc;

use bevy_ecs::resource::Resource;
use serde::{Serialize, de::DeserializeOwned};

/// Why the store could not do something: the message names the file and the cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

/// A key and its value, as stored.
pub type Record = (Vec<u8>, Vec<u8>);

/// One write: a value for a key of a table, or (`None`) the key's removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub table: Arc<str>,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// A store of named tables. The embedded default is redb, in the server's `universe/`;
/// another engine (a networked one, for several servers) implements the same trait.
pub trait Storage: Send + Sync + 'static {
    /// Every key and value of `table`, in key order (an unknown table is empty).
    fn read_all(&self, table: &str) -> Result<Vec<Record>, StoreError>;

    /// The keys from `from` (included) to `to` (excluded) of `table`, and their values, in key
    /// order.
    fn read_range(&self, table: &str, from: &[u8], to: &[u8]) -> Result<Vec<Record>, StoreError>;

    /// One key's value.
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// The records of each of `ranges` (as [`Storage::read_range`] reads one), all read in one
    /// transaction: as one commit left them.
    fn read_ranges(&self, ranges: &[KeyRange<'_>]) -> Result<Vec<Vec<Record>>, StoreError>;

    /// Applies `writes` in order, all or nothing, durably (on disk when this returns `Ok`).
    fn commit(&self, writes: &[Write]) -> Result<(), StoreError>;

    /// The names of the tables that hold anything, sorted.
    fn tables(&self) -> Result<Vec<String>, StoreError>;
}

/// The keys of `table` from `from` (included) to `to` (excluded).
#[derive(Debug, Clone, Copy)]
pub struct KeyRange<'a> {
    pub table: &'a str,
    pub from: &'a [u8],
    pub to: &'a [u8],
}

/// The store, for reading at start (mods: in `start`). Inserted by the host.
#[derive(Resource, Clone)]
pub struct Store(pub Arc<dyn Storage>);

impl Store {
    /// The records of `table` with keys from `from` (included) to `to` (excluded), decoded.
    pub fn load_range<K: Serialize + DeserializeOwned, V: DeserializeOwned>(
        &self,
        table: &str,
        from: &K,
        to: &K,
    ) -> Result<Vec<(K, V)>, StoreError> {
        let (from, to) =
            (rmp_serde::to_vec(from).expect("keys serialise"), rmp_serde::to_vec(to).expect("keys serialise"));
        decode(table, self.0.read_range(table, &from, &to)?)
    }

    /// Every record of `table`, decoded from MessagePack; a record that does not decode is an
    /// error naming the table and key.
    pub fn load<K: DeserializeOwned, V: DeserializeOwned>(&self, table: &str) -> Result<Vec<(K, V)>, StoreError> {
        decode(table, self.0.read_all(table)?)
    }
}

/// Records decoded from MessagePack; one that does not decode is an error naming the table.
fn decode<K: DeserializeOwned, V: DeserializeOwned>(
    table: &str,
    records: Vec<Record>,
) -> Result<Vec<(K, V)>, StoreError> {
    records
        .into_iter()
        .map(|(k, v)| {
            let key = rmp_serde::from_slice(&k)
                .map_err(|e| StoreError(format!("table {table}: a key does not decode: {e}")))?;
            let value = rmp_serde::from_slice(&v)
                .map_err(|e| StoreError(format!("table {table}: the value of a key does not decode: {e}")))?;
            Ok((key, value))
        })
        .collect()
}

/// The tables whose records belong to one player each: keyed by the player's id, or by a tuple
/// that begins with it. On servers that share a hunt (docs/scale-out.md) a player's records in
/// them follow it to the next server it joins. A mod adds its own in setup.
#[derive(Resource, Debug, Default, Clone)]
pub struct PlayerTables(pub Vec<Arc<str>>);

/// Players whose stored records were just replaced by those another server kept (they joined
/// here after playing there): a mod that keeps a player's state in memory between sessions drops
/// it and reads the store. Set by the host before the player joins, for that tick.
#[derive(Resource, Debug, Default, Clone)]
pub struct ReplacedPlayers(pub Vec<crate::PlayerId>);

/// The tick's writes, committed by the host at the start of `PostTick`.
///
/// The key and value buffers of the writes it forgets (committed, or cleared) are kept, with
/// their room, and the next writes are encoded into them: in steady state a write allocates
/// nothing.
#[derive(Resource, Debug, Default)]
pub struct Changes {
    writes: Vec<Write>,
    /// Emptied buffers of forgotten writes: keys and values apart, as their sizes differ.
    spare_keys: Vec<Vec<u8>>,
    spare_values: Vec<Vec<u8>>,
    /// The room of the spare buffers, in bytes.
    spare_bytes: usize,
}

/// At most this much room is kept in spare buffers. A tick's writes usually take a few hundred
/// kilobytes at most (a write is tens to hundreds of bytes); a burst (every player leaving at
/// once, a hunt's large record) must not keep its room for the rest of the server's life.
const SPARE_ROOM: usize = 1 << 20;
/// A buffer with more room than this is dropped, not kept: it would hold a large share of the
/// spare room for writes that are rarely that large.
const SPARE_BUFFER_ROOM: usize = 16 << 10;

/// The room of a new key's buffer, and of a new value's, when no spare one is left (a burst of
/// writes): a key is an id or two, a value mostly a record of a few hundred bytes.
const NEW_KEY_ROOM: usize = 32;
const NEW_VALUE_ROOM: usize = 256;

impl Changes {
    /// Stores `value` under `key` in `table` (both MessagePack-encoded, so keys sort by their
    /// encoding: use big-endian-friendly keys such as tuples of unsigned integers and strings).
    pub fn put<K: Serialize + ?Sized, V: Serialize + ?Sized>(&mut self, table: &Arc<str>, key: &K, value: &V) {
        let key = self.encode_key(key);
        let mut buffer = self.spare(false);
        // The bytes of `rmp_serde::to_vec_named`.
        rmp_serde::encode::write_named(&mut buffer, value).expect("values serialise");
        self.writes.push(Write { table: Arc::clone(table), key, value: Some(buffer) });
    }

    /// Removes `key` from `table`.
    pub fn delete<K: Serialize + ?Sized>(&mut self, table: &Arc<str>, key: &K) {
        let key = self.encode_key(key);
        self.writes.push(Write { table: Arc::clone(table), key, value: None });
    }

    /// `key` encoded as `rmp_serde::to_vec` does, into a spare buffer.
    fn encode_key<K: Serialize + ?Sized>(&mut self, key: &K) -> Vec<u8> {
        let mut buffer = self.spare(true);
        rmp_serde::encode::write(&mut buffer, key).expect("keys serialise");
        buffer
    }

    /// An empty buffer: a spare one when there is one, else one with room for most keys or
    /// values (a buffer grown from nothing by the encoder allocated four or five times).
    fn spare(&mut self, key: bool) -> Vec<u8> {
        let spare = if key { &mut self.spare_keys } else { &mut self.spare_values };
        match spare.pop() {
            Some(buffer) => {
                self.spare_bytes -= buffer.capacity();
                buffer
            }
            None => Vec::with_capacity(if key { NEW_KEY_ROOM } else { NEW_VALUE_ROOM }),
        }
    }

    /// Keeps the buffers of a forgotten write for the next writes, within [`SPARE_ROOM`].
    fn recycle(&mut self, write: Write) {
        let Write { key, value, .. } = write;
        for (mut buffer, is_key) in std::iter::once((key, true)).chain(value.map(|v| (v, false))) {
            let room = buffer.capacity();
            if room == 0 || room > SPARE_BUFFER_ROOM || self.spare_bytes + room > SPARE_ROOM {
                continue;
            }
            buffer.clear();
            self.spare_bytes += room;
            if is_key { &mut self.spare_keys } else { &mut self.spare_values }.push(buffer);
        }
    }

    /// Forgets the first `n` writes, keeping their buffers.
    fn forget_first(&mut self, n: usize) {
        let mut writes = std::mem::take(&mut self.writes);
        for write in writes.drain(..n) {
            self.recycle(write);
        }
        self.writes = writes;
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// The writes so far, in order.
    pub fn writes(&self) -> &[Write] {
        &self.writes
    }

    /// Forgets the writes (the host, after they were committed).
    pub fn clear(&mut self) {
        self.forget_first(self.writes.len());
    }
}

/// Whether the last commit succeeded. While it is not writable, nothing that must be saved
/// before it is announced (a claim, a grant) may happen: refuse with [`StoreHealth::REFUSAL`].
#[derive(Resource, Debug, Clone, PartialEq, Eq)]
pub struct StoreHealth {
    pub writable: bool,
    /// The last commit's error, while not writable.
    pub error: Option<String>,
    /// Writes of earlier ticks still waiting for a commit.
    pub backlog: usize,
}

impl Default for StoreHealth {
    fn default() -> Self {
        Self { writable: true, error: None, backlog: 0 }
    }
}

impl StoreHealth {
    /// What players are told while the store cannot be written.
    pub const REFUSAL: &'static str = "the server cannot save right now; try again in a moment";
}

/// What [`commit_tick`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The tick changed nothing to keep.
    Nothing,
    /// `writes` writes are on disk.
    Committed { writes: usize, took: std::time::Duration },
    /// The commit failed: the tick's messages are held, its writes wait for the next tick.
    Failed(StoreError),
}

/// Commits the tick's [`Changes`] to the [`Store`] in one transaction (the host runs this
/// first in `PostTick`). On failure, if the tick changed anything, its messages are held back
/// (nothing is announced that is not saved), all but its refusals and stored answers sent
/// again, and go out with the first commit that works
/// ([`Outbox::hold_unsaved`](crate::Outbox::hold_unsaved)). The writes stay in `Changes` and go
/// with the next tick's; [`StoreHealth`] tells systems to refuse grants meanwhile, and a tick
/// that only refused still sends its refusals.
///
/// In two halves for a commit on another thread: [`take_tick_writes`], [`PendingCommit::run`]
/// there, then [`finish_commit`].
pub fn commit_tick(world: &mut bevy_ecs::world::World) -> CommitOutcome {
    let Some(mut pending) = take_tick_writes(world) else { return CommitOutcome::Nothing };
    pending.run();
    finish_commit(world, pending)
}

/// A tick's writes on their way to the store, taken out of [`Changes`] by
/// [`take_tick_writes`].
pub struct PendingCommit {
    store: Store,
    changes: Changes,
    /// Set by [`run`](Self::run): the commit's result and how long it took.
    result: Option<(Result<(), StoreError>, std::time::Duration)>,
}

impl PendingCommit {
    /// Commits the writes in one transaction, on whatever thread calls it.
    pub fn run(&mut self) {
        let started = std::time::Instant::now();
        let result = self.store.0.commit(self.changes.writes());
        self.result = Some((result, started.elapsed()));
    }

    /// Records a commit that could not run (its thread failed): the writes are kept.
    pub fn fail(&mut self, error: StoreError) {
        self.result = Some((Err(error), std::time::Duration::ZERO));
    }
}

/// The tick's writes, taken out of [`Changes`] (which is left empty for whatever comes
/// before [`finish_commit`]); `None` when there is nothing to commit (no store: the writes are
/// dropped).
pub fn take_tick_writes(world: &mut bevy_ecs::world::World) -> Option<PendingCommit> {
    let Some(store) = world.get_resource::<Store>().cloned() else {
        world.resource_mut::<Changes>().clear();
        return None;
    };
    if world.resource::<Changes>().is_empty() {
        return None;
    }
    let changes = std::mem::take(&mut *world.resource_mut::<Changes>());
    Some(PendingCommit { store, changes, result: None })
}

/// Applies the outcome of a [`PendingCommit`] that has run: on success the writes are
/// forgotten (and the messages held by failed commits go out first), on failure they go back
/// to [`Changes`] (before any made since) and the tick's messages are held if it changed
/// anything, all but its refusals; [`StoreHealth`] says which.
pub fn finish_commit(world: &mut bevy_ecs::world::World, pending: PendingCommit) -> CommitOutcome {
    let PendingCommit { mut changes, result, .. } = pending;
    let (result, took) = result.expect("a pending commit is run before it is finished");
    let writes = changes.len();
    let mut current = world.resource_mut::<Changes>();
    // The taken buffers come back (with their room), holding whatever was written meanwhile
    // after the tick's writes.
    changes.writes.append(&mut current.writes);
    if result.is_ok() {
        changes.forget_first(writes);
    }
    *current = changes;
    match result {
        Ok(()) => {
            // What ticks whose commit failed had to say is saved now: it goes first.
            world.resource_mut::<crate::Outbox>().release_held();
            let mut health = world.resource_mut::<StoreHealth>();
            if !health.writable {
                tracing::warn!("the store is writable again; claims resume");
                *health = StoreHealth::default();
            }
            CommitOutcome::Committed { writes, took }
        }
        Err(e) => {
            let mut health = world.resource_mut::<StoreHealth>();
            if health.writable {
                tracing::error!(
                    "STORE COMMIT FAILED: {e}; what this tick announces is held until a commit works, claims are \
                     refused meanwhile"
                );
            }
            let changed_this_tick = writes > health.backlog;
            health.writable = false;
            health.error = Some(e.to_string());
            health.backlog = writes;
            if changed_this_tick {
                world.resource_mut::<crate::Outbox>().hold_unsaved();
            }
            CommitOutcome::Failed(e)
        }
    }
}

/// Table name, then key, then value.
type Tables = std::collections::BTreeMap<String, std::collections::BTreeMap<Vec<u8>, Vec<u8>>>;

/// A store in memory: for tests and the harness. Its `fail` switch makes every commit fail
/// until it is turned off again, as a full disk would.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tables: std::sync::Mutex<Tables>,
    /// While set, commits fail.
    pub fail: std::sync::atomic::AtomicBool,
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        // Nothing panics while holding the lock; a poisoned one is still consistent.
        self.tables.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Storage for MemoryStore {
    fn read_all(&self, table: &str) -> Result<Vec<Record>, StoreError> {
        Ok(self.lock().get(table).map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default())
    }

    fn read_range(&self, table: &str, from: &[u8], to: &[u8]) -> Result<Vec<Record>, StoreError> {
        if from >= to {
            return Ok(Vec::new());
        }
        Ok(self
            .lock()
            .get(table)
            .map(|t| t.range(from.to_vec()..to.to_vec()).map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }

    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().get(table).and_then(|t| t.get(key).cloned()))
    }

    fn read_ranges(&self, ranges: &[KeyRange<'_>]) -> Result<Vec<Vec<Record>>, StoreError> {
        let tables = self.lock();
        Ok(ranges
            .iter()
            .map(|r| match tables.get(r.table) {
                Some(t) if r.from < r.to => {
                    t.range(r.from.to_vec()..r.to.to_vec()).map(|(k, v)| (k.clone(), v.clone())).collect()
                }
                _ => Vec::new(),
            })
            .collect())
    }

    fn commit(&self, writes: &[Write]) -> Result<(), StoreError> {
        if self.fail.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(StoreError("memory store: commits are set to fail".into()));
        }
        let mut tables = self.lock();
        for w in writes {
            let table = tables.entry(w.table.to_string()).or_default();
            match &w.value {
                Some(v) => table.insert(w.key.clone(), v.clone()),
                None => table.remove(&w.key),
            };
        }
        Ok(())
    }

    fn tables(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.lock().iter().filter(|(_, t)| !t.is_empty()).map(|(n, _)| n.clone()).collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use bevy_ecs::world::World;

    use super::*;
    use crate::{Audience, Outbox};

    fn world() -> (World, Arc<MemoryStore>) {
        let store = Arc::new(MemoryStore::default());
        let mut world = World::new();
        world.insert_resource(Store(store.clone()));
        world.init_resource::<Changes>();
        world.init_resource::<StoreHealth>();
        world.init_resource::<Outbox>();
        (world, store)
    }

    fn tick(world: &mut World, write: Option<(&str, u32)>) -> (CommitOutcome, usize) {
        world.resource_mut::<Outbox>().send_encoded(Audience::All, bytes::Bytes::from_static(b"news"));
        if let Some((key, value)) = write {
            world.resource_mut::<Changes>().put(&Arc::from("t"), key, &value);
        }
        let outcome = commit_tick(world);
        let sent = world.resource_mut::<Outbox>().drain().count();
        (outcome, sent)
    }

    /// Where each write's key and value bytes live.
    fn buffers(changes: &Changes) -> Vec<*const u8> {
        changes
            .writes()
            .iter()
            .flat_map(|w| std::iter::once(w.key.as_ptr()).chain(w.value.as_ref().map(|v| v.as_ptr())))
            .collect()
    }

    /// A write is encoded as `rmp_serde::to_vec` (key) and `to_vec_named` (value) encode it, into
    /// the buffers of writes forgotten before: cleared, or committed (the buffers go to the store
    /// and come back with the taken `Changes`).
    #[test]
    fn writes_reuse_the_buffers_of_forgotten_writes() {
        #[derive(Serialize)]
        struct Record {
            name: &'static str,
            score: u64,
        }
        let (mut world, _store) = world();
        let table: Arc<str> = Arc::from("t");
        let write = |world: &mut World, n: u64| {
            let mut changes = world.resource_mut::<Changes>();
            for i in 0..n {
                changes.put(&table, &(i, "key"), &Record { name: "a player's record", score: i });
            }
            changes.delete(&table, &(n, "key"));
        };
        write(&mut world, 8);
        let first = world.resource::<Changes>();
        let expected = Write {
            table: table.clone(),
            key: rmp_serde::to_vec(&(3u64, "key")).unwrap(),
            value: Some(rmp_serde::to_vec_named(&Record { name: "a player's record", score: 3 }).unwrap()),
        };
        assert_eq!(first.writes()[3], expected, "the same bytes as a fresh encoding");
        assert_eq!(first.writes()[8].key, rmp_serde::to_vec(&(8u64, "key")).unwrap());
        let mut before = buffers(first);

        world.resource_mut::<Changes>().clear();
        write(&mut world, 8);
        let mut after = buffers(world.resource::<Changes>());
        assert_eq!(world.resource::<Changes>().writes()[3], expected);
        before.sort();
        after.sort();
        assert_eq!(before, after, "every buffer reused after clear()");

        assert!(matches!(commit_tick(&mut world), CommitOutcome::Committed { writes: 9, .. }));
        write(&mut world, 8);
        let mut again = buffers(world.resource::<Changes>());
        again.sort();
        assert_eq!(after, again, "every buffer reused after a commit");
    }

    /// The spare buffers keep at most `SPARE_ROOM` bytes, however many writes a tick made.
    #[test]
    fn spare_room_is_bounded() {
        let mut changes = Changes::default();
        let table: Arc<str> = Arc::from("t");
        let value = vec![7u8; 1000];
        for i in 0..4000u32 {
            changes.put(&table, &i, &value);
        }
        changes.clear();
        assert!(changes.spare_bytes <= SPARE_ROOM);
        let room: usize = changes.spare_keys.iter().chain(&changes.spare_values).map(Vec::capacity).sum();
        assert_eq!(room, changes.spare_bytes);
        assert!(changes.spare_values.len() < 4000, "not every value buffer was kept");
    }

    /// Saved before announced: a tick whose writes cannot be saved sends nothing yet; its
    /// writes go with the next commit, and its messages after it; a tick that changed nothing
    /// still sends (its refusals).
    #[test]
    fn a_failed_commit_holds_the_ticks_news_until_a_commit_saves_it() {
        let (mut world, store) = world();
        assert!(matches!(tick(&mut world, Some(("a", 1))), (CommitOutcome::Committed { writes: 1, .. }, 1)));
        store.fail.store(true, Ordering::Relaxed);
        assert!(matches!(tick(&mut world, Some(("b", 2))), (CommitOutcome::Failed(_), 0)));
        assert!(!world.resource::<StoreHealth>().writable);
        assert!(matches!(tick(&mut world, None), (CommitOutcome::Failed(_), 1)), "nothing new: refusals go out");
        assert!(matches!(tick(&mut world, Some(("c", 3))), (CommitOutcome::Failed(_), 0)));
        store.fail.store(false, Ordering::Relaxed);
        assert!(
            matches!(tick(&mut world, None), (CommitOutcome::Committed { writes: 2, .. }, 3)),
            "the two held ticks' news, then this one's"
        );
        assert_eq!(*world.resource::<StoreHealth>(), StoreHealth::default());
        let stored: Vec<(String, u32)> = Store(store).load("t").unwrap();
        assert_eq!(stored, [("a".to_string(), 1), ("b".to_string(), 2), ("c".to_string(), 3)]);
    }

    /// A tick that changed something (a refused request's answer is recorded: a change) and
    /// cannot be saved still sends its refusals, and stored answers sent again, at once; what
    /// tells of the unsaved changes goes out, in order, once a commit saves them.
    #[test]
    fn a_failed_commit_still_sends_the_ticks_refusals() {
        let (mut world, store) = world();
        store.fail.store(true, Ordering::Relaxed);
        let mut outbox = world.resource_mut::<Outbox>();
        outbox.send_encoded(Audience::All, bytes::Bytes::from_static(b"news"));
        outbox.refuse(7, Some(1), StoreHealth::REFUSAL);
        outbox.answer_encoded(8, Some(2), bytes::Bytes::from_static(b"granted"));
        outbox.send_saved(Audience::Player(9), bytes::Bytes::from_static(b"stored answer"));
        outbox.refuse(10, None, "out of reach");
        world.resource_mut::<Changes>().put(&Arc::from("answers"), &(7u64, 1u32), &"refused");
        assert!(matches!(commit_tick(&mut world), CommitOutcome::Failed(_)));
        let sent: Vec<(Audience, bytes::Bytes)> = world.resource_mut::<Outbox>().drain().collect();
        let to: Vec<Audience> = sent.iter().map(|(to, _)| *to).collect();
        assert_eq!(to, [Audience::Player(7), Audience::Player(9), Audience::Player(10)]);
        assert_eq!(sent[1].1, bytes::Bytes::from_static(b"stored answer"));
        assert_eq!(world.resource::<Changes>().len(), 1, "the write waits for the next commit");

        store.fail.store(false, Ordering::Relaxed);
        world.resource_mut::<Outbox>().send_encoded(Audience::All, bytes::Bytes::from_static(b"later"));
        assert!(matches!(commit_tick(&mut world), CommitOutcome::Committed { writes: 1, .. }));
        let sent: Vec<bytes::Bytes> = world.resource_mut::<Outbox>().drain().map(|(_, m)| m).collect();
        assert_eq!(sent, [&b"news"[..], b"granted", b"later"]);
    }
}
