//! The writer threads (`veltrix-write-N`): at the end of a tick, delivery hands each thread its
//! share of the tick's frames as one batch (one channel message per thread per tick, not one
//! per frame), and the thread writes each client's frame to its socket with one vectored,
//! non-blocking system call ([`Outgoing::send_frame`]). No task is woken and no frame copied
//! for a client that reads; one that does not gets its frames in its connection's backlog, and
//! is closed as `SlowConsumer` once the backlog holds `Network.MaxQueuedFrames`. In a batch the
//! frames delivery marks as first (answers, the hunt's events, Welcomes) are written before the
//! others (where other players are), so an answer does not wait behind a thousand moves.
//!
//! Off the tick thread, because on loopback a write costs the receiver's TCP work too: at
//! thousands of frames a tick it would be most of the tick. A client's frames always go to the
//! same thread (by its connection's seat, `net::seat`), so they leave in tick order.
//!
//! Each thread knows the connections it writes to by seat ([`Seated`]; delivery registers a
//! connection at its join and forgets it at its removal, in the same batches as its frames, so
//! in order): a frame travels with its connection's id, and the tick thread never touches the
//! connection's shared state (a reference count it bumped per frame was a cache line the writer
//! had last written, a miss on the tick for every frame).
//!
//! A thread has room for [`BATCHES_BEHIND`] batches; when it is that far behind, the tick waits
//! for it. The wait is bounded by the thread's own work (it never waits for a socket), and it
//! is the server's backpressure: ticks lengthen, the loop skips ahead, moves coalesce, fewer
//! frames are made. Without it, frames would queue without bound, in memory and in latency.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
};

use ahash::AHashMap;
use bytes::Bytes;
use veltrix_protocol::ErrorCode;
use veltrix_sdk::prelude::*;

use super::{ConnHandle, ConnId, QueueError, seat};
use crate::metrics::Metrics;

/// A frame for one client: most are a part of the tick's frames, all built into one buffer
/// (`sessions/frames.rs`) and handed over once per thread and tick, so a frame costs no count of
/// references of its own (one shared by every frame was a cache line the tick thread and the
/// writers took in turn, a miss on the tick for every frame); a few have bytes of their own (a
/// Welcome, frames held behind it).
#[derive(Debug, Clone)]
pub enum Frame {
    /// Where it is in the tick's frames.
    InTick(Span),
    Own(Bytes),
}

/// Where a frame is in the tick's frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    /// The frame's bytes in the tick's `frames`.
    pub fn of(self, frames: &[u8]) -> &[u8] {
        &frames[self.start as usize..self.end as usize]
    }
}

/// One thread's work of a tick: the connections it writes to from now on, the frames (those to
/// write first, then the others, each in the order added), then the connections it forgets.
#[derive(Default)]
struct Batch {
    joined: Vec<(ConnId, ConnHandle)>,
    first: Vec<(ConnId, Frame)>,
    then: Vec<(ConnId, Frame)>,
    left: Vec<ConnId>,
    /// The tick's frames, that the batch's [`Frame::InTick`] are parts of; let go once written,
    /// so the tick after next takes their buffer back.
    tick_frames: Bytes,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.joined.is_empty() && self.first.is_empty() && self.then.is_empty() && self.left.is_empty()
    }

    /// An empty batch with the room `room` says the fullest batch took: a thread may hold
    /// several batches when its clients are slow, and a new one grown from nothing took a dozen
    /// allocations in the ticks after.
    fn with_room(room: &Room) -> Self {
        let mut batch = Self::default();
        batch.make_room(room);
        batch
    }

    /// Gives an emptied batch the room `room` says the fullest batch took, so that a batch that
    /// sat out a busy tick (a vault opened before a crowd: many answers and events at once) does
    /// not grow on the tick thread when it is filled next. Called on the writer thread.
    fn make_room(&mut self, room: &Room) {
        self.first.reserve(room.first.load(Ordering::Relaxed));
        self.then.reserve(room.then.load(Ordering::Relaxed));
    }

    /// The frames in the order they go out, leaving them empty with their room; and the tick's
    /// frames they may be parts of.
    fn drain(&mut self) -> (impl Iterator<Item = (ConnId, Frame)> + '_, &[u8]) {
        let Self { first, then, tick_frames, .. } = self;
        (first.drain(..).chain(then.drain(..)), tick_frames)
    }
}

