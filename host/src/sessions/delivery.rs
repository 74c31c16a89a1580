//! Delivery: the single way frames leave for connections. Each tick the [`Mail`] (messages for
//! one player each, from the area of interest) and then the tick's [`Outbox`] (routed by
//! [`routing::route`]) go into each recipient's one frame of the tick, all of the tick's frames
//! written into one buffer ([`TickFrames`]), each frame handed to its connection's writer
//! thread. Nothing else writes to a connection.
//!
//! Two steps, around the commit. While the commit runs, [`deliver_mail`] notes the mail and
//! sends at once the frames of the players the outbox does not reach this tick: the area of
//! interest's messages tell nothing the store saves (where players are), and most frames of a
//! tick hold nothing else, so they need not wait for the disk. After the commit,
//! [`deliver_outbox`] adds the outbox's messages to the other players' frames (saved before
//! announced), and [`flush_frames`] sends them, after a player's Welcome when it just joined.
//! A player gets one frame a tick either way, its messages in the same order.

use veltrix_sdk::{
    Outbox, PlayerId, Position, StoreHealth, TickInfo,
    bytes::Bytes,
    prelude::*,
    protocol::{FrameBuilder, ServerMessage, encode_message},
    runtime::routing::{self, Recipients},
};

use super::{
    NetLink, Sessions,
    frames::{Pieces, TickFrames},
};
use crate::{
    interest::InterestGrid,
    mail::Mail,
    net::{ConnHandle, ConnId, writers::Writers},
};

/// A player's connection: its queue to the network and its messages of this tick.
#[derive(Component)]
pub struct Connection {
    pub conn: ConnId,
    pub handle: ConnHandle,
    /// This tick's messages, until delivery builds them into a frame.
    pieces: Pieces,
    /// Whether this tick's frame waits for the commit: the outbox has messages for the player.
    after_commit: bool,
    /// This tick's frame, from delivery to the flush.
    frame: Option<Bytes>,
    /// The Welcome's frame, until the commit of the tick the player joined in succeeded.
    welcome: Option<Bytes>,
}

impl Connection {
    /// A new player's connection, its Welcome to be sent after the tick's commit
    /// ([`welcome_frame`]).
    pub fn new(conn: ConnId, handle: ConnHandle, welcome: Bytes) -> Self {
        Self { conn, handle, pieces: Pieces::default(), after_commit: false, frame: None, welcome: Some(welcome) }
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

/// PostTick, while the tick's commit runs, after the interest update and the tick's last
/// message: notes the tick's mail for its players, and sends at once the frames of those the
/// outbox does not reach this tick (stamped with the time they go, in the benchmark build).
/// Those it reaches wait for [`deliver_outbox`]; so do all while the outbox holds messages of a
/// failed commit (the next commit that works adds them to this tick's, for players not looked
/// at here), and a player whose Welcome waits for the commit.
pub fn deliver_mail(
    mail: Res<Mail>,
    outbox: Res<Outbox>,
    mut frames: ResMut<TickFrames>,
    mut writers: ResMut<Writers>,
    online: Online,
    tick: Res<TickInfo>,
    mut conns: Query<&mut Connection>,
) {
    for (to, letter) in mail.sent() {
        if let Ok(mut conn) = conns.get_mut(to) {
            frames.note_mail(&mut conn.pieces, &mail, letter);
        }
    }
    // Whom the outbox reaches after the commit: these players, or fewer (a failed commit holds
    // the tick's messages but its refusals).
    let (mut players, mut bytes) = (0, 0);
    routing::peek(&outbox, &online, |entity, message| {
        if let Ok(mut conn) = conns.get_mut(entity) {
            if !conn.after_commit && conn.pieces.is_empty() {
                players += 1;
            }
            conn.after_commit = true;
            bytes += message.len();
        }
    });
    frames.expect(players, bytes);
    frames.reserve();
    if outbox.holds_unsaved() {
        return;
    }
    let ready_ns = crate::stamp::ready_ns();
    for mut conn in conns.iter_mut() {
        if conn.after_commit || conn.welcome.is_some() || conn.pieces.is_empty() {
            continue;
        }
        let conn = &mut *conn;
        if let Some(frame) = frames.build(&mut conn.pieces, &mail, tick.tick, ready_ns) {
            writers.push(conn.conn, &conn.handle, frame);
        }
    }
    writers.submit();
}

/// PostTick, the delivery stage, after the commit: adds the tick's outgoing messages to their
/// recipients' frames, after the mail [`deliver_mail`] noted, then builds the frames that
/// waited for the commit. A message for many players was encoded once; its bytes are copied
/// into each frame.
pub fn deliver_outbox(
    mut mail: ResMut<Mail>,
    mut outbox: ResMut<Outbox>,
    mut frames: ResMut<TickFrames>,
    online: Online,
    tick: Res<TickInfo>,
    mut conns: Query<&mut Connection>,
    #[cfg(feature = "bench")] stamp: Res<crate::stamp::CommitStamp>,
) {
    routing::route(&mut outbox, &online, |entity, message| {
        if let Ok(mut conn) = conns.get_mut(entity) {
            frames.note_outbox(&mut conn.pieces, message);
        }
    });
    #[cfg(feature = "bench")]
    let committed_ns = stamp.0;
    #[cfg(not(feature = "bench"))]
    let committed_ns = 0;
    frames.reserve();
    for mut conn in conns.iter_mut() {
        conn.after_commit = false;
        if !conn.pieces.is_empty() {
            let conn = &mut *conn;
            conn.frame = frames.build(&mut conn.pieces, &mail, tick.tick, committed_ns);
        }
    }
    frames.clear();
    mail.clear();
}

/// The players online, for [`routing::route`] and [`routing::peek`]: by id from the sessions,
/// near a point from the interest grid.
#[derive(bevy_ecs::system::SystemParam)]
pub struct Online<'w, 's> {
    sessions: Res<'w, Sessions>,
    grid: Res<'w, InterestGrid>,
    positions: Query<'w, 's, &'static Position>,
}

impl Recipients for Online<'_, '_> {
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

/// PostTick, last: hands each client whose frame waited for the commit its frame, after its
/// Welcome when it joined since the last commit that worked (a client still waiting for its
/// Welcome gets nothing while the store cannot be written), to the writer threads as one batch
/// each. A client whose backlog is full is disconnected there (it is not reading). In the
/// benchmark build a Welcome gets the tick's commit stamp here (the tick's frames got it at
/// delivery).
pub fn flush_frames(
    mut conns: Query<&mut Connection>,
    mut writers: ResMut<Writers>,
    link: Res<NetLink>,
    health: Res<StoreHealth>,
    #[cfg(feature = "bench")] stamp: Res<crate::stamp::CommitStamp>,
) {
    for mut conn in conns.iter_mut() {
        let conn = &mut *conn;
        if conn.welcome.is_some() {
            if !health.writable {
                // Not welcomed before its id is saved; nothing else either.
                conn.frame = None;
                continue;
            }
            let welcome = conn.welcome.take().expect("checked above");
            #[cfg(feature = "bench")]
            let welcome = crate::stamp::restamp(welcome, stamp.0);
            writers.push(conn.conn, &conn.handle, welcome);
        }
        let Some(frame) = conn.frame.take() else { continue };
        writers.push(conn.conn, &conn.handle, frame);
    }
    writers.submit();
    link.metrics.outbound_queue_depth_max.set(writers.take_deepest() as i64);
}
