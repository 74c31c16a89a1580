//! One connection: WebSocket upgrade, handshake, then the read/write loop.

use std::{
    net::SocketAddr,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::{io::AsyncWriteExt, net::TcpStream, sync::mpsc::error::TrySendError, time::timeout};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        Error as WsError, Message,
        protocol::{CloseFrame, Role, WebSocketConfig, frame::coding::CloseCode},
    },
};
use veltrix_protocol::{
    ClientMessage, DecodeError, ErrorCode, ErrorMessage, Hello, Refusal, ServerMessage, decode_client_frame, read_hello,
};

use super::{
    AuthMode, ConnHandle, Control, JoinRequest, NetEvent, NetSettings, Shared,
    http::{self, Opening},
    socket::Socket,
};
use crate::{
    auth::{TokenError, unix_now},
    reasons::{Disconnect, Dropped},
};

type Ws = WebSocketStream<super::socket::Socket>;

/// Serves one accepted TCP connection to its end.
///
/// The task holds only what the long connected phase needs: the handshake and the last
/// hand-over are boxed, so their state lives on the heap only while they run (memory per
/// connected player).
pub(super) async fn serve(stream: TcpStream, addr: SocketAddr, shared: Arc<Shared>) {
    shared.metrics.connections_open.inc();
    let reason = match Box::pin(handshake(stream, addr, &shared)).await {
        Ok(joined) => connected(joined, &shared).await,
        Err(reason) => reason,
    };
    shared.metrics.connections_open.dec();
    shared.metrics.disconnect(reason);
}

/// The connected phase, to its end; returns why it ended.
async fn connected(mut joined: Box<Joined>, shared: &Arc<Shared>) -> Disconnect {
    let conn = joined.conn;
    let mut session = Session { conn, limiter: RateLimiter::new(shared.config.max_messages_per_second), errors: 0 };
    let early = std::mem::take(&mut joined.early);
    let Joined { ws, control, .. } = &mut *joined;
    if let Err(reason) = Box::pin(session.forward(ws, shared, early)).await {
        return reason;
    }
    let reason = session.serve(ws, shared, control).await;
    let _ = Box::pin(shared.events.send(NetEvent::Left { conn, reason })).await;
    reason
}

/// A connection past the handshake, its player handed to the tick thread.
struct Joined {
    ws: Ws,
    /// Counts the connection against its address until dropped.
    _slot: super::IpSlot,
    conn: u64,
    control: Arc<Control>,
    /// Messages that came in the Hello's frame after it.
    early: Vec<ClientMessage>,
}

/// Upgrade and handshake: returns the joined connection, or why it ended.
async fn handshake(stream: TcpStream, addr: SocketAddr, shared: &Arc<Shared>) -> Result<Box<Joined>, Disconnect> {
    let cfg = &shared.config;
    let slot = shared.admit(addr.ip());
    // Boxed: the upgrade's state is large and needed only once; the task keeps only what the
    // long idle phase needs (memory per connected player).
    let mut ws = match Box::pin(timeout(cfg.handshake_timeout, upgrade(stream, shared))).await {
        Ok(result) => result?,
        Err(_) => return Err(Disconnect::UpgradeFailed),
    };
    let Some(slot) = slot else {
        close(&mut ws, shared, ErrorCode::TooManyConnections, "too many connections from your address").await;
        return Err(Disconnect::TooManyConnections);
    };
    let first = first_frame(&mut ws, shared).await?;
    count_in(shared, first.len());
    let (hello, messages) = match read_hello(&first) {
        Ok(read) => read,
        Err(Refusal { code, message }) => {
            close(&mut ws, shared, code, &message).await;
            return Err(Disconnect::refused_with(code));
        }
    };
    let authenticated = authenticate(&mut ws, shared, &hello).await?;
    let conn = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let control = Arc::new(Control::default());
    let handle = ConnHandle { out: Arc::clone(ws.get_ref().outgoing()), control: Arc::clone(&control) };
    let join = JoinRequest { conn, name: hello.name, authenticated, addr, handle };
    if shared.events.send(NetEvent::Join(join)).await.is_err() {
        return Err(Disconnect::ServerStopping);
    }
    Ok(Box::new(Joined { ws, _slot: slot, conn, control, early: messages }))
}

