//! The network threads (`veltrix-net-N`): each drives its share of the player connections on
//! one mio poll, every connection a state machine ([`super::conn::Conn`]) over its non-blocking
//! socket: no task, boxed future, waker or timer per connection, so that a connected player
//! costs its socket, its WebSocket state and little more (docs/benchmarks.md, "The
//! connections on event loops of the server's own").
//!
//! The first thread also accepts, and hands each connection to the threads in turn. A socket
//! is read when it is readable (edge-triggered: until it would block, or until a read shorter
//! than its buffer emptied it, [`super::socket::ReadEdge`]) and its backlog written when it is
//! writable. A thread polls at most once per `Network.PollIntervalMicros`: a
//! message that finds it idle is read at once, those that come while it is busy or pausing
//! wait for the next poll together. Time-outs, pings and the close's last wait are looked at every
//! [`SWEEP`]. The tick thread and the writer threads reach a connection through its thread's
//! [`Mailbox`] (a close asked for), which wakes the thread's poll.

use std::{
    io::ErrorKind,
    mem,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use mio::{Events, Interest, Poll, Token, Waker, event::Event, net::TcpListener, net::TcpStream};
use parking_lot::Mutex;
use slab::Slab;
use veltrix_protocol::ErrorCode;

use super::{
    ConnId, Disconnect, Shared,
    conn::Conn,
    socket::{Door, Socket},
};

/// How often a thread looks at its connections' time-outs and pings.
const SWEEP: Duration = Duration::from_millis(100);
/// Sweeps between two looks at every connection's backlog.
const BACKLOG_SWEEPS: u64 = 10;
/// The poll token of a thread's mailbox.
const MAIL: Token = Token(usize::MAX);
/// The poll token of the listening socket (the first thread's).
const LISTENER: Token = Token(usize::MAX - 1);

/// What reaches a network thread from other threads.
pub(super) enum Mail {
    /// A connection accepted by the first thread, for this one.
    Accepted(TcpStream, SocketAddr),
    /// Send `Error { code, message }` to the connection in `slot` (if it is still `conn`) and
    /// close it.
    Close { slot: usize, conn: ConnId, code: ErrorCode, message: String },
}

/// A network thread's mail and the waker of its poll.
pub(super) struct Mailbox {
    mail: Mutex<Vec<Mail>>,
    waker: Waker,
    /// The waker was woken and the thread has not taken its mail yet: one wake-up for a burst
    /// of posts.
    rung: AtomicBool,
}

impl Mailbox {
    pub(super) fn post(&self, mail: Mail) {
        self.mail.lock().push(mail);
        if !self.rung.swap(true, Ordering::AcqRel) {
            let _ = self.waker.wake();
        }
    }

    /// Wakes the thread without mail (to look at the stop flag).
    fn ring(&self) {
        self.rung.store(true, Ordering::Release);
        let _ = self.waker.wake();
    }
}

/// The network threads.
pub(super) struct NetThreads {
    mailboxes: Arc<[Arc<Mailbox>]>,
    /// Disconnected once every thread has ended.
    ended: flume::Receiver<()>,
    shared: Arc<Shared>,
}

impl NetThreads {
    /// Starts `count` threads (at least one); the first accepts on `listener`.
    pub(super) fn start(count: usize, listener: TcpListener, shared: Arc<Shared>) -> std::io::Result<Self> {
        let mut polls = Vec::new();
        let mut mailboxes = Vec::new();
        for _ in 0..count.max(1) {
            let poll = Poll::new()?;
            let waker = Waker::new(poll.registry(), MAIL)?;
            mailboxes.push(Arc::new(Mailbox { mail: Mutex::new(Vec::new()), waker, rung: AtomicBool::new(false) }));
            polls.push(poll);
        }
        let mailboxes: Arc<[Arc<Mailbox>]> = mailboxes.into();
        let mut listener = Some(listener);
        let (ended_tx, ended) = flume::bounded(0);
        for (index, poll) in polls.into_iter().enumerate() {
            let mut event_loop = EventLoop {
                index,
                poll,
                listener: listener.take(),
                accept_again: false,
                next_thread: 0,
                conns: Slab::new(),
                mailboxes: Arc::clone(&mailboxes),
                mail: Vec::new(),
                ended: Vec::new(),
                sweeps: 0,
                shared: Arc::clone(&shared),
                _running: ended_tx.clone(),
            };
            if let Some(listener) = &mut event_loop.listener {
                event_loop.poll.registry().register(listener, LISTENER, Interest::READABLE)?;
            }
            thread::Builder::new().name(format!("veltrix-net-{index}")).spawn(move || event_loop.run())?;
        }
        Ok(Self { mailboxes, ended, shared })
    }

    /// Stops accepting, and gives the open connections until `grace` has passed to write their
    /// last frames and close.
    pub(super) fn stop(self, grace: Duration) {
        let deadline = *self.shared.stop.get_or_init(|| Instant::now() + grace);
        for mailbox in self.mailboxes.iter() {
            mailbox.ring();
        }
        // Until every thread has ended (each drops its sender), or a little past the deadline:
        // a thread still waiting for room in the tick thread's queue (which nobody drains now)
        // is left to the process's end.
        while self.ended.recv_deadline(deadline + SWEEP * 2).is_ok() {}
    }
}

struct EventLoop {
    index: usize,
    poll: Poll,
    /// The first thread's: it accepts for all.
    listener: Option<TcpListener>,
    /// Accepting failed (out of descriptors and the like): try again at the next sweep, since
    /// no new readiness comes for the connections already waiting.
    accept_again: bool,
    /// The thread the next accepted connection goes to.
    next_thread: usize,
    conns: Slab<Conn>,
    mailboxes: Arc<[Arc<Mailbox>]>,
    /// The mail being handled, its room kept.
    mail: Vec<Mail>,
    /// Connections that ended in a sweep, their room kept.
    ended: Vec<(usize, Disconnect)>,
    /// Sweeps so far.
    sweeps: u64,
    shared: Arc<Shared>,
    /// Dropped when the thread ends ([`NetThreads::stop`] waits for that).
    _running: flume::Sender<()>,
}

impl EventLoop {
    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut next_sweep = Instant::now() + SWEEP;
        let mut polled = Instant::now();
        loop {
            // At most one poll per interval: what comes meanwhile waits in the kernel and is
            // taken in one wake-up. Woken for each message or two (12,000 players moving), the
            // threads spent more on waking than on the messages.
            if let Some(pause) = self.shared.config.poll_interval.checked_sub(polled.elapsed()) {
                thread::sleep(pause);
            }
            let wait = next_sweep.saturating_duration_since(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, Some(wait))
                && e.kind() != ErrorKind::Interrupted
            {
                tracing::error!("the network thread {} cannot poll its sockets: {e}", self.index);
                return;
            }
            polled = Instant::now();
            for event in &events {
                match event.token() {
                    MAIL => self.take_mail(),
                    LISTENER => self.accept(),
                    Token(slot) => self.progress(slot, event),
                }
            }
            let now = Instant::now();
            if now >= next_sweep {
                self.sweep(now);
                next_sweep = now + SWEEP;
            }
            if let Some(&deadline) = self.shared.stop.get() {
                self.listener = None;
                if self.conns.is_empty() || now >= deadline {
                    return;
                }
            }
        }
    }

    /// Accepts every connection waiting, each for the next thread in turn.
    fn accept(&mut self) {
        self.accept_again = false;
        loop {
            let Some(listener) = &self.listener else { return };
            match listener.accept() {
                Ok((tcp, addr)) => {
                    let _ = tcp.set_nodelay(true);
                    if self.shared.config.send_buffer_bytes > 0 {
                        let _ = socket2::SockRef::from(&tcp).set_send_buffer_size(self.shared.config.send_buffer_bytes);
                    }
                    let to = self.next_thread;
                    self.next_thread = (self.next_thread + 1) % self.mailboxes.len();
                    if to == self.index {
                        self.adopt(tcp, addr);
                    } else {
                        self.mailboxes[to].post(Mail::Accepted(tcp, addr));
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of file descriptors and the like: try again at the next sweep
                    // instead of spinning.
                    tracing::warn!("accepting a connection failed: {e}");
                    self.accept_again = true;
                    return;
                }
            }
        }
    }

    /// Takes an accepted connection into this thread.
    fn adopt(&mut self, mut tcp: TcpStream, addr: SocketAddr) {
        let entry = self.conns.vacant_entry();
        let slot = entry.key();
        let Ok(seat) = u32::try_from(slot * self.mailboxes.len() + self.index) else {
            tracing::warn!("a connection from {addr} was refused: over 4 billion open");
            return;
        };
        let conn = super::conn_id(self.shared.next_conn.fetch_add(1, Ordering::Relaxed), seat);
        if let Err(e) = self.poll.registry().register(&mut tcp, Token(slot), Interest::READABLE | Interest::WRITABLE) {
            tracing::warn!("a connection from {addr} could not be watched: {e}");
            return;
        }
        let door = Door { mailbox: Arc::clone(&self.mailboxes[self.index]), slot, conn };
        let socket =
            Socket::new(tcp, self.shared.config.max_queued_frames, Arc::clone(&self.shared.metrics), Some(door));
        self.shared.metrics.connections_open.inc();
        entry.insert(Conn::accepted(conn, socket, addr, &self.shared));
    }

    fn take_mail(&mut self) {
        let mut mail = mem::take(&mut self.mail);
        let mailbox = &self.mailboxes[self.index];
        mailbox.rung.store(false, Ordering::Release);
        mem::swap(&mut *mailbox.mail.lock(), &mut mail);
        for item in mail.drain(..) {
            match item {
                Mail::Accepted(tcp, addr) => self.adopt(tcp, addr),
                Mail::Close { slot, conn, code, message } => {
                    if let Some(c) = self.conns.get_mut(slot)
                        && c.id() == conn
                    {
                        let outcome = c.close_asked(&self.shared, code, &message);
                        self.settle(slot, outcome);
                    }
                }
            }
        }
        self.mail = mail;
    }

    /// What the connection in `slot` can do now that its socket is ready.
    fn progress(&mut self, slot: usize, event: &Event) {
        let Some(conn) = self.conns.get_mut(slot) else { return };
        let outcome = conn.ready(&self.shared, event);
        self.settle(slot, outcome);
    }

    /// Ends the connection in `slot` if `outcome` says it ended.
    fn settle(&mut self, slot: usize, outcome: Result<(), Disconnect>) {
        if let Err(ended) = outcome {
            let conn = self.conns.remove(slot);
            conn.end(&self.shared, ended);
        }
    }

    /// Time-outs, pings, the close's last wait; and, every [`BACKLOG_SWEEPS`], any backlog
    /// left waiting (a writable event is not expected to go missing: this bounds the harm if
    /// one does).
    fn sweep(&mut self, now: Instant) {
        if self.accept_again {
            self.accept();
        }
        self.sweeps += 1;
        let backlog = self.sweeps.is_multiple_of(BACKLOG_SWEEPS);
        let mut ended = mem::take(&mut self.ended);
        for (slot, conn) in &mut self.conns {
            if let Err(why) = conn.sweep(&self.shared, now, backlog) {
                ended.push((slot, why));
            }
        }
        for (slot, why) in ended.drain(..) {
            self.settle(slot, Err(why));
        }
        self.ended = ended;
    }
}
