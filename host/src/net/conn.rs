//! One connection, as its network thread drives it ([`super::event_loop`]): the HTTP opening,
//! the WebSocket handshake (Hello, credentials, the player handed to the tick thread), the
//! connected phase (decoding, rate limit, pings, idle time-out) and the close. Each step runs
//! when the socket is ready or the connection's time is due, and never waits: what the socket
//! does not take waits in its backlog ([`super::socket::Outgoing`]).

use std::{
    io::{ErrorKind, Read, Write},
    mem,
    net::{Shutdown, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use flume::TrySendError;
use mio::event::Event;
use tungstenite::{
    Error as WsError, Message, WebSocket,
    protocol::{CloseFrame, Role, WebSocketConfig, frame::coding::CloseCode},
};
use veltrix_protocol::{DecodeError, ErrorCode, ErrorMessage, Hello, Refusal, ServerMessage, decode_value, read_hello};

use super::{
    AuthMode, ConnHandle, ConnId, FrameMessages, IpSlot, JoinRequest, NetEvent, NetSettings, Shared,
    http::{self, Opening},
    socket::{Outgoing, Socket},
};
use crate::{
    auth::{TokenError, unix_now},
    reasons::{Disconnect, Dropped},
};

type Ws = WebSocket<Socket>;

/// The longest a close waits for its last frames to be written.
const CLOSE_WRITE: Duration = Duration::from_secs(2);
/// How long a close waits, its frames written, for the client's close frame.
const CLOSE_ANSWER: Duration = Duration::from_millis(500);

/// One accepted connection.
pub(super) struct Conn {
    id: ConnId,
    addr: SocketAddr,
    /// Counts the connection against its address until dropped; `None` when the address is
    /// over its limit (refused once upgraded).
    slot: Option<IpSlot>,
    /// When the stage runs out of time (the opening, Hello, the close) or, for a player, when
    /// the next ping is due.
    due: Instant,
    /// The player was handed to the tick thread, which is told when the connection ends.
    joined: bool,
    stage: Stage,
}

enum Stage {
    /// Reading the HTTP request head.
    Opening {
        socket: Socket,
        received: Vec<u8>,
    },
    /// An HTTP answer going out; the connection ends once it is written.
    Answering(Socket),
    /// Upgraded: the client's Hello is awaited.
    Hello(Ws),
    Playing(Ws, Player),
    /// The last frames going out, then the client's close frame awaited.
    Closing(Ws, Closing),
    /// Between two stages, never seen outside a step.
    Moving,
}

/// What a joined connection keeps.
struct Player {
    limiter: RateLimiter,
    /// Undecodable frames so far.
    errors: u32,
    /// Pings since the client last sent anything.
    silent_pings: u32,
}

struct Closing {
    reason: Disconnect,
    /// The client's close frame came, or its side of the connection ended.
    client_closed: bool,
    /// Everything to say was written.
    written: bool,
}

impl Conn {
    pub(super) fn accepted(id: ConnId, socket: Socket, addr: SocketAddr, shared: &Arc<Shared>) -> Self {
        Self {
            id,
            addr,
            slot: shared.admit(addr.ip()),
            due: Instant::now() + shared.config.handshake_timeout,
            joined: false,
            stage: Stage::Opening { socket, received: Vec::new() },
        }
    }

    pub(super) fn id(&self) -> ConnId {
        self.id
    }

    /// What the connection can do now that its socket is ready (`event`); `Err` when it ended.
    pub(super) fn ready(&mut self, shared: &Shared, event: &Event) -> Result<(), Disconnect> {
        let closed = event.is_read_closed() || event.is_error();
        let readable = event.is_readable() || closed;
        if readable && let Some(socket) = self.socket_mut() {
            socket.edge.ready(closed);
        }
        if event.is_writable() {
            self.write_out()?;
        }
        if readable {
            match self.stage {
                Stage::Opening { .. } => self.read_opening(shared)?,
                Stage::Hello(_) | Stage::Playing(..) | Stage::Closing(..) => self.read_frames(shared)?,
                Stage::Answering(_) | Stage::Moving => {}
            }
        }
        Ok(())
    }

    /// Time-outs and pings when due; a backlog written out if `backlog` (in case a writable
    /// event was missed).
    pub(super) fn sweep(&mut self, shared: &Shared, now: Instant, backlog: bool) -> Result<(), Disconnect> {
        if backlog {
            self.write_out()?;
        }
        if now < self.due {
            return Ok(());
        }
        match &mut self.stage {
            Stage::Opening { .. } => Err(Disconnect::UpgradeFailed),
            Stage::Answering(_) => Err(Disconnect::NotAWebsocket),
            Stage::Hello(_) => {
                let message = format!("no Hello within {} s", shared.config.handshake_timeout.as_secs());
                self.close(shared, ErrorCode::HandshakeRequired, &message, Disconnect::HandshakeTimeout)
            }
            Stage::Playing(ws, player) => {
                let cfg = &shared.config;
                player.silent_pings += 1;
                let idle_pings = cfg.idle_timeout.as_millis().div_ceil(cfg.ping_interval.as_millis().max(1)) as u32;
                if player.silent_pings > idle_pings {
                    let message = format!("nothing received for {} s", cfg.idle_timeout.as_secs());
                    return self.close(shared, ErrorCode::IdleTimeout, &message, Disconnect::IdleTimeout);
                }
                let _ = ws.send(Message::Ping(Bytes::new()));
                self.due = now + cfg.ping_interval;
                Ok(())
            }
            Stage::Closing(_, closing) => Err(closing.reason),
            Stage::Moving => Ok(()),
        }
    }

    /// The tick thread (or a writer thread) asked for the connection to be closed.
    pub(super) fn close_asked(&mut self, shared: &Shared, code: ErrorCode, message: &str) -> Result<(), Disconnect> {
        self.close(shared, code, message, Disconnect::closed_with(code))
    }

    /// Counts the connection's end, and tells the tick thread of a player's.
    pub(super) fn end(self, shared: &Shared, reason: Disconnect) {
        if self.joined {
            let _ = send_event(shared, NetEvent::Left { conn: self.id, reason });
        }
        shared.metrics.connections_open.dec();
        shared.metrics.disconnect(reason);
    }

    fn outgoing(&self) -> Option<&Arc<Outgoing>> {
        match &self.stage {
            Stage::Opening { socket, .. } | Stage::Answering(socket) => Some(socket.outgoing()),
            Stage::Hello(ws) | Stage::Playing(ws, _) | Stage::Closing(ws, _) => Some(ws.get_ref().outgoing()),
            Stage::Moving => None,
        }
    }

    fn socket_mut(&mut self) -> Option<&mut Socket> {
        match &mut self.stage {
            Stage::Opening { socket, .. } | Stage::Answering(socket) => Some(socket),
            Stage::Hello(ws) | Stage::Playing(ws, _) | Stage::Closing(ws, _) => Some(ws.get_mut()),
            Stage::Moving => None,
        }
    }

    /// Writes out what waits in the backlog, as far as the socket takes it; an HTTP answer or
    /// a close written whole moves on.
    fn write_out(&mut self) -> Result<(), Disconnect> {
        let Some(written) = self.outgoing().map(|out| out.write_out()) else { return Ok(()) };
        match (written, &mut self.stage) {
            (Ok(false), _) => Ok(()),
            (Ok(true), Stage::Answering(socket)) => {
                let _ = socket.tcp.shutdown(Shutdown::Write);
                Err(Disconnect::NotAWebsocket)
            }
            (Ok(true), Stage::Closing(..)) => self.closing_progress(),
            (Ok(true), _) => Ok(()),
            (Err(_), Stage::Closing(_, closing)) => Err(closing.reason),
            (Err(_), Stage::Answering(_)) => Err(Disconnect::NotAWebsocket),
            (Err(_), Stage::Opening { .. }) => Err(Disconnect::UpgradeFailed),
            (Err(_), Stage::Hello(_)) => Err(Disconnect::ClosedDuringHandshake),
            (Err(_), _) => Err(Disconnect::WriteError),
        }
    }

    /// Reads the request head as it comes; once whole, upgrades or answers it.
    fn read_opening(&mut self, shared: &Shared) -> Result<(), Disconnect> {
        let Stage::Opening { socket, received } = &mut self.stage else { return Ok(()) };
        let mut buf = [0u8; 1024];
        let opening = loop {
            match socket.read(&mut buf) {
                Ok(0) => return Err(Disconnect::UpgradeFailed),
                Ok(n) => received.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return Err(Disconnect::UpgradeFailed),
            }
            if let Some(opening) = http::opening(received) {
                break opening;
            }
        };
        let Stage::Opening { mut socket, received } = mem::replace(&mut self.stage, Stage::Moving) else {
            unreachable!("the stage was just matched")
        };
        match opening {
            Opening::WebSocket { response, head_len } => {
                socket.write_all(&response).map_err(|_| Disconnect::UpgradeFailed)?;
                let after = received[head_len..].to_vec();
                let ws = WebSocket::from_partially_read(socket, after, Role::Server, Some(ws_config(&shared.config)));
                self.stage = Stage::Hello(ws);
                self.due = Instant::now() + shared.config.handshake_timeout;
                if self.slot.is_none() {
                    let message = "too many connections from your address";
                    return self.close(shared, ErrorCode::TooManyConnections, message, Disconnect::TooManyConnections);
                }
                // The client's first frames may have come with its request.
                self.read_frames(shared)
            }
            Opening::Http(answer) => {
                socket.write_all(&answer).map_err(|_| Disconnect::NotAWebsocket)?;
                self.stage = Stage::Answering(socket);
                self.write_out()
            }
        }
    }

    /// Reads WebSocket frames until the socket would block, each handled as the stage says.
    fn read_frames(&mut self, shared: &Shared) -> Result<(), Disconnect> {
        loop {
            let (Stage::Hello(ws) | Stage::Playing(ws, _) | Stage::Closing(ws, _)) = &mut self.stage else {
                return Ok(());
            };
            let incoming = match ws.read() {
                Err(WsError::Io(e)) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(WsError::Io(e)) if e.kind() == ErrorKind::Interrupted => continue,
                read => Incoming::from(read),
            };
            match &mut self.stage {
                Stage::Hello(_) => self.hello(shared, incoming)?,
                Stage::Playing(_, player) => {
                    player.silent_pings = 0;
                    self.receive(shared, incoming)?;
                }
                Stage::Closing(_, closing) => {
                    // Anything but a frame (its close, its end, a breach that would only come
                    // again) ends what is read from the client.
                    if !matches!(incoming, Incoming::Binary(_) | Incoming::Text | Incoming::Control) {
                        closing.client_closed = true;
                        return self.closing_progress();
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// The handshake's first data frame, which must start with Hello.
    fn hello(&mut self, shared: &Shared, incoming: Incoming) -> Result<(), Disconnect> {
        match incoming {
            Incoming::Binary(bytes) => {
                count_in(shared, bytes.len());
                match read_hello(&bytes) {
                    Ok((hello, messages)) => self.join(shared, hello, FrameMessages::from_vec(messages)),
                    Err(Refusal { code, message }) => {
                        self.close(shared, code, &message, Disconnect::refused_with(code))
                    }
                }
            }
            Incoming::Control => Ok(()),
            Incoming::Text => {
                let message = "frames must be binary MessagePack, not text";
                self.close(shared, ErrorCode::Malformed, message, Disconnect::Malformed)
            }
            Incoming::Closed => self.answer_close(Disconnect::ClosedDuringHandshake),
            Incoming::Gone => Err(Disconnect::ClosedDuringHandshake),
            other => self.refuse_transport(shared, other),
        }
    }

    /// Checks the Hello's credentials and hands the player to the tick thread, with the
    /// messages that came in the Hello's frame after it.
    fn join(&mut self, shared: &Shared, hello: Hello, messages: FrameMessages) -> Result<(), Disconnect> {
        let authenticated = match authenticate(shared, &hello) {
            Ok(authenticated) => authenticated,
            Err((code, message, reason)) => return self.close(shared, code, message, reason),
        };
        let Stage::Hello(ws) = mem::replace(&mut self.stage, Stage::Moving) else {
            unreachable!("a Hello is read in the Hello stage")
        };
        let handle = ConnHandle { out: Arc::clone(ws.get_ref().outgoing()) };
        let join = JoinRequest { conn: self.id, name: hello.name, authenticated, addr: self.addr, handle };
        send_event(shared, NetEvent::Join(join))?;
        self.joined = true;
        let limiter = RateLimiter::new(shared.config.max_messages_per_second);
        self.stage = Stage::Playing(ws, Player { limiter, errors: 0, silent_pings: 0 });
        self.due = Instant::now() + shared.config.ping_interval;
        self.forward(shared, messages)
    }

    /// What a joined client sent: its messages handed to the tick thread (or refused), its
    /// close answered.
    fn receive(&mut self, shared: &Shared, incoming: Incoming) -> Result<(), Disconnect> {
        match incoming {
            Incoming::Binary(bytes) => {
                count_in(shared, bytes.len());
                // A client frame (docs/protocol.md), into a list that holds one message inline.
                match decode_value::<FrameMessages>(&bytes) {
                    Ok(messages) => self.forward(shared, messages),
                    Err(e) => self.refuse(shared, e),
                }
            }
            Incoming::Text => {
                self.refuse(shared, DecodeError::Malformed("frames must be binary MessagePack, not text".into()))
            }
            Incoming::Control => Ok(()),
            Incoming::Closed => self.answer_close(Disconnect::ClosedByClient),
            Incoming::Gone => Err(Disconnect::ClosedByClient),
            other => self.refuse_transport(shared, other),
        }
    }

    /// Passes decoded messages to the tick thread, within the rate limit.
    fn forward(&mut self, shared: &Shared, mut messages: FrameMessages) -> Result<(), Disconnect> {
        let Stage::Playing(ws, player) = &mut self.stage else { return Ok(()) };
        if messages.is_empty() {
            return Ok(());
        }
        let allowed = player.limiter.take(messages.len());
        if allowed < messages.len() {
            shared.metrics.dropped(Dropped::RateLimited, (messages.len() - allowed) as u64);
            messages.truncate(allowed);
            if player.limiter.tell() {
                let rate = shared.config.max_messages_per_second;
                let message = format!("more than {rate} messages per second: the excess is dropped");
                send_error(ws, shared, ErrorCode::RateLimited, &message);
            }
        }
        if messages.is_empty() {
            return Ok(());
        }
        send_event(shared, NetEvent::Messages { conn: self.id, messages })
    }

    /// Answers an undecodable frame; closes after too many.
    fn refuse(&mut self, shared: &Shared, error: DecodeError) -> Result<(), Disconnect> {
        let Stage::Playing(ws, player) = &mut self.stage else { return Ok(()) };
        let (code, label) = match &error {
            DecodeError::Malformed(_) => (ErrorCode::Malformed, Dropped::Malformed),
            DecodeError::UnknownMessage(_) => (ErrorCode::UnknownMessage, Dropped::UnknownMessage),
        };
        shared.metrics.dropped(label, 1);
        player.errors += 1;
        if player.errors >= shared.config.max_errors {
            let message = format!("{error}; {} erroneous frames, closing", player.errors);
            return self.close(shared, ErrorCode::TooManyErrors, &message, Disconnect::TooManyErrors);
        }
        send_error(ws, shared, code, &error.to_string());
        Ok(())
    }

    /// Answers a frame too large, or a breach of RFC 6455, and closes. Anything else ends the
    /// connection silently.
    fn refuse_transport(&mut self, shared: &Shared, incoming: Incoming) -> Result<(), Disconnect> {
        match incoming {
            Incoming::TooLarge => {
                let message = format!("frames are limited to {} bytes", shared.config.max_frame_bytes);
                self.close(shared, ErrorCode::FrameTooLarge, &message, Disconnect::FrameTooLarge)
            }
            Incoming::Violation { close, what } => {
                let message = format!("WebSocket protocol violation: {what}; use a client that follows RFC 6455");
                self.close_with(shared, ErrorCode::ProtocolViolation, &message, close, Disconnect::ProtocolViolation)
            }
            _ => Err(Disconnect::ProtocolError),
        }
    }

    /// Sends the answer to the client's close frame that tungstenite queued (RFC 6455 section
    /// 5.5.1: the same code, or 1002 for a code a client may not send); the connection ends
    /// once it is written.
    fn answer_close(&mut self, reason: Disconnect) -> Result<(), Disconnect> {
        let (Stage::Hello(mut ws) | Stage::Playing(mut ws, _)) = mem::replace(&mut self.stage, Stage::Moving) else {
            return Err(reason);
        };
        let _ = ws.flush();
        self.stage = Stage::Closing(ws, Closing { reason, client_closed: true, written: false });
        self.due = Instant::now() + CLOSE_WRITE;
        self.closing_progress()
    }

    /// Sends `Error { code, message }`, then a close frame with the code's close code
    /// (docs/protocol.md, "Close codes"), then waits briefly for the client's.
    fn close(&mut self, shared: &Shared, code: ErrorCode, message: &str, reason: Disconnect) -> Result<(), Disconnect> {
        let close_code = match code {
            ErrorCode::FrameTooLarge => CloseCode::Size,
            ErrorCode::ServerStopping => CloseCode::Away,
            ErrorCode::Kicked | ErrorCode::Replaced => CloseCode::Normal,
            ErrorCode::ProtocolViolation => CloseCode::Protocol,
            ErrorCode::SavedStateUnreadable => CloseCode::Error,
            _ => CloseCode::Policy,
        };
        self.close_with(shared, code, message, close_code, reason)
    }

    /// [`Self::close`] with the close code given. A connection already closing goes on as it
    /// was.
    fn close_with(
        &mut self,
        shared: &Shared,
        code: ErrorCode,
        message: &str,
        close_code: CloseCode,
        reason: Disconnect,
    ) -> Result<(), Disconnect> {
        let mut ws = match mem::replace(&mut self.stage, Stage::Moving) {
            Stage::Hello(ws) | Stage::Playing(ws, _) => ws,
            other => {
                let closing = matches!(other, Stage::Closing(..));
                self.stage = other;
                return if closing { Ok(()) } else { Err(reason) };
            }
        };
        send_error(&mut ws, shared, code, message);
        let _ = ws.close(Some(CloseFrame { code: close_code, reason: format!("{code:?}").into() }));
        self.stage = Stage::Closing(ws, Closing { reason, client_closed: false, written: false });
        self.due = Instant::now() + CLOSE_WRITE + CLOSE_ANSWER;
        self.closing_progress()
    }

    /// A closing connection ends once its last frames are written and the client closed too;
    /// once they are written, it waits [`CLOSE_ANSWER`] at most for the client.
    fn closing_progress(&mut self) -> Result<(), Disconnect> {
        let Stage::Closing(ws, closing) = &mut self.stage else { return Ok(()) };
        if !closing.written && !ws.get_ref().outgoing().backlogged() {
            closing.written = true;
            self.due = self.due.min(Instant::now() + CLOSE_ANSWER);
        }
        if closing.written && closing.client_closed { Err(closing.reason) } else { Ok(()) }
    }
}

/// Hands an event to the tick thread, waiting while its queue is full (the tick is behind:
/// the connections of this thread wait with it). Once the server is stopping, nobody drains
/// the queue: a full one drops the event.
fn send_event(shared: &Shared, event: NetEvent) -> Result<(), Disconnect> {
    match shared.events.try_send(event) {
        Ok(()) => Ok(()),
        Err(TrySendError::Full(event)) if shared.stop.get().is_none() => {
            shared.events.send(event).map_err(|_| Disconnect::ServerStopping)
        }
        Err(_) => Err(Disconnect::ServerStopping),
    }
}

/// Whether the Hello's name is authenticated: never on an offline server; on a token server,
/// its token verified (a missing, bad or expired token is refused: the error to close with).
fn authenticate(shared: &Shared, hello: &Hello) -> Result<bool, (ErrorCode, &'static str, Disconnect)> {
    match (&shared.auth, &hello.token) {
        (AuthMode::Offline, _) => Ok(false),
        (AuthMode::Token(key), Some(token)) => match key.verify(&hello.name, token, unix_now()) {
            Ok(()) => Ok(true),
            Err(TokenError::Bad) => Err((
                ErrorCode::BadCredentials,
                "the token is not valid for this name on this server",
                Disconnect::BadCredentials,
            )),
            Err(TokenError::Expired) => Err((
                ErrorCode::TokenExpired,
                "the token has expired; ask an operator for a new one",
                Disconnect::TokenExpired,
            )),
        },
        (AuthMode::Token(_), None) => Err((
            ErrorCode::BadCredentials,
            "this server requires a token (ask an operator)",
            Disconnect::BadCredentials,
        )),
    }
}

/// The WebSocket settings of a player connection: read buffer, frame size limits. Its writes
/// go straight to the socket's [`Outgoing`], which keeps what waits.
fn ws_config(cfg: &NetSettings) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(cfg.read_buffer_bytes)
        .write_buffer_size(0)
        .max_write_buffer_size(cfg.max_frame_bytes.max(64 * 1024) * 4)
        .max_frame_size(Some(cfg.max_frame_bytes))
        .max_message_size(Some(cfg.max_frame_bytes))
}

/// What a read from a client's WebSocket came to.
enum Incoming {
    Binary(Bytes),
    Text,
    /// A ping or pong: tungstenite answers pings itself.
    Control,
    /// The client sent a close frame; tungstenite has queued the answer.
    Closed,
    /// The connection ended without a close frame, or failed: nobody to answer.
    Gone,
    /// A frame over `Network.MaxFrameBytes`.
    TooLarge,
    /// The client broke RFC 6455: answered with `ProtocolViolation` and this close code.
    Violation {
        close: CloseCode,
        what: String,
    },
}

impl From<Result<Message, WsError>> for Incoming {
    fn from(read: Result<Message, WsError>) -> Self {
        use tungstenite::error::ProtocolError as P;
        let violation = |close, what: String| Incoming::Violation { close, what };
        match read {
            Ok(Message::Binary(bytes)) => Incoming::Binary(bytes),
            Ok(Message::Text(_)) => Incoming::Text,
            Ok(Message::Close(_)) => Incoming::Closed,
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => Incoming::Control,
            Err(WsError::Capacity(_)) => Incoming::TooLarge,
            Err(WsError::Utf8(what)) => violation(CloseCode::Invalid, format!("text that is not UTF-8 ({what})")),
            Err(WsError::Protocol(
                e @ (P::UnmaskedFrameFromClient
                | P::NonZeroReservedBits
                | P::FragmentedControlFrame
                | P::ControlFrameTooBig
                | P::UnknownControlFrameType(_)
                | P::UnknownDataFrameType(_)
                | P::UnexpectedContinueFrame
                | P::ExpectedFragment(_)
                | P::InvalidOpcode(_)
                | P::InvalidCloseSequence),
            )) => violation(CloseCode::Protocol, e.to_string()),
            Err(_) => Incoming::Gone,
        }
    }
}

/// A token bucket: `rate` messages per second, bursts up to `rate`.
struct RateLimiter {
    rate: f32,
    tokens: f32,
    last: Instant,
    told: bool,
}

impl RateLimiter {
    fn new(rate: u32) -> Self {
        let rate = rate as f32;
        Self { rate, tokens: rate, last: Instant::now(), told: false }
    }

    /// How many of `n` messages may pass now.
    fn take(&mut self, n: usize) -> usize {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f32() * self.rate).min(self.rate);
        self.last = now;
        if self.tokens >= self.rate / 2.0 {
            self.told = false;
        }
        let allowed = (self.tokens.floor() as usize).min(n);
        self.tokens -= allowed as f32;
        allowed
    }

    /// Whether to tell the client about dropping (once per burst).
    fn tell(&mut self) -> bool {
        !mem::replace(&mut self.told, true)
    }
}

fn count_in(shared: &Shared, len: usize) {
    shared.metrics.frames_in.inc();
    shared.metrics.bytes_in.inc_by(len as u64);
}

/// Sends an immediate `Error` frame (behind what waits in the backlog).
fn send_error(ws: &mut Ws, shared: &Shared, code: ErrorCode, message: &str) {
    let error = ServerMessage::Error(ErrorMessage { code, message: message.to_string(), request: None });
    let frame = crate::stamp::single(shared.tick(), &error);
    let len = frame.len();
    if ws.send(Message::Binary(frame)).is_ok() {
        // The frames the writer threads write count themselves.
        shared.metrics.frames_out.inc();
        shared.metrics.bytes_out.inc_by(len as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(veltrix_protocol::valid_player_name("ana_01"));
        for bad in ["", "a b", "ä", "seventeen_chars_x", "semi;colon"] {
            assert!(!veltrix_protocol::valid_player_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn rate_limiter_allows_a_burst_then_drops() {
        let mut limiter = RateLimiter::new(10);
        assert_eq!(limiter.take(8), 8);
        assert_eq!(limiter.take(8), 2);
        assert!(limiter.tell());
        assert!(!limiter.tell(), "told once per burst");
    }
}
