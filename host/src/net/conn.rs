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
    ClientMessage, DecodeError, ErrorCode, ErrorMessage, Refusal, ServerMessage, decode_client_frame, read_hello,
};

use super::{
    AuthMode, ConnHandle, Control, JoinRequest, NetEvent, Shared,
    http::{self, Opening},
};
use crate::auth::{TokenError, unix_now};

type Ws = WebSocketStream<TcpStream>;

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

/// The connected phase, to its end; returns why it ended (a metrics label).
async fn connected(mut joined: Box<Joined>, shared: &Arc<Shared>) -> &'static str {
    let conn = joined.conn;
    let mut session = Session { conn, limiter: RateLimiter::new(shared.config.max_messages_per_second), errors: 0 };
    let early = std::mem::take(&mut joined.early);
    let Joined { ws, frames, control, .. } = &mut *joined;
    if let Err(reason) = Box::pin(session.forward(ws, shared, early)).await {
        return reason;
    }
    let reason = session.serve(ws, shared, frames, control).await;
    let _ = Box::pin(shared.events.send(NetEvent::Left { conn, reason })).await;
    reason
}

/// A connection past the handshake, its player handed to the tick thread.
struct Joined {
    ws: Ws,
    /// Counts the connection against its address until dropped.
    _slot: super::IpSlot,
    conn: u64,
    frames: flume::Receiver<Bytes>,
    control: Arc<Control>,
    /// Messages that came in the Hello's frame after it.
    early: Vec<ClientMessage>,
}

/// Upgrade and handshake: returns the joined connection, or why it ended (a metrics label).
async fn handshake(stream: TcpStream, addr: SocketAddr, shared: &Arc<Shared>) -> Result<Box<Joined>, &'static str> {
    let cfg = &shared.config;
    let slot = shared.admit(addr.ip());
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(cfg.read_buffer_bytes)
        .write_buffer_size(WRITE_BATCH_BYTES)
        .max_write_buffer_size(cfg.max_frame_bytes.max(64 * 1024) * 4)
        .max_frame_size(Some(cfg.max_frame_bytes))
        .max_message_size(Some(cfg.max_frame_bytes));
    // Boxed: the upgrade's state is large and needed only once; the task keeps only what the
    // long idle phase needs (memory per connected player).
    let mut ws = match Box::pin(timeout(cfg.handshake_timeout, upgrade(stream, ws_config))).await {
        Ok(result) => result?,
        Err(_) => return Err("upgrade_failed"),
    };
    let Some(slot) = slot else {
        close(&mut ws, shared, ErrorCode::TooManyConnections, "too many connections from your address").await;
        return Err("too_many_connections");
    };

    // The handshake: the first message of the first frame is Hello. Pings before it are
    // answered (by tungstenite) and skipped.
    let deadline = tokio::time::Instant::now() + cfg.handshake_timeout;
    let first = loop {
        let Ok(incoming) = tokio::time::timeout_at(deadline, ws.next()).await else {
            let message = format!("no Hello within {} s", cfg.handshake_timeout.as_secs());
            close(&mut ws, shared, ErrorCode::HandshakeRequired, &message).await;
            return Err("handshake_timeout");
        };
        match Incoming::from(incoming) {
            Incoming::Binary(bytes) => break bytes,
            Incoming::Control => {}
            Incoming::Text => {
                close(&mut ws, shared, ErrorCode::Malformed, "frames must be binary MessagePack, not text").await;
                return Err("malformed");
            }
            Incoming::Closed => {
                answer_close(&mut ws).await;
                return Err("closed_during_handshake");
            }
            Incoming::Gone => return Err("closed_during_handshake"),
            other => return Err(refuse_transport(&mut ws, shared, other).await),
        }
    };
    count_in(shared, first.len());
    let (hello, messages) = match read_hello(&first) {
        Ok(read) => read,
        Err(Refusal { code, message }) => {
            close(&mut ws, shared, code, &message).await;
            return Err(match code {
                ErrorCode::ProtocolVersion => "protocol_version",
                ErrorCode::BadCredentials => "bad_credentials",
                ErrorCode::HandshakeRequired => "handshake_required",
                ErrorCode::UnknownMessage => "unknown_message",
                _ => "malformed",
            });
        }
    };
    let authenticated = match (&shared.auth, &hello.token) {
        (AuthMode::Offline, _) => false,
        (AuthMode::Token(_), None) => {
            close(&mut ws, shared, ErrorCode::BadCredentials, "this server requires a token (ask an operator)").await;
            return Err("bad_credentials");
        }
        (AuthMode::Token(key), Some(token)) => match key.verify(&hello.name, token, unix_now()) {
            Ok(()) => true,
            Err(TokenError::Bad) => {
                close(
                    &mut ws,
                    shared,
                    ErrorCode::BadCredentials,
                    "the token is not valid for this name on this server",
                )
                .await;
                return Err("bad_credentials");
            }
            Err(TokenError::Expired) => {
                close(&mut ws, shared, ErrorCode::TokenExpired, "the token has expired; ask an operator for a new one")
                    .await;
                return Err("token_expired");
            }
        },
    };

    let conn = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let (frames_tx, frames) = flume::bounded(cfg.max_queued_frames);
    let control = Arc::new(Control::default());
    let handle = ConnHandle { frames: frames_tx, control: Arc::clone(&control) };
    let join = JoinRequest { conn, name: hello.name, authenticated, addr, handle };
    if shared.events.send(NetEvent::Join(join)).await.is_err() {
        return Err("server_stopping");
    }
    Ok(Box::new(Joined { ws, _slot: slot, conn, frames, control, early: messages }))
}

