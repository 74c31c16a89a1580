//! Where the players of every shard are, so players near each other on different shards see
//! each other, on plain NATS subjects (no JetStream: a lost position is replaced by the next):
//!
//! - `veltrix.<bucket>.players`, who is online: the names of the players that joined or left a
//!   shard in a tick, and once a second all of its players (its roster). Every shard hears every
//!   other: one session per name across them, and `MinPlayers` counts them all.
//! - `veltrix.<bucket>.moves.<ax>.<ay>`, one subject per area of [`AREA_CELLS`] x [`AREA_CELLS`]
//!   interest cells: a shard's players in that area that moved in a tick (one that crossed into
//!   another area on the subjects of both), those that left from it, and once a second all of
//!   them. A shard follows the areas around its own players (those that hold the 3 x 3 interest
//!   cells around each, which hold everyone they may see): traffic follows who is near whom, and
//!   a shard hears nothing of the parts of the world where it has no player.
//!
//! Every shard keeps the players of the others in the areas it follows as [`RemotePlayer`]
//! entities: in the interest grid and in views like its own, so its players are told of them as
//! of anyone (PlayerAppeared, PlayerMoved at the state-update rate, PlayerGone), and told nothing
//! themselves. An area followed anew shows who stands in it at the next once-a-second refresh.
//!
//! A remote player is gone when its shard says so, when its shard's roster no longer names it,
//! when it is in an area this shard no longer follows, or when its shard has sent nothing for
//! [`SILENT_SECONDS`] (the shard died or is cut off).

use std::collections::{HashMap, HashSet};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use veltrix_sdk::{Player, Position, TickInfo, prelude::*};

use crate::interest::{Interest, InterestGrid, RemotePlayer};

/// A shard silent this long (no roster, no move) has its players taken out of view.
const SILENT_SECONDS: u64 = 3;

/// An area: (column, row) of [`AREA_CELLS`] x [`AREA_CELLS`] interest cells.
type Area = (i32, i32);

/// An area's width in interest cells. One subject per interest cell made a message per cell
/// with movers each tick: with the players of every shard all over the world, 4,000 over 3
/// shards, that cost the servers a fifth more CPU than one subject for all (docs/benchmarks.md,
/// "Moves by area"). Areas of 8 x 8 cells (288 tiles at the default radius) keep that count
/// small and still leave a shard deaf to the parts of a big world where it has no player.
pub const AREA_CELLS: i32 = 8;

/// Who is online on a shard, on the players subject.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Roster {
    shard: u64,
    /// Whether `joined` names every player of the shard (its roster), not only those that joined.
    all: bool,
    joined: Vec<String>,
    /// Names of players that left.
    gone: Vec<String>,
}

/// A shard's players in one area, on the area's subject.
#[derive(Debug, Default, Serialize, Deserialize)]
struct AreaMoves {
    shard: u64,
    /// Name, x, y (a player that crossed into another area: where it is now, outside this one).
    at: Vec<(String, f32, f32)>,
    /// Names of players that left from this area.
    gone: Vec<String>,
}

/// What the tick hands the relay's task.
enum Outgoing {
    Roster(Roster),
    Area(Area, AreaMoves),
    Follow(Area),
    Unfollow(Area),
}

/// What the relay's task hands the tick.
enum Incoming {
    Roster(Roster),
    Area(AreaMoves),
}

/// The tick's ends of the relay.
#[derive(Resource)]
pub struct RelayLink {
    shard: u64,
    /// Ticks between rosters (one a second).
    roster_every: u64,
    out: flume::Sender<Outgoing>,
    incoming: flume::Receiver<Incoming>,
    /// The other shards' players online, by lower-cased name: the shard that last told of each.
    online: HashMap<String, u64>,
    /// Those of them in the areas this shard follows, by lower-cased name: their shard and entity.
    remote: HashMap<String, (u64, Entity)>,
    /// The tick each other shard was last heard from (a roster comes every second, so a live
    /// shard is never silent longer; one that died before its first roster reached this one is
    /// silent all the same).
    heard: HashMap<u64, u64>,
    /// The areas whose subjects this shard follows.
    followed: HashSet<Area>,
}

