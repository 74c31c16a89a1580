//! Where the players of every shard are, so players near each other on different shards see
//! each other: each shard publishes on the plain NATS subject `veltrix.<bucket>.moves` (no
//! JetStream: a lost position is replaced by the next) the players of its own that moved in a
//! tick and those that left, and once a second all of its players (its roster). Every shard
//! keeps the players of the others as [`RemotePlayer`] entities: in the interest grid and in
//! views like its own, so its players are told of them as of anyone (PlayerAppeared, PlayerMoved
//! at the state-update rate, PlayerGone), and told nothing themselves.
//!
//! A remote player is gone when its shard says so, when its shard's roster no longer names it,
//! or when its shard has sent nothing for [`SILENT_SECONDS`] (the shard died or is cut off).

use std::collections::HashMap;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use veltrix_sdk::{Player, Position, TickInfo, prelude::*};

use crate::interest::{Interest, RemotePlayer};

/// A shard silent this long (no roster, no move) has its players taken out of view.
const SILENT_SECONDS: u64 = 3;

/// What a shard publishes in a tick.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Moves {
    shard: u64,
    /// Whether `at` names every player of the shard (its roster), not only those that moved.
    roster: bool,
    /// Name, x, y.
    at: Vec<(String, f32, f32)>,
    /// Names of players that left.
    gone: Vec<String>,
}

/// The tick's ends of the relay.
#[derive(Resource)]
pub struct RelayLink {
    shard: u64,
    /// Ticks between rosters (one a second).
    roster_every: u64,
    out: flume::Sender<Moves>,
    incoming: flume::Receiver<Moves>,
    /// The other shards' players here, by lower-cased name: the shard that last told of each,
    /// and its entity.
    remote: HashMap<String, (u64, Entity)>,
    /// The tick each other shard was last heard from (a roster comes every second, so a live
    /// shard is never silent longer; one that died before its first roster reached this one is
    /// silent all the same).
    heard: HashMap<u64, u64>,
}

/// The tasks' ends of the relay's channels, for [`run`].
pub struct RelayTasks {
    subject: String,
    out: flume::Receiver<Moves>,
    incoming: flume::Sender<Moves>,
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
        remote: HashMap::new(),
        heard: HashMap::new(),
    });
    RelayTasks { subject: format!("veltrix.{bucket}.moves"), out: out_rx, incoming: in_tx }
}

impl RelayLink {
    /// Whether a player of this name (lower-cased) is online on another shard, as far as this
    /// one has heard (its moves and rosters come several times a second).
    pub fn online_elsewhere(&self, name: &str) -> bool {
        self.remote.contains_key(name)
    }
}

/// The relay's tasks: publishes what the tick hands over, and hands what the other shards
/// publish to the tick.
pub async fn run(client: async_nats::Client, tasks: RelayTasks) {
    let RelayTasks { subject, out, incoming } = tasks;
    let mut subscription = loop {
        match client.subscribe(subject.clone()).await {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!("cluster: cannot subscribe to {subject}: {e}; trying again");
                tokio::time::sleep(super::RETRY).await;
            }
        }
    };
    let publisher = client.clone();
    let published = subject.clone();
    tokio::spawn(async move {
        while let Ok(moves) = out.recv_async().await {
            let bytes = veltrix_sdk::rmp_serde::to_vec(&moves).expect("moves serialise");
            // At most once: a position lost while NATS is away is replaced by the next.
            let _ = publisher.publish(published.clone(), bytes.into()).await;
        }
    });
    while let Some(message) = subscription.next().await {
        match veltrix_sdk::rmp_serde::from_slice::<Moves>(&message.payload) {
            Ok(moves) => {
                if incoming.send(moves).is_err() {
                    return;
                }
            }
            Err(e) => tracing::warn!("cluster: a message on {subject} does not decode: {e}"),
        }
    }
}

/// PostTick: this shard's players that moved, joined or left this tick, to the other shards;
/// all of them once a second. A player who left is told gone once its records were handed
/// over ([`super::handoff`]); until then the roster still names it, where it left.
pub fn publish_moves(
    link: Res<RelayLink>,
    mut handoff: ResMut<super::handoff::HandoffLink>,
    tick: Res<TickInfo>,
    moved: Query<(&Player, &Position), Changed<Position>>,
    all: Query<(&Player, &Position)>,
) {
    let mut moves = Moves { shard: link.shard, gone: handoff.take_gone(), ..Moves::default() };
    moves.roster = tick.tick.is_multiple_of(link.roster_every);
    let mut add = |name: &str, x: f32, y: f32| moves.at.push((name.to_owned(), x, y));
    if moves.roster {
        all.iter().for_each(|(p, pos)| add(&p.name, pos.x, pos.y));
        handoff.leaving().for_each(|(name, &(x, y))| add(name, x, y));
    } else {
        moved.iter().for_each(|(p, pos)| add(&p.name, pos.x, pos.y));
    }
    if moves.roster || !moves.at.is_empty() || !moves.gone.is_empty() {
        let _ = link.out.send(moves);
    }
}

/// PreTick: the other shards' players, as they are now: placed, moved, taken out of view.
pub fn receive_moves(world: &mut World) {
    let tick = world.resource::<TickInfo>().tick;
    let incoming: Vec<Moves> = world.resource::<RelayLink>().incoming.try_iter().collect();
    for moves in incoming {
        let own = world.resource::<RelayLink>().shard;
        if moves.shard == own {
            continue;
        }
        world.resource_mut::<RelayLink>().heard.insert(moves.shard, tick);
        for name in &moves.gone {
            take_out(world, moves.shard, &name.to_lowercase());
        }
        if moves.roster {
            let named: std::collections::HashSet<String> = moves.at.iter().map(|(n, ..)| n.to_lowercase()).collect();
            let absent: Vec<String> = world
                .resource::<RelayLink>()
                .remote
                .iter()
                .filter(|(name, (shard, _))| *shard == moves.shard && !named.contains(*name))
                .map(|(name, _)| name.clone())
                .collect();
            for name in absent {
                take_out(world, moves.shard, &name);
            }
        }
        for (name, x, y) in moves.at {
            place(world, moves.shard, name, Position { x, y });
        }
    }
    let remote = world.resource::<RelayLink>().remote.len();
    if let Some(net) = world.get_resource::<crate::sessions::NetLink>() {
        net.metrics.cluster_remote_players.set(remote as i64);
    }
    let elsewhere = veltrix_sdk::PlayersOnOtherServers(remote as u32);
    if *world.resource::<veltrix_sdk::PlayersOnOtherServers>() != elsewhere {
        world.insert_resource(elsewhere);
    }
    // Shards gone silent: their players go out of view.
    let silent: Vec<u64> = {
        let link = world.resource::<RelayLink>();
        let limit = SILENT_SECONDS * link.roster_every;
        link.heard.iter().filter(|(_, at)| tick.saturating_sub(**at) > limit).map(|(s, _)| *s).collect()
    };
    for shard in silent {
        world.resource_mut::<RelayLink>().heard.remove(&shard);
        let names: Vec<String> = world
            .resource::<RelayLink>()
            .remote
            .iter()
            .filter(|(_, (s, _))| *s == shard)
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            take_out(world, shard, &name);
        }
    }
}

/// Places (or moves) the player `name` of shard `shard` here (a player that moved from one
/// shard to another stays the one entity).
fn place(world: &mut World, shard: u64, name: String, at: Position) {
    let key = name.to_lowercase();
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
