//! A player connection's socket, written by two parties in one order: the writer threads (the
//! tick's frames, [`super::writers`]) and the connection's event loop (the upgrade's answer,
//! errors, pings, the close, [`super::event_loop`]). Both write through [`Outgoing`]: when
//! nothing waits, straight to the socket with one vectored, non-blocking write (no thread woken,
//! no copy); what the socket does not take waits in the backlog, in order, and the event loop
//! writes it out when the socket has room (the edge-triggered writable event that a write the
//! socket could not take whole arms). The loop's reads go to the socket as they are.

use std::{
    collections::VecDeque,
    io::{self, IoSlice, Read, Write},
    os::fd::{AsRawFd, BorrowedFd, RawFd},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use bytes::Bytes;
use mio::net::TcpStream;
use parking_lot::Mutex;
use veltrix_protocol::ErrorCode;

use super::{ConnId, QueueError, event_loop::Mailbox};
use crate::metrics::Metrics;

/// A connection's way out.
pub struct Outgoing {
    /// The socket's descriptor: valid while `closed` is false (the socket is closed only after
    /// [`Socket`]'s drop set it, under the same lock every write takes).
    fd: RawFd,
    state: Mutex<Backlog>,
    /// Frames in the backlog, read without the lock (the outbound queue depth metric).
    queued: AtomicUsize,
    /// Frames the backlog may hold before the client counts as not reading.
    max_frames: usize,
    metrics: Arc<Metrics>,
    /// Where a request to close the connection goes: its event loop.
    door: Option<Door>,
    /// A close was asked for (the first request wins; the writer threads ask on every frame
    /// refused).
    close_asked: AtomicBool,
}

/// A connection's place in its event loop.
pub(super) struct Door {
    pub mailbox: Arc<Mailbox>,
    pub slot: usize,
    pub conn: ConnId,
}

/// What the socket did not take yet, in order.
#[derive(Default)]
struct Backlog {
    closed: bool,
    /// Bytes to write, and whether each piece ends a frame.
    chunks: VecDeque<(Bytes, bool)>,
}

/// How a frame left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Written to the socket whole, in one system call.
    Written,
    /// Put in the backlog (all of it or what the socket did not take).
    Queued,
}

/// Pieces written in one system call when the backlog is written out.
const MAX_IOVECS: usize = 64;

impl Outgoing {
    fn new(fd: RawFd, max_frames: usize, metrics: Arc<Metrics>, door: Option<Door>) -> Self {
        Self {
            fd,
            state: Mutex::default(),
            queued: AtomicUsize::new(0),
            max_frames,
            metrics,
            door,
            close_asked: AtomicBool::new(false),
        }
    }

    /// An outgoing end with no socket: every frame is refused as `Closed`.
    pub fn detached() -> Self {
        let out = Self::new(-1, 1, Arc::default(), None);
        out.state.lock().closed = true;
        out
    }

    /// Asks the connection's event loop to send `Error { code, message }` and close; the first
    /// request wins.
    pub fn close(&self, code: ErrorCode, message: String) {
        if self.close_asked.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(door) = &self.door {
            door.mailbox.post(super::event_loop::Mail::Close { slot: door.slot, conn: door.conn, code, message });
        }
    }

    /// Writes a WebSocket binary frame carrying `payload`: straight to the socket when nothing
    /// waits, else behind the backlog. `Full` when the backlog already holds `max_frames` frames
    /// (the client is not reading), `Closed` when the connection is gone.
    pub fn send_frame(&self, payload: &[u8]) -> Result<Sent, QueueError> {
        let mut head = [0u8; 10];
        let head = ws_binary_head(payload.len(), &mut head);
        let mut state = self.state.lock();
        if state.closed {
            return Err(QueueError::Closed);
        }
        let waiting = !state.chunks.is_empty();
        if waiting && self.queued.load(Ordering::Relaxed) >= self.max_frames {
            return Err(QueueError::Full);
        }
        // The event loop finds a broken connection on its side and ends it.
        let written = self
            .write_unless_waiting(&state, &[IoSlice::new(head), IoSlice::new(payload)])
            .map_err(|_| QueueError::Closed)?;
        if written == head.len() + payload.len() {
            return Ok(Sent::Written);
        }
        // What waits is copied: the payload is a slice of the whole tick's frames
        // (`sessions/frames.rs`), which a client that does not read must not keep alive.
        if written < head.len() {
            state.chunks.push_back((Bytes::copy_from_slice(&head[written..]), false));
            state.chunks.push_back((Bytes::copy_from_slice(payload), true));
        } else {
            state.chunks.push_back((Bytes::copy_from_slice(&payload[written - head.len()..]), true));
        }
        // The write the socket did not take whole armed its writable event: the event loop
        // writes the backlog out when there is room.
        self.queued.fetch_add(1, Ordering::Relaxed);
        Ok(Sent::Queued)
    }

