//! Delivery: the single way frames leave for connections. Each tick, after the commit, the
//! [`Mail`] (messages for one player each, from the area of interest) and then the tick's
//! [`Outbox`] (routed by [`routing::route`]) go into each recipient's one frame of the tick;
//! at the end of the tick each frame is handed to its connection's queue, after the player's
//! Welcome when it just joined. Nothing else writes to a connection.

use veltrix_sdk::{
    Outbox, PlayerId, Position, StoreHealth, TickInfo,
    bytes::Bytes,
    prelude::*,
    protocol::{FrameBuilder, ServerMessage, encode_message},
    runtime::routing::{self, Recipients},
};

use super::{NetLink, Sessions};
use crate::{
    interest::InterestGrid,
    mail::Mail,
    net::{ConnHandle, ConnId, writers::Writers},
};

/// A player's connection: its queue to the network and the frame being filled this tick.
#[derive(Component)]
pub struct Connection {
    pub conn: ConnId,
    pub handle: ConnHandle,
    frame: FrameBuilder,
    /// The Welcome's frame, until the commit of the tick the player joined in succeeded.
    welcome: Option<Bytes>,
}

impl Connection {
    /// A new player's connection, its Welcome to be sent after the tick's commit
    /// ([`welcome_frame`]).
    pub fn new(conn: ConnId, handle: ConnHandle, welcome: Bytes) -> Self {
        Self { conn, handle, frame: FrameBuilder::with_capacity(0), welcome: Some(welcome) }
    }

    /// Appends an encoded message to this tick's frame.
    fn push(&mut self, tick: u64, message: &[u8]) {
        if self.frame.is_empty() {
            crate::stamp::begin(&mut self.frame, tick);
        }
        self.frame.push(message);
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

/// PostTick, the delivery stage: puts the tick's mail, then its outgoing messages, into their
/// recipients' frames. A message for many players was encoded once; its bytes are copied into
/// each frame.
pub fn deliver_outbox(
    mut mail: ResMut<Mail>,
    mut outbox: ResMut<Outbox>,
    sessions: Res<Sessions>,
    grid: Res<InterestGrid>,
    tick: Res<TickInfo>,
    positions: Query<&'static Position>,
    mut conns: Query<&mut Connection>,
) {
    let mut push = |entity: Entity, bytes: &[u8]| {
        if let Ok(mut conn) = conns.get_mut(entity) {
            conn.push(tick.tick, bytes);
        }
    };
    mail.deliver(&mut push);
    let online = Online { sessions: &sessions, grid: &grid, positions: &positions };
    routing::route(&mut outbox, &online, push);
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
/// Welcome when it joined since the last commit that worked (a client still waiting for its
/// Welcome gets nothing while the store cannot be written), to the writer threads as one batch
/// each. A client whose backlog is full is disconnected there (it is not reading). In the
/// benchmark build every frame gets the tick's commit stamp here.
pub fn flush_frames(
    mut conns: Query<&mut Connection>,
    mut writers: ResMut<Writers>,
    link: Res<NetLink>,
    health: Res<StoreHealth>,
    #[cfg(feature = "bench")] stamp: Res<crate::stamp::CommitStamp>,
) {
    let mut deepest = 0;
    for mut conn in conns.iter_mut() {
        if conn.welcome.is_some() {
            if !health.writable {
                // Not welcomed before its id is saved; nothing else either.
                if !conn.frame.is_empty() {
                    drop(conn.frame.finish());
                }
                continue;
            }
            let welcome = conn.welcome.take().expect("checked above");
            #[cfg(feature = "bench")]
            let welcome = crate::stamp::restamp(welcome, stamp.0);
            writers.push(conn.conn, &conn.handle, welcome);
        }
        if conn.frame.is_empty() {
            continue;
        }
        deepest = deepest.max(conn.handle.queued());
        #[cfg(feature = "bench")]
        conn.frame.stamp(stamp.0);
        let frame = conn.frame.finish();
        writers.push(conn.conn, &conn.handle, frame);
    }
    writers.submit();
    link.metrics.outbound_queue_depth_max.set(deepest as i64);
}