/// The WebSocket settings of a player connection: read buffer, frame size limits. Its writes
/// go straight to the socket's [`Outgoing`](super::socket::Outgoing), which keeps what waits.
fn ws_config(cfg: &NetSettings) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(cfg.read_buffer_bytes)
        .write_buffer_size(0)
        .max_write_buffer_size(cfg.max_frame_bytes.max(64 * 1024) * 4)
        .max_frame_size(Some(cfg.max_frame_bytes))
        .max_message_size(Some(cfg.max_frame_bytes))
}

/// The handshake's first data frame, which must start with Hello, within the handshake
/// timeout. Pings before it are answered (by tungstenite) and skipped.
async fn first_frame(ws: &mut Ws, shared: &Shared) -> Result<Bytes, Disconnect> {
    let limit = shared.config.handshake_timeout;
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let Ok(incoming) = tokio::time::timeout_at(deadline, ws.next()).await else {
            let message = format!("no Hello within {} s", limit.as_secs());
            close(ws, shared, ErrorCode::HandshakeRequired, &message).await;
            return Err(Disconnect::HandshakeTimeout);
        };
        match Incoming::from(incoming) {
            Incoming::Binary(bytes) => return Ok(bytes),
            Incoming::Control => {}
            Incoming::Text => {
                close(ws, shared, ErrorCode::Malformed, "frames must be binary MessagePack, not text").await;
                return Err(Disconnect::Malformed);
            }
            Incoming::Closed => {
                answer_close(ws).await;
                return Err(Disconnect::ClosedDuringHandshake);
            }
            Incoming::Gone => return Err(Disconnect::ClosedDuringHandshake),
            other => return Err(refuse_transport(ws, shared, other).await),
        }
    }
}

/// Whether the Hello's name is authenticated: never on an offline server; on a token server,
/// its token verified (a missing, bad or expired token closes the connection).
async fn authenticate(ws: &mut Ws, shared: &Shared, hello: &Hello) -> Result<bool, Disconnect> {
    let (code, message, reason) = match (&shared.auth, &hello.token) {
        (AuthMode::Offline, _) => return Ok(false),
        (AuthMode::Token(key), Some(token)) => match key.verify(&hello.name, token, unix_now()) {
            Ok(()) => return Ok(true),
            Err(TokenError::Bad) => (
                ErrorCode::BadCredentials,
                "the token is not valid for this name on this server",
                Disconnect::BadCredentials,
            ),
            Err(TokenError::Expired) => (
                ErrorCode::TokenExpired,
                "the token has expired; ask an operator for a new one",
                Disconnect::TokenExpired,
            ),
        },
        (AuthMode::Token(_), None) => {
            (ErrorCode::BadCredentials, "this server requires a token (ask an operator)", Disconnect::BadCredentials)
        }
    };
    close(ws, shared, code, message).await;
    Err(reason)
}

/// The WebSocket opening handshake (RFC 6455 section 4). Any other HTTP request gets its
/// answer (`net::http`), and the connection ends.
async fn upgrade(mut stream: TcpStream, shared: &Shared) -> Result<Ws, Disconnect> {
    let config = ws_config(&shared.config);
    let Some((opening, received)) = http::read_opening(&mut stream).await else {
        return Err(Disconnect::UpgradeFailed);
    };
    match opening {
        Opening::WebSocket { response, head_len } => {
            stream.write_all(&response).await.map_err(|_| Disconnect::UpgradeFailed)?;
            let after = received[head_len..].to_vec();
            let socket = Socket::new(stream, shared.config.max_queued_frames, Arc::clone(&shared.metrics));
            Ok(WebSocketStream::from_partially_read(socket, after, Role::Server, Some(config)).await)
        }
        Opening::Http(answer) => {
            let _ = stream.write_all(&answer).await;
            let _ = stream.shutdown().await;
            Err(Disconnect::NotAWebsocket)
        }
    }
}