/// The WebSocket opening handshake (RFC 6455 section 4). Any other HTTP request gets its
/// answer (`net::http`), and the connection ends.
async fn upgrade(mut stream: TcpStream, config: WebSocketConfig) -> Result<Ws, &'static str> {
    let Some((opening, received)) = http::read_opening(&mut stream).await else { return Err("upgrade_failed") };
    match opening {
        Opening::WebSocket { response, head_len } => {
            stream.write_all(&response).await.map_err(|_| "upgrade_failed")?;
            let after = received[head_len..].to_vec();
            Ok(WebSocketStream::from_partially_read(stream, after, Role::Server, Some(config)).await)
        }
        Opening::Http(answer) => {
            let _ = stream.write_all(&answer).await;
            let _ = stream.shutdown().await;
            Err("not_a_websocket")
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

/// Answers a frame too large, or a breach of RFC 6455, and closes; returns the metrics label.
/// Anything else ends the connection silently.
fn refuse_transport<'a>(ws: &'a mut Ws, shared: &'a Shared, incoming: Incoming) -> RareOf<'a, &'static str> {
    Box::pin(async move {
        match incoming {
            Incoming::TooLarge => {
                close(ws, shared, ErrorCode::FrameTooLarge, &too_large(shared.config.max_frame_bytes)).await;
                "frame_too_large"
            }
            Incoming::Violation { close: code, what } => {
                let message = format!("WebSocket protocol violation: {what}; use a client that follows RFC 6455");
                close_with(ws, shared, ErrorCode::ProtocolViolation, &message, code).await;
                "protocol_violation"
            }
            _ => "protocol_error",
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
    async fn serve(
        &mut self,
        ws: &mut Ws,
        shared: &Arc<Shared>,
        frames: &flume::Receiver<Bytes>,
        control: &Control,
    ) -> &'static str {
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
                    return reason_label(code);
                }
                frame = frames.recv_async() => {
                    let Ok(frame) = frame else { return "removed" };
                    // A client that stops reading blocks this write; the tick thread then finds
                    // the queue full and closes the connection, which ends the write here.
                    tokio::select! {
                        biased;
                        () = control.notify.notified() => {
                            return reason_label(control.close.get().map_or(ErrorCode::SlowConsumer, |c| c.0));
                        }
                        sent = Box::pin(timeout(cfg.idle_timeout, write_queued(ws, frame, frames))) => match sent {
                            Ok(Ok(written)) => count_out(shared, written),
                            Ok(Err(_)) => return "write_error",
                            Err(_) => return "slow_consumer",
                        }
                    }
                }
                incoming = ws.next() => {
                    silent_pings = 0;
                    match Incoming::from(incoming) {
                        Incoming::Binary(bytes) => {
                            count_in(shared, bytes.len());
                            // Boxed only when the hand-over has to wait: its state would
                            // otherwise sit in every idle connection's task.
                            let result = match decode_client_frame(&bytes).map(|m| self.try_forward(shared, m)) {
                                Ok(Ok(None)) => Ok(()),
                                Ok(Ok(Some(pending))) => Box::pin(self.finish_forward(ws, shared, pending)).await,
                                Ok(Err(reason)) => Err(reason),
                                Err(e) => Box::pin(self.refuse(ws, shared, e)).await,
                            };
                            if let Err(reason) = result {
                                return reason;
                            }
                        }
                        Incoming::Text => {
                            let e = DecodeError::Malformed("frames must be binary MessagePack, not text".into());
                            if let Err(reason) = Box::pin(self.refuse(ws, shared, e)).await {
                                return reason;
                            }
                        }
                        Incoming::Control => {}
                        Incoming::Closed => {
                            Box::pin(answer_close(ws)).await;
                            return "closed_by_client";
                        }
                        Incoming::Gone => return "closed_by_client",
                        other => return refuse_transport(ws, shared, other).await,
                    }
                }
                () = &mut ping => {
                    ping.as_mut().reset(tokio::time::Instant::now() + cfg.ping_interval);
                    silent_pings += 1;
                    if silent_pings > idle_pings {
                        let message = format!("nothing received for {} s", cfg.idle_timeout.as_secs());
                        close(ws, shared, ErrorCode::IdleTimeout, &message).await;
                        return "idle_timeout";
                    }
                    if Box::pin(timeout(cfg.idle_timeout, ws.send(Message::Ping(bytes::Bytes::new())))).await.is_err() {
                        return "slow_consumer";
                    }
                }
            }
        }
    }

    /// Passes decoded messages to the tick thread, within the rate limit.
    async fn forward(
        &mut self,
        ws: &mut Ws,
        shared: &Shared,
        messages: Vec<ClientMessage>,
    ) -> Result<(), &'static str> {
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
    ) -> Result<Option<Pending>, &'static str> {
        if messages.is_empty() {
            return Ok(None);
        }
        let mut pending = Pending { tell: false, event: None };
        let allowed = self.limiter.take(messages.len());
        if allowed < messages.len() {
            shared.metrics.dropped("rate_limited", (messages.len() - allowed) as u64);
            messages.truncate(allowed);
            pending.tell = self.limiter.tell();
        }
        if !messages.is_empty() {
            match shared.events.try_send(NetEvent::Messages { conn: self.conn, messages }) {
                Ok(()) => {}
                Err(TrySendError::Full(event)) => pending.event = Some(event),
                Err(TrySendError::Closed(_)) => return Err("server_stopping"),
            }
        }
        Ok((pending.tell || pending.event.is_some()).then_some(pending))
    }

    /// Does what [`Self::try_forward`] left to wait for.
    async fn finish_forward(&mut self, ws: &mut Ws, shared: &Shared, pending: Pending) -> Result<(), &'static str> {
        if pending.tell {
            let message = format!(
                "more than {} messages per second: the excess is dropped",
                shared.config.max_messages_per_second
            );
            send_error(ws, shared, ErrorCode::RateLimited, &message).await;
        }
        match pending.event {
            Some(event) => shared.events.send(event).await.map_err(|_| "server_stopping"),
            None => Ok(()),
        }
    }

    /// Answers an undecodable frame; closes after too many.
    async fn refuse(&mut self, ws: &mut Ws, shared: &Arc<Shared>, error: DecodeError) -> Result<(), &'static str> {
        let (code, label) = match &error {
            DecodeError::Malformed(_) => (ErrorCode::Malformed, "malformed"),
            DecodeError::UnknownMessage(_) => (ErrorCode::UnknownMessage, "unknown_message"),
        };
        shared.metrics.dropped(label, 1);
        self.errors += 1;
        if self.errors >= shared.config.max_errors {
            let message = format!("{error}; {} erroneous frames, closing", self.errors);
            close(ws, shared, ErrorCode::TooManyErrors, &message).await;
            return Err("too_many_errors");
        }
        send_error(ws, shared, code, &error.to_string()).await;
        Ok(())
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