/// The tasks' ends of the relay's channels, for [`run`].
pub struct RelayTasks {
    /// `veltrix.<bucket>`.
    prefix: String,
    out: flume::Receiver<Outgoing>,
    incoming: flume::Sender<Incoming>,
}

/// Inserts the relay of shard number `shard` in `world`; its tasks start once NATS is reached.
pub fn insert(world: &mut World, shard: u64, tick_rate: u32, bucket: &str) -> RelayTasks {
    let (out_tx, out_rx) = flume::unbounded();
    let (in_tx, in_rx) = flume::unbounded();
    world.init_resource::<veltrix_sdk::PlayersOnOtherServers>();
    world.insert_resource(RelayLink {
        shard,
        roster_every: u64::from(tick_rate.max(1)),
        out: out_tx,
        incoming: in_rx,
        online: HashMap::new(),
        remote: HashMap::new(),
        heard: HashMap::new(),
        followed: HashSet::new(),
    });
    RelayTasks { prefix: format!("veltrix.{bucket}"), out: out_rx, incoming: in_tx }
}

impl RelayLink {
    /// `name` (lower-cased) is no longer online, if shard `shard` is the last that told of it.
    fn gone_offline(&mut self, name: &str, shard: u64) {
        if self.online.get(name) == Some(&shard) {
            self.online.remove(name);
        }
    }

    /// Whether a player of this name (lower-cased) is online on another shard, as far as this
    /// one has heard (joins are told in their tick, rosters every second).
    pub fn online_elsewhere(&self, name: &str) -> bool {
        self.online.contains_key(name) || self.remote.contains_key(name)
    }
}

/// The subject of `area`'s moves.
fn area_subject(prefix: &str, (ax, ay): Area) -> String {
    format!("{prefix}.moves.{ax}.{ay}")
}

/// The area of (x, y).
fn area_of(grid: &InterestGrid, x: f32, y: f32) -> Area {
    let (cx, cy) = grid.cell_of(x, y);
    (cx.div_euclid(AREA_CELLS), cy.div_euclid(AREA_CELLS))
}

/// The areas that hold the 3 x 3 interest cells around (x, y), which hold everyone a player
/// there may see: one to four.
fn areas_around(grid: &InterestGrid, x: f32, y: f32) -> impl Iterator<Item = Area> {
    let (cx, cy) = grid.cell_of(x, y);
    let span = |c: i32| (c - 1).div_euclid(AREA_CELLS)..=(c + 1).div_euclid(AREA_CELLS);
    span(cy).flat_map(move |ay| span(cx).map(move |ax| (ax, ay)))
}

/// The relay's tasks: publishes what the tick hands over, follows the areas it names, and
/// hands what the other shards publish to the tick.
pub async fn run(client: async_nats::Client, tasks: RelayTasks) {
    let RelayTasks { prefix, out, incoming } = tasks;
    let players = format!("{prefix}.players");
    let Some(roster_task) = forward(&client, players.clone(), incoming.clone(), Incoming::Roster).await else {
        return;
    };
    let mut areas: HashMap<Area, tokio::task::AbortHandle> = HashMap::new();
    while let Ok(outgoing) = out.recv_async().await {
        // At most once: a position lost while NATS is away is replaced by the next.
        match outgoing {
            Outgoing::Roster(roster) => {
                let bytes = veltrix_sdk::rmp_serde::to_vec(&roster).expect("rosters serialise");
                let _ = client.publish(players.clone(), bytes.into()).await;
            }
            Outgoing::Area(area, moves) => {
                let bytes = veltrix_sdk::rmp_serde::to_vec(&moves).expect("moves serialise");
                let _ = client.publish(area_subject(&prefix, area), bytes.into()).await;
            }
            Outgoing::Follow(area) => {
                if areas.contains_key(&area) {
                    continue;
                }
                let subject = area_subject(&prefix, area);
                if let Some(task) = forward(&client, subject, incoming.clone(), Incoming::Area).await {
                    areas.insert(area, task);
                }
            }
            // The subscription ends with its task (a dropped subscriber unsubscribes).
            Outgoing::Unfollow(area) => {
                if let Some(task) = areas.remove(&area) {
                    task.abort();
                }
            }
        }
    }
    roster_task.abort();
    areas.values().for_each(tokio::task::AbortHandle::abort);
}