/// What a read from a client's WebSocket came to.
enum Incoming {
    Binary(Bytes),
    Text,
    /// A ping or pong: tungstenite answers pings itself.
    Control,
    /// The client sent a close frame; tungstenite has queued the answer ([`answer_close`]).
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

impl From<Option<Result<Message, WsError>>> for Incoming {
    fn from(read: Option<Result<Message, WsError>>) -> Self {
        use tokio_tungstenite::tungstenite::error::ProtocolError as P;
        let violation = |close, what: String| Incoming::Violation { close, what };
        match read {
            Some(Ok(Message::Binary(bytes))) => Incoming::Binary(bytes),
            Some(Ok(Message::Text(_))) => Incoming::Text,
            Some(Ok(Message::Close(_))) => Incoming::Closed,
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Incoming::Control,
            Some(Err(WsError::Capacity(_))) => Incoming::TooLarge,
            Some(Err(WsError::Utf8(what))) => violation(CloseCode::Invalid, format!("text that is not UTF-8 ({what})")),
            Some(Err(WsError::Protocol(
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
            ))) => violation(CloseCode::Protocol, e.to_string()),
            None | Some(Err(_)) => Incoming::Gone,
        }
    }
}

/// Sends the answer to the client's close frame that tungstenite queued (RFC 6455 section
/// 5.5.1: the same code, or 1002 for a code a client may not send); the connection then ends.
async fn answer_close(ws: &mut Ws) {
    let _ = timeout(Duration::from_secs(2), ws.flush()).await;
}

/// Answers a frame too large, or a breach of RFC 6455, and closes; returns why it ended.
/// Anything else ends the connection silently.
fn refuse_transport<'a>(ws: &'a mut Ws, shared: &'a Shared, incoming: Incoming) -> RareOf<'a, Disconnect> {
    Box::pin(async move {
        match incoming {
            Incoming::TooLarge => {
                close(ws, shared, ErrorCode::FrameTooLarge, &too_large(shared.config.max_frame_bytes)).await;
                Disconnect::FrameTooLarge
            }
            Incoming::Violation { close: code, what } => {
                let message = format!("WebSocket protocol violation: {what}; use a client that follows RFC 6455");
                close_with(ws, shared, ErrorCode::ProtocolViolation, &message, code).await;
                Disconnect::ProtocolViolation
            }
            _ => Disconnect::ProtocolError,
        }
    })
}

/// What a hand-over to the tick thread left to wait for.
struct Pending {
    /// Tell the client its messages over the rate limit were dropped.
    tell: bool,
    /// The tick thread's queue was full: the event still to hand over.
    event: Option<NetEvent>,
}

struct Session {
    conn: u64,
    limiter: RateLimiter,
    errors: u32,
}

impl Session {
    async fn serve(&mut self, ws: &mut Ws, shared: &Arc<Shared>, control: &Control) -> Disconnect {
        let out = Arc::clone(ws.get_ref().outgoing());
        let cfg = &shared.config;
        // Pings since the client last sent anything: a counter, not a timestamp (every byte of
        // this future is in every connection's task).
        let mut silent_pings: u32 = 0;
        let idle_pings = cfg.idle_timeout.as_millis().div_ceil(cfg.ping_interval.as_millis().max(1)) as u32;
        // Boxed: a timer is 112 bytes, and this future sits in every connection's task.
        let mut ping = Box::pin(tokio::time::sleep(cfg.ping_interval));
        loop {
            tokio::select! {
                biased;
                () = control.notify.notified() => {
                    let (code, message) = control.close.get().cloned().unwrap_or((ErrorCode::Kicked, String::new()));
                    close(ws, shared, code, &message).await;
                    return Disconnect::closed_with(code);
                }
                () = out.backlogged.notified() => {
                    if let Err(reason) = write_backlog(ws, shared, control).await {
                        return reason;
                    }
                }
                incoming = ws.next() => {
                    silent_pings = 0;
                    if let Err(reason) = self.receive(ws, shared, Incoming::from(incoming)).await {
                        return reason;
                    }
                }
                () = &mut ping => {
                    ping.as_mut().reset(tokio::time::Instant::now() + cfg.ping_interval);
                    silent_pings += 1;
                    if silent_pings > idle_pings {
                        let message = format!("nothing received for {} s", cfg.idle_timeout.as_secs());
                        close(ws, shared, ErrorCode::IdleTimeout, &message).await;
                        return Disconnect::IdleTimeout;
                    }
                    if Box::pin(timeout(cfg.idle_timeout, ws.send(Message::Ping(bytes::Bytes::new())))).await.is_err() {
                        return Disconnect::SlowConsumer;
                    }
                }
            }
        }
    }

