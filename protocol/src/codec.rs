//! Encoding and decoding. Decoding never panics and never allocates from a length the peer
//! sent beyond the frame it sent (the frame size is capped before this is called).

use std::{fmt, ops::Range};

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::{ClientMessage, ServerFrame, ServerMessage};

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Not MessagePack, or not the expected shape, or a field of the wrong type.
    Malformed(String),
    /// A message kind this side does not know.
    UnknownMessage(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Malformed(m) => write!(f, "malformed frame: {m}"),
            DecodeError::UnknownMessage(m) => write!(f, "unknown message: {m}"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl From<rmp_serde::decode::Error> for DecodeError {
    fn from(e: rmp_serde::decode::Error) -> Self {
        let text = e.to_string();
        if text.contains("unknown variant") { DecodeError::UnknownMessage(text) } else { DecodeError::Malformed(text) }
    }
}

/// Encodes one value as MessagePack with named fields (the protocol's form).
pub fn encode_value<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    encode_value_to(value, out).expect("writing to a Vec cannot fail");
}

/// Encodes one value as [`encode_value`] does, into any writer.
pub fn encode_value_to<T: Serialize + ?Sized, W: std::io::Write>(
    value: &T,
    out: W,
) -> Result<(), rmp_serde::encode::Error> {
    value.serialize(&mut rmp_serde::Serializer::new(out).with_struct_map())
}

/// A client frame: the array of messages.
pub fn encode_client_frame(messages: &[ClientMessage]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode_value(messages, &mut out);
    out
}

/// Decodes a client frame: an array of messages.
pub fn decode_client_frame(frame: &[u8]) -> Result<Vec<ClientMessage>, DecodeError> {
    decode_value(frame)
}

/// Decodes one complete MessagePack value with nothing after it: a frame, or a mod message's
/// body.
pub fn decode_value<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    // Read from the slice itself: a reader of its own would copy each string (a struct's field
    // names too) into a buffer it allocates, once per value decoded.
    let mut decoder = rmp_serde::Deserializer::from_read_ref(bytes);
    let value = T::deserialize(&mut decoder)?;
    match serde::de::IgnoredAny::deserialize(&mut decoder) {
        Err(rmp_serde::decode::Error::InvalidMarkerRead(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Ok(value)
        }
        // Something after the value (rare: a malformed message), counted the slow way.
        _ => {
            let mut rest = bytes;
            let _ = serde::de::IgnoredAny::deserialize(&mut rmp_serde::Deserializer::new(&mut rest));
            Err(DecodeError::Malformed(format!("{} bytes after the end of the value", rest.len())))
        }
    }
}

/// Encodes one server message once; the bytes can go into any number of frames.
pub fn encode_message(message: &ServerMessage) -> Bytes {
    let mut out = Vec::with_capacity(32);
    encode_value(message, &mut out);
    Bytes::from(out)
}

/// Decodes a server frame (for clients), message by message: a message this side cannot
/// decode (a kind or error code newer than it) is skipped and counted, the others kept, as
/// the versioning rules ask of clients (docs/protocol.md). Unknown keys of the frame are
/// ignored.
pub fn decode_server_frame(frame: &[u8]) -> Result<DecodedFrame, DecodeError> {
    let mut messages = Vec::new();
    let head = decode_server_frame_into(frame, |_| true, &mut messages)?;
    Ok(DecodedFrame {
        frame: ServerFrame { tick: head.tick, messages },
        skipped: head.skipped,
        committed_ns: head.committed_ns,
    })
}

/// [`decode_server_frame`] into `messages` (emptied first, its room kept), of the messages
/// only those whose kind (`"PlayerMoved"`, `"Mod"`, ...) `wanted` accepts: the others are
/// passed over unread, so a client that needs few of them (a bot of the swarm) does not build
/// and drop the rest.
pub fn decode_server_frame_into(
    frame: &[u8],
    mut wanted: impl FnMut(&str) -> bool,
    messages: &mut Vec<ServerMessage>,
) -> Result<FrameHead, DecodeError> {
    let malformed = |what: &str| DecodeError::Malformed(format!("server frame: {what}"));
    messages.clear();
    let mut rest = frame;
    let fields = rmp::decode::read_map_len(&mut rest).map_err(|_| malformed("expected a map"))?;
    let (mut tick, mut committed_ns, mut count, mut skipped) = (None, None, None, 0);
    for _ in 0..fields {
        let (key, tail) = rmp::decode::read_str_from_slice(rest).map_err(|_| malformed("a key is not a string"))?;
        rest = tail;
        match key {
            "tick" => {
                tick =
                    Some(rmp::decode::read_int::<u64, _>(&mut rest).map_err(|_| malformed("tick is not an integer"))?)
            }
            "committed_ns" => {
                committed_ns = Some(
                    rmp::decode::read_int::<u64, _>(&mut rest)
                        .map_err(|_| malformed("committed_ns is not an unsigned integer"))?,
                )
            }
            "messages" => {
                let n = rmp::decode::read_array_len(&mut rest).map_err(|_| malformed("messages is not an array"))?;
                for _ in 0..n {
                    let message = next_value(&mut rest)?;
                    if message_kind(message).is_some_and(|kind| !wanted(kind)) {
                        continue;
                    }
                    // Read from the frame's own bytes: a reader of its own would copy every
                    // string (field names too) into a buffer it allocates, for each message.
                    match ServerMessage::deserialize(&mut rmp_serde::Deserializer::from_read_ref(message)) {
                        Ok(message) => messages.push(message),
                        Err(_) => skipped += 1,
                    }
                }
                count = Some(n as usize);
            }
            _ => {
                next_value(&mut rest)?;
            }
        }
    }
    match (tick, count) {
        (Some(tick), Some(count)) => Ok(FrameHead { tick, count, skipped, committed_ns }),
        _ => Err(malformed("missing tick or messages")),
    }
}

/// The kind of an encoded message: its variant's name, the key of the one-entry map it is (a
/// kind without fields would be the name alone). `None` when it is neither: such a message is
/// not passed over, and counts as one that could not be decoded.
fn message_kind(message: &[u8]) -> Option<&str> {
    let mut rest = message;
    if let Ok(1) = rmp::decode::read_map_len(&mut rest) {
        return rmp::decode::read_str_from_slice(rest).ok().map(|(kind, _)| kind);
    }
    rmp::decode::read_str_from_slice(message).ok().map(|(kind, _)| kind)
}

/// The MessagePack value `rest` starts with, as its bytes; `rest` moves past it.
fn next_value<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], DecodeError> {
    let len = value_len(rest).ok_or_else(|| DecodeError::Malformed("server frame: a value is cut short".into()))?;
    let (value, tail) = rest.split_at(len);
    *rest = tail;
    Ok(value)
}

