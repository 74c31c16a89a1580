//! The store thread: each tick's commit runs there, while the tick thread updates the
//! players' areas of interest, and the tick thread takes the outcome before it delivers the
//! tick's messages (saved before announced).
//!
//! The tick thread does not spend its own time in the store: the transaction's work and its
//! allocations, and the wait for the disk, are the store thread's, overlapped with the interest
//! update. The tick still ends after the commit: nothing of the tick is sent before it.

use std::sync::mpsc;

use parking_lot::Mutex;
use veltrix_sdk::{CommitOutcome, PendingCommit, StoreError, prelude::*};

use crate::sessions::NetLink;

/// The tick thread's end of the store thread; a commit is under way while `in_flight`.
#[derive(Resource)]
pub struct StoreThread {
    jobs: mpsc::SyncSender<PendingCommit>,
    /// Finished commits.
    done: Mutex<mpsc::Receiver<PendingCommit>>,
    in_flight: bool,
}

impl StoreThread {
    /// Starts the thread. It ends when this handle is dropped.
    pub fn start() -> std::io::Result<Self> {
        // std's channels: a send or a blocking receive allocates nothing once the thread has
        // used them (the tick thread's steady state is allocation-free).
        let (jobs, job_rx) = mpsc::sync_channel::<PendingCommit>(1);
        let (done_tx, done) = mpsc::sync_channel(1);
        std::thread::Builder::new().name("veltrix-store".into()).spawn(move || {
            for mut pending in job_rx {
                // A panic in the store (a bug in the engine) fails this commit, not the server:
                // the writes go back to the tick thread and are tried again with the next tick's.
                if let Err(panic) = crate::panics::catch(|| pending.run()) {
                    pending.fail(StoreError(format!("the store commit panicked: {panic}")));
                }
                if done_tx.send(pending).is_err() {
                    break;
                }
            }
        })?;
        Ok(Self { jobs, done: Mutex::new(done), in_flight: false })
    }
}

/// PostTick, after the tick's answers are recorded: hands the tick's writes to the store
/// thread (a world with a `Store` has a [`StoreThread`]: `server::run` inserts both).
pub fn start_commit(world: &mut World) {
    let Some(pending) = veltrix_sdk::take_tick_writes(world) else {
        // Nothing to commit: the tick's state is as committed as it gets now.
        return;
    };
    let mut thread = world.resource_mut::<StoreThread>();
    assert!(!thread.in_flight, "one commit at a time: the last one was finished");
    // The thread ends only when this handle's channels close.
    thread.jobs.send(pending).expect("the store thread runs as long as its handle");
    thread.in_flight = true;
}

/// PostTick, before the tick's messages are delivered: waits for the commit and applies its
/// outcome (on failure the tick's messages are dropped, [`veltrix_sdk::commit_tick`]).
pub fn finish_commit(world: &mut World) {
    let Some(mut thread) = world.get_resource_mut::<StoreThread>() else { return };
    let in_flight = std::mem::replace(&mut thread.in_flight, false);
    // The thread answers every job it takes (a panic in a commit is caught there).
    let pending = in_flight.then(|| thread.done.lock().recv().expect("the store thread answers every commit"));
    // The moment the tick's messages may go: its commit ended and its areas of interest are
    // updated (whichever came last).
    #[cfg(feature = "bench")]
    {
        world.resource_mut::<crate::stamp::CommitStamp>().0 = crate::stamp::monotonic_ns();
    }
    let Some(pending) = pending else { return };
    let outcome = veltrix_sdk::finish_commit(world, pending);
    report(world, outcome);
}

fn report(world: &World, outcome: CommitOutcome) {
    let Some(link) = world.get_resource::<NetLink>() else { return };
    match outcome {
        CommitOutcome::Committed { took, .. } => {
            link.metrics.commit_duration_seconds.observe(took.as_secs_f64());
            link.metrics.store_writable.set(1);
        }
        CommitOutcome::Failed(_) => {
            link.metrics.store_commit_failures.inc();
            link.metrics.store_writable.set(0);
        }
        CommitOutcome::Nothing => {}
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, atomic::Ordering};

    use veltrix_sdk::{Audience, Changes, MemoryStore, Outbox, Store, StoreHealth, bytes::Bytes};

    use super::*;

    fn world_with(store: &Arc<MemoryStore>) -> World {
        let mut world = World::new();
        world.insert_resource(Store(Arc::clone(store) as _));
        world.init_resource::<Changes>();
        world.init_resource::<StoreHealth>();
        world.init_resource::<Outbox>();
        #[cfg(feature = "bench")]
        world.init_resource::<crate::stamp::CommitStamp>();
        world.insert_resource(StoreThread::start().unwrap());
        world
    }

    fn put(world: &mut World, key: u32) {
        world.resource_mut::<Changes>().put(&"t".into(), &key, &key);
    }

    /// The commit runs on the store thread; writes made while it runs stay for the next one;
    /// a failed commit keeps its writes, drops the tick's messages and says so in
    /// `StoreHealth`, and the next commit that works saves them all.
    #[test]
    fn commits_run_on_the_store_thread_and_a_failure_keeps_the_writes() {
        use veltrix_sdk::Storage as _;

        let store = Arc::new(MemoryStore::default());
        let mut world = world_with(&store);

        put(&mut world, 1);
        start_commit(&mut world);
        assert!(world.resource::<StoreThread>().in_flight);
        put(&mut world, 2); // written while the commit runs: the next tick's
        finish_commit(&mut world);
        assert_eq!(store.read_all("t").unwrap().len(), 1);
        assert_eq!(world.resource::<Changes>().len(), 1, "the write made meanwhile waits");

        store.fail.store(true, Ordering::Relaxed);
        world.resource_mut::<Outbox>().send_encoded(Audience::All, Bytes::from_static(b"claimed"));
        start_commit(&mut world);
        finish_commit(&mut world);
        let health = world.resource::<StoreHealth>().clone();
        assert!(!health.writable);
        assert_eq!(health.backlog, 1);
        assert_eq!(world.resource_mut::<Outbox>().drain().count(), 0, "not saved, not announced");
        assert_eq!(world.resource::<Changes>().len(), 1, "kept for the next commit");

        store.fail.store(false, Ordering::Relaxed);
        put(&mut world, 3);
        start_commit(&mut world);
        finish_commit(&mut world);
        assert!(world.resource::<StoreHealth>().writable);
        assert!(world.resource::<Changes>().is_empty());
        let keys: Vec<u32> =
            Store(Arc::clone(&store) as _).load::<u32, u32>("t").unwrap().into_iter().map(|r| r.0).collect();
        assert_eq!(keys, [1, 2, 3]);
    }
}
