//! Players in the world: joining and leaving, movement, delivering client messages, and
//! sending each client its frame at the end of the tick.

use std::{
    collections::{BTreeSet, HashMap},
    path::PathBuf,
    sync::{Arc, atomic::Ordering},
};

use tokio::sync::mpsc;
use veltrix_sdk::{
    Audience, Blocked, Changes, JoinChecks, Outbox, Player, PlayerId, Position, Sender, Store, StoreError, StoreHealth,
    TickInfo, Tile, TileWorld,
    bytes::Bytes,
    prelude::*,
    protocol::{
        ClientMessage, CorrectionReason, ErrorCode, FrameBuilder, ModInfo, Move, PROTOCOL_VERSION, PositionCorrected,
        ServerMessage, Welcome, encode_message,
    },
};

use veltrix_sdk::runtime::{
    requests,
    routing::{self, Recipients},
};

use crate::{
    answers::{Answers, Seen},
    interest::{self, Interest},
    metrics::Metrics,
    net::{ConnHandle, ConnId, JoinRequest, NetEvent, QueueError},
};

/// The tick thread's end of the network.
#[derive(Resource)]
pub struct NetLink {
    pub events: mpsc::Receiver<NetEvent>,
    pub current_tick: Arc<std::sync::atomic::AtomicU64>,
    pub metrics: Arc<Metrics>,
}

/// The rules sessions follow, from the config.
#[derive(Resource, Debug, Clone)]
pub struct SessionRules {
    pub server_name: String,
    pub max_players: u32,
    pub spawn: Position,
    pub spawn_radius: f32,
    pub max_speed: f32,
}

impl SessionRules {
    /// Where player `id` appears: a point within `spawn_radius` of the spawn picked from the
    /// id (the same every time), on a walkable tile; the spawn itself when none is found.
    pub fn spawn_point(&self, id: PlayerId, tiles: &TileWorld) -> Position {
        if self.spawn_radius <= 0.0 {
            return self.spawn;
        }
        let mut state = id;
        for _ in 0..8 {
            let a = splitmix64(&mut state);
            let angle = (a >> 32) as f32 / u32::MAX as f32 * std::f32::consts::TAU;
            // sqrt: uniform over the disc, not bunched at the centre.
            let r = ((a & 0xffff_ffff) as f32 / u32::MAX as f32).sqrt() * self.spawn_radius;
            let (x, y) = (self.spawn.x + r * angle.cos(), self.spawn.y + r * angle.sin());
            if tiles.walkable(x, y) {
                return Position { x, y };
            }
        }
        self.spawn
    }
}

/// splitmix64: the next value of a sequence seeded by `state`.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    crate::world::mix64(*state)
}

/// The loaded mods as Welcome lists them.
#[derive(Resource, Debug, Clone, Default)]
pub struct ModCatalog(pub Vec<ModInfo>);

/// Who is online, by connection, id and name; and the ids given out so far.
#[derive(Resource, Default)]
pub struct Sessions {
    by_conn: HashMap<ConnId, Entity>,
    by_id: HashMap<PlayerId, Entity>,
    /// Lowercased name to id: who is online by name goes through `by_id`.
    ids: HashMap<String, PlayerId>,
    next_id: PlayerId,
    /// Connections that ended this tick, removed in PostTick ([`remove_departed`]): what they
    /// sent before ending is applied in this tick's systems, with its sender still there.
    departed: Vec<(Entity, &'static str)>,
}

impl Sessions {
    pub fn entity(&self, id: PlayerId) -> Option<Entity> {
        self.by_id.get(&id).copied()
    }

    /// The online player of this name (any case).
    pub fn by_name(&self, name: &str) -> Option<Entity> {
        self.ids.get(&name.to_lowercase()).and_then(|id| self.entity(*id))
    }

    pub fn online(&self) -> usize {
        self.by_id.len()
    }