/// The length of the MessagePack value that `bytes` start with, found from its markers and
/// lengths alone (nothing decoded, nothing allocated); `None` when it does not end within
/// `bytes` or has a marker MessagePack reserves. Values inside arrays and maps are counted, not
/// recursed into, so no nesting runs the stack out.
fn value_len(bytes: &[u8]) -> Option<usize> {
    use rmp::Marker;
    let (mut at, mut values) = (0usize, 1u64);
    let len_at = |at: usize, width: usize| -> Option<usize> {
        let b = bytes.get(at..at + width)?;
        Some(b.iter().fold(0usize, |n, &byte| (n << 8) | usize::from(byte)))
    };
    while values > 0 {
        values -= 1;
        let marker = Marker::from_u8(*bytes.get(at)?);
        at += 1;
        // What follows the marker: bytes to step over, and values inside.
        let (skip, inside) = match marker {
            Marker::FixPos(_) | Marker::FixNeg(_) | Marker::Null | Marker::True | Marker::False => (0, 0),
            Marker::U8 | Marker::I8 => (1, 0),
            Marker::U16 | Marker::I16 => (2, 0),
            Marker::U32 | Marker::I32 | Marker::F32 => (4, 0),
            Marker::U64 | Marker::I64 | Marker::F64 => (8, 0),
            Marker::FixStr(n) => (usize::from(n), 0),
            Marker::Str8 | Marker::Bin8 => (1 + len_at(at, 1)?, 0),
            Marker::Str16 | Marker::Bin16 => (2 + len_at(at, 2)?, 0),
            Marker::Str32 | Marker::Bin32 => (4 + len_at(at, 4)?, 0),
            Marker::FixExt1 => (2, 0),
            Marker::FixExt2 => (3, 0),
            Marker::FixExt4 => (5, 0),
            Marker::FixExt8 => (9, 0),
            Marker::FixExt16 => (17, 0),
            Marker::Ext8 => (2 + len_at(at, 1)?, 0),
            Marker::Ext16 => (3 + len_at(at, 2)?, 0),
            Marker::Ext32 => (5 + len_at(at, 4)?, 0),
            Marker::FixArray(n) => (0, u64::from(n)),
            Marker::Array16 => (2, len_at(at, 2)? as u64),
            Marker::Array32 => (4, len_at(at, 4)? as u64),
            Marker::FixMap(n) => (0, 2 * u64::from(n)),
            Marker::Map16 => (2, 2 * len_at(at, 2)? as u64),
            Marker::Map32 => (4, 2 * len_at(at, 4)? as u64),
            Marker::Reserved => return None,
        };
        at = at.checked_add(skip)?;
        if at > bytes.len() {
            return None;
        }
        values += inside;
    }
    Some(at)
}

