//! Property tests of the entry points the fuzz targets cover (docs/fuzzing.md), run with the
//! normal tests: the client frame decoder, the server frame decoder and the handshake's first
//! frame. Any bytes give a value or an error, never a panic; what is encoded decodes back.

use proptest::prelude::*;
use veltrix_protocol::*;

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_]{1,16}"
}

fn client_message() -> impl Strategy<Value = ClientMessage> {
    prop_oneof![
        (any::<u32>(), name(), proptest::option::of(".{0,40}"))
            .prop_map(|(protocol, name, token)| ClientMessage::Hello(Hello { protocol, name, token })),
        (any::<u32>(), -1e6f32..1e6, -1e6f32..1e6).prop_map(|(seq, x, y)| ClientMessage::Move(Move { seq, x, y })),
        (".{0,20}", ".{0,20}", any::<Option<u32>>(), proptest::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(ns, kind, request, body)| ClientMessage::Mod(ModMessage { ns, kind, request, body })),
        (any::<u32>(), ".{0,40}").prop_map(|(request, line)| ClientMessage::Command(Command { request, line })),
    ]
}

/// Bytes that are mostly MessagePack: an encoded frame with some bytes changed, cut or added.
fn spoilt_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(client_message(), 0..4),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(messages, changes, cut)| {
            let mut frame = encode_client_frame(&messages);
            for (at, byte) in changes {
                let at = at.index(frame.len());
                frame[at] = byte;
            }
            let keep = cut.index(frame.len() + 1);
            frame.truncate(keep.max(frame.len() / 2));
            frame
        })
}

proptest! {
    #[test]
    fn client_frames_round_trip(messages in proptest::collection::vec(client_message(), 0..8)) {
        prop_assert_eq!(decode_client_frame(&encode_client_frame(&messages)).unwrap(), messages);
    }

    #[test]
    fn any_bytes_decode_or_fail_cleanly(frame in prop_oneof![proptest::collection::vec(any::<u8>(), 0..256), spoilt_frame()]) {
        if let Ok(messages) = decode_client_frame(&frame) {
            let encoded = encode_client_frame(&messages);
            prop_assert_eq!(encode_client_frame(&decode_client_frame(&encoded).unwrap()), encoded);
        }
        let _ = decode_server_frame(&frame);
        match read_hello(&frame) {
            Ok((hello, _)) => prop_assert!(hello.protocol == PROTOCOL_VERSION && valid_player_name(&hello.name)),
            Err(refusal) => prop_assert!(!refusal.message.is_empty()),
        }
    }

    /// A Hello of this version with a valid name opens the session, whatever follows it.
    #[test]
    fn a_good_hello_is_read_with_what_follows(name in name(), rest in proptest::collection::vec(client_message(), 0..4)) {
        let hello = Hello { protocol: PROTOCOL_VERSION, name, token: None };
        let frame = encode_client_frame(&[vec![ClientMessage::Hello(hello.clone())], rest.clone()].concat());
        prop_assert_eq!(read_hello(&frame).unwrap(), (hello, rest));
    }

    /// A frame the server builds decodes to its messages, with nothing skipped.
    #[test]
    fn server_frames_round_trip(tick in any::<u64>(), players in proptest::collection::vec(any::<u64>(), 0..8)) {
        let messages: Vec<ServerMessage> = players.iter().map(|&player| ServerMessage::PlayerGone(PlayerGone { player })).collect();
        let mut builder = FrameBuilder::with_capacity(64);
        builder.begin(tick);
        for m in &messages {
            builder.push(&encode_message(m));
        }
        let decoded = decode_server_frame(&builder.finish()).unwrap();
        prop_assert_eq!((decoded.frame, decoded.skipped), (ServerFrame { tick, messages }, 0));
    }
}
