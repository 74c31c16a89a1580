//! Delivery: the single way frames leave for connections. Each tick, after the commit, the
//! [`Mail`] (messages for one player each, from the area of interest) and then the tick's
//! [`Outbox`] (routed by [`routing::route`]) go into each recipient's one frame of the tick,
//! all of the tick's frames written into one buffer ([`TickFrames`]); at the end of the tick
//! each frame is handed to its connection's queue, after the player's Welcome when it just
//! joined. Nothing else writes to a connection.

use std::collections::VecDeque;

use veltrix_sdk::{
    Outbox, PlayerId, Position, StoreHealth, TickInfo,
    bytes::Bytes,
    prelude::*,
    protocol::{FrameBuilder, ServerMessage, encode_message},
    runtime::routing::{self, Recipients},
};

use super::{
    NetLink, Sessions,
    frames::{TakenFrame, TickFrames},
};
use crate::{
    interest::InterestGrid,
    mail::Mail,
    net::{
        ConnHandle, ConnId,
        writers::{Frame, Span, Writers},
    },
};

/// A player's connection: its queue to the network, and its Welcome and the frames held behind
/// it until they go. (Its messages and frame of the tick are in [`TickFrames`].)
#[derive(Component)]
pub struct Connection {
    pub conn: ConnId,
    pub handle: ConnHandle,
    /// The Welcome's frame, until the commit of the tick the player joined in succeeded.
    welcome: Option<Bytes>,
    /// The frames of the ticks since the join, while the Welcome waits (the store cannot be
    /// written): sent after it, in order, at most [`MAX_HELD_FRAMES`], then
    /// [`HELD_FRAMES_PER_TICK`] a tick ahead of the tick's own frame. Boxed: nearly every
    /// connection never holds one, and a player's memory is a target.
    #[expect(clippy::box_collection, reason = "8 bytes a connection instead of 32, for the rare one that holds")]
    held: Option<Box<VecDeque<Bytes>>>,
}

/// The connections with a Welcome or held frames to send, in the order they joined: the flush
/// looks at these and at the tick's recipients ([`TickFrames::hand_out`]), not at every
/// connection.
#[derive(Resource, Debug, Default)]
pub struct Welcoming(pub(crate) Vec<Entity>);

/// Frames held behind a Welcome that cannot be sent (the store cannot be written) before the
/// client is let go as one that fell behind: half a minute of ticks at the default rate.
pub const MAX_HELD_FRAMES: usize = 1024;

/// Held frames handed to the writers a tick once the Welcome is sent: a quarter of the
/// default `Network.MaxQueuedFrames`, so that a client that reads is never cut off as slow
/// because a long wait's frames all came at once.
const HELD_FRAMES_PER_TICK: usize = 16;

impl Connection {
    /// A new player's connection, its Welcome to be sent after the tick's commit
    /// ([`welcome_frame`]).
    pub fn new(conn: ConnId, handle: ConnHandle, welcome: Bytes) -> Self {
        Self { conn, handle, welcome: Some(welcome), held: None }
    }
}

/// The frame of a Welcome: built at the join, sent after the tick's commit (stamped then, in
/// the benchmark build).
pub fn welcome_frame(tick: u64, welcome: &ServerMessage) -> Bytes {
    let mut frame = FrameBuilder::with_capacity(64);
    crate::stamp::begin(&mut frame, tick);
    frame.push(&encode_message(welcome));
    frame.finish()
}

/// PostTick, the delivery stage: notes the tick's mail, then its outgoing messages, for their
/// recipients, then builds each recipient's frame. A message for many players was encoded
/// once; its bytes are copied into each frame. Costs the messages and their recipients: no
/// player's components are visited (what a recipient gets is noted in [`TickFrames`], by its
/// entity), and players with nothing this tick are not visited.
#[allow(clippy::too_many_arguments)]
pub fn deliver_outbox(
    mut mail: ResMut<Mail>,
    mut outbox: ResMut<Outbox>,
    mut frames: ResMut<TickFrames>,
    sessions: Res<Sessions>,
    grid: Res<InterestGrid>,
    tick: Res<TickInfo>,
    positions: Query<&'static Position>,
    #[cfg(feature = "bench")] stamp: Res<crate::stamp::CommitStamp>,
) {
    for (to, run) in mail.runs() {
        frames.note_mail(to, &mail, run);
    }
    let online = Online { sessions: &sessions, grid: &grid, positions: &positions };
    routing::route(&mut outbox, &online, |entity, message| frames.note_outbox(entity, message));
    #[cfg(feature = "bench")]
    let committed_ns = stamp.0;
    #[cfg(not(feature = "bench"))]
    let committed_ns = 0;
    frames.build(&mail, tick.tick, committed_ns);
    mail.clear();
}

/// The players online, for [`routing::route`]: by id from the sessions, near a point from the
/// interest grid.
struct Online<'a, 'w, 's> {
    sessions: &'a Sessions,
    grid: &'a InterestGrid,
    positions: &'a Query<'w, 's, &'static Position>,
}

