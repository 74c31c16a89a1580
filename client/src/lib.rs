//! A Veltrix client: one WebSocket connection speaking the protocol of docs/protocol.md.
//!
//! It serves the integration tests and a bot swarm of thousands of connections in one process,
//! so a connection is kept small: 4 KiB WebSocket read buffer and no write buffering (the
//! tungstenite defaults are 128 KiB each), no background task per connection (pings are
//! answered while reading, so a client that stops reading is, correctly, a slow consumer to the
//! server), and sending a mod message or command does not copy its strings.
//!
//! Reading is cancel-safe at the frame level: a timeout around [`Client::next_frame`] never loses
//! part of a frame.
//!
//! A frame from the benchmark build of the server carries the time its tick's state was
//! committed, in nanoseconds of the server's `CLOCK_MONOTONIC` (docs/benchmarks.md): read it
//! with [`Client::next_stamped_frame`], or [`Client::committed_ns`] after any read.
//!
//! For tests that check what went over the wire, a client can keep the bytes of every frame it
//! reads, as received ([`Client::connect_recording`], [`Client::record_raw_frames`],
//! [`Client::raw_frames`]); off by default, and a boxed pointer's worth when off.
//!
//! ```ignore
//! let (mut client, welcome) = Client::connect("127.0.0.1:5520", hello("ana")).await?;
//! let request = client.command("hunt rank").await?;
//! let answer = client
//!     .recv_until(Duration::from_secs(2), |m| matches!(m, ServerMessage::CommandResult(r) if r.request == request))
//!     .await?;
//! client.close().await?;
//! ```

mod addr;
mod error;

use std::{
    collections::VecDeque,
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde::{Serialize, de::DeserializeOwned};
use tokio::{
    net::{TcpSocket, TcpStream},
    time::Instant,
};
use tokio_tungstenite::{
    WebSocketStream, client_async_with_config,
    tungstenite::{
        self, Message,
        error::ProtocolError,
        protocol::{CloseFrame, WebSocketConfig, frame::coding::CloseCode},
    },
};
pub use veltrix_protocol;
use veltrix_protocol::{
    ClientMessage, Command, DecodeError, Hello, ModMessage, Move, PROTOCOL_VERSION, PlayerId, ServerFrame,
    ServerMessage, Welcome, decode_server_frame, encode_client_frame, encode_value,
};

pub use addr::{AddressError, DEFAULT_PORT};
pub use error::{ClientError, KEPT_MESSAGES};

/// How long [`Client::connect`] waits for the TCP connection, the upgrade and the Welcome.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`Client::close`] waits for the server to acknowledge the close.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// A `Hello` for offline authentication.
pub fn hello(name: impl Into<String>) -> Hello {
    Hello { protocol: PROTOCOL_VERSION, name: name.into(), token: None }
}

/// A `Hello` carrying a token from the server's `token` command.
pub fn hello_with_token(name: impl Into<String>, token: impl Into<String>) -> Hello {
    Hello { protocol: PROTOCOL_VERSION, name: name.into(), token: Some(token.into()) }
}

/// Decodes a mod message's body, itself a MessagePack value.
pub fn decode_mod_body<T: DeserializeOwned>(message: &ModMessage) -> Result<T, DecodeError> {
    Ok(rmp_serde::from_slice(&message.body)?)
}

/// How the connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    /// The close frame's code; 1005 when it carried none, 1006 when the connection dropped
    /// without a close frame (the RFC 6455 conventions).
    pub code: u16,
    /// The close frame's reason: the error code's name for the server's error closes.
    pub reason: String,
}

/// A connected, welcomed player.
pub struct Client {
    conn: Conn,
    welcome: Welcome,
    /// Messages read but not handed out yet: the rest of the first frame, or of the frame
    /// [`recv_until`](Self::recv_until) found its match in. They came with `pending_tick`.
    pending: VecDeque<ServerMessage>,
    pending_tick: u64,
    moves: Ids,
    requests: Ids,
}

