//! Frames that say when their tick was committed: the benchmark build's `committed_ns`
//! (docs/benchmarks.md). Without the `bench` feature these are the plain frame calls and
//! nothing is timed.
//!
//! A tick's frames are begun with room for the stamp (a Welcome's at the join, in PreTick;
//! the others at delivery, after the commit) and stamped in `flush_frames` with the
//! [`CommitStamp`] the tick thread takes once the tick's commit has ended and the areas of
//! interest are updated (`commit::finish_commit`): the moment the tick's messages may go,
//! before any of its output is queued. Frames sent at once outside the tick (handshake errors,
//! refusals) carry the time they were built.

#[cfg(feature = "bench")]
use veltrix_sdk::prelude::*;
use veltrix_sdk::{
    bytes::Bytes,
    protocol::{FrameBuilder, ServerMessage},
};

/// Starts `frame` for `tick`, with room for the `committed_ns` key.
#[cfg(feature = "bench")]
#[inline]
pub fn begin(frame: &mut FrameBuilder, tick: u64) {
    frame.begin_stamped(tick);
}

/// Starts `frame` for `tick`.
#[cfg(not(feature = "bench"))]
#[inline]
pub fn begin(frame: &mut FrameBuilder, tick: u64) {
    frame.begin(tick);
}

/// A frame of one message sent at once, stamped with the time now.
#[cfg(feature = "bench")]
pub fn single(tick: u64, message: &ServerMessage) -> Bytes {
    FrameBuilder::single_stamped(tick, monotonic_ns(), message)
}

/// A frame of one message sent at once.
#[cfg(not(feature = "bench"))]
pub fn single(tick: u64, message: &ServerMessage) -> Bytes {
    FrameBuilder::single(tick, message)
}

/// When this tick's state was committed, in nanoseconds of `CLOCK_MONOTONIC`.
#[cfg(feature = "bench")]
#[derive(Resource, Debug, Default, Clone, Copy)]
pub struct CommitStamp(pub u64);

/// Stamps a frame finished before the tick's commit (a Welcome built at the join).
#[cfg(feature = "bench")]
pub fn restamp(frame: Bytes, committed_ns: u64) -> Bytes {
    // The only handle to the frame: this takes its allocation back without copying.
    let mut frame = veltrix_sdk::bytes::BytesMut::from(frame);
    FrameBuilder::stamp_frame(&mut frame, committed_ns);
    frame.freeze()
}

/// Nanoseconds of `CLOCK_MONOTONIC`, the clock a load generator on the same machine reads
/// with `clock_gettime(CLOCK_MONOTONIC)` (`Instant` reads it too, but does not show it).
#[cfg(feature = "bench")]
pub fn monotonic_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid timespec to write; CLOCK_MONOTONIC exists on every Linux.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) } == 0;
    if !ok {
        return 0;
    }
    (now.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(now.tv_nsec as u64)
}