    /// What the client sent: a frame of messages handed to the tick thread (or refused), its
    /// close answered; `Err` when the connection ends.
    async fn receive(&mut self, ws: &mut Ws, shared: &Arc<Shared>, incoming: Incoming) -> Result<(), Disconnect> {
        match incoming {
            Incoming::Binary(bytes) => {
                count_in(shared, bytes.len());
                // Boxed only when the hand-over has to wait: its state would otherwise sit in
                // every idle connection's task.
                match decode_client_frame(&bytes).map(|m| self.try_forward(shared, m)) {
                    Ok(Ok(None)) => Ok(()),
                    Ok(Ok(Some(pending))) => Box::pin(self.finish_forward(ws, shared, pending)).await,
                    Ok(Err(reason)) => Err(reason),
                    Err(e) => Box::pin(self.refuse(ws, shared, e)).await,
                }
            }
            Incoming::Text => {
                let e = DecodeError::Malformed("frames must be binary MessagePack, not text".into());
                Box::pin(self.refuse(ws, shared, e)).await
            }
            Incoming::Control => Ok(()),
            Incoming::Closed => {
                Box::pin(answer_close(ws)).await;
                Err(Disconnect::ClosedByClient)
            }
            Incoming::Gone => Err(Disconnect::ClosedByClient),
            other => Err(refuse_transport(ws, shared, other).await),
        }
    }

    /// Passes decoded messages to the tick thread, within the rate limit.
    async fn forward(&mut self, ws: &mut Ws, shared: &Shared, messages: Vec<ClientMessage>) -> Result<(), Disconnect> {
        match self.try_forward(shared, messages)? {
            None => Ok(()),
            Some(pending) => self.finish_forward(ws, shared, pending).await,
        }
    }

    /// Hands decoded messages to the tick thread within the rate limit, without waiting:
    /// returns what has to wait (a full queue to the tick thread, telling the client it went
    /// over its rate), for [`Self::finish_forward`]. Not async, so that the common case costs
    /// the connection's task neither room nor a boxed future.
    fn try_forward(
        &mut self,
        shared: &Shared,
        mut messages: Vec<ClientMessage>,
    ) -> Result<Option<Pending>, Disconnect> {
        if messages.is_empty() {
            return Ok(None);
        }
        let mut pending = Pending { tell: false, event: None };
        let allowed = self.limiter.take(messages.len());
        if allowed < messages.len() {
            shared.metrics.dropped(Dropped::RateLimited, (messages.len() - allowed) as u64);
            messages.truncate(allowed);
            pending.tell = self.limiter.tell();
        }
        if !messages.is_empty() {
            match shared.events.try_send(NetEvent::Messages { conn: self.conn, messages }) {
                Ok(()) => {}
                Err(TrySendError::Full(event)) => pending.event = Some(event),
                Err(TrySendError::Closed(_)) => return Err(Disconnect::ServerStopping),
            }
        }
        Ok((pending.tell || pending.event.is_some()).then_some(pending))
    }

    /// Does what [`Self::try_forward`] left to wait for.
    async fn finish_forward(&mut self, ws: &mut Ws, shared: &Shared, pending: Pending) -> Result<(), Disconnect> {
        if pending.tell {
            let message = format!(
                "more than {} messages per second: the excess is dropped",
                shared.config.max_messages_per_second
            );
            send_error(ws, shared, ErrorCode::RateLimited, &message).await;
        }
        match pending.event {
            Some(event) => shared.events.send(event).await.map_err(|_| Disconnect::ServerStopping),
            None => Ok(()),
        }
    }

