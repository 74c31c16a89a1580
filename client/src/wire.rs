//! Borrowed twins of the protocol's client messages that carry strings, so sending a mod message
//! or a command does not copy its namespace, kind and line into owned `String`s first. The tests
//! below pin their bytes to the protocol's own encoding.

use serde::{Serialize, Serializer};
use veltrix_protocol::encode_value;

#[derive(Serialize)]
enum ClientMessageRef<'a> {
    Mod(ModMessageRef<'a>),
    Command(CommandRef<'a>),
}

#[derive(Serialize)]
struct ModMessageRef<'a> {
    ns: &'a str,
    kind: &'a str,
    request: Option<u32>,
    body: Bin<'a>,
}

#[derive(Serialize)]
struct CommandRef<'a> {
    request: u32,
    line: &'a str,
}

/// MessagePack `bin`, as `serde_bytes` writes `ModMessage::body`.
struct Bin<'a>(&'a [u8]);

impl Serialize for Bin<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

fn frame(message: &ClientMessageRef<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode_value(std::slice::from_ref(message), &mut out);
    out
}

/// A client frame of one `Mod` message whose body is already encoded.
pub(crate) fn mod_frame(ns: &str, kind: &str, request: Option<u32>, body: &[u8]) -> Vec<u8> {
    frame(&ClientMessageRef::Mod(ModMessageRef { ns, kind, request, body: Bin(body) }))
}

/// A client frame of one `Command` message.
pub(crate) fn command_frame(request: u32, line: &str) -> Vec<u8> {
    frame(&ClientMessageRef::Command(CommandRef { request, line }))
}

#[cfg(test)]
mod tests {
    use veltrix_protocol::{ClientMessage, Command, ModMessage, encode_client_frame};

    use super::*;

    #[test]
    fn mod_frame_matches_the_protocol() {
        for request in [None, Some(0), Some(7), Some(u32::MAX)] {
            for body in [&[][..], &[0x92, 1, 2], &[0xaa; 300]] {
                let owned = ClientMessage::Mod(ModMessage {
                    ns: "Veltrix:TreasureHunt".into(),
                    kind: "Dig".into(),
                    request,
                    body: body.to_vec(),
                });
                assert_eq!(
                    mod_frame("Veltrix:TreasureHunt", "Dig", request, body),
                    encode_client_frame(&[owned]),
                    "{request:?} {}",
                    body.len()
                );
            }
        }
    }

    #[test]
    fn command_frame_matches_the_protocol() {
        for (request, line) in [(1, "hunt rank"), (u32::MAX, ""), (300, "é")] {
            let owned = ClientMessage::Command(Command { request, line: line.into() });
            assert_eq!(command_frame(request, line), encode_client_frame(&[owned]));
        }
    }
}