    /// The id of a name, whatever its case: the same every time, across restarts (a new name's
    /// id is written to the store with the tick).
    fn id_for(&mut self, name: &str, changes: &mut Changes) -> PlayerId {
        let key = name.to_lowercase();
        if let Some(id) = self.ids.get(&key) {
            return *id;
        }
        self.next_id += 1;
        changes.put(&PLAYER_IDS.into(), &key, &self.next_id);
        self.ids.insert(key, self.next_id);
        self.next_id
    }

    /// The ids handed out before, from the store.
    pub fn load(&mut self, store: &Store) -> Result<(), StoreError> {
        let ids = store.load::<String, PlayerId>(PLAYER_IDS)?;
        self.ids.reserve(ids.len());
        for (name, id) in ids {
            self.next_id = self.next_id.max(id);
            self.ids.insert(name, id);
        }
        Ok(())
    }
}

/// The store's table of player ids: lowercase name to id.
pub const PLAYER_IDS: &str = "veltrix/player-ids";

/// The store's table of where players left: id to (x, y).
pub const POSITIONS: &str = "veltrix/positions";

/// Where a player was when it last left, from the store.
fn last_position(world: &World, id: PlayerId) -> Option<Position> {
    let store = world.get_resource::<Store>()?;
    let key = veltrix_sdk::rmp_serde::to_vec(&id).expect("ids serialise");
    let bytes = store.0.get(POSITIONS, &key).ok()??;
    let (x, y): (f32, f32) = veltrix_sdk::rmp_serde::from_slice(&bytes).ok()?;
    Some(Position { x, y })
}

/// Banned names (lowercase), kept in `bans.json` in the server root.
#[derive(Resource, Debug, Default)]
pub struct Bans {
    pub names: BTreeSet<String>,
    pub path: PathBuf,
}

impl Bans {
    pub fn load(path: PathBuf) -> Result<Self, String> {
        let names = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str::<BTreeSet<String>>(&text)
                .map_err(|e| {
                    format!(
                        "{}: line {}, column {}: expected a list of names ({e})",
                        path.display(),
                        e.line(),
                        e.column()
                    )
                })?
                .into_iter()
                .map(|n| n.to_lowercase())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
            Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
        };
        Ok(Self { names, path })
    }

    pub fn save(&self) -> Result<(), String> {
        let text = serde_json::to_string_pretty(&self.names).expect("names serialise");
        std::fs::write(&self.path, text + "\n").map_err(|e| format!("{}: cannot write: {e}", self.path.display()))
    }
}

/// A player's connection: its queue to the network and the frame being filled this tick.
#[derive(Component)]
pub struct Connection {
    pub conn: ConnId,
    pub handle: ConnHandle,
    frame: FrameBuilder,
    /// The Welcome's frame, until the commit of the tick the player joined in succeeded.
    welcome: Option<Bytes>,
    /// Tiles the player may still move (refilled at MaxSpeed, up to one second's worth).
    move_budget: f32,
    budget_tick: u64,
}

impl Connection {
    /// Appends an encoded message to this tick's frame.
    pub fn push(&mut self, tick: u64, message: &[u8]) {
        if self.frame.is_empty() {
            crate::stamp::begin(&mut self.frame, tick);
        }
        self.frame.push(message);
    }
}

/// PreTick: takes what the network received and applies it: joins, leaves, moves, mod
/// messages, commands.
pub fn receive_network(world: &mut World) {
    let tick = world.resource::<TickInfo>().tick;
    world.resource_scope(|world, mut link: Mut<NetLink>| {
        link.current_tick.store(tick, Ordering::Relaxed);
        link.metrics.inbound_queue_depth.set(link.events.len() as i64);
        while let Ok(event) = link.events.try_recv() {
            match event {
                NetEvent::Join(request) => join(world, request),
                NetEvent::Messages { conn, messages } => {
                    let Some(entity) = world.resource::<Sessions>().by_conn.get(&conn).copied() else { continue };
                    for message in messages {
                        apply(world, entity, message);
                    }
                }
                NetEvent::Left { conn, reason } => {
                    let mut sessions = world.resource_mut::<Sessions>();
                    if let Some(entity) = sessions.by_conn.get(&conn).copied() {
                        sessions.departed.push((entity, reason));
                    }
                }
            }
        }
    });
}