    /// Answers an undecodable frame; closes after too many.
    async fn refuse(&mut self, ws: &mut Ws, shared: &Arc<Shared>, error: DecodeError) -> Result<(), Disconnect> {
        let (code, label) = match &error {
            DecodeError::Malformed(_) => (ErrorCode::Malformed, Dropped::Malformed),
            DecodeError::UnknownMessage(_) => (ErrorCode::UnknownMessage, Dropped::UnknownMessage),
        };
        shared.metrics.dropped(label, 1);
        self.errors += 1;
        if self.errors >= shared.config.max_errors {
            let message = format!("{error}; {} erroneous frames, closing", self.errors);
            close(ws, shared, ErrorCode::TooManyErrors, &message).await;
            return Err(Disconnect::TooManyErrors);
        }
        send_error(ws, shared, code, &error.to_string()).await;
        Ok(())
    }
}

/// Writes out the frames the socket did not take when they were sent (the connection's
/// backlog), as the socket makes room. A client that stops reading blocks this write; a writer
/// thread then finds the backlog full and closes the connection, which ends the write here.
async fn write_backlog(ws: &mut Ws, shared: &Shared, control: &Control) -> Result<(), Disconnect> {
    tokio::select! {
        biased;
        () = control.notify.notified() => {
            Err(Disconnect::closed_with(control.close.get().map_or(ErrorCode::SlowConsumer, |c| c.0)))
        }
        written = Box::pin(timeout(shared.config.idle_timeout, ws.flush())) => match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Disconnect::WriteError),
            Err(_) => Err(Disconnect::SlowConsumer),
        }
    }
}

/// A token bucket: `rate` messages per second, bursts up to `rate`. Small on purpose: it is
/// part of every connection's task.
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
        !std::mem::replace(&mut self.told, true)
    }
}

fn count_in(shared: &Shared, len: usize) {
    shared.metrics.frames_in.inc();
    shared.metrics.bytes_in.inc_by(len as u64);
}

/// Counts a frame the connection's task wrote (its socket writes count themselves).
fn count_out(shared: &Shared, bytes: usize) {
    shared.metrics.frames_out.inc();
    shared.metrics.bytes_out.inc_by(bytes as u64);
}

fn too_large(max: usize) -> String {
    format!("frames are limited to {max} bytes")
}

/// A boxed future: the rare paths (errors, closing) are boxed so that their state is not part
/// of every idle connection's task.
type RareOf<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
type Rare<'a> = RareOf<'a, ()>;

/// Sends an immediate `Error` frame.
fn send_error<'a>(ws: &'a mut Ws, shared: &'a Shared, code: ErrorCode, message: &'a str) -> Rare<'a> {
    Box::pin(async move {
        let error = ServerMessage::Error(ErrorMessage { code, message: message.to_string(), request: None });
        let frame = crate::stamp::single(shared.tick(), &error);
        let len = frame.len();
        if let Ok(Ok(())) = timeout(Duration::from_secs(2), ws.send(Message::Binary(frame))).await {
            count_out(shared, len);
        }
    })
}

/// Sends `Error { code, message }`, then a close frame with the code's close code
/// (docs/protocol.md, "Close codes"), then waits briefly for the client's.
fn close<'a>(ws: &'a mut Ws, shared: &'a Shared, code: ErrorCode, message: &'a str) -> Rare<'a> {
    let close_code = match code {
        ErrorCode::FrameTooLarge => CloseCode::Size,
        ErrorCode::ServerStopping => CloseCode::Away,
        ErrorCode::Kicked | ErrorCode::Replaced => CloseCode::Normal,
        ErrorCode::ProtocolViolation => CloseCode::Protocol,
        ErrorCode::SavedStateUnreadable => CloseCode::Error,
        _ => CloseCode::Policy,
    };
    close_with(ws, shared, code, message, close_code)
}

/// [`close`] with the close code given.
fn close_with<'a>(
    ws: &'a mut Ws,
    shared: &'a Shared,
    code: ErrorCode,
    message: &'a str,
    close_code: CloseCode,
) -> Rare<'a> {
    Box::pin(async move {
        send_error(ws, shared, code, message).await;
        let reason = format!("{code:?}");
        let _ = timeout(Duration::from_secs(2), ws.close(Some(CloseFrame { code: close_code, reason: reason.into() })))
            .await;
        let _ = timeout(Duration::from_millis(500), async { while let Some(Ok(_)) = ws.next().await {} }).await;
    })
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