impl Recipients for Online<'_, '_, '_> {
    fn player(&self, id: PlayerId) -> Option<Entity> {
        self.sessions.entity(id)
    }

    fn near(&self, x: f32, y: f32, radius: f32, f: &mut dyn FnMut(Entity)) {
        self.grid.for_each_near(x, y, radius, f);
    }

    /// Every joined player: each has a connection (a player is in `by_id` from its join to its
    /// removal, with its `Connection` all along).
    fn all(&self, f: &mut dyn FnMut(Entity)) {
        self.sessions.by_id.values().for_each(|&entity| f(entity));
    }

    fn position(&self, entity: Entity) -> Option<Position> {
        self.positions.get(entity).ok().copied()
    }
}

/// PostTick, last: hands each client with something new its one frame of the tick, after its
/// Welcome when it joined since the last commit that worked, to the writer threads as one batch
/// each. While the store cannot be written a client waiting for its Welcome gets nothing: its
/// frames wait behind the Welcome and follow it in order once a commit works. The frames with
/// the outbox's messages, and Welcomes, go first in each batch: a player's answer or a hunt's
/// event is not queued behind the many frames that tell only where others are (told at the
/// state-update rate, they wait for it anyway). A client whose backlog is full is disconnected
/// there (it is not reading). In the benchmark build a Welcome gets the tick's commit stamp
/// here (the tick's frames got it at delivery). Visits the connections waiting for their
/// Welcome to go, then the tick's recipients: not every connection.
#[allow(clippy::too_many_arguments)]
pub fn flush_frames(
    mut conns: Query<&mut Connection>,
    mut frames: ResMut<TickFrames>,
    mut welcoming: ResMut<Welcoming>,
    mut writers: ResMut<Writers>,
    link: Res<NetLink>,
    health: Res<StoreHealth>,
    #[cfg(feature = "bench")] stamp: Res<crate::stamp::CommitStamp>,
) {
    let tick_frames = frames.take();
    // First: a connection's frames of a tick all go one way (first or not), after its Welcome.
    welcoming.0.retain(|&entity| {
        let frame = frames.take_frame(entity).map(|taken| taken.frame);
        let Ok(mut conn) = conns.get_mut(entity) else { return false };
        flush_welcoming(
            (&mut conn, frame),
            (&mut writers, &tick_frames),
            health.writable,
            #[cfg(feature = "bench")]
            stamp.0,
        );
        conn.welcome.is_some() || conn.held.is_some()
    });
    // The others (those above are taken already), each with its connection from the
    // recipient's part: no component of it is read.
    frames.hand_out(|TakenFrame { conn, frame, news }| match news {
        true => writers.push_first(conn, Frame::InTick(frame)),
        false => writers.push(conn, Frame::InTick(frame)),
    });
    writers.submit(&tick_frames);
    link.metrics.outbound_queue_depth_max.set(writers.deepest() as i64);
}

/// [`flush_frames`] for a connection with a Welcome or held frames: its Welcome once the store
/// can be written (else the tick's frame is held behind it, and a client that waited too long
/// is let go), then what it held, [`HELD_FRAMES_PER_TICK`] a tick, then the tick's frame.
fn flush_welcoming(
    (conn, mut frame): (&mut Connection, Option<Span>),
    (writers, tick_frames): (&mut Writers, &Bytes),
    writable: bool,
    #[cfg(feature = "bench")] committed_ns: u64,
) {
    // A frame held is copied out of the tick's frames, which it must not keep from the ticks
    // after (a rare wait: the store cannot be written).
    let own = |frame: Span| Bytes::copy_from_slice(frame.of(tick_frames));
    if conn.welcome.is_some() && !writable {
        // Not welcomed before its id is saved; what it is told meanwhile waits.
        if let Some(frame) = frame {
            conn.held.get_or_insert_default().push_back(own(frame));
        }
        if conn.held.as_ref().is_some_and(|held| held.len() > MAX_HELD_FRAMES) {
            let why = format!(
                "more than {MAX_HELD_FRAMES} frames waited behind your Welcome while the server could not save; join again"
            );
            conn.handle.close(veltrix_sdk::protocol::ErrorCode::SlowConsumer, why);
            conn.held = None;
        }
        return;
    }
    let mut push = |frame| writers.push_first(conn.conn, frame);
    if let Some(welcome) = conn.welcome.take() {
        #[cfg(feature = "bench")]
        let welcome = crate::stamp::restamp(welcome, committed_ns);
        push(Frame::Own(welcome));
    }
    if let Some(held) = conn.held.as_mut() {
        let now = held.len().min(HELD_FRAMES_PER_TICK);
        held.drain(..now).for_each(|frame| push(Frame::Own(frame)));
        if !held.is_empty() {
            // The tick's own frame waits its turn behind them.
            if let Some(frame) = frame.take() {
                held.push_back(own(frame));
            }
            return;
        }
        conn.held = None;
    }
    let Some(frame) = frame else { return };
    push(Frame::InTick(frame));
}