/// The most frames of each kind a batch has held, written by the tick thread as it hands a
/// batch over and read by the writer threads as they hand one back: every batch in turn gets
/// the room the fullest took (several go round between the tick and the threads).
#[derive(Default)]
struct Room {
    first: AtomicUsize,
    then: AtomicUsize,
}

impl Room {
    fn note(&self, batch: &Batch) {
        self.first.fetch_max(batch.first.len(), Ordering::Relaxed);
        self.then.fetch_max(batch.then.len(), Ordering::Relaxed);
    }
}

/// Batches a writer thread may be behind before the tick waits for it: about 130 ms at 30 ticks
/// a second.
const BATCHES_BEHIND: usize = 4;

/// The tick thread's end of the writer threads.
#[derive(Resource)]
pub struct Writers {
    threads: Vec<flume::Sender<Batch>>,
    /// Batches the threads are done with, their room kept (no allocation per tick).
    spare: flume::Receiver<Batch>,
    /// This tick's batch for each thread.
    filling: Vec<Batch>,
    /// Each thread's deepest backlog in the last batch it wrote (frames already queued for a
    /// client it wrote to): read where the thread holds the connection's lock anyway, not on
    /// the tick thread, where it cost a cache miss per frame.
    deepest: Vec<Arc<AtomicUsize>>,
    room: Arc<Room>,
}

impl Writers {
    /// Starts `threads` writer threads (at least one).
    pub fn start(threads: usize, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        let (spare_tx, spare) = flume::unbounded();
        let (mut senders, mut deepest) = (Vec::new(), Vec::new());
        let room = Arc::new(Room::default());
        let threads = threads.max(1);
        for i in 0..threads {
            let (tx, rx) = flume::bounded::<Batch>(BATCHES_BEHIND);
            let (metrics, spare_tx, room) = (Arc::clone(&metrics), spare_tx.clone(), Arc::clone(&room));
            let thread_deepest = Arc::new(AtomicUsize::new(0));
            let written_deepest = Arc::clone(&thread_deepest);
            thread::Builder::new().name(format!("veltrix-write-{i}")).spawn(move || {
                let mut handles = Seated::new(threads);
                for mut batch in rx {
                    batch.joined.drain(..).for_each(|(conn, handle)| handles.join(conn, handle));
                    written_deepest.store(write_batch(&mut batch, &handles, &metrics), Ordering::Relaxed);
                    batch.tick_frames = Bytes::new();
                    batch.left.drain(..).for_each(|conn| handles.leave(conn));
                    batch.make_room(&room);
                    let _ = spare_tx.send(batch);
                }
            })?;
            senders.push(tx);
            deepest.push(thread_deepest);
        }
        let filling = senders.iter().map(|_| Batch::default()).collect();
        Ok(Self { threads: senders, spare, filling, deepest, room })
    }

    /// Connection `conn` is written to from this tick's batch on, through `handle`: call before
    /// its first frame.
    pub fn register(&mut self, conn: ConnId, handle: &ConnHandle) {
        let i = self.thread_of(conn);
        self.filling[i].joined.push((conn, handle.clone()));
    }

    /// Connection `conn` gets no more frames: its thread forgets it after this tick's batch.
    pub fn forget(&mut self, conn: ConnId) {
        let i = self.thread_of(conn);
        self.filling[i].left.push(conn);
    }

    /// Adds a frame for connection `conn` ([`register`](Self::register)ed) to this tick's
    /// batches, after the frames to write first.
    pub fn push(&mut self, conn: ConnId, frame: Frame) {
        let i = self.thread_of(conn);
        self.filling[i].then.push((conn, frame));
    }

    /// Adds a frame for connection `conn` to this tick's batches, to be written before those
    /// added with [`push`](Self::push). A connection's frames of one tick all go one way, so
    /// they leave in the order added.
    pub fn push_first(&mut self, conn: ConnId, frame: Frame) {
        let i = self.thread_of(conn);
        self.filling[i].first.push((conn, frame));
    }

    /// Frames already queued for the slowest client written to in each thread's last batch.
    pub fn deepest(&self) -> usize {
        self.deepest.iter().map(|d| d.load(Ordering::Relaxed)).max().unwrap_or(0)
    }