/// A TCP connection to `endpoint`, from local address `from` when given (to the endpoint's
/// addresses of its family).
async fn tcp_connect(endpoint: &addr::Endpoint, from: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let to = (endpoint.host.as_str(), endpoint.port);
    let Some(from) = from else { return TcpStream::connect(to).await };
    let mut last = None;
    for to in tokio::net::lookup_host(to).await?.filter(|to| to.is_ipv4() == from.is_ipv4()) {
        let socket = if to.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        socket.bind(SocketAddr::new(from, 0))?;
        match socket.connect(to).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} has no address of {from}'s family", endpoint.host),
        )
    }))
}

impl Client {
    /// Connects, says `hello`, and waits for the answer, all within [`CONNECT_TIMEOUT`].
    ///
    /// `addr` is `host:port` (a bare host gets [`DEFAULT_PORT`]), `[v6]:port`, or a `ws://` URL
    /// with any path. Messages that came in the Welcome's frame after it are kept for
    /// [`next_frame`](Self::next_frame).
    pub async fn connect(addr: &str, hello: Hello) -> Result<(Client, Welcome), ClientError> {
        Self::connect_with_timeout(addr, hello, CONNECT_TIMEOUT).await
    }

    /// [`connect`](Self::connect), recording the bytes of every frame read from the first on
    /// (the Welcome's frame included): see [`raw_frames`](Self::raw_frames).
    pub async fn connect_recording(addr: &str, hello: Hello) -> Result<(Client, Welcome), ClientError> {
        Self::connect_with(addr, hello, CONNECT_TIMEOUT, true, None).await
    }

    /// [`connect`](Self::connect) with another time limit.
    pub async fn connect_with_timeout(
        addr: &str,
        hello: Hello,
        timeout: Duration,
    ) -> Result<(Client, Welcome), ClientError> {
        Self::connect_with(addr, hello, timeout, false, None).await
    }

    /// [`connect_with_timeout`](Self::connect_with_timeout) from the local address `from` (a
    /// load generator spreads its clients over several, as players come from many).
    pub async fn connect_from(
        addr: &str,
        hello: Hello,
        timeout: Duration,
        from: IpAddr,
    ) -> Result<(Client, Welcome), ClientError> {
        Self::connect_with(addr, hello, timeout, false, Some(from)).await
    }

