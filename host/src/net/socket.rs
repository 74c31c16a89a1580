//! A player connection's socket, written by two parties in one order: the writer threads (the
//! tick's frames, [`super::writers`]) and the connection's task (the upgrade's answer, errors,
//! pings, the close). Both write through [`Outgoing`]: when nothing waits, straight to the socket
//! with one vectored, non-blocking write (no task woken, no copy); what the socket does not take
//! waits in the backlog, in order, and the connection's task writes it out when the socket has
//! room. The task's reads go to the socket as they are.

use std::{
    collections::VecDeque,
    io::{self, IoSlice},
    os::fd::{AsRawFd, BorrowedFd, RawFd},
    pin::Pin,
    sync::atomic::{AtomicUsize, Ordering},
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::{
    io::{AsyncRead, AsyncWrite, Interest, ReadBuf},
    net::TcpStream,
    sync::Notify,
};

use super::QueueError;
use crate::metrics::Metrics;

/// A connection's way out.
pub struct Outgoing {
    /// The socket's descriptor: valid while `closed` is false (the socket is closed only after
    /// [`Socket`]'s drop set it, under the same lock every write takes).
    fd: RawFd,
    state: Mutex<Backlog>,
    /// Frames in the backlog, read without the lock (the outbound queue depth metric).
    queued: AtomicUsize,
    /// Told when the backlog gets bytes: the connection's task writes them out.
    pub(super) backlogged: Notify,
    /// Frames the backlog may hold before the client counts as not reading.
    max_frames: usize,
    metrics: std::sync::Arc<Metrics>,
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
    fn new(fd: RawFd, max_frames: usize, metrics: std::sync::Arc<Metrics>) -> Self {
        Self {
            fd,
            state: Mutex::default(),
            queued: AtomicUsize::new(0),
            backlogged: Notify::new(),
            max_frames,
            metrics,
        }
    }

    /// An outgoing end with no socket: every frame is refused as `Closed`.
    pub fn detached() -> Self {
        let out = Self::new(-1, 1, std::sync::Arc::default());
        out.state.lock().closed = true;
        out
    }

    /// Writes a WebSocket binary frame carrying `payload`: straight to the socket when nothing
    /// waits, else behind the backlog. `Full` when the backlog already holds `max_frames` frames
    /// (the client is not reading), `Closed` when the connection is gone.
    pub fn send_frame(&self, payload: &Bytes) -> Result<Sent, QueueError> {
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
        // The task finds a broken connection on its side and ends it.
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
        self.queued.fetch_add(1, Ordering::Relaxed);
        drop(state);
        if !waiting {
            // A backlog just began: the task writes it out (one already waiting has its task
            // told).
            self.backlogged.notify_one();
        }
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

    /// Bytes from the connection's task (tungstenite's frames): written at once when nothing
    /// waits, else behind the backlog. Never refused for its size: the task writes little.
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

/// The stream a connection's WebSocket runs on: reads from the socket, writes through its
/// [`Outgoing`], in order with the writer threads' frames.
pub struct Socket {
    tcp: TcpStream,
    out: std::sync::Arc<Outgoing>,
}

impl Socket {
    /// Wraps an upgraded connection; `max_frames` is the backlog's limit for the tick's frames.
    pub fn new(tcp: TcpStream, max_frames: usize, metrics: std::sync::Arc<Metrics>) -> Self {
        let out = std::sync::Arc::new(Outgoing::new(tcp.as_raw_fd(), max_frames, metrics));
        Self { tcp, out }
    }

    pub fn outgoing(&self) -> &std::sync::Arc<Outgoing> {
        &self.out
    }

    /// Writes out the backlog, waiting for room in the socket as needed.
    fn poll_backlog(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.out.state.lock().chunks.is_empty() {
                return Poll::Ready(Ok(()));
            }
            ready!(self.tcp.poll_write_ready(cx))?;
            // Through `try_io`, so that a full socket clears tokio's readiness and the next
            // `poll_write_ready` waits for room instead of spinning.
            match self.tcp.try_io(Interest::WRITABLE, || self.out.write_backlog()) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
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

impl AsyncRead for Socket {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Socket {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(self.out.send_bytes(buf).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_backlog(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_backlog(cx))?;
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    #[tokio::test]
    async fn a_full_socket_backlogs_in_order_then_refuses() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        socket2::SockRef::from(&server).set_send_buffer_size(4096).unwrap();
        socket2::SockRef::from(&client).set_recv_buffer_size(4096).unwrap();
        let socket = Socket::new(server, 8, std::sync::Arc::default());
        let out = std::sync::Arc::clone(socket.outgoing());
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
        // The task writes the backlog out while the client reads everything.
        let frames = sent.len();
        let reader = tokio::spawn(async move {
            let mut client = client;
            let mut bytes = vec![0u8; frames * 1004];
            tokio::io::AsyncReadExt::read_exact(&mut client, &mut bytes).await.unwrap();
            bytes
        });
        let mut socket = socket;
        tokio::io::AsyncWriteExt::flush(&mut socket).await.unwrap();
        let bytes = reader.await.unwrap();
        for (i, frame) in bytes.chunks(1004).enumerate() {
            assert_eq!(&frame[..4], &[0x82, 126, 0x03, 0xe8], "frame {i}");
            assert!(frame[4..].iter().all(|&b| b == i as u8), "frame {i} whole and in order");
        }
        assert_eq!(out.queued(), 0);
        drop(socket);
        assert_eq!(out.send_frame(&payload(0)), Err(QueueError::Closed));
    }
}