    fn thread_of(&self, conn: ConnId) -> usize {
        seat(conn) % self.threads.len()
    }

    /// Hands this tick's batches to their threads, with the tick's frames (`tick_frames`, that
    /// the batches' [`Frame::InTick`] are parts of), waiting for a thread that is
    /// [`BATCHES_BEHIND`] batches behind.
    pub fn submit(&mut self, tick_frames: &Bytes) {
        for (batch, thread) in self.filling.iter_mut().zip(&self.threads) {
            if batch.is_empty() {
                continue;
            }
            self.room.note(batch);
            batch.tick_frames = tick_frames.clone();
            let next = self.spare.try_recv().unwrap_or_else(|_| Batch::with_room(&self.room));
            let _ = thread.send(std::mem::replace(batch, next));
        }
    }
}

/// The connections one writer thread writes to, by seat: a frame's connection is one load,
/// not a hash's probe (one per frame, thousands a tick). A thread has the seats `thread`,
/// `thread + threads`, ...: seat `s` is at `s / threads`.
struct Seated {
    threads: usize,
    by_seat: Vec<Option<(ConnId, ConnHandle)>>,
    /// A connection whose seat another took in the same batch, before it was forgotten (a seat
    /// is free again once its socket is closed, which may be before the tick removes its
    /// player): kept until it is forgotten. Nearly always empty.
    displaced: AHashMap<ConnId, ConnHandle>,
}

impl Seated {
    fn new(threads: usize) -> Self {
        Self { threads, by_seat: Vec::new(), displaced: AHashMap::new() }
    }

    fn at(&self, conn: ConnId) -> usize {
        seat(conn) / self.threads
    }

    fn join(&mut self, conn: ConnId, handle: ConnHandle) {
        let at = self.at(conn);
        if at >= self.by_seat.len() {
            self.by_seat.resize_with(at + 1, || None);
        }
        if let Some((earlier, handle)) = self.by_seat[at].replace((conn, handle))
            && earlier != conn
        {
            self.displaced.insert(earlier, handle);
        }
    }

    fn get(&self, conn: ConnId) -> Option<&ConnHandle> {
        match self.by_seat.get(self.at(conn)) {
            Some(Some((seated, handle))) if *seated == conn => Some(handle),
            _ => self.displaced.get(&conn),
        }
    }

    fn leave(&mut self, conn: ConnId) {
        let at = self.at(conn);
        if let Some(seated) = self.by_seat.get_mut(at)
            && seated.as_ref().is_some_and(|(id, _)| *id == conn)
        {
            *seated = None;
        } else {
            self.displaced.remove(&conn);
        }
    }
}

