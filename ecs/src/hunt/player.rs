//! A player's hunt state: its digging, pity counters and team; equipped as it joins, parked
//! in the stash as it leaves and given back when it returns.

use std::collections::{BTreeMap, HashMap};

use veltrix_sdk::{
    PlayerId,
    bevy_ecs::{self, lifecycle::Remove, observer::On, query::QueryData},
    prelude::*,
};

use super::rules::HuntRules;
use crate::{
    effects::{ActiveEffects, EffectOutcome, SenseState},
    model::inventory::{Inventory, PendingRewards},
    state::Team,
    vocab::{InventoryChanged, Refused, TeamOutcome, TeamRequest},
};

/// A player's digging: effort so far per vault, in hundredths of a dig, and the last tick it
/// dug.
#[derive(Component, Debug, Clone, Default, PartialEq, Eq)]
pub struct Digging {
    /// Hundredths of a dig per vault: a dig adds 100 times the digger's `DigSpeed` (rounded,
    /// at least 1), so effort stays a whole number and every machine adds alike.
    pub effort: BTreeMap<Entity, u32>,
    pub last_dig_tick: Option<u64>,
}

/// Per player, per loot table: claims in a row without a Rare-or-better item (for the
/// tables' pity). A table's count goes back to 0 when a rare item drops.
#[derive(Component, Debug, Clone, Default, PartialEq, Eq)]
pub struct PityCounters(pub BTreeMap<String, u32>);

/// What players left behind when they went offline, given back when they return (this run).
#[derive(Resource, Debug, Clone, Default)]
pub struct Stash(pub HashMap<PlayerId, Stashed>);

/// One player's parked hunt state.
#[derive(Debug, Clone, PartialEq)]
pub struct Stashed {
    pub inventory: Inventory,
    pub pending: PendingRewards,
    pub digging: Digging,
    pub team: Option<Team>,
    /// Effects keep their end tick: their clock runs while the player is away.
    pub effects: ActiveEffects,
    pub pity: PityCounters,
}

/// A player's hunt state in the world, as the stash and the store read it.
#[derive(QueryData)]
pub struct PlayerHuntState {
    pub player: &'static Player,
    pub inventory: &'static Inventory,
    pub pending: &'static PendingRewards,
    pub digging: &'static Digging,
    pub team: Option<&'static Team>,
    pub effects: &'static ActiveEffects,
    pub pity: &'static PityCounters,
}

impl PlayerHuntStateItem<'_, '_> {
    /// The state, copied to be parked.
    pub fn stashed(&self) -> Stashed {
        Stashed {
            inventory: self.inventory.clone(),
            pending: self.pending.clone(),
            digging: self.digging.clone(),
            team: self.team.cloned(),
            effects: self.effects.clone(),
            pity: self.pity.clone(),
        }
    }
}

/// Gives each new player an inventory (and what it left behind, when it comes back: its
/// inventory, team, effort, pity counters, and its effects that have not ended meanwhile).
pub fn equip_players(
    mut commands: Commands,
    rules: Res<HuntRules>,
    tick: Res<TickInfo>,
    mut stash: ResMut<Stash>,
    new: Query<(Entity, &Player), Without<Inventory>>,
    mut changed: MessageWriter<InventoryChanged>,
    mut effect_outcomes: MessageWriter<EffectOutcome>,
) {
    for (entity, player) in &new {
        // The client learns its inventory (and pending rewards) as it joins.
        changed.write(InventoryChanged { entity, player: player.id });
        let mut e = commands.entity(entity);
        match stash.0.remove(&player.id) {
            Some(s) => {
                let mut effects = s.effects;
                // Ended while the player was away: gone without a word (this connection never
                // heard of it).
                effects.expire(tick.tick, |_| {});
                // The client learns the effects it still has as it joins.
                for active in &effects.0 {
                    effect_outcomes.write(EffectOutcome::Started {
                        player: player.id,
                        request: None,
                        effect: active.id.clone(),
                        stacks: active.stacks,
                        expires_at: active.expires_at,
                    });
                }
                e.insert((s.inventory, s.pending, s.digging, effects, s.pity, SenseState::default()));
                if let Some(team) = s.team {
                    e.insert(team);
                }
            }
            None => {
                e.insert((
                    Inventory::with_slots(rules.inventory_slots),
                    PendingRewards::default(),
                    Digging::default(),
                    ActiveEffects::default(),
                    PityCounters::default(),
                    SenseState::default(),
                ));
            }
        }
    }
}

/// Parks a leaving player's hunt state, to give it back if it returns.
pub(super) fn stash_leaving_player(
    event: On<Remove<Player>>,
    players: Query<PlayerHuntState>,
    mut stash: ResMut<Stash>,
) {
    if let Ok(state) = players.get(event.event().entity) {
        stash.0.insert(state.player.id, state.stashed());
    }
}

/// Joins or leaves teams.
pub fn change_team(
    mut commands: Commands,
    mut requests: MessageReader<TeamRequest>,
    mut out: MessageWriter<TeamOutcome>,
) {
    for r in requests.read() {
        let team = r.team.trim();
        if team.is_empty() {
            commands.entity(r.entity).remove::<Team>();
            out.write(TeamOutcome::Joined { player: r.player, request: r.request, team: None });
        } else if veltrix_sdk::protocol::valid_player_name(team) {
            commands.entity(r.entity).insert(Team(team.to_string()));
            out.write(TeamOutcome::Joined { player: r.player, request: r.request, team: Some(team.to_string()) });
        } else {
            out.write(TeamOutcome::Refused(Refused {
                player: r.player,
                request: r.request,
                reason: format!("{team:?} is not a team name: use 1 to 16 letters, digits or _").into(),
            }));
        }
    }
}
