//! What readers of this crate accept beyond what its writers produce: the promises of
//! docs/protocol.md ("Compatibility") that let the protocol grow without a version bump and let
//! clients in other languages use their MessagePack library's defaults.

use rmp::encode::{write_array_len, write_bin, write_f32, write_f64, write_map_len, write_nil, write_sint, write_str};
use veltrix_protocol::*;

fn str(out: &mut Vec<u8>, s: &str) {
    write_str(out, s).unwrap();
}

/// `[{"Move": {<fields>}}]`, fields written by `fields`.
fn move_frame(n: u32, fields: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    write_array_len(&mut out, 1).unwrap();
    write_map_len(&mut out, 1).unwrap();
    str(&mut out, "Move");
    write_map_len(&mut out, n).unwrap();
    fields(&mut out);
    out
}

#[test]
fn unknown_keys_are_ignored() {
    let frame = move_frame(4, |out| {
        str(out, "seq");
        write_sint(out, 1).unwrap();
        str(out, "hint");
        write_map_len(out, 1).unwrap();
        str(out, "any");
        write_array_len(out, 0).unwrap();
        str(out, "x");
        write_f32(out, 1.5).unwrap();
        str(out, "y");
        write_f32(out, 2.5).unwrap();
    });
    assert_eq!(decode_client_frame(&frame).unwrap(), [ClientMessage::Move(Move { seq: 1, x: 1.5, y: 2.5 })]);

    // In a server frame: a new key in the frame and in a message.
    let mut out = Vec::new();
    write_map_len(&mut out, 3).unwrap();
    str(&mut out, "tick");
    write_sint(&mut out, 9).unwrap();
    str(&mut out, "sent_at");
    write_f64(&mut out, 1.0).unwrap();
    str(&mut out, "messages");
    write_array_len(&mut out, 1).unwrap();
    write_map_len(&mut out, 1).unwrap();
    str(&mut out, "PlayerGone");
    write_map_len(&mut out, 2).unwrap();
    str(&mut out, "reason");
    str(&mut out, "left");
    str(&mut out, "player");
    write_sint(&mut out, 3).unwrap();
    let frame = decode_server_frame(&out).unwrap().frame;
    assert_eq!(frame, ServerFrame { tick: 9, messages: vec![ServerMessage::PlayerGone(PlayerGone { player: 3 })] });
}

#[test]
fn fields_in_any_order_and_missing_options_are_nil() {
    let mut out = Vec::new();
    write_array_len(&mut out, 1).unwrap();
    write_map_len(&mut out, 1).unwrap();
    str(&mut out, "Mod");
    write_map_len(&mut out, 3).unwrap();
    str(&mut out, "body");
    write_bin(&mut out, &[0xc0]).unwrap();
    str(&mut out, "kind");
    str(&mut out, "Dig");
    str(&mut out, "ns");
    str(&mut out, "A:B");
    let expected = ModMessage { ns: "A:B".into(), kind: "Dig".into(), request: None, body: vec![0xc0] };
    assert_eq!(decode_client_frame(&out).unwrap(), [ClientMessage::Mod(expected)]);
}

#[test]
fn any_integer_width_and_float64_are_read() {
    // seq as int64, x as float64, y as a negative fixint.
    let frame = move_frame(3, |out| {
        str(out, "seq");
        out.extend_from_slice(&[0xd3, 0, 0, 0, 0, 0, 0, 0, 7]);
        str(out, "x");
        write_f64(out, 0.25).unwrap();
        str(out, "y");
        write_sint(out, -1).unwrap();
    });
    assert_eq!(decode_client_frame(&frame).unwrap(), [ClientMessage::Move(Move { seq: 7, x: 0.25, y: -1.0 })]);

    // Out of range is malformed, not truncated.
    let frame = move_frame(3, |out| {
        str(out, "seq");
        write_sint(out, -1).unwrap();
        str(out, "x");
        write_f32(out, 0.0).unwrap();
        str(out, "y");
        write_f32(out, 0.0).unwrap();
    });
    assert!(matches!(decode_client_frame(&frame), Err(DecodeError::Malformed(_))));
}

#[test]
fn minimal_and_fixed_width_headers_read_the_same() {
    let message = ServerMessage::PlayerGone(PlayerGone { player: 2 });
    let built = FrameBuilder::single(42, &message);
    let frame = ServerFrame { tick: 42, messages: vec![message] };
    let mut minimal = Vec::new();
    encode_value(&frame, &mut minimal);
    assert!(minimal.len() < built.len());
    assert_eq!(decode_server_frame(&minimal).unwrap().frame, frame);
    assert_eq!(decode_server_frame(&built).unwrap().frame, frame);
}