fn join(world: &mut World, request: JoinRequest) {
    let JoinRequest { conn, name, authenticated, addr, handle } = request;
    let key = name.to_lowercase();
    if world.resource::<Bans>().names.contains(&key) {
        handle.close(ErrorCode::Banned, "you are banned from this server");
        return;
    }
    if let Some(existing) = world.resource::<Sessions>().by_name(&name) {
        if !authenticated {
            handle.close(ErrorCode::NameTaken, format!("a player named {name} is online"));
            return;
        }
        if let Some(old) = world.get::<Connection>(existing) {
            old.handle.close(ErrorCode::Replaced, "you logged in from somewhere else");
        }
        remove_player(world, existing, "replaced");
    }
    let rules = world.resource::<SessionRules>().clone();
    if world.resource::<Sessions>().online() >= rules.max_players as usize {
        handle.close(ErrorCode::ServerFull, format!("the server is full ({} players)", rules.max_players));
        return;
    }
    let tick = world.resource::<TickInfo>();
    let (tick, rate) = (tick.tick, tick.rate);
    let id = world.resource_scope(|world, mut changes: Mut<Changes>| {
        world.resource_mut::<Sessions>().id_for(&name, &mut changes)
    });
    // A player whose saved state a mod cannot read stays out: let in, it would start with
    // nothing, saved over what could not be read.
    let player = Player { id, name: name.clone() };
    let failed = crate::panics::catch(|| JoinChecks::first_failed(world, &player))
        .unwrap_or_else(|panic| Some(("a mod".into(), format!("its join check panicked: {panic}"))));
    if let Some((by, why)) = failed {
        tracing::error!(
            "player {name} (id {id}) refused: {by} cannot read its saved state: {why}. It is kept as it is: run \
             `veltrix-server check` with the server stopped, and see \"When something goes wrong\" in docs/storage.md"
        );
        handle.close(
            ErrorCode::SavedStateUnreadable,
            "your saved state cannot be read; it is kept as it is and the server's operator is told: try again once \
             it is repaired",
        );
        return;
    }
    // Where the player left off, if that is still walkable ground; else its spawn point.
    let spawn = last_position(world, id)
        .filter(|p| world.resource::<TileWorld>().walkable(p.x, p.y))
        .unwrap_or_else(|| rules.spawn_point(id, world.resource::<TileWorld>()));
    let welcome = ServerMessage::Welcome(Welcome {
        player: id,
        protocol: PROTOCOL_VERSION,
        server_name: rules.server_name.clone(),
        tick_rate: rate,
        tick,
        x: spawn.x,
        y: spawn.y,
        mods: world.resource::<ModCatalog>().0.clone(),
    });
    // Sent after the tick's commit, like everything else: a new name's id is saved first.
    let welcome = Some(welcome_frame(tick, &welcome));
    let entity = world
        .spawn((
            player,
            spawn,
            Connection {
                conn,
                handle,
                frame: FrameBuilder::with_capacity(0),
                welcome,
                move_budget: rules.max_speed,
                budget_tick: tick,
            },
            Interest::default(),
        ))
        .id();
    let mut sessions = world.resource_mut::<Sessions>();
    sessions.by_conn.insert(conn, entity);
    sessions.by_id.insert(id, entity);
    tracing::info!("player {name} (id {id}) joined from {addr}");
}

/// The frame of a Welcome: built at the join, sent after the tick's commit (stamped then, in
/// the benchmark build).
fn welcome_frame(tick: u64, welcome: &ServerMessage) -> Bytes {
    let mut frame = FrameBuilder::with_capacity(64);
    crate::stamp::begin(&mut frame, tick);
    frame.push(&encode_message(welcome));
    frame.finish()
}