/// What [`decode_server_frame_into`] tells of a frame besides its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHead {
    pub tick: u64,
    /// The messages in the frame, wanted or not.
    pub count: usize,
    /// Wanted messages that could not be decoded (newer kinds).
    pub skipped: usize,
    /// As [`DecodedFrame::committed_ns`].
    pub committed_ns: Option<u64>,
}

/// A decoded server frame and how many of its messages could not be decoded (newer kinds).
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedFrame {
    pub frame: ServerFrame,
    pub skipped: usize,
    /// When the server committed the state of the frame's tick, in nanoseconds of its
    /// `CLOCK_MONOTONIC`: written only by the benchmark build of the server
    /// (docs/benchmarks.md), `None` from any other.
    pub committed_ns: Option<u64>,
}

/// Assembles a server frame from already-encoded messages, without decoding or re-encoding
/// them.
///
/// The header has a fixed layout so it can be written before the message count is known:
/// `{"tick": <uint64>, "messages": <array32 of N>}`: `82 a4 "tick" cf <8 bytes> a8 "messages"
/// dd <4 bytes N>`, then the N messages. MessagePack readers accept the wide forms.
///
/// A stamped frame ([`begin_stamped`](Self::begin_stamped), for the benchmark build of the
/// server) has a third key between the two, `"committed_ns": <uint64>`: `83 a4 "tick" cf <8
/// bytes> ac "committed_ns" cf <8 bytes> a8 "messages" dd <4 bytes N>`. Its value is written by
/// [`stamp`](Self::stamp), at any time before [`finish`](Self::finish): a frame may be begun
/// before its tick's state is committed.
///
/// Finishing a frame hands out its bytes without copying, and the next frame is built after it
/// in the same allocation: one builder can write many frames (a server's whole tick, each
/// client's frame a slice of one buffer). Frames may also be [`end`](Self::end)ed one after the
/// other and [`take`](Self::take)n together, as one `Bytes` the ranges `end` gave index: one
/// count of references for all of them, not one each. Once every frame it handed out is
/// dropped, [`reserve`](Self::reserve) takes the allocation back whole.
#[derive(Debug)]
pub struct FrameBuilder {
    /// The frames ended and not yet taken, then the frame being built.
    buf: BytesMut,
    /// Where the frame being built begins in `buf`.
    frame_start: usize,
    count: u32,
    /// Whether the frame being built has the `committed_ns` key.
    stamped: bool,
}

/// Header bytes before the tick: a map of two entries, then the key `"tick"`.
const HEADER_PREFIX: &[u8] = b"\x82\xa4tick";
/// The same for a stamped frame: a map of three entries.
const STAMPED_PREFIX: &[u8] = b"\x83\xa4tick";
/// The stamped frame's extra entry: the key, then `cf` and 8 bytes of value.
const STAMP_KEY: &[u8] = b"\xaccommitted_ns";
const STAMP_ENTRY_LEN: usize = STAMP_KEY.len() + 9;
/// Offset of a stamped frame's 8-byte `committed_ns` value.
const STAMP_AT: usize = HEADER_PREFIX.len() + 9 + STAMP_KEY.len() + 1;
/// Offset of the 4-byte message count (in a frame without the stamp).
const COUNT_AT: usize = HEADER_PREFIX.len() + 9 + 9 + 1;
const HEADER_LEN: usize = COUNT_AT + 4;

