//! The Veltrix wire protocol, shared by the server, the client library and (through the sdk)
//! the mods. No game logic, no I/O: message types and their encoding.
//!
//! Transport: WebSocket binary frames, each one MessagePack value. Structs are maps keyed by
//! field name, enums are maps with one key naming the variant (`{"Move": {"seq": 1, ...}}`).
//!
//! - Client to server: a frame is an array of [`ClientMessage`]s (a batch; usually one).
//! - Server to client: a frame is a [`ServerFrame`], `{"tick": u64, "messages": [...]}`, at most
//!   one per client per tick, plus immediate frames answering the handshake and errors. The
//!   benchmark build of the server adds a `"committed_ns"` key ([`DecodedFrame::committed_ns`]).
//!
//! The server encodes each message once ([`encode_message`]) and assembles a client's frame
//! from those bytes ([`FrameBuilder`]), so a message sent to many players is encoded once and
//! its bytes shared. docs/protocol.md is the full reference.

mod codec;
mod handshake;
mod messages;

pub use codec::{
    DecodeError, DecodedFrame, FrameBuilder, FrameHead, decode_client_frame, decode_server_frame,
    decode_server_frame_into, decode_value, encode_client_frame, encode_message, encode_value, encode_value_to,
};
pub use handshake::{Refusal, read_hello};
pub use messages::*;

/// The protocol version a client announces in [`Hello`]. Bumped on any change that an older
/// peer could misread; adding an optional field or a message kind does not bump it.
pub const PROTOCOL_VERSION: u32 = 1;

/// Whether `name` is a valid player name: 1 to 16 ASCII letters, digits or `_`.
pub fn valid_player_name(name: &str) -> bool {
    (1..=16).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