/// PostTick, first: removes the players whose connection ended this tick, after the systems
/// that applied what they sent (a dig that came just before the end is applied and its answer
/// recorded for a repeat on the next connection). Until then the name stays online: a join
/// under it in the same tick is refused (`NameTaken`) and the client tries again. Then the
/// `players_online` gauge, after the tick's joins and departures.
pub fn remove_departed(world: &mut World) {
    let mut departed = std::mem::take(&mut world.resource_mut::<Sessions>().departed);
    for (entity, reason) in departed.drain(..) {
        remove_player(world, entity, reason);
    }
    // The emptied list goes back: its room is kept for the next tick's departures.
    world.resource_mut::<Sessions>().departed = departed;
    if let Some(link) = world.get_resource::<NetLink>() {
        link.metrics.players_online.set(world.resource::<Sessions>().online() as i64);
    }
}

/// Removes a player from the world: others stop seeing it, where it stands is saved (with the
/// tick) for its next join, its entity goes.
pub fn remove_player(world: &mut World, entity: Entity, reason: &str) {
    let Some(player) = world.get::<Player>(entity).cloned() else { return };
    interest::forget(world, entity, player.id);
    let conn = world.get::<Connection>(entity).map(|c| c.conn);
    if let Some(at) = world.get::<Position>(entity).copied() {
        world.resource_mut::<Changes>().put(&POSITIONS.into(), &player.id, &(at.x, at.y));
    }
    let mut sessions = world.resource_mut::<Sessions>();
    if let Some(conn) = conn {
        sessions.by_conn.remove(&conn);
    }
    sessions.by_id.remove(&player.id);
    world.resource_mut::<Answers>().forget(player.id);
    world.despawn(entity);
    tracing::info!("player {} left ({reason})", player.name);
}

fn apply(world: &mut World, entity: Entity, message: ClientMessage) {
    let Some(player) = world.get::<Player>(entity).map(|p| p.id) else { return };
    match message {
        ClientMessage::Hello(_) => requests::refuse(
            world,
            player,
            ErrorCode::HandshakeRequired,
            "already joined: Hello comes once".into(),
            None,
        ),
        ClientMessage::Move(mv) => apply_move(world, entity, player, mv),
        ClientMessage::Mod(m) => {
            if let Some(request) = m.request
                && !first_time(world, player, request)
            {
                return;
            }
            requests::deliver_mod_message(world, Sender { entity, player, request: m.request }, &m);
        }
        ClientMessage::Command(c) => {
            if first_time(world, player, c.request) {
                requests::answer_command(world, entity, player, &c);
            }
        }
    }
}

/// Whether a request is new; a repeat is answered again from what it got the first time (or
/// waits for its answer, when it came in this very tick) and is not applied.
fn first_time(world: &mut World, player: PlayerId, request: u32) -> bool {
    let store = world.get_resource::<Store>().cloned();
    match world.resource_mut::<Answers>().check(store.as_ref(), player, request) {
        Seen::New => true,
        Seen::InFlight => false,
        Seen::Answered(answers) => {
            let mut outbox = world.resource_mut::<Outbox>();
            for answer in answers {
                outbox.send_saved(Audience::Player(player), answer);
            }
            false
        }
    }
}