    async fn connect_with(
        addr: &str,
        hello: Hello,
        timeout: Duration,
        record: bool,
        from: Option<IpAddr>,
    ) -> Result<(Client, Welcome), ClientError> {
        let endpoint =
            addr::Endpoint::parse(addr).map_err(|why| ClientError::Address { addr: addr.to_string(), why })?;
        match tokio::time::timeout(timeout, Self::handshake(endpoint, hello, record, from)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout { waited: timeout, received: Vec::new() }),
        }
    }

    async fn handshake(
        endpoint: addr::Endpoint,
        hello: Hello,
        record: bool,
        from: Option<IpAddr>,
    ) -> Result<(Client, Welcome), ClientError> {
        let tcp = tcp_connect(&endpoint, from).await?;
        // Moves are small and latency matters more than packet count.
        tcp.set_nodelay(true)?;
        let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
        let (ws, _response) = client_async_with_config(endpoint.url(), tcp, Some(config)).await?;
        let mut conn =
            Conn { ws, closed: None, skipped: 0, frames_read: 0, committed_ns: None, raw: record.then(Box::default) };
        conn.send(Message::Binary(encode_client_frame(&[ClientMessage::Hello(hello)]).into())).await?;
        let Some(frame) = conn.read().await? else {
            return Err(conn.closed_error(Vec::new()));
        };
        let ServerFrame { tick, mut messages } = frame;
        let welcome = messages.iter().position(|m| matches!(m, ServerMessage::Welcome(_)));
        let error = messages.iter().position(|m| matches!(m, ServerMessage::Error(_)));
        match (welcome, error) {
            (Some(i), _) => {
                let ServerMessage::Welcome(welcome) = messages.remove(i) else { unreachable!() };
                let client = Client {
                    conn,
                    welcome: welcome.clone(),
                    pending: messages.into(),
                    pending_tick: tick,
                    moves: Ids::default(),
                    requests: Ids::random(),
                };
                Ok((client, welcome))
            }
            (None, Some(i)) => {
                let ServerMessage::Error(error) = messages.swap_remove(i) else { unreachable!() };
                Err(ClientError::Refused(error))
            }
            (None, None) => Err(ClientError::NoWelcome(ServerFrame { tick, messages })),
        }
    }

    /// The player's id, from the Welcome.
    pub fn player(&self) -> PlayerId {
        self.welcome.player
    }

    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// How the connection ended, once it has.
    pub fn close_reason(&self) -> Option<&CloseInfo> {
        self.conn.closed.as_ref()
    }

    pub fn is_closed(&self) -> bool {
        self.conn.closed.is_some()
    }

    /// Binary frames read from the connection so far, the handshake's included (to match
    /// against the server's count of frames written).
    pub fn frames_read(&self) -> u64 {
        self.conn.frames_read
    }

    /// The `committed_ns` of the last frame read: when the server committed the state of that
    /// frame's tick, in nanoseconds of its `CLOCK_MONOTONIC` (compare with
    /// `clock_gettime(CLOCK_MONOTONIC)` on the same machine). The messages handed out last,
    /// and those still pending, came in that frame. `None` when the server is not the
    /// benchmark build.
    pub fn committed_ns(&self) -> Option<u64> {
        self.conn.committed_ns
    }

    /// Server messages skipped because their kind is newer than this client.
    pub fn skipped_messages(&self) -> u64 {
        self.conn.skipped
    }

    /// Starts (`true`) or stops (`false`) recording the bytes of every frame read from now on.
    /// Starting keeps what was recorded so far; stopping drops it.
    pub fn record_raw_frames(&mut self, on: bool) {
        match (on, &self.conn.raw) {
            (true, None) => self.conn.raw = Some(Box::default()),
            (false, _) => self.conn.raw = None,
            (true, Some(_)) => {}
        }
    }

    /// The bytes of each binary frame read while recording, in order, exactly as received:
    /// messages of kinds this client skips are in them, and so are messages not handed out
    /// yet. Empty when not recording.
    pub fn raw_frames(&self) -> &[Bytes] {
        self.conn.raw.as_deref().map_or(&[], Vec::as_slice)
    }

    /// The frames recorded so far, leaving the record empty (recording goes on).
    pub fn take_raw_frames(&mut self) -> Vec<Bytes> {
        self.conn.raw.as_deref_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Sends `messages` as one frame.
    pub async fn send(&mut self, messages: &[ClientMessage]) -> Result<(), ClientError> {
        self.conn.send(Message::Binary(encode_client_frame(messages).into())).await
    }

    /// Sends any bytes as one binary frame, valid or not.
    pub async fn send_raw(&mut self, bytes: impl Into<Bytes>) -> Result<(), ClientError> {
        self.conn.send(Message::Binary(bytes.into())).await
    }

    /// Sends a text frame, which the protocol does not allow (the server answers Malformed).
    pub async fn send_text(&mut self, text: impl Into<String>) -> Result<(), ClientError> {
        self.conn.send(Message::text(text.into())).await
    }

    /// Asks to move to (x, y) in tiles; returns the move's `seq`, which a
    /// `PositionCorrected` refusing it will name.
    pub async fn move_to(&mut self, x: f32, y: f32) -> Result<u32, ClientError> {
        let seq = self.moves.next();
        self.send(&[ClientMessage::Move(Move { seq, x, y })]).await?;
        Ok(seq)
    }

    /// Sends a mod message; `body` is encoded on its own with named fields, as mods decode it.
    pub async fn send_mod<T: Serialize + ?Sized>(
        &mut self,
        ns: &str,
        kind: &str,
        request: Option<u32>,
        body: &T,
    ) -> Result<(), ClientError> {
        let mut encoded = Vec::with_capacity(32);
        encode_value(body, &mut encoded);
        let message = ModMessage { ns: ns.to_string(), kind: kind.to_string(), request, body: encoded };
        self.send(&[ClientMessage::Mod(message)]).await
    }

    /// Sends a mod message with a new request id, and returns the id its answer will carry.
    pub async fn mod_request<T: Serialize + ?Sized>(
        &mut self,
        ns: &str,
        kind: &str,
        body: &T,
    ) -> Result<u32, ClientError> {
        let request = self.next_request();
        self.send_mod(ns, kind, Some(request), body).await?;
        Ok(request)
    }

    /// Sends a command line (`hunt rank`); returns the request id its `CommandResult` will carry.
    pub async fn command(&mut self, line: &str) -> Result<u32, ClientError> {
        let request = self.next_request();
        self.send(&[ClientMessage::Command(Command { request, line: line.to_string() })]).await?;
        Ok(request)
    }

    /// A fresh request id for [`send_mod`](Self::send_mod); commands draw from the same
    /// counter, so ids never repeat within a connection until they wrap.
    pub fn next_request(&mut self) -> u32 {
        self.requests.next()
    }

    /// The next server frame; `Ok(None)` once the connection has closed (see
    /// [`close_reason`](Self::close_reason)). Waits as long as it takes.
    pub async fn next_frame(&mut self) -> Result<Option<ServerFrame>, ClientError> {
        if !self.pending.is_empty() {
            let messages = self.pending.drain(..).collect();
            return Ok(Some(ServerFrame { tick: self.pending_tick, messages }));
        }
        self.conn.read().await
    }

    /// [`next_frame`](Self::next_frame) with the frame's `committed_ns` (see
    /// [`committed_ns`](Self::committed_ns)).
    pub async fn next_stamped_frame(&mut self) -> Result<Option<(ServerFrame, Option<u64>)>, ClientError> {
        Ok(self.next_frame().await?.map(|frame| (frame, self.conn.committed_ns)))
    }

    /// Reads until a message matches `pred` and returns it. Messages before it are dropped
    /// (the error lists them if nothing matches); those after it in its frame stay for the next
    /// read. Fails on timeout or close.
    pub async fn recv_until(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&ServerMessage) -> bool,
    ) -> Result<ServerMessage, ClientError> {
        let deadline = Instant::now() + timeout;
        let mut received = Vec::new();
        loop {
            while let Some(message) = self.pending.pop_front() {
                if pred(&message) {
                    return Ok(message);
                }
                error::keep(&mut received, message);
            }
            match tokio::time::timeout_at(deadline, self.conn.read()).await {
                Err(_) => return Err(ClientError::Timeout { waited: timeout, received }),
                Ok(Ok(Some(frame))) => {
                    self.pending_tick = frame.tick;
                    self.pending.extend(frame.messages);
                }
                Ok(Ok(None)) => return Err(self.conn.closed_error(received)),
                Ok(Err(e)) => return Err(e),
            }
        }
    }

    /// Every frame that arrives within `duration`, for asserting what (or that nothing) comes.
    /// A close meanwhile is an error, since "nothing came" would hide it.
    pub async fn collect_for(&mut self, duration: Duration) -> Result<Vec<ServerFrame>, ClientError> {
        let deadline = Instant::now() + duration;
        let mut frames = Vec::new();
        if !self.pending.is_empty() {
            frames.push(ServerFrame { tick: self.pending_tick, messages: self.pending.drain(..).collect() });
        }
        loop {
            match tokio::time::timeout_at(deadline, self.conn.read()).await {
                Err(_) => return Ok(frames),
                Ok(Ok(Some(frame))) => frames.push(frame),
                Ok(Ok(None)) => {
                    let mut received = Vec::new();
                    for message in frames.into_iter().flat_map(|f| f.messages) {
                        error::keep(&mut received, message);
                    }
                    return Err(self.conn.closed_error(received));
                }
                Ok(Err(e)) => return Err(e),
            }
        }
    }

    /// Closes with code 1000 and waits up to [`CLOSE_TIMEOUT`] for the server's
    /// acknowledgement, so the server sees a clean leave rather than a dropped connection.
    pub async fn close(mut self) -> Result<(), ClientError> {
        if self.conn.closed.is_some() {
            return Ok(());
        }
        let frame = CloseFrame { code: CloseCode::Normal, reason: "".into() };
        match self.conn.ws.close(Some(frame)).await {
            Ok(()) => {}
            Err(e) if dropped(&e) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let _ =
            tokio::time::timeout(CLOSE_TIMEOUT, async { while let Some(Ok(_)) = self.conn.ws.next().await {} }).await;
        Ok(())
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("player", &self.welcome.player)
            .field("pending", &self.pending.len())
            .field("closed", &self.conn.closed)
            .finish_non_exhaustive()
    }
}

