//! The player endpoint: the network threads ([`event_loop`]) accept WebSocket connections, run
//! the handshake, decode and rate-limit input, and write what a connection has to say itself
//! (errors, pings, the close); the writer threads write the tick's frames. It talks to the tick
//! thread through bounded channels and batches only:
//!
//! - network -> tick: [`NetEvent`]s (a join request, a client's decoded messages, a leave),
//!   drained at the start of each tick;
//! - tick -> network: each tick's frames, one batch per writer thread ([`writers::Writers`]),
//!   written straight to the sockets; per connection, a backlog bounded in frames for a client
//!   that does not read ([`socket::Outgoing`]), which is disconnected once it fills instead of
//!   growing the server's memory.

mod conn;
mod event_loop;
mod http;
pub mod socket;
pub mod writers;

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use veltrix_protocol::{ClientMessage, ErrorCode};

use crate::{auth::TokenKey, config::ServerConfig, metrics::Metrics, reasons::Disconnect};

/// A connection's number, unique for the run. Its low 32 bits are its seat ([`seat`]), its
/// high 32 count the connections accepted.
pub type ConnId = u64;

/// A small number no other open connection has (taken again once it ends): what tables of
/// connections are indexed by, so a lookup is one load, not a hash's probe. The event loop's
/// slot of the connection, and which loop.
pub fn seat(conn: ConnId) -> usize {
    (conn & u64::from(u32::MAX)) as usize
}

/// The id of the `count`th connection accepted, in `seat`.
pub fn conn_id(count: u64, seat: u32) -> ConnId {
    (count << 32) | u64::from(seat)
}

/// The messages of one client frame. Nearly every frame holds one: held inline, so a frame
/// read costs no allocation on the network thread (and no free on the tick thread).
pub type FrameMessages = smallvec::SmallVec<[ClientMessage; 1]>;

/// What the network tells the tick thread.
pub enum NetEvent {
    /// A client completed the handshake's network part (version, credentials); the tick
    /// thread decides the rest (server full, banned, name taken).
    Join(JoinRequest),
    /// Decoded messages from a joined client, in arrival order, within its rate limit.
    Messages { conn: ConnId, messages: FrameMessages },
    /// The connection ended.
    Left { conn: ConnId, reason: Disconnect },
}

pub struct JoinRequest {
    pub conn: ConnId,
    pub name: String,
    /// The credentials were a valid token (so a second login replaces the first).
    pub authenticated: bool,
    pub addr: SocketAddr,
    pub handle: ConnHandle,
}

/// The tick thread's handle on one connection: its way out (written by the writer threads,
/// [`writers`]), through which it also asks for the connection to be closed.
#[derive(Clone)]
pub struct ConnHandle {
    out: Arc<socket::Outgoing>,
}

/// Why a frame could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// The client is not reading fast enough.
    Full,
    /// The connection is gone.
    Closed,
}

impl ConnHandle {
    /// A handle with no connection behind it: every frame sent to it is dropped at once
    /// (`send` answers `Closed`), and closing it tells nobody. For benchmarks that run the
    /// tick's joins and output without a network (`host/benches/interest.rs`).
    pub fn detached() -> Self {
        Self { out: Arc::new(socket::Outgoing::detached()) }
    }

    /// Closes the connection after sending `Error { code, message }` (the first call wins).
    pub fn close(&self, code: ErrorCode, message: impl Into<String>) {
        self.out.close(code, message.into());
    }

    /// Frames waiting for the client to read (its backlog).
    pub fn queued(&self) -> usize {
        self.out.queued()
    }
}

/// How clients authenticate, as the network threads check it.
pub enum AuthMode {
    Offline,
    Token(Arc<TokenKey>),
}

/// What every network thread shares.
struct Shared {
    config: NetSettings,
    auth: AuthMode,
    events: flume::Sender<NetEvent>,
    metrics: Arc<Metrics>,
    next_conn: AtomicU64,
    /// The tick being run, for the `tick` of immediate frames.
    current_tick: Arc<AtomicU64>,
    per_ip: Mutex<HashMap<IpAddr, u32>>,
    /// When the network threads stop, once the server is stopping.
    stop: OnceLock<Instant>,
}

/// The config values the network threads use.
#[derive(Debug, Clone)]
struct NetSettings {
    max_frame_bytes: usize,
    max_messages_per_second: u32,
    max_errors: u32,
    idle_timeout: Duration,
    ping_interval: Duration,
    handshake_timeout: Duration,
    max_queued_frames: usize,
    max_connections_per_ip: u32,
    read_buffer_bytes: usize,
    send_buffer_bytes: usize,
    poll_interval: Duration,
}