    /// Writes `slices` now if nothing waits in the backlog: what the socket took, 0 when it took
    /// nothing or the backlog must go first. Called with the lock held.
    fn write_unless_waiting(&self, state: &Backlog, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        if !state.chunks.is_empty() {
            return Ok(0);
        }
        match self.write(slices) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            other => other,
        }
    }

    /// Frames waiting in the backlog.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// One non-blocking vectored write to the socket. Called with the lock held.
    fn write(&self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        // SAFETY: the descriptor is open: callers hold the lock and checked `closed`, and the
        // socket is closed only after `closed` was set under that lock.
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        loop {
            match socket2::SockRef::from(&fd).send_vectored(slices) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(n) => {
                    self.metrics.socket_writes.inc();
                    return Ok(n);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether bytes wait in the backlog.
    pub(super) fn backlogged(&self) -> bool {
        !self.state.lock().chunks.is_empty()
    }

    /// Writes out as much of the backlog as the socket takes: `Ok(true)` when it is empty now,
    /// `Ok(false)` when the socket is full (its writable event then says when to go on).
    pub(super) fn write_out(&self) -> io::Result<bool> {
        loop {
            match self.write_backlog() {
                Ok(true) => return Ok(true),
                Ok(false) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes as much of the backlog as the socket takes in one system call: `Ok(true)` when
    /// the backlog is empty now, `WouldBlock` when the socket took nothing.
    fn write_backlog(&self) -> io::Result<bool> {
        let mut state = self.state.lock();
        if state.closed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if state.chunks.is_empty() {
            return Ok(true);
        }
        let slices: Vec<IoSlice<'_>> = state.chunks.iter().take(MAX_IOVECS).map(|(b, _)| IoSlice::new(b)).collect();
        let mut written = self.write(&slices)?;
        drop(slices);
        while written > 0 {
            let (front, ends_frame) = state.chunks.front_mut().expect("written no more than the backlog");
            if written < front.len() {
                let rest = front.slice(written..);
                *front = rest;
                break;
            }
            written -= front.len();
            if *ends_frame {
                self.queued.fetch_sub(1, Ordering::Relaxed);
            }
            state.chunks.pop_front();
        }
        Ok(state.chunks.is_empty())
    }

    /// Bytes from the connection's event loop (tungstenite's frames, an HTTP answer): written at
    /// once when nothing waits, else behind the backlog. Never refused for its size: the loop
    /// writes little.
    fn send_bytes(&self, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.state.lock();
        if state.closed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let written = self.write_unless_waiting(&state, &[IoSlice::new(bytes)])?;
        if written < bytes.len() {
            state.chunks.push_back((Bytes::copy_from_slice(&bytes[written..]), false));
        }
        Ok(())
    }
}

/// Writes the head of an unmasked binary WebSocket frame (RFC 6455 section 5.2, FIN set) of
/// `len` payload bytes into `buf`; the head's bytes.
fn ws_binary_head(len: usize, buf: &mut [u8; 10]) -> &[u8] {
    buf[0] = 0x82;
    if len < 126 {
        buf[1] = len as u8;
        &buf[..2]
    } else if len <= usize::from(u16::MAX) {
        buf[1] = 126;
        buf[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        &buf[..4]
    } else {
        buf[1] = 127;
        buf[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        &buf[..10]
    }
}

/// Reads of a non-blocking socket under edge-triggered readiness that skip the system call
/// whose only answer would be "would block". A read that returns less than its buffer took all
/// the kernel held, and anything after it brings a new readiness event: so until that event
/// ([`ReadEdge::ready`]) a read is answered `WouldBlock` at once. Without this, every message
/// read cost a second `recv` to learn the socket was empty: a frame's read in the swarm, a move's
/// on the network threads. Not once the event says the peer closed (or the socket failed): the
/// end of the stream then waits behind the data with no event to come, and is read as it is.
#[derive(Debug, Default)]
pub struct ReadEdge {
    /// A short read emptied the socket since its last readiness event.
    drained: bool,
    /// An event said the peer closed or the socket failed: read until the kernel says so.
    closing: bool,
}

impl ReadEdge {
    /// A readiness event for the socket; `closed` when it says the peer closed its end or the
    /// socket failed.
    pub fn ready(&mut self, closed: bool) {
        self.drained = false;
        self.closing |= closed;
    }

    /// Reads from `source` into `buf`, unless a short read since the last event emptied it.
    pub fn read(&mut self, source: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
        if self.drained {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = source.read(buf)?;
        self.drained = n > 0 && n < buf.len() && !self.closing;
        Ok(n)
    }
}

/// The stream a connection's WebSocket runs on: reads from the socket, writes through its
/// [`Outgoing`], in order with the writer threads' frames.
pub struct Socket {
    pub(super) tcp: TcpStream,
    pub(super) edge: ReadEdge,
    out: Arc<Outgoing>,
}

impl Socket {
    /// Wraps an accepted connection; `max_frames` is the backlog's limit for the tick's frames.
    pub(super) fn new(tcp: TcpStream, max_frames: usize, metrics: Arc<Metrics>, door: Option<Door>) -> Self {
        let out = Arc::new(Outgoing::new(tcp.as_raw_fd(), max_frames, metrics, door));
        Self { tcp, edge: ReadEdge::default(), out }
    }

    pub fn outgoing(&self) -> &Arc<Outgoing> {
        &self.out
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // Before the descriptor closes (the `tcp` field drops after this): no writer thread
        // writes to it from now on.
        let mut state = self.out.state.lock();
        state.closed = true;
        state.chunks.clear();
        self.out.queued.store(0, Ordering::Relaxed);
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.edge.read(&mut self.tcp, buf)
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.send_bytes(buf).map(|()| buf.len())
    }

    /// Writes what the socket takes now; the rest waits in the backlog for the event loop,
    /// so tungstenite never sees a write that would block.
    fn flush(&mut self) -> io::Result<()> {
        self.out.write_out().map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that hands out its chunks one per read and counts the reads.
    struct Chunks(Vec<&'static [u8]>, usize);

    impl Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.1 += 1;
            let Some(chunk) = self.0.first_mut() else { return Err(io::ErrorKind::WouldBlock.into()) };
            let n = chunk.len().min(buf.len());
            buf[..n].copy_from_slice(&chunk[..n]);
            *chunk = &chunk[n..];
            if chunk.is_empty() {
                self.0.remove(0);
            }
            Ok(n)
        }
    }

    /// A read shorter than its buffer answers the reads after it until the next event, without
    /// asking the source; a read that fills its buffer does not; after an event that says the
    /// peer closed, the end is read.
    #[test]
    fn a_short_read_stops_reading_until_the_next_event() {
        let mut buf = [0u8; 4];
        let (mut edge, mut source) = (ReadEdge::default(), Chunks(vec![b"abcd", b"ef", b"gh"], 0));
        assert_eq!(edge.read(&mut source, &mut buf).unwrap(), 4);
        assert_eq!(edge.read(&mut source, &mut buf).unwrap(), 2);
        assert_eq!(edge.read(&mut source, &mut buf).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        assert_eq!(source.1, 2, "the read after the short one asked nothing");
        edge.ready(false);
        assert_eq!(edge.read(&mut source, &mut buf).unwrap(), 2);
        assert_eq!(source.1, 3);
        edge.ready(true);
        assert_eq!(edge.read(&mut source, &mut [0u8; 4]).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        assert_eq!(source.1, 4, "once the peer closed, every read asks");
    }

    /// What the edge relies on, on a real socket: data sent after a short read that emptied it
    /// brings a new readable event; and data followed by the peer's close comes with an event
    /// that says so, the end then read after the data.
    #[test]
    fn data_after_a_short_read_brings_a_new_event_and_the_end_is_read() {
        use mio::{Events, Interest, Poll, Token};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        let mut server = TcpStream::from_std(server);
        let mut poll = Poll::new().unwrap();
        poll.registry().register(&mut server, Token(0), Interest::READABLE).unwrap();
        let mut events = Events::with_capacity(8);
        let mut edge = ReadEdge::default();
        // Waits for a readable event (an edge that never comes fails the test, not hangs it).
        let mut next_event = |poll: &mut Poll, edge: &mut ReadEdge| loop {
            poll.poll(&mut events, Some(std::time::Duration::from_secs(10))).unwrap();
            assert!(!events.is_empty(), "no event came");
            if let Some(event) = events.iter().find(|e| e.is_readable() || e.is_read_closed()) {
                edge.ready(event.is_read_closed() || event.is_error());
                return;
            }
        };
        let mut buf = [0u8; 64];
        client.write_all(b"first").unwrap();
        next_event(&mut poll, &mut edge);
        assert_eq!(edge.read(&mut server, &mut buf).unwrap(), 5);
        assert_eq!(edge.read(&mut server, &mut buf).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        client.write_all(b"second").unwrap();
        next_event(&mut poll, &mut edge);
        assert_eq!(edge.read(&mut server, &mut buf).unwrap(), 6);
        client.write_all(b"last").unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        // The data and the end, in one event or two: each event read until it would block.
        let mut read = Vec::new();
        'end: loop {
            next_event(&mut poll, &mut edge);
            loop {
                match edge.read(&mut server, &mut buf) {
                    Ok(0) => break 'end,
                    Ok(n) => read.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
            }
        }
        assert_eq!(read, b"last");
    }

    #[test]
    fn frame_heads_follow_rfc_6455() {
        let mut buf = [0u8; 10];
        assert_eq!(ws_binary_head(5, &mut buf), [0x82, 5]);
        assert_eq!(ws_binary_head(125, &mut buf), [0x82, 125]);
        assert_eq!(ws_binary_head(126, &mut buf), [0x82, 126, 0, 126]);
        assert_eq!(ws_binary_head(65_535, &mut buf), [0x82, 126, 0xff, 0xff]);
        assert_eq!(ws_binary_head(65_536, &mut buf), [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    /// Frames the socket cannot take wait in order behind what it took, and come out whole and
    /// in order once the reader reads; past the limit the client counts as not reading.
    #[test]
    fn a_full_socket_backlogs_in_order_then_refuses() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        socket2::SockRef::from(&server).set_send_buffer_size(4096).unwrap();
        socket2::SockRef::from(&client).set_recv_buffer_size(4096).unwrap();
        let socket = Socket::new(TcpStream::from_std(server), 8, Arc::default(), None);
        let out = Arc::clone(socket.outgoing());
        let payload = |i: u8| Bytes::from(vec![i; 1000]);
        let mut sent = Vec::new();
        let refused = loop {
            let i = sent.len() as u8;
            match out.send_frame(&payload(i)) {
                Ok(how) => sent.push(how),
                Err(e) => break e,
            }
            assert!(sent.len() < 1000, "the socket never filled");
        };
        assert_eq!(refused, QueueError::Full);
        assert!(sent.contains(&Sent::Written) && sent.contains(&Sent::Queued));
        assert_eq!(out.queued(), 8);
        // The backlog goes out as the client reads everything.
        let frames = sent.len();
        let reader = std::thread::spawn(move || {
            let mut client = client;
            let mut bytes = vec![0u8; frames * 1004];
            client.read_exact(&mut bytes).unwrap();
            bytes
        });
        while !out.write_out().unwrap() {
            std::thread::yield_now();
        }
        let bytes = reader.join().unwrap();
        for (i, frame) in bytes.chunks(1004).enumerate() {
            assert_eq!(&frame[..4], &[0x82, 126, 0x03, 0xe8], "frame {i}");
            assert!(frame[4..].iter().all(|&b| b == i as u8), "frame {i} whole and in order");
        }
        assert_eq!(out.queued(), 0);
        drop(socket);
        assert_eq!(out.send_frame(&payload(0)), Err(QueueError::Closed));
    }
}
