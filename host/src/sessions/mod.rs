//! Players in the world, one job per module: [`intake`] applies what the network received
//! (joins, departures, mod messages, commands), [`movement`] checks moves, [`bans`] keeps
//! `bans.json`, [`delivery`] is the single way frames leave for connections, and [`frames`]
//! writes a tick's frames into one buffer. This module holds what they share: who is online,
//! the rules from the config, the tick thread's end of the network.

pub mod bans;
pub mod delivery;
pub mod frames;
pub mod intake;
pub mod movement;

use std::{
    collections::HashMap,
    sync::{Arc, atomic::AtomicU64},
};

use veltrix_sdk::{Changes, PlayerId, Position, Store, StoreError, TileWorld, prelude::*, protocol::ModInfo};

use crate::{
    metrics::Metrics,
    net::{ConnId, NetEvent, seat},
    reasons::Disconnect,
};

/// The tick thread's end of the network.
#[derive(Resource)]
pub struct NetLink {
    pub events: flume::Receiver<NetEvent>,
    pub current_tick: Arc<AtomicU64>,
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
    /// Each joined connection's player, by the connection's seat ([`crate::net::seat`]): a
    /// lookup for every message received.
    by_seat: Vec<Option<(ConnId, Entity)>>,
    by_id: ahash::AHashMap<PlayerId, Entity>,
    /// Lowercased name to id: who is online by name goes through `by_id`.
    ids: HashMap<String, PlayerId>,
    next_id: PlayerId,
    /// A shard (docs/scale-out.md): a name new here gets the id every shard gives it
    /// ([`veltrix_sdk::shared_player_id`]), so its records keyed by id follow it between shards.
    pub cluster: bool,
    /// Connections that ended this tick, removed in PostTick ([`intake::remove_departed`]):
    /// what they sent before ending is applied in this tick's systems, with its sender still
    /// there. On a shard, also those kept until the ledger answers their claims.
    departed: Vec<(Entity, Disconnect)>,
    /// The same players, to look one up (a storm of reconnections ends thousands in a tick).
    ending: ahash::AHashSet<Entity>,
    /// Joins of a name whose connection ended this tick, let in at the next once the player
    /// is removed ([`intake::receive_network`]), with what their clients sent meanwhile.
    rejoining: Vec<(crate::net::JoinRequest, Vec<veltrix_sdk::protocol::ClientMessage>)>,
}

impl Sessions {
    pub fn entity(&self, id: PlayerId) -> Option<Entity> {
        self.by_id.get(&id).copied()
    }

    /// The online player of this name (any case).
    pub fn by_name(&self, name: &str) -> Option<Entity> {
        self.ids.get(&name.to_lowercase()).and_then(|id| self.entity(*id))
    }

    /// Whether this player's connection ended and it is about to be removed.
    pub fn is_leaving(&self, entity: Entity) -> bool {
        self.ending.contains(&entity)
    }

    /// The id this server gave a name (any case), online or not.
    pub fn known_id(&self, name: &str) -> Option<PlayerId> {
        self.ids.get(&name.to_lowercase()).copied()
    }

    /// The player joined on connection `conn`.
    pub fn by_conn(&self, conn: ConnId) -> Option<Entity> {
        match self.by_seat.get(seat(conn)) {
            Some(&Some((joined, entity))) if joined == conn => Some(entity),
            _ => None,
        }
    }

    fn seat_player(&mut self, conn: ConnId, entity: Entity) {
        let at = seat(conn);
        if at >= self.by_seat.len() {
            self.by_seat.resize(at + 1, None);
        }
        self.by_seat[at] = Some((conn, entity));
    }

    /// Forgets connection `conn`'s player, unless a later connection took its seat.
    fn unseat_player(&mut self, conn: ConnId) {
        if let Some(seated) = self.by_seat.get_mut(seat(conn))
            && seated.is_some_and(|(joined, _)| joined == conn)
        {
            *seated = None;
        }
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
        let id = if self.cluster {
            veltrix_sdk::shared_player_id(&key)
        } else {
            self.next_id += 1;
            self.next_id
        };
        changes.put(&PLAYER_IDS.into(), &key, &id);
        self.ids.insert(key, id);
        id
    }

    /// The ids handed out before, from the store.
    pub fn load(&mut self, store: &Store) -> Result<(), StoreError> {
        let ids = store.load::<String, PlayerId>(PLAYER_IDS)?;
        self.ids.reserve(ids.len());
        for (name, id) in ids {
            if id < 1 << 52 {
                self.next_id = self.next_id.max(id);
            }
            self.ids.insert(name, id);
        }
        Ok(())
    }
}

/// The store's table of player ids: lowercase name to id.
pub const PLAYER_IDS: &str = "veltrix/player-ids";

/// The store's table of where players left: id to (x, y).
pub const POSITIONS: &str = "veltrix/positions";

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection's player is found by its seat only while that connection holds the seat:
    /// a later connection on the same seat (the earlier ended, its player not yet removed)
    /// is not forgotten when the earlier one's player is.
    #[test]
    fn a_seat_answers_for_the_connection_that_holds_it() {
        let mut world = World::new();
        let (earlier, later) = (world.spawn_empty().id(), world.spawn_empty().id());
        let mut sessions = Sessions::default();
        let (first, second) = (crate::net::conn_id(1, 7), crate::net::conn_id(2, 7));
        sessions.seat_player(first, earlier);
        assert_eq!(sessions.by_conn(first), Some(earlier));
        assert_eq!(sessions.by_conn(second), None, "another connection on the seat is not its player");
        sessions.seat_player(second, later);
        assert_eq!(sessions.by_conn(first), None, "the seat was taken by a later connection");
        sessions.unseat_player(first);
        assert_eq!(sessions.by_conn(second), Some(later), "the later connection keeps its seat");
        sessions.unseat_player(second);
        assert_eq!(sessions.by_conn(second), None);
    }
}