#[test]
fn an_unknown_message_kind_costs_only_that_message() {
    // Clients decode message by message and skip new kinds (docs, "Versioning").
    let mut out = Vec::new();
    write_map_len(&mut out, 2).unwrap();
    str(&mut out, "tick");
    write_sint(&mut out, 1).unwrap();
    str(&mut out, "messages");
    write_array_len(&mut out, 2).unwrap();
    write_map_len(&mut out, 1).unwrap();
    str(&mut out, "PlayerGone");
    write_map_len(&mut out, 1).unwrap();
    str(&mut out, "player");
    write_sint(&mut out, 3).unwrap();
    write_map_len(&mut out, 1).unwrap();
    str(&mut out, "Weather");
    write_nil(&mut out).unwrap();
    let decoded = decode_server_frame(&out).unwrap();
    assert_eq!(decoded.frame.messages, vec![ServerMessage::PlayerGone(PlayerGone { player: 3 })]);
    assert_eq!(decoded.skipped, 1);
}

/// `[{"Command": {"request": 4, "line": bin(line)}}]`.
fn command_with_bin_line(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_array_len(&mut out, 1).unwrap();
    write_map_len(&mut out, 1).unwrap();
    str(&mut out, "Command");
    write_map_len(&mut out, 2).unwrap();
    str(&mut out, "request");
    write_sint(&mut out, 4).unwrap();
    str(&mut out, "line");
    write_bin(&mut out, line).unwrap();
    out
}

/// `[{"Move": [<fields>]}]`: a struct written as an array of its fields.
fn move_as_array(fields: &[f32]) -> Vec<u8> {
    let mut out = move_frame(0, |_| {});
    out.pop();
    write_array_len(&mut out, 1 + fields.len() as u32).unwrap();
    write_sint(&mut out, 7).unwrap();
    for field in fields {
        write_f32(&mut out, *field).unwrap();
    }
    out
}

/// Leniencies the protocol keeps (docs/protocol.md, "Encoding"): bin holding UTF-8 where a str
/// is expected, and a struct as an array of its fields in declaration order.
#[test]
fn bin_for_str_and_arrays_for_structs_are_read() {
    let command = Command { request: 4, line: "hunt rank".into() };
    assert_eq!(decode_client_frame(&command_with_bin_line(b"hunt rank")).unwrap(), [ClientMessage::Command(command)]);
    let step = Move { seq: 7, x: 1.5, y: 2.5 };
    assert_eq!(decode_client_frame(&move_as_array(&[1.5, 2.5])).unwrap(), [ClientMessage::Move(step)]);
    // Bin that is not UTF-8 is no str; an array short of a field is no struct.
    assert!(matches!(decode_client_frame(&command_with_bin_line(&[0xff])), Err(DecodeError::Malformed(_))));
    assert!(matches!(decode_client_frame(&move_as_array(&[1.5])), Err(DecodeError::Malformed(_))));
}

/// A mod message's body, like a frame, is one value with nothing after it.
#[test]
fn a_value_with_bytes_after_it_is_malformed() {
    let mut body = Vec::new();
    encode_value(&std::collections::BTreeMap::from([("X", 3)]), &mut body);
    let read: std::collections::BTreeMap<String, u32> = decode_value(&body).unwrap();
    assert_eq!(read["X"], 3);
    body.push(0xc0);
    let error = decode_value::<std::collections::BTreeMap<String, u32>>(&body).unwrap_err();
    assert_eq!(error, DecodeError::Malformed("1 bytes after the end of the value".into()));
}

/// `PositionCorrected.reason` came without a version bump: a frame from an older server (no
/// key) or a newer one (a reason this side does not know) still reads, as `Unknown`.
#[test]
fn a_correction_without_a_reason_or_with_a_new_one_reads_as_unknown() {
    for reason in [None, Some("Lava")] {
        let mut out = Vec::new();
        write_map_len(&mut out, 2).unwrap();
        str(&mut out, "tick");
        write_sint(&mut out, 1).unwrap();
        str(&mut out, "messages");
        write_array_len(&mut out, 1).unwrap();
        write_map_len(&mut out, 1).unwrap();
        str(&mut out, "PositionCorrected");
        write_map_len(&mut out, 3 + u32::from(reason.is_some())).unwrap();
        str(&mut out, "seq");
        write_sint(&mut out, 7).unwrap();
        str(&mut out, "x");
        write_f32(&mut out, 1.5).unwrap();
        str(&mut out, "y");
        write_f32(&mut out, 2.5).unwrap();
        if let Some(reason) = reason {
            str(&mut out, "reason");
            str(&mut out, reason);
        }
        let expected = PositionCorrected { seq: 7, x: 1.5, y: 2.5, reason: CorrectionReason::Unknown };
        let decoded = decode_server_frame(&out).unwrap();
        assert_eq!(decoded.frame.messages, [ServerMessage::PositionCorrected(expected)], "{reason:?}");
    }
}