/// Subscribes to `subject` (tried again until it can, unless the tick is gone) and forwards what
/// comes, decoded, to `incoming` from a task of its own.
async fn forward<T: serde::de::DeserializeOwned + Send + 'static>(
    client: &async_nats::Client,
    subject: String,
    incoming: flume::Sender<Incoming>,
    wrap: fn(T) -> Incoming,
) -> Option<tokio::task::AbortHandle> {
    let mut subscription = loop {
        match client.subscribe(subject.clone()).await {
            Ok(s) => break s,
            Err(e) => {
                if incoming.is_disconnected() {
                    return None;
                }
                tracing::warn!("cluster: cannot subscribe to {subject}: {e}; trying again");
                tokio::time::sleep(super::RETRY).await;
            }
        }
    };
    let task = tokio::spawn(async move {
        while let Some(message) = subscription.next().await {
            match veltrix_sdk::rmp_serde::from_slice::<T>(&message.payload) {
                Ok(decoded) => {
                    if incoming.send(wrap(decoded)).is_err() {
                        return;
                    }
                }
                Err(e) => tracing::warn!("cluster: a message on {subject} does not decode: {e}"),
            }
        }
    });
    Some(task.abort_handle())
}

/// A player of this shard, where it is, and the area it was last told in.
type OwnPlayer = (Entity, &'static Player, Ref<'static, Position>, Option<&'static mut ToldIn>);

/// This shard's players that moved, and all of them.
type OwnPlayers<'w, 's> = (Query<'w, 's, OwnPlayer, Changed<Position>>, Query<'w, 's, OwnPlayer>);

/// The area a player of this shard was last told in.
#[derive(Component)]
pub struct ToldIn(Area);

/// The tick's messages of a shard, by area.
struct AreaMessages {
    shard: u64,
    areas: HashMap<Area, AreaMoves>,
}

impl AreaMessages {
    fn of(&mut self, area: Area) -> &mut AreaMoves {
        let shard = self.shard;
        self.areas.entry(area).or_insert_with(|| AreaMoves { shard, ..AreaMoves::default() })
    }
}

/// PostTick: this shard's players that moved, joined or left this tick, to the other shards
/// (names on the players subject, positions on their areas' subjects: a player that crossed
/// into another area on both); all of them once a second. A player who left is told gone once
/// its records were handed over ([`super::handoff`]); until then the roster still names it,
/// where it left. The areas around a mover that this shard does not follow yet are followed
/// from now on.
pub fn publish_moves(
    mut link: ResMut<RelayLink>,
    mut handoff: ResMut<super::handoff::HandoffLink>,
    (grid, tick): (Res<InterestGrid>, Res<TickInfo>),
    mut players: ParamSet<OwnPlayers>,
    joined: Query<&Player, Added<Player>>,
    mut commands: Commands,
) {
    let link = &mut *link;
    let all_now = tick.tick.is_multiple_of(link.roster_every);
    let gone = handoff.take_gone();
    let mut roster = Roster {
        shard: link.shard,
        all: all_now,
        gone: gone.iter().map(|(n, _)| n.clone()).collect(),
        ..Default::default()
    };
    let mut messages = AreaMessages { shard: link.shard, areas: HashMap::new() };
    let mut tell = |(entity, player, pos, told_in): (Entity, &Player, Ref<Position>, Option<Mut<ToldIn>>)| {
        let moved_now = pos.is_changed();
        let area = area_of(&grid, pos.x, pos.y);
        let at = (player.name.clone(), pos.x, pos.y);
        match told_in {
            Some(mut last) if last.0 != area => {
                messages.of(last.0).at.push(at.clone());
                last.0 = area;
            }
            Some(_) => {}
            None => {
                commands.entity(entity).insert(ToldIn(area));
            }
        }
        messages.of(area).at.push(at);
        if all_now {
            roster.joined.push(player.name.clone());
        }
        if moved_now {
            // Its surroundings followed before its moves go out.
            for area in areas_around(&grid, pos.x, pos.y) {
                if link.followed.insert(area) {
                    let _ = link.out.send(Outgoing::Follow(area));
                }
            }
        }
    };
    // The movers only, and once a second every player.
    if all_now {
        players.p1().iter_mut().for_each(&mut tell);
    } else {
        players.p0().iter_mut().for_each(&mut tell);
    }
    if all_now {
        for (name, &(x, y)) in handoff.leaving() {
            roster.joined.push(name.clone());
            messages.of(area_of(&grid, x, y)).at.push((name.clone(), x, y));
        }
    } else {
        roster.joined.extend(joined.iter().map(|p| p.name.clone()));
    }
    for (name, (x, y)) in gone {
        messages.of(area_of(&grid, x, y)).gone.push(name);
    }
    if roster.all || !roster.joined.is_empty() || !roster.gone.is_empty() {
        let _ = link.out.send(Outgoing::Roster(roster));
    }
    let mut areas: Vec<(Area, AreaMoves)> = messages.areas.into_iter().collect();
    // The same order on every run.
    areas.sort_unstable_by_key(|(area, _)| *area);
    for (area, moves) in areas {
        let _ = link.out.send(Outgoing::Area(area, moves));
    }
}

/// PreTick: the other shards' players, as they are now: online or not, placed, moved, taken
/// out of view. Once a second, the areas this shard follows are those around its players now.
pub fn receive_moves(world: &mut World) {
    let tick = world.resource::<TickInfo>().tick;
    let incoming: Vec<Incoming> = world.resource::<RelayLink>().incoming.try_iter().collect();
    let own = world.resource::<RelayLink>().shard;
    for message in incoming {
        match message {
            Incoming::Roster(roster) if roster.shard != own => receive_roster(world, roster, tick),
            Incoming::Area(moves) if moves.shard != own => receive_area(world, moves, tick),
            _ => {}
        }
    }
    if tick.is_multiple_of(world.resource::<RelayLink>().roster_every) {
        follow_own_players(world);
    }
    let (online, near) = {
        let link = world.resource::<RelayLink>();
        (link.online.len(), link.remote.len())
    };
    if let Some(net) = world.get_resource::<crate::sessions::NetLink>() {
        net.metrics.cluster_remote_players.set(online as i64);
        net.metrics.cluster_remote_players_near.set(near as i64);
    }
    let elsewhere = veltrix_sdk::PlayersOnOtherServers(online as u32);
    if *world.resource::<veltrix_sdk::PlayersOnOtherServers>() != elsewhere {
        world.insert_resource(elsewhere);
    }
    // Shards gone silent: their players go offline and out of view.
    let silent: Vec<u64> = {
        let link = world.resource::<RelayLink>();
        let limit = SILENT_SECONDS * link.roster_every;
        link.heard.iter().filter(|(_, at)| tick.saturating_sub(**at) > limit).map(|(s, _)| *s).collect()
    };
    for shard in silent {
        let mut link = world.resource_mut::<RelayLink>();
        link.heard.remove(&shard);
        link.online.retain(|_, s| *s != shard);
        let names: Vec<String> = link.remote.iter().filter(|(_, (s, _))| *s == shard).map(|(n, _)| n.clone()).collect();
        for name in names {
            take_out(world, shard, &name);
        }
    }
}

/// Who is online on another shard: joined, gone, or its whole roster.
fn receive_roster(world: &mut World, roster: Roster, tick: u64) {
    let mut link = world.resource_mut::<RelayLink>();
    link.heard.insert(roster.shard, tick);
    let gone: Vec<String> = roster.gone.iter().map(|n| n.to_lowercase()).collect();
    let joined: Vec<String> = roster.joined.iter().map(|n| n.to_lowercase()).collect();
    let mut out_of_view = Vec::new();
    for name in &gone {
        link.gone_offline(name, roster.shard);
        out_of_view.push(name.clone());
    }
    if roster.all {
        let named: HashSet<&String> = joined.iter().collect();
        link.online.retain(|name, shard| *shard != roster.shard || named.contains(name));
        out_of_view.extend(
            link.remote
                .iter()
                .filter(|(name, (shard, _))| *shard == roster.shard && !named.contains(name))
                .map(|(name, _)| name.clone()),
        );
    }
    for name in joined {
        link.online.insert(name, roster.shard);
    }
    for name in out_of_view {
        take_out(world, roster.shard, &name);
    }
}

/// Another shard's players in an area this shard follows: placed where they are, or taken out
/// of view when that is in an area it does not follow.
fn receive_area(world: &mut World, moves: AreaMoves, tick: u64) {
    let shard = moves.shard;
    world.resource_mut::<RelayLink>().heard.insert(shard, tick);
    for name in &moves.gone {
        let key = name.to_lowercase();
        world.resource_mut::<RelayLink>().gone_offline(&key, shard);
        take_out(world, shard, &key);
    }
    for (name, x, y) in moves.at {
        let key = name.to_lowercase();
        let followed = world.resource::<RelayLink>().followed.contains(&area_of(world.resource(), x, y));
        let mut link = world.resource_mut::<RelayLink>();
        if link.online.get(&key) != Some(&shard) {
            link.online.insert(key.clone(), shard);
        }
        if followed {
            place(world, shard, key, name, Position { x, y });
        } else {
            take_out(world, shard, &key);
        }
    }
}

/// The areas this shard follows, made those around its players now (once a second: an area
/// gained in between is followed as a player moves into its reach); the other shards' players
/// in the areas it stops following go out of view.
fn follow_own_players(world: &mut World) {
    let positions: Vec<Position> = world.query_filtered::<&Position, With<Player>>().iter(world).copied().collect();
    let grid = world.resource::<InterestGrid>();
    let wanted: HashSet<Area> = positions.iter().flat_map(|p| areas_around(grid, p.x, p.y)).collect();
    let mut link = world.resource_mut::<RelayLink>();
    let mut dropped: Vec<Area> = link.followed.difference(&wanted).copied().collect();
    let mut added: Vec<Area> = wanted.difference(&link.followed).copied().collect();
    // The same order on every run.
    dropped.sort_unstable();
    added.sort_unstable();
    for &area in &dropped {
        let _ = link.out.send(Outgoing::Unfollow(area));
    }
    for &area in &added {
        let _ = link.out.send(Outgoing::Follow(area));
    }
    link.followed = wanted;
    if dropped.is_empty() {
        return;
    }
    let unfollowed: Vec<(u64, String)> = {
        let link = world.resource::<RelayLink>();
        let grid = world.resource::<InterestGrid>();
        link.remote
            .iter()
            .filter(|(_, (_, entity))| {
                world.get::<Position>(*entity).is_some_and(|p| !link.followed.contains(&area_of(grid, p.x, p.y)))
            })
            .map(|(name, (shard, _))| (*shard, name.clone()))
            .collect()
    };
    for (shard, name) in unfollowed {
        take_out(world, shard, &name);
    }
}

/// Places (or moves) the player `name` (`key` lower-cased) of shard `shard` here (a player that moved from one
/// shard to another stays the one entity).
fn place(world: &mut World, shard: u64, key: String, name: String, at: Position) {
    if let Some(&(_, entity)) = world.resource::<RelayLink>().remote.get(&key) {
        world.resource_mut::<RelayLink>().remote.insert(key, (shard, entity));
        if let Some(mut pos) = world.get_mut::<Position>(entity)
            && *pos != at
        {
            *pos = at;
        }
        return;
    }
    // Online here too (it moved here, and its old shard has not said so yet): seen once.
    if world.resource::<crate::sessions::Sessions>().by_name(&name).is_some() {
        return;
    }
    let id = veltrix_sdk::shared_player_id(&key);
    let entity = world.spawn((RemotePlayer { id, name }, at, Interest::default())).id();
    world.resource_mut::<RelayLink>().remote.insert(key, (shard, entity));
}

/// Takes the player `name` (lower-cased) out of view and out of the world, if shard `shard` is
/// the last that told of it.
fn take_out(world: &mut World, shard: u64, name: &str) {
    let mut link = world.resource_mut::<RelayLink>();
    match link.remote.get(name) {
        Some(&(from, _)) if from == shard => {}
        _ => return,
    }
    let Some((_, entity)) = link.remote.remove(name) else { return };
    if let Some(id) = world.get::<RemotePlayer>(entity).map(|r| r.id) {
        crate::interest::forget(world, entity, id);
    }
    world.despawn(entity);
}