/// The WebSocket and how it ended.
struct Conn {
    ws: WebSocketStream<TcpStream>,
    closed: Option<CloseInfo>,
    /// Server messages of kinds this client does not know, skipped so far.
    skipped: u64,
    frames_read: u64,
    /// The last frame's `committed_ns` (benchmark builds of the server only).
    committed_ns: Option<u64>,
    /// The bytes of every binary frame read, while recording. Boxed: a bot swarm holds
    /// thousands of clients that never record, each paying one pointer for this.
    #[allow(clippy::box_collection)]
    raw: Option<Box<Vec<Bytes>>>,
}

impl Conn {
    async fn send(&mut self, message: Message) -> Result<(), ClientError> {
        if self.closed.is_some() {
            return Err(self.closed_error(Vec::new()));
        }
        Ok(self.ws.send(message).await?)
    }

    /// The next binary frame, decoded; `None` once closed. Cancel-safe: `closed` is set before
    /// the only await that follows a read.
    async fn read(&mut self) -> Result<Option<ServerFrame>, ClientError> {
        while self.closed.is_none() {
            match self.ws.next().await {
                Some(Ok(Message::Binary(data))) => {
                    self.frames_read += 1;
                    if let Some(raw) = &mut self.raw {
                        raw.push(data.clone());
                    }
                    // Messages of kinds newer than this client are skipped, the rest kept.
                    let decoded = decode_server_frame(&data)?;
                    self.skipped += decoded.skipped as u64;
                    self.committed_ns = decoded.committed_ns;
                    return Ok(Some(decoded.frame));
                }
                Some(Ok(Message::Text(text))) => {
                    let shown: String = text.chars().take(80).collect();
                    return Err(DecodeError::Malformed(format!("a text frame: {shown:?}")).into());
                }
                Some(Ok(Message::Close(frame))) => {
                    self.closed = Some(match frame {
                        Some(frame) => CloseInfo { code: frame.code.into(), reason: frame.reason.to_string() },
                        None => CloseInfo { code: 1005, reason: String::new() },
                    });
                    // Sends tungstenite's queued reply, completing the close handshake.
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.ws.flush()).await;
                }
                Some(Ok(_)) => {} // ping (answered by tungstenite), pong
                Some(Err(e)) if dropped(&e) => {
                    self.closed = Some(CloseInfo { code: 1006, reason: e.to_string() });
                }
                Some(Err(e)) => return Err(e.into()),
                None => self.closed = Some(CloseInfo { code: 1006, reason: "connection dropped".into() }),
            }
        }
        Ok(None)
    }

    fn closed_error(&self, received: Vec<ServerMessage>) -> ClientError {
        let CloseInfo { code, reason } =
            self.closed.clone().unwrap_or(CloseInfo { code: 1006, reason: "connection dropped".into() });
        ClientError::Closed { code, reason, received }
    }
}