/// Server-authoritative movement: a move whose target is outside the world, farther than the
/// player's budget (MaxSpeed over the time since, up to one second's worth), or whose straight
/// line from where the player is touches a tile that is not walkable (its target's included),
/// is refused with the authoritative position and the first of these reasons. So a move of more
/// than one tile cannot hop over rock or water, nor squeeze between two such tiles touching at a
/// corner.
fn apply_move(world: &mut World, entity: Entity, player: PlayerId, mv: Move) {
    let info = *world.resource::<TickInfo>();
    // A mod's SpeedFactor (an effect) scales the speed, the refill and the one-second cap alike.
    let max_speed = world.resource::<SessionRules>().max_speed * SpeedFactor::effective(world.get(entity));
    let Some(current) = world.get::<Position>(entity).copied() else { return };
    let Some(conn) = world.get::<Connection>(entity) else { return };
    let budget = refilled_budget(conn.move_budget, info.tick - conn.budget_tick, info.dt, max_speed);
    let distance = current.distance_squared(mv.x, mv.y).sqrt();
    let refused = move_refusal(world.resource::<TileWorld>(), current, &mv, distance <= budget + 1e-3);
    let Some(mut conn) = world.get_mut::<Connection>(entity) else { return };
    conn.budget_tick = info.tick;
    conn.move_budget = if refused.is_none() { (budget - distance).max(0.0) } else { budget };
    match refused {
        None if distance > 0.0 => {
            world.entity_mut(entity).insert(Position { x: mv.x, y: mv.y });
        }
        None => {}
        Some(reason) => {
            let correction = PositionCorrected { seq: mv.seq, x: current.x, y: current.y, reason };
            world
                .resource_mut::<Outbox>()
                .send_message(Audience::Player(player), &ServerMessage::PositionCorrected(correction));
        }
    }
}

/// Why a move from `from` is refused, if it is; checked in this order (docs/protocol.md,
/// "Movement"): the target, the speed, then the line. The speed comes before the line, so a
/// line longer than a second's worth of movement is never walked.
fn move_refusal(tiles: &TileWorld, from: Position, to: &Move, within_budget: bool) -> Option<CorrectionReason> {
    if tiles.at(to.x, to.y).is_none() {
        return Some(CorrectionReason::Bounds);
    }
    if !within_budget {
        return Some(CorrectionReason::Speed);
    }
    Some(match tiles.segment_blocked(from.x, from.y, to.x, to.y)? {
        Blocked::Outside => CorrectionReason::Bounds,
        Blocked::Tile(Tile::Water) => CorrectionReason::Water,
        Blocked::Tile(Tile::Rock | Tile::Ground) => CorrectionReason::Wall,
    })
}

/// A move budget after `ticks` ticks of `dt` at `max_speed` tiles per second: refilled, up to
/// one second's worth.
fn refilled_budget(budget: f32, ticks: u64, dt: std::time::Duration, max_speed: f32) -> f32 {
    (budget + ticks as f32 * dt.as_secs_f32() * max_speed).min(max_speed)
}

/// PostTick: puts the tick's outgoing messages into their recipients' frames. A message for
/// many players was encoded once; its bytes are copied into each frame.
pub fn deliver_outbox(
    mut outbox: ResMut<Outbox>,
    sessions: Res<Sessions>,
    grid: Res<interest::InterestGrid>,
    tick: Res<TickInfo>,
    positions: Query<&'static Position>,
    mut conns: Query<&mut Connection>,
) {
    let online = Online { sessions: &sessions, grid: &grid, positions: &positions };
    routing::route(&mut outbox, &online, |entity, bytes| {
        if let Ok(mut conn) = conns.get_mut(entity) {
            conn.push(tick.tick, bytes);
        }
    });
}

/// The players online, for [`routing::route`]: by id from the sessions, near a point from the
/// interest grid.
struct Online<'a, 'w, 's> {
    sessions: &'a Sessions,
    grid: &'a interest::InterestGrid,
    positions: &'a Query<'w, 's, &'static Position>,
}

impl Recipients for Online<'_, '_, '_> {
    fn player(&self, id: PlayerId) -> Option<Entity> {
        self.sessions.entity(id)
    }

    fn near(&self, x: f32, y: f32, radius: f32, f: &mut dyn FnMut(Entity)) {
        self.grid.for_each_near(x, y, radius, f);
    }

    fn all(&self, f: &mut dyn FnMut(Entity)) {
        self.sessions.by_id.values().for_each(|&entity| f(entity));
    }

    fn position(&self, entity: Entity) -> Option<Position> {
        self.positions.get(entity).ok().copied()
    }
}

