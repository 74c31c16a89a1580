//! A connection's first frame, as the server reads it. Pure, so that it is fuzzed and property
//! tested like the frame decoder (docs/fuzzing.md).

use crate::{ClientMessage, DecodeError, ErrorCode, Hello, PROTOCOL_VERSION, decode_client_frame, valid_player_name};

/// Why a first frame opens no session: the `Error` the server answers before it closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    /// For people: what happened and what to do.
    pub message: String,
}

impl Refusal {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

/// Reads a connection's first frame: it must decode, and its first message must be a `Hello` of
/// this protocol version with a valid name. Returns the `Hello` and the messages after it in the
/// frame (applied once the player is in). The token, if any, is the server's to check.
pub fn read_hello(frame: &[u8]) -> Result<(Hello, Vec<ClientMessage>), Refusal> {
    let mut messages = decode_client_frame(frame).map_err(|e| match e {
        DecodeError::Malformed(_) => Refusal::new(ErrorCode::Malformed, e.to_string()),
        DecodeError::UnknownMessage(_) => Refusal::new(ErrorCode::UnknownMessage, e.to_string()),
    })?;
    let first_is_hello = matches!(messages.first(), Some(ClientMessage::Hello(_)));
    let hello = match first_is_hello.then(|| messages.remove(0)) {
        Some(ClientMessage::Hello(hello)) => hello,
        _ => return Err(Refusal::new(ErrorCode::HandshakeRequired, "the first message must be Hello")),
    };
    if hello.protocol != PROTOCOL_VERSION {
        let message = format!("this server speaks protocol version {PROTOCOL_VERSION}, the client {}", hello.protocol);
        return Err(Refusal::new(ErrorCode::ProtocolVersion, message));
    }
    if !valid_player_name(&hello.name) {
        return Err(Refusal::new(ErrorCode::BadCredentials, "a name is 1 to 16 letters, digits or _"));
    }
    Ok((hello, messages))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Move, encode_client_frame};

    fn hello(protocol: u32, name: &str) -> ClientMessage {
        ClientMessage::Hello(Hello { protocol, name: name.into(), token: None })
    }

    #[test]
    fn a_hello_and_what_follows_it() {
        let step = ClientMessage::Move(Move { seq: 1, x: 2.0, y: 3.0 });
        let (hello, rest) = read_hello(&encode_client_frame(&[hello(PROTOCOL_VERSION, "ana"), step.clone()])).unwrap();
        assert_eq!(hello.name, "ana");
        assert_eq!(rest, [step]);
    }

    #[test]
    fn every_refusal_has_its_code() {
        let code = |frame: &[u8]| read_hello(frame).unwrap_err().code;
        assert_eq!(code(&[0xc1]), ErrorCode::Malformed);
        assert_eq!(code(&encode_client_frame(&[])), ErrorCode::HandshakeRequired);
        let step = ClientMessage::Move(Move { seq: 1, x: 2.0, y: 3.0 });
        assert_eq!(code(&encode_client_frame(&[step, hello(PROTOCOL_VERSION, "ana")])), ErrorCode::HandshakeRequired);
        assert_eq!(code(&encode_client_frame(&[hello(PROTOCOL_VERSION + 1, "ana")])), ErrorCode::ProtocolVersion);
        assert_eq!(code(&encode_client_frame(&[hello(PROTOCOL_VERSION, "a b")])), ErrorCode::BadCredentials);
        let mut unknown = Vec::new();
        crate::encode_value(&[std::collections::BTreeMap::from([("Teleport", 1)])], &mut unknown);
        assert_eq!(code(&unknown), ErrorCode::UnknownMessage);
    }
}