fn count_out(shared: &Shared, written: Written) {
    shared.metrics.socket_writes.inc();
    shared.metrics.frames_out.inc_by(written.frames);
    shared.metrics.bytes_out.inc_by(written.bytes);
}

/// Frames queued for one client are written together up to about this many bytes: one write
/// to the socket for a client's backlog instead of one per frame, and the WebSocket's write
/// buffer (kept with its room for the connection's life) stays small.
const WRITE_BATCH_BYTES: usize = 2 * 1024;

/// Frames and payload bytes written to a client.
#[derive(Debug, Clone, Copy)]
struct Written {
    frames: u64,
    bytes: u64,
}

/// Writes `first` and the frames queued behind it, up to [`WRITE_BATCH_BYTES`], then flushes
/// once.
async fn write_queued(ws: &mut Ws, first: Bytes, frames: &flume::Receiver<Bytes>) -> Result<Written, WsError> {
    let mut written = Written { frames: 1, bytes: first.len() as u64 };
    ws.feed(Message::Binary(first)).await?;
    while written.bytes < WRITE_BATCH_BYTES as u64 {
        let Ok(frame) = frames.try_recv() else { break };
        written.frames += 1;
        written.bytes += frame.len() as u64;
        ws.feed(Message::Binary(frame)).await?;
    }
    ws.flush().await?;
    Ok(written)
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
            count_out(shared, Written { frames: 1, bytes: len as u64 });
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

fn reason_label(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::Kicked => "kicked",
        ErrorCode::Banned => "banned",
        ErrorCode::Replaced => "replaced",
        ErrorCode::ServerFull => "server_full",
        ErrorCode::NameTaken => "name_taken",
        ErrorCode::SlowConsumer => "slow_consumer",
        ErrorCode::ServerStopping => "server_stopping",
        ErrorCode::SavedStateUnreadable => "saved_state_unreadable",
        _ => "closed_by_server",
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