/// PostTick, last: sends each client with something new its one frame of the tick, after
/// its Welcome when it joined since the last commit that worked (a client still waiting for
/// its Welcome gets nothing while the store cannot be written). A client whose queue is full
/// is disconnected (it is not reading). In the benchmark build every frame gets the tick's
/// commit stamp here.
pub fn flush_frames(
    mut conns: Query<&mut Connection>,
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
            if conn.handle.send(welcome).is_err() {
                continue;
            }
        }
        if conn.frame.is_empty() {
            continue;
        }
        // Read only where a frame goes: reading a queue's length takes its lock.
        deepest = deepest.max(conn.handle.queued());
        #[cfg(feature = "bench")]
        conn.frame.stamp(stamp.0);
        let frame = conn.frame.finish();
        if conn.handle.send(frame) == Err(QueueError::Full) {
            conn.handle.close(ErrorCode::SlowConsumer, "you are not reading your frames fast enough");
        }
    }
    link.metrics.outbound_queue_depth_max.set(deepest as i64);
}

/// At shutdown: tells every client and closes its connection; their positions go with the
/// last commit.
pub fn close_all(world: &mut World) {
    let mut players = world.query::<(&Player, &Position, &Connection)>();
    let mut positions = Vec::new();
    for (player, at, conn) in players.iter(world) {
        conn.handle.close(ErrorCode::ServerStopping, "the server is stopping");
        positions.push((player.id, (at.x, at.y)));
    }
    let table = POSITIONS.into();
    let mut changes = world.resource_mut::<Changes>();
    for (id, at) in positions {
        changes.put(&table, &id, &at);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Each refusal names its reason, the target first, then the speed, then the first tile in
    /// the way.
    #[test]
    fn a_refused_move_says_why() {
        let mut tiles = TileWorld::flat(8, 8);
        tiles.set(3, 1, Tile::Rock);
        tiles.set(5, 1, Tile::Water);
        let from = Position { x: 1.5, y: 1.5 };
        let refusal = |x, y, within_budget| move_refusal(&tiles, from, &Move { seq: 1, x, y }, within_budget);
        assert_eq!(refusal(2.5, 1.5, true), None);
        assert_eq!(refusal(9.5, 1.5, false), Some(CorrectionReason::Bounds), "outside, and too far");
        assert_eq!(refusal(f32::NAN, 1.5, true), Some(CorrectionReason::Bounds));
        assert_eq!(refusal(6.5, 1.5, false), Some(CorrectionReason::Speed), "too far, and over rock");
        assert_eq!(refusal(6.5, 1.5, true), Some(CorrectionReason::Wall), "the rock comes before the water");
        assert_eq!(refusal(5.5, 1.5, true), Some(CorrectionReason::Wall));
        assert_eq!(refusal(1.5, 5.5, true), None);
        let from = Position { x: 6.5, y: 1.5 };
        assert_eq!(move_refusal(&tiles, from, &Move { seq: 1, x: 4.5, y: 1.5 }, true), Some(CorrectionReason::Water));
    }

    /// A SpeedFactor of 2 doubles what a second of ticks refills and what the budget holds;
    /// 0.5 halves both; a factor that is not a number above 0 changes nothing.
    #[test]
    fn speed_factor_scales_the_move_budget() {
        let dt = Duration::from_secs(1) / 20;
        let max = 5.0;
        assert_eq!(refilled_budget(0.0, 10, dt, max), 2.5);
        assert_eq!(refilled_budget(0.0, 100, dt, max), 5.0, "one second's worth at most");
        let fast = max * SpeedFactor::effective(Some(&SpeedFactor(2.0)));
        assert_eq!(refilled_budget(0.0, 10, dt, fast), 5.0);
        assert_eq!(refilled_budget(0.0, 100, dt, fast), 10.0);
        let slow = max * SpeedFactor::effective(Some(&SpeedFactor(0.5)));
        assert_eq!(refilled_budget(0.0, 100, dt, slow), 2.5);
        for bad in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            assert_eq!(SpeedFactor::effective(Some(&SpeedFactor(bad))), 1.0, "{bad}");
        }
        assert_eq!(SpeedFactor::effective(None), 1.0);
    }
}
