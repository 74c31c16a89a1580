use std::{fmt::Write, time::Duration};

use tokio_tungstenite::tungstenite;
use veltrix_protocol::{DecodeError, ErrorMessage, ServerFrame, ServerMessage};

use crate::addr::AddressError;

/// At most this many messages are kept in [`ClientError::Timeout`] and [`ClientError::Closed`]:
/// enough to see why a test failed, bounded for a bot that waited in a busy world.
pub const KEPT_MESSAGES: usize = 256;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The address could not be parsed.
    #[error("bad address {addr:?}: {why}")]
    Address { addr: String, why: AddressError },
    /// Resolving or connecting the TCP stream.
    #[error("connecting: {0}")]
    Io(#[from] std::io::Error),
    /// The WebSocket upgrade or the WebSocket stream failed.
    #[error("websocket: {0}")]
    WebSocket(#[from] tungstenite::Error),
    /// The server answered Hello with an error (`ServerFull`, `NameTaken`, ...).
    #[error("the server refused the handshake: {:?}: {}", .0.code, .0.message)]
    Refused(ErrorMessage),
    /// The server's first frame held neither Welcome nor Error.
    #[error("the server's first frame held neither Welcome nor Error: {0:?}")]
    NoWelcome(ServerFrame),
    /// The connection ended. `code` is the close frame's (1005 when it had none, 1006 when the
    /// connection dropped without one); `received` holds the messages read meanwhile, the
    /// server's `Error` usually among them.
    #[error("connection closed (code {code}, reason {reason:?}){}", list(.received))]
    Closed { code: u16, reason: String, received: Vec<ServerMessage> },
    /// Nothing matching arrived in time; `received` holds what did arrive instead.
    #[error("nothing matching within {waited:?}{}", list(.received))]
    Timeout { waited: Duration, received: Vec<ServerMessage> },
    /// A server frame that does not decode (it is dropped; the connection stays usable).
    #[error("undecodable server frame: {0}")]
    Decode(#[from] DecodeError),
}

/// One line per message, so an assertion's output reads like a transcript.
fn list(messages: &[ServerMessage]) -> String {
    if messages.is_empty() {
        return "; received nothing".into();
    }
    let mut out = format!("; received {} message(s):", messages.len());
    for message in messages {
        let _ = write!(out, "\n  {message:?}");
    }
    if messages.len() == KEPT_MESSAGES {
        out.push_str("\n  (later ones not kept)");
    }
    out
}

/// Keeps `message` for an error report, up to [`KEPT_MESSAGES`].
pub(crate) fn keep(received: &mut Vec<ServerMessage>, message: ServerMessage) {
    if received.len() < KEPT_MESSAGES {
        received.push(message);
    }
}