/// Writes a batch's frames, each to its client, and empties the batch. The deepest backlog
/// among its clients, before their frames.
fn write_batch(batch: &mut Batch, handles: &Seated, metrics: &Metrics) -> usize {
    let (mut frames, mut bytes, mut deepest) = (0u64, 0u64, 0);
    let (batch, tick_frames) = batch.drain();
    for (conn, frame) in batch {
        let Some(handle) = handles.get(conn) else {
            debug_assert!(false, "connection {conn} was registered before its frames");
            continue;
        };
        deepest = deepest.max(handle.queued());
        let frame = match &frame {
            Frame::InTick(span) => span.of(tick_frames),
            Frame::Own(frame) => frame,
        };
        match handle.out.send_frame(frame) {
            Ok(_) => {
                frames += 1;
                bytes += frame.len() as u64;
            }
            Err(QueueError::Full) => {
                handle.close(ErrorCode::SlowConsumer, "you are not reading your frames fast enough");
            }
            Err(QueueError::Closed) => {}
        }
    }
    metrics.frames_out.inc_by(frames);
    metrics.bytes_out.inc_by(bytes);
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frames to write first leave first, then the others; each kind in the order added.
    #[test]
    fn frames_to_write_first_leave_before_the_others() {
        let mut writers = Writers::start(1, Arc::new(Metrics::new())).unwrap();
        let frame = |n: u8| Frame::Own(Bytes::from(vec![n]));
        writers.push(1, frame(1));
        writers.push_first(2, frame(2));
        writers.push(3, frame(3));
        writers.push_first(4, frame(4));
        let order: Vec<u8> =
            writers.filling[0].drain().0.map(|(_, f)| if let Frame::Own(f) = f { f[0] } else { 0 }).collect();
        assert_eq!(order, [2, 4, 1, 3]);
        assert!(writers.filling[0].is_empty());
    }

    /// A tick's batch taken when the threads hold every spare one is made with the room of the
    /// one it replaces, not grown from nothing in the ticks after.
    #[test]
    fn a_new_batch_has_the_room_of_the_last() {
        let mut writers = Writers::start(1, Arc::new(Metrics::new())).unwrap();
        let handle = ConnHandle { out: Arc::new(crate::net::socket::Outgoing::detached()) };
        for conn in 0..100 {
            writers.register(conn, &handle);
            writers.push(conn, Frame::Own(Bytes::from_static(b"f")));
        }
        for conn in 0..10 {
            writers.push_first(conn, Frame::Own(Bytes::from_static(b"a")));
        }
        // No thread has handed a batch back before the first submit: the next is a new one.
        writers.submit(&Bytes::new());
        assert!(writers.filling[0].is_empty());
        assert!(writers.filling[0].then.capacity() >= 100);
        assert!(writers.filling[0].first.capacity() >= 10);
    }

    /// Waits until the writer threads have handed back `n` batches.
    fn spares(writers: &Writers, n: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while writers.spare.len() < n {
            assert!(std::time::Instant::now() < deadline, "the writer thread did not hand its batch back");
            thread::yield_now();
        }
    }

    /// A batch handed back after a fuller one went out comes back with that one's room: the
    /// batches take turns, and one that sat out a busy tick would otherwise grow on the tick
    /// thread the next time it is filled.
    #[test]
    fn a_batch_comes_back_with_the_room_of_the_fullest() {
        let mut writers = Writers::start(1, Arc::new(Metrics::new())).unwrap();
        let handle = ConnHandle { out: Arc::new(crate::net::socket::Outgoing::detached()) };
        let fill = |writers: &mut Writers, frames: u64| {
            for conn in 0..frames {
                writers.register(conn, &handle);
                writers.push(conn, Frame::Own(Bytes::from_static(b"f")));
            }
            writers.submit(&Bytes::new());
        };
        // A quiet tick's batch goes out and comes back; a busy tick's, the other, goes out
        // while the quiet one is filled next, and comes back.
        fill(&mut writers, 10);
        spares(&writers, 1);
        fill(&mut writers, 300);
        spares(&writers, 1);
        // The quiet one goes out again, and comes back with the busy one's room.
        fill(&mut writers, 1);
        spares(&writers, 1);
        let quiet = writers.spare.try_recv().unwrap();
        assert!(quiet.then.capacity() >= 300, "{}", quiet.then.capacity());
    }

    /// A connection is found by its seat, and only by its own id there; one whose seat was
    /// taken again before it was forgotten is still found until it is, and forgetting either
    /// leaves the other.
    #[test]
    fn connections_are_found_by_seat_and_a_seat_taken_again_keeps_both() {
        let handle = || ConnHandle { out: Arc::new(crate::net::socket::Outgoing::detached()) };
        let is = |found: Option<&ConnHandle>, h: &ConnHandle| found.is_some_and(|f| Arc::ptr_eq(&f.out, &h.out));
        let mut seated = Seated::new(2);
        let (first, again, other) = (crate::net::conn_id(1, 5), crate::net::conn_id(7, 5), crate::net::conn_id(2, 3));
        let (h_first, h_again, h_other) = (handle(), handle(), handle());
        seated.join(first, h_first.clone());
        seated.join(other, h_other.clone());
        assert!(is(seated.get(first), &h_first) && is(seated.get(other), &h_other));
        assert!(seated.get(again).is_none(), "the seat's connection is another");
        seated.join(again, h_again.clone());
        assert!(is(seated.get(again), &h_again));
        assert!(is(seated.get(first), &h_first), "kept aside until forgotten");
        seated.leave(first);
        assert!(seated.get(first).is_none());
        assert!(is(seated.get(again), &h_again), "the seat's new connection stays");
        seated.leave(again);
        assert!(seated.get(again).is_none());
        assert!(is(seated.get(other), &h_other));
        assert!(seated.displaced.is_empty());
    }
}