impl FrameBuilder {
    /// A builder with room for `capacity` bytes of messages.
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = if capacity == 0 { 0 } else { HEADER_LEN + capacity };
        Self { buf: BytesMut::with_capacity(capacity), frame_start: 0, count: 0, stamped: false }
    }

    /// Makes room for `frames` more frames holding `message_bytes` bytes of messages in all:
    /// one allocation for all of them at most, none when the frames handed out before are all
    /// dropped and their allocation is large enough.
    pub fn reserve(&mut self, frames: usize, message_bytes: usize) {
        self.buf.reserve(Self::room(frames, message_bytes));
    }

    /// Makes room as [`reserve`](Self::reserve) does, but only without allocating: whether the
    /// room was there (in what is left, or in the allocation taken back whole because every frame
    /// handed out before is dropped).
    pub fn try_reclaim(&mut self, frames: usize, message_bytes: usize) -> bool {
        self.buf.try_reclaim(Self::room(frames, message_bytes))
    }

    fn room(frames: usize, message_bytes: usize) -> usize {
        frames * (HEADER_LEN + STAMP_ENTRY_LEN) + message_bytes
    }

    /// Starts a frame for `tick`, dropping anything not finished or ended.
    pub fn begin(&mut self, tick: u64) {
        self.start(tick, false);
    }

    /// Starts a frame for `tick` with a `committed_ns` key (0 until [`stamp`](Self::stamp)),
    /// dropping anything not finished or ended.
    pub fn begin_stamped(&mut self, tick: u64) {
        self.start(tick, true);
    }

    fn start(&mut self, tick: u64, stamped: bool) {
        self.buf.truncate(self.frame_start);
        self.buf.extend_from_slice(if stamped { STAMPED_PREFIX } else { HEADER_PREFIX });
        self.buf.extend_from_slice(&[0xcf]);
        self.buf.extend_from_slice(&tick.to_be_bytes());
        if stamped {
            self.buf.extend_from_slice(STAMP_KEY);
            self.buf.extend_from_slice(&[0xcf]);
            self.buf.extend_from_slice(&[0; 8]);
        }
        self.buf.extend_from_slice(b"\xa8messages");
        self.buf.extend_from_slice(&[0xdd]);
        self.buf.extend_from_slice(&[0; 4]);
        self.count = 0;
        self.stamped = stamped;
        debug_assert_eq!(self.byte_len(), self.header_len());
    }

    /// Writes the stamped frame's `committed_ns`; does nothing to a frame begun with
    /// [`begin`](Self::begin), which has no room for it.
    pub fn stamp(&mut self, committed_ns: u64) {
        if self.stamped && self.byte_len() >= self.header_len() {
            let at = self.frame_start + STAMP_AT;
            self.buf[at..at + 8].copy_from_slice(&committed_ns.to_be_bytes());
        }
    }

    /// Writes `committed_ns` into a finished frame that was begun with
    /// [`begin_stamped`](Self::begin_stamped) (a frame built before its tick's commit, sent
    /// after it). Returns false, and changes nothing, for any other frame.
    pub fn stamp_frame(frame: &mut [u8], committed_ns: u64) -> bool {
        let stamped = frame.len() >= HEADER_LEN + STAMP_ENTRY_LEN
            && frame.starts_with(STAMPED_PREFIX)
            && frame[STAMP_AT - 1 - STAMP_KEY.len()..STAMP_AT - 1] == *STAMP_KEY;
        if stamped {
            frame[STAMP_AT..STAMP_AT + 8].copy_from_slice(&committed_ns.to_be_bytes());
        }
        stamped
    }

    /// Whether the frame being built has the `committed_ns` key.
    pub fn is_stamped(&self) -> bool {
        self.stamped
    }

    fn header_len(&self) -> usize {
        if self.stamped { HEADER_LEN + STAMP_ENTRY_LEN } else { HEADER_LEN }
    }

    /// Appends one encoded message (from [`encode_message`]).
    pub fn push(&mut self, encoded: &[u8]) {
        debug_assert!(self.byte_len() >= self.header_len(), "begin() before push()");
        self.buf.extend_from_slice(encoded);
        self.count += 1;
    }

    /// Messages in the frame so far.
    pub fn len(&self) -> u32 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of the frame so far, header included.
    pub fn byte_len(&self) -> usize {
        self.buf.len() - self.frame_start
    }

    /// The finished frame, sharing the builder's allocation; with the frames [`end`](Self::end)ed
    /// before it and not yet [`take`](Self::take)n, if any (use one way or the other).
    pub fn finish(&mut self) -> Bytes {
        self.end();
        self.take()
    }

    /// Ends the frame being built; where it is in what the next [`take`](Self::take) hands out.
    /// The next frame is built after it.
    pub fn end(&mut self) -> Range<usize> {
        let count_at = self.frame_start + self.header_len() - 4;
        self.buf[count_at..count_at + 4].copy_from_slice(&self.count.to_be_bytes());
        self.count = 0;
        let frame = self.frame_start..self.buf.len();
        self.frame_start = self.buf.len();
        frame
    }

    /// Every frame [`end`](Self::end)ed since the last take, one after the other, sharing the
    /// builder's allocation (a frame begun and not ended is dropped).
    pub fn take(&mut self) -> Bytes {
        self.buf.truncate(self.frame_start);
        self.frame_start = 0;
        self.buf.split().freeze()
    }

    /// A whole frame of one message, for immediate answers (handshake, errors).
    pub fn single(tick: u64, message: &ServerMessage) -> Bytes {
        let mut builder = Self::with_capacity(64);
        builder.begin(tick);
        builder.push(&encode_message(message));
        builder.finish()
    }

    /// [`single`](Self::single) with a `committed_ns` key holding `committed_ns`.
    pub fn single_stamped(tick: u64, committed_ns: u64, message: &ServerMessage) -> Bytes {
        let mut builder = Self::with_capacity(64 + STAMP_ENTRY_LEN);
        builder.begin_stamped(tick);
        builder.stamp(committed_ns);
        builder.push(&encode_message(message));
        builder.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::*;

    /// Every kind of MessagePack value, at each width of its length: its length is found, with
    /// anything after it left alone, and a value cut short anywhere has none.
    #[test]
    fn a_values_length_is_found_from_its_markers() {
        let mut values: Vec<Vec<u8>> = Vec::new();
        let mut one = |write: &dyn Fn(&mut Vec<u8>)| {
            let mut v = Vec::new();
            write(&mut v);
            values.push(v);
        };
        for n in [0u64, 1, 127, 200, 40_000, 70_000, 5_000_000_000] {
            one(&|v| {
                rmp::encode::write_uint(v, n).unwrap();
            });
            one(&|v| {
                rmp::encode::write_sint(v, -(n as i64) - 1).unwrap();
            });
        }
        one(&|v| {
            rmp::encode::write_f32(v, 1.5).unwrap();
        });
        one(&|v| {
            rmp::encode::write_f64(v, 1.5).unwrap();
        });
        one(&|v| rmp::encode::write_nil(v).unwrap());
        one(&|v| rmp::encode::write_bool(v, true).unwrap());
        for len in [0usize, 5, 31, 200, 300, 70_000] {
            one(&|v| rmp::encode::write_str(v, &"x".repeat(len)).unwrap());
            one(&|v| rmp::encode::write_bin(v, &vec![7; len]).unwrap());
            for ty_len in [1u32, 2, 4, 8, 16, len as u32] {
                one(&|v| {
                    rmp::encode::write_ext_meta(v, ty_len, 3).unwrap();
                    v.extend(std::iter::repeat_n(9, ty_len as usize));
                });
            }
        }
        for n in [0u32, 3, 15, 16, 70_000] {
            one(&|v| {
                rmp::encode::write_array_len(v, n).unwrap();
                (0..n).for_each(|i| {
                    rmp::encode::write_uint(v, u64::from(i)).unwrap();
                });
            });
            one(&|v| {
                rmp::encode::write_map_len(v, n).unwrap();
                (0..n).for_each(|i| {
                    rmp::encode::write_str(v, "k").unwrap();
                    rmp::encode::write_array_len(v, 1).unwrap();
                    rmp::encode::write_uint(v, u64::from(i)).unwrap();
                });
            });
        }
        for value in &values {
            let mut followed = value.clone();
            followed.extend([0xc0, 0x01]);
            assert_eq!(value_len(&followed), Some(value.len()), "{:02x?}", &value[..value.len().min(8)]);
            let cuts = [0, 1, value.len() / 2, value.len() - 1];
            for cut in cuts.into_iter().filter(|&cut| cut < value.len()) {
                assert_eq!(value_len(&value[..cut]), None, "cut at {cut}");
            }
        }
        assert_eq!(value_len(&[0xc1]), None, "a reserved marker");
        // Nesting deeper than any stack would take: counted, not recursed into.
        let deep = [vec![0x91; 1_000_000], vec![0xc0]].concat();
        assert_eq!(value_len(&deep), Some(deep.len()));
    }

    #[test]
    fn client_frame_round_trips() {
        let messages = vec![
            ClientMessage::Hello(Hello { protocol: 1, name: "ana".into(), token: None }),
            ClientMessage::Move(Move { seq: 7, x: 1.5, y: -2.0 }),
            ClientMessage::Mod(ModMessage {
                ns: "Veltrix:TreasureHunt".into(),
                kind: "Dig".into(),
                request: Some(3),
                body: vec![0x92, 1, 2],
            }),
        ];
        assert_eq!(decode_client_frame(&encode_client_frame(&messages)).unwrap(), messages);
    }

    #[test]
    fn built_frame_decodes() {
        let a = ServerMessage::PlayerMoved(PlayerMoved { player: 4, x: 1.0, y: 2.0 });
        let b = ServerMessage::PlayerGone(PlayerGone { player: 9 });
        let mut builder = FrameBuilder::with_capacity(64);
        builder.begin(123_456);
        builder.push(&encode_message(&a));
        builder.push(&encode_message(&b));
        let frame = builder.finish();
        let decoded = decode_server_frame(&frame).unwrap();
        assert_eq!(decoded.frame, ServerFrame { tick: 123_456, messages: vec![a, b] });
        assert_eq!(decoded.skipped, 0);
    }

    /// Frames ended one after the other are taken as one buffer, each where `end` said, a stamp
    /// in its own frame; a frame begun and not ended is not in it; the next frame is a buffer
    /// of its own.
    #[test]
    fn frames_ended_one_after_the_other_are_taken_together() {
        let a = ServerMessage::PlayerMoved(PlayerMoved { player: 4, x: 1.0, y: 2.0 });
        let b = ServerMessage::PlayerGone(PlayerGone { player: 9 });
        let mut builder = FrameBuilder::with_capacity(64);
        builder.begin(1);
        builder.push(&encode_message(&a));
        let first = builder.end();
        builder.begin_stamped(2);
        builder.stamp(9);
        builder.push(&encode_message(&b));
        builder.push(&encode_message(&a));
        let second = builder.end();
        builder.begin(3);
        builder.push(&encode_message(&b));
        let taken = builder.take();
        assert_eq!((first.start, first.end, second.end), (0, second.start, taken.len()));
        let one = decode_server_frame(&taken[first]).unwrap();
        assert_eq!((one.frame, one.committed_ns), (ServerFrame { tick: 1, messages: vec![a.clone()] }, None));
        let two = decode_server_frame(&taken[second]).unwrap();
        let both = vec![b.clone(), a];
        assert_eq!((two.frame, two.committed_ns), (ServerFrame { tick: 2, messages: both }, Some(9)));
        builder.begin(4);
        builder.push(&encode_message(&b));
        let alone = builder.finish();
        assert_eq!(decode_server_frame(&alone).unwrap().frame, ServerFrame { tick: 4, messages: vec![b] });
    }

    /// A stamped frame decodes with its `committed_ns`, whenever the stamp was written before
    /// `finish`; an unstamped one decodes with `None`; both carry the same messages.
    #[test]
    fn committed_ns_decodes_when_present() {
        let a = ServerMessage::PlayerMoved(PlayerMoved { player: 4, x: 1.0, y: 2.0 });
        let b = ServerMessage::PlayerGone(PlayerGone { player: 9 });
        let committed = 0x0123_4567_89ab_cdef;
        let mut builder = FrameBuilder::with_capacity(64);
        builder.begin_stamped(77);
        builder.push(&encode_message(&a));
        builder.stamp(committed);
        builder.push(&encode_message(&b));
        let stamped = builder.finish();
        let decoded = decode_server_frame(&stamped).unwrap();
        assert_eq!(decoded.committed_ns, Some(committed));
        assert_eq!(decoded.frame, ServerFrame { tick: 77, messages: vec![a.clone(), b.clone()] });
        assert_eq!(&stamped[..1], b"\x83", "a map of three entries");

        builder.begin(78);
        builder.stamp(committed);
        builder.push(&encode_message(&a));
        let plain = builder.finish();
        let decoded = decode_server_frame(&plain).unwrap();
        assert_eq!(decoded.committed_ns, None, "an unstamped frame has no room for a stamp");
        assert_eq!(decoded.frame, ServerFrame { tick: 78, messages: vec![a.clone()] });
        assert_eq!(&plain[..HEADER_LEN], &FrameBuilder::single(78, &a)[..HEADER_LEN]);

        let single = decode_server_frame(&FrameBuilder::single_stamped(79, 5, &b)).unwrap();
        assert_eq!((single.frame.tick, single.committed_ns, single.frame.messages), (79, Some(5), vec![b.clone()]));

        let mut finished = FrameBuilder::single_stamped(80, 5, &b).to_vec();
        assert!(FrameBuilder::stamp_frame(&mut finished, 6));
        assert_eq!(decode_server_frame(&finished).unwrap().committed_ns, Some(6), "stamped again once finished");
        let mut unstamped = FrameBuilder::single(80, &b).to_vec();
        let before = unstamped.clone();
        assert!(!FrameBuilder::stamp_frame(&mut unstamped, 6));
        assert_eq!(unstamped, before, "a frame without the key is left alone");
    }

    /// A `committed_ns` that is not an unsigned integer makes the frame malformed.
    #[test]
    fn committed_ns_of_another_type_is_malformed() {
        let mut frame = Vec::new();
        rmp::encode::write_map_len(&mut frame, 3).unwrap();
        rmp::encode::write_str(&mut frame, "tick").unwrap();
        rmp::encode::write_uint(&mut frame, 1).unwrap();
        rmp::encode::write_str(&mut frame, "committed_ns").unwrap();
        rmp::encode::write_str(&mut frame, "soon").unwrap();
        rmp::encode::write_str(&mut frame, "messages").unwrap();
        rmp::encode::write_array_len(&mut frame, 0).unwrap();
        assert!(matches!(decode_server_frame(&frame), Err(DecodeError::Malformed(_))));
    }

    /// An error code newer than this side still reads as an error.
    #[test]
    fn unknown_error_code_reads_as_unknown() {
        let mut body = Vec::new();
        encode_value(
            &std::collections::BTreeMap::from([(
                "Error",
                std::collections::BTreeMap::from([("code", "Overheated"), ("message", "later")]),
            )]),
            &mut body,
        );
        let mut builder = FrameBuilder::with_capacity(64);
        builder.begin(1);
        builder.push(&body);
        let decoded = decode_server_frame(&builder.finish()).unwrap();
        assert_eq!(
            decoded.frame.messages,
            vec![ServerMessage::Error(ErrorMessage {
                code: ErrorCode::Unknown,
                message: "later".into(),
                request: None
            })]
        );
    }

    /// A message of a kind this side does not know costs only that message.
    #[test]
    fn unknown_server_message_is_skipped_not_the_frame() {
        let known = ServerMessage::PlayerGone(PlayerGone { player: 3 });
        let mut future = Vec::new();
        encode_value(
            &std::collections::BTreeMap::from([("Weather", std::collections::BTreeMap::from([("rain", 1)]))]),
            &mut future,
        );
        let mut builder = FrameBuilder::with_capacity(64);
        builder.begin(9);
        builder.push(&future);
        builder.push(&encode_message(&known));
        let decoded = decode_server_frame(&builder.finish()).unwrap();
        assert_eq!(
            decoded,
            DecodedFrame { frame: ServerFrame { tick: 9, messages: vec![known] }, skipped: 1, committed_ns: None }
        );
    }

    /// Only the kinds asked for are decoded; the others are counted, and a message that could
    /// not be decoded is counted as skipped only when its kind was asked for.
    #[test]
    fn a_frame_decoded_into_a_list_keeps_only_the_kinds_wanted() {
        let gone = ServerMessage::PlayerGone(PlayerGone { player: 3 });
        let moved = ServerMessage::PlayerMoved(PlayerMoved { player: 4, x: 1.5, y: 2.0 });
        let mut future = Vec::new();
        encode_value(&std::collections::BTreeMap::from([("Weather", 1)]), &mut future);
        let mut builder = FrameBuilder::with_capacity(64);
        builder.begin(7);
        for message in [&moved, &gone, &moved] {
            builder.push(&encode_message(message));
        }
        builder.push(&future);
        let frame = builder.finish();
        let mut messages = vec![gone.clone()];
        let head = decode_server_frame_into(&frame, |kind| kind == "PlayerMoved", &mut messages).unwrap();
        assert_eq!(head, FrameHead { tick: 7, count: 4, skipped: 0, committed_ns: None });
        assert_eq!(messages, [moved.clone(), moved]);
        let head = decode_server_frame_into(&frame, |kind| kind != "PlayerMoved", &mut messages).unwrap();
        assert_eq!((head.count, head.skipped), (4, 1), "the unknown kind was wanted, and could not be decoded");
        assert_eq!(messages, [gone]);
    }

    /// In steady state (each frame written before the next is built) no frame allocates:
    /// every frame lies in the builder's first allocation.
    #[test]
    fn finished_frames_reuse_the_allocation() {
        let message = encode_message(&ServerMessage::PlayerGone(PlayerGone { player: 1 }));
        let capacity = 256;
        let mut builder = FrameBuilder::with_capacity(capacity);
        builder.begin(0);
        let base = builder.buf.as_ptr() as usize;
        let end = base + HEADER_LEN + capacity;
        builder.buf.clear();
        for tick in 1..1000 {
            builder.begin(tick);
            builder.push(&message);
            let frame = builder.finish();
            let at = frame.as_ptr() as usize;
            assert!(at >= base && at + frame.len() <= end, "frame {tick} allocated anew");
            assert_eq!(decode_server_frame(&frame).unwrap().frame.tick, tick);
        }
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for frame in [&b""[..], b"\xc1", b"\x91\x81\xa4Move\xa3abc", b"\xdd\xff\xff\xff\xff", b"\x90\x00"] {
            assert!(matches!(decode_client_frame(frame), Err(DecodeError::Malformed(_))), "{frame:?}");
        }
    }

    #[test]
    fn unknown_variant_is_unknown_message() {
        let mut frame = Vec::new();
        rmp::encode::write_array_len(&mut frame, 1).unwrap();
        rmp::encode::write_map_len(&mut frame, 1).unwrap();
        rmp::encode::write_str(&mut frame, "Teleport").unwrap();
        rmp::encode::write_nil(&mut frame).unwrap();
        assert!(matches!(decode_client_frame(&frame), Err(DecodeError::UnknownMessage(_))));
    }

    #[test]
    fn wrong_field_type_is_malformed() {
        let mut frame = Vec::new();
        encode_value(&[serde_json_like_move()], &mut frame);
        assert!(matches!(decode_client_frame(&frame), Err(DecodeError::Malformed(_))));
    }

    /// `{"Move": {"seq": "one", "x": 1, "y": 2}}`
    fn serde_json_like_move()
    -> std::collections::BTreeMap<&'static str, std::collections::BTreeMap<&'static str, &'static str>> {
        [("Move", [("seq", "one"), ("x", "1"), ("y", "2")].into_iter().collect())].into_iter().collect()
    }
}