/// Errors that mean the peer went away rather than that something is wrong with this side.
fn dropped(e: &tungstenite::Error) -> bool {
    use std::io::ErrorKind::*;
    match e {
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => true,
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => true,
        tungstenite::Error::Io(e) => {
            matches!(e.kind(), ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof)
        }
        _ => false,
    }
}

/// Request ids and move sequence numbers: from 1, skipping 0 when they wrap, so 0 can never be
/// mistaken for an id.
#[derive(Debug, Default)]
struct Ids(u32);

impl Ids {
    /// Ids from a random point: the server answers a repeated request id (same player) with
    /// its first answer, across connections, so a new connection must not start where an
    /// earlier one did.
    fn random() -> Self {
        use std::hash::BuildHasher;
        let seed = std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now());
        Self(seed as u32 & 0x7fff_ffff)
    }

    fn next(&mut self) -> u32 {
        self.0 = self.0.checked_add(1).unwrap_or(1);
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_start_at_one_and_skip_zero_when_wrapping() {
        let mut ids = Ids::default();
        assert_eq!([ids.next(), ids.next(), ids.next()], [1, 2, 3]);
        let mut ids = Ids(u32::MAX - 1);
        assert_eq!([ids.next(), ids.next(), ids.next()], [u32::MAX, 1, 2]);
    }

    /// A bot swarm spawns each client on a multi-threaded runtime.
    #[test]
    fn clients_and_their_futures_are_send() {
        fn send<T: Send>(_: &T) {}
        let connect = Client::connect("127.0.0.1:5520", hello("ana"));
        send(&connect);
        drop(connect);
        let _never_called = |client: &mut Client| {
            send(client);
            send(&client.next_frame());
            send(&client.next_stamped_frame());
            send(&client.recv_until(Duration::ZERO, |_| true));
            send(&client.collect_for(Duration::ZERO));
            send(&client.move_to(1.0, 2.0));
            send(&client.send_mod("A:B", "K", None, &[1, 2]));
            send(&client.command("hunt rank"));
        };
    }

    /// A recording client keeps each frame's bytes as the server sent them, from the Welcome's.
    #[tokio::test]
    async fn recorded_frames_are_the_bytes_received() {
        use veltrix_protocol::{FrameBuilder, PlayerGone};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let welcome = Welcome {
            player: 7,
            protocol: PROTOCOL_VERSION,
            server_name: "test".into(),
            tick_rate: 30,
            tick: 5,
            x: 1.5,
            y: 2.5,
            mods: Vec::new(),
            world: None,
        };
        let gone = |tick, player| FrameBuilder::single(tick, &ServerMessage::PlayerGone(PlayerGone { player }));
        let stamped = FrameBuilder::single_stamped(8, 1234, &ServerMessage::PlayerGone(PlayerGone { player: 10 }));
        let frames =
            [FrameBuilder::single(5, &ServerMessage::Welcome(welcome.clone())), gone(6, 8), gone(7, 9), stamped];
        let sent = frames.clone();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            let _hello = ws.next().await;
            for frame in sent {
                ws.send(Message::Binary(frame)).await.unwrap();
            }
            while let Some(Ok(_)) = ws.next().await {}
        });

        let (mut client, got) = Client::connect_recording(&addr, hello("ana")).await.unwrap();
        assert_eq!(got, welcome);
        assert_eq!(client.raw_frames(), &frames[..1], "the Welcome's frame");
        let frame = client.next_frame().await.unwrap().unwrap();
        assert_eq!(frame.tick, 6);
        assert_eq!(client.raw_frames(), &frames[..2]);
        assert_eq!(client.take_raw_frames(), &frames[..2]);
        assert!(client.raw_frames().is_empty());
        client.record_raw_frames(false);
        assert_eq!(client.next_frame().await.unwrap().unwrap().tick, 7);
        assert!(client.raw_frames().is_empty(), "not recording");
        assert_eq!(client.committed_ns(), None, "a frame without the stamp");
        let (frame, committed_ns) = client.next_stamped_frame().await.unwrap().unwrap();
        assert_eq!((frame.tick, committed_ns, client.committed_ns()), (8, Some(1234), Some(1234)));
        client.close().await.unwrap();
        server.await.unwrap();
    }

    #[test]
    fn hello_announces_the_protocol_version() {
        assert_eq!(hello("ana"), Hello { protocol: PROTOCOL_VERSION, name: "ana".into(), token: None });
        assert_eq!(hello_with_token("ana", "t").token.as_deref(), Some("t"));
    }

    #[test]
    fn mod_bodies_round_trip_with_named_fields() {
        #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
        struct Dig {
            x: i32,
            y: i32,
        }
        let mut body = Vec::new();
        encode_value(&Dig { x: 3, y: -4 }, &mut body);
        assert_eq!(&body[..3], b"\x82\xa1x", "a map keyed by field name");
        let message = ModMessage { ns: "Veltrix:TreasureHunt".into(), kind: "Dig".into(), request: None, body };
        assert_eq!(decode_mod_body::<Dig>(&message).unwrap(), Dig { x: 3, y: -4 });
        let bad = ModMessage { body: vec![0xc1], ..message };
        assert!(matches!(decode_mod_body::<Dig>(&bad), Err(DecodeError::Malformed(_))));
    }
}