/// The running network: its threads, the runtime of the server's other services (admin
/// endpoint, cluster), the address it listens on.
pub struct Network {
    threads: event_loop::NetThreads,
    runtime: tokio::runtime::Runtime,
    pub local_addr: SocketAddr,
    pub current_tick: Arc<AtomicU64>,
}

/// Events the tick thread may fall behind by before the network threads wait.
const EVENT_QUEUE: usize = 64 * 1024;

impl Network {
    /// Binds the player endpoint and starts accepting; returns the network and the tick
    /// thread's end of the event channel.
    pub fn start(
        config: &ServerConfig,
        auth: AuthMode,
        metrics: Arc<Metrics>,
    ) -> Result<(Self, flume::Receiver<NetEvent>), String> {
        let n = &config.network;
        let threads = if n.threads == 0 {
            std::thread::available_parallelism().map_or(2, |p| p.get())
        } else {
            n.threads as usize
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("veltrix-async")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        let addr = format!("{}:{}", n.bind, config.port);
        let listener = listen(&addr)
            .map_err(|e| format!("cannot listen on {addr}: {e} (is another server running? change Port)"))?;
        let local_addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (tx, rx) = flume::bounded(EVENT_QUEUE);
        let current_tick = Arc::new(AtomicU64::new(0));
        let shared = Arc::new(Shared {
            config: NetSettings {
                max_frame_bytes: n.max_frame_bytes as usize,
                max_messages_per_second: n.max_messages_per_second,
                max_errors: n.max_errors,
                idle_timeout: Duration::from_secs(n.idle_timeout_seconds.into()),
                ping_interval: Duration::from_secs(n.ping_interval_seconds.into()),
                handshake_timeout: Duration::from_secs(n.handshake_timeout_seconds.into()),
                max_queued_frames: n.max_queued_frames as usize,
                max_connections_per_ip: n.max_connections_per_ip,
                read_buffer_bytes: n.read_buffer_bytes as usize,
                send_buffer_bytes: n.send_buffer_bytes as usize,
                poll_interval: Duration::from_micros(n.poll_interval_micros.into()),
            },
            auth,
            events: tx,
            metrics,
            next_conn: AtomicU64::new(1),
            current_tick: Arc::clone(&current_tick),
            per_ip: Mutex::new(HashMap::new()),
            stop: OnceLock::new(),
        });
        let threads = event_loop::NetThreads::start(threads, mio::net::TcpListener::from_std(listener), shared)
            .map_err(|e| format!("cannot start the network threads: {e}"))?;
        tracing::info!("players connect to ws://{local_addr}/");
        Ok((Self { threads, runtime, local_addr, current_tick }, rx))
    }

    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    /// Stops accepting and gives open connections `grace` to write their last frames.
    pub fn shutdown(self, grace: Duration) {
        self.threads.stop(grace);
        self.runtime.shutdown_timeout(grace);
    }
}

impl Shared {
    /// Counts a connection from `ip`; `None` when the address is over its limit.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let mut per_ip = self.per_ip.lock();
        let count = per_ip.entry(ip).or_insert(0);
        if *count >= self.config.max_connections_per_ip {
            return None;
        }
        *count += 1;
        Some(IpSlot { shared: Arc::clone(self), ip })
    }

    fn tick(&self) -> u64 {
        self.current_tick.load(Ordering::Relaxed)
    }
}

/// A counted connection from one address; uncounted when dropped.
struct IpSlot {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut per_ip = self.shared.per_ip.lock();
        if let Some(count) = per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// How many connections may wait to be accepted: as many as the kernel allows
/// (`net.core.somaxconn`, 4,096 on current Linux). tokio's own bind asks for 1,024: 12,000 players
/// reconnecting at once overflowed it, and each connection attempt dropped waited for its SYN to
/// be sent again, one second later and then three (docs/benchmarks.md, "The accept backlog").
const ACCEPT_BACKLOG: i32 = 65_535;

/// A listening socket on `addr` (the first of its addresses that binds), non-blocking, with
/// [`ACCEPT_BACKLOG`].
fn listen(addr: &str) -> std::io::Result<std::net::TcpListener> {
    let mut failed = None;
    for addr in std::net::ToSocketAddrs::to_socket_addrs(addr)? {
        let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
        // As tokio's bind: a restarted server takes its port at once, past old connections in
        // TIME_WAIT.
        socket.set_reuse_address(true)?;
        socket.set_nonblocking(true)?;
        match socket.bind(&addr.into()).and_then(|()| socket.listen(ACCEPT_BACKLOG)) {
            Ok(()) => return Ok(socket.into()),
            Err(e) => failed = Some(e),
        }
    }
    Err(failed.unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to bind to")))
}
