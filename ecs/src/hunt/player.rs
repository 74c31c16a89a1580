//! A player's hunt state: its digging, pity counters and team; equipped as it joins, parked
//! in the stash as it leaves and given back when it returns.

use std::collections::{BTreeMap, HashMap};

use smallvec::SmallVec;

use veltrix_sdk::{
    Ledger, PlayerId,
    bevy_ecs::{self, lifecycle::Remove, observer::On, query::QueryData},
    prelude::*,
};

use super::{claims::UnmadeClaims, rules::HuntRules};
use crate::{
    effects::{ActiveEffects, EffectOutcome, SenseState},
    model::inventory::{Inventory, PendingRewards},
    state::{ActiveHunt, Team},
    vocab::{InventoryChanged, Refused, TeamOutcome, TeamRequest},
};

/// A player's digging: effort so far per vault, in hundredths of a dig, and the last tick it
/// dug.
#[derive(Component, Debug, Clone, Default, PartialEq, Eq)]
pub struct Digging {
    /// Hundredths of a dig per vault: a dig adds 100 times the digger's `DigSpeed` (rounded,
    /// at least 1), so effort stays a whole number and every machine adds alike.
    pub effort: Effort,
    pub last_dig_tick: Option<u64>,
}

/// Effort per vault, sorted by vault. A list, not a tree: a player digs at one vault or two at
/// a time, and a list keeps its room when its last vault is opened, where a tree frees its node
/// and allocates one again at the next vault's first dig (in the tick). Room for two vaults in
/// place: a player's first dig at a vault was the commonest allocation of a steady tick, a
/// list on the heap growing from nothing (16 bytes a player more than a `Vec`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effort(SmallVec<[(Entity, u32); EFFORT_INLINE]>);

/// Vaults whose effort a player's [`Effort`] holds in place.
const EFFORT_INLINE: usize = 2;

impl Effort {
    /// Adds `effort` to `vault`'s (from none), and returns the sum.
    pub fn add(&mut self, vault: Entity, effort: u32) -> u32 {
        let sum = self.of(vault);
        *sum = sum.saturating_add(effort);
        *sum
    }

    /// Sets `vault`'s effort.
    pub fn insert(&mut self, vault: Entity, effort: u32) {
        *self.of(vault) = effort;
    }

    /// `vault`'s effort, 0 put in its place when it has none.
    fn of(&mut self, vault: Entity) -> &mut u32 {
        let at = self.0.binary_search_by_key(&vault, |&(v, _)| v).unwrap_or_else(|at| {
            self.0.insert(at, (vault, 0));
            at
        });
        &mut self.0[at].1
    }

    pub fn remove(&mut self, vault: Entity) {
        if let Ok(at) = self.0.binary_search_by_key(&vault, |&(v, _)| v) {
            self.0.remove(at);
        }
    }

    /// Each vault with effort and its effort, by vault.
    pub fn iter(&self) -> impl Iterator<Item = (Entity, u32)> + '_ {
        self.0.iter().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }
}

impl FromIterator<(Entity, u32)> for Effort {
    fn from_iter<I: IntoIterator<Item = (Entity, u32)>>(effort: I) -> Self {
        let mut this = Self::default();
        for (vault, effort) in effort {
            this.insert(vault, effort);
        }
        this
    }
}

impl<const N: usize> From<[(Entity, u32); N]> for Effort {
    fn from(effort: [(Entity, u32); N]) -> Self {
        effort.into_iter().collect()
    }
}

/// Per player, per loot table: claims in a row without a Rare-or-better item (for the
/// tables' pity). A table's count goes back to 0 when a rare item drops.
#[derive(Component, Debug, Clone, Default, PartialEq, Eq)]
pub struct PityCounters(pub BTreeMap<String, u32>);

/// On a server that shares its hunt: the claims the ledger holds for this player that were made
/// for it here or on another shard (its loot granted), by their asks (server, ticket). It is
/// kept in the player's records, which follow the player from shard to shard and are written in
/// the commit that grants the loot: a claim the ledger decided for a shard that stopped before
/// saving it is made once, on whichever shard the player is next ([`SharedClaims`]). `None`:
/// not kept (a server alone; records written before it was kept).
///
/// [`SharedClaims`]: super::claims::SharedClaims
#[derive(Component, Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimsMade(pub Option<Vec<(u64, u64)>>);

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
    pub claims_made: ClaimsMade,
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
    pub claims_made: &'static ClaimsMade,
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
            claims_made: self.claims_made.clone(),
        }
    }
}

/// Gives each new player an inventory (and what it left behind, when it comes back: its
/// inventory, team, effort, pity counters, and its effects that have not ended meanwhile).
pub fn equip_players(
    mut commands: Commands,
    (rules, tick): (Res<HuntRules>, Res<TickInfo>),
    // On a server that shares its hunt, a joining player's claims are looked at.
    (mut ledger, hunt, mut unmade): (Option<ResMut<Ledger>>, Option<Res<ActiveHunt>>, ResMut<UnmadeClaims>),
    mut stash: ResMut<Stash>,
    new: Query<(Entity, &Player), Without<Inventory>>,
    mut changed: MessageWriter<InventoryChanged>,
    mut effect_outcomes: MessageWriter<EffectOutcome>,
) {
    for (entity, player) in &new {
        // The client learns its inventory (and pending rewards) as it joins.
        changed.write(InventoryChanged { entity, player: player.id });
        let stashed = stash.0.remove(&player.id);
        if let Some(ledger) = ledger.as_deref_mut() {
            let team = stashed.as_ref().and_then(|s| s.team.as_ref());
            unmade.joined((entity, &player.name, team), ledger, hunt.as_deref());
        }
        let mut e = commands.entity(entity);
        match stashed {
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
                e.insert((s.inventory, s.pending, s.digging, effects, s.pity, s.claims_made, SenseState::default()));
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
                    ClaimsMade(ledger.is_some().then(Vec::new)),
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

/// Joins or leaves teams. On a server that shares its hunt, not while a claim of the player's
/// waits for the ledger: a team claim made elsewhere after this shard stopped is found by the
/// team its player has as it joins there (`UnmadeClaims::joined`).
pub fn change_team(
    mut commands: Commands,
    mut requests: MessageReader<TeamRequest>,
    ledger: Option<Res<Ledger>>,
    mut out: MessageWriter<TeamOutcome>,
) {
    for r in requests.read() {
        let team = r.team.trim();
        if ledger.as_ref().is_some_and(|l| l.awaits_answer_for(r.player)) {
            out.write(TeamOutcome::Refused(Refused {
                player: r.player,
                request: r.request,
                reason: "your claim on a vault is being decided: change team once it is".into(),
            }));
        } else if team.is_empty() {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Effort adds up per vault, comes out by vault, holds two vaults in place, and the list
    /// keeps its room when its last vault is done: the next vault's first dig takes no
    /// allocation.
    #[test]
    fn effort_adds_up_per_vault_and_keeps_its_room() {
        let mut world = World::new();
        let (a, b) = (world.spawn_empty().id(), world.spawn_empty().id());
        let mut effort = Effort::default();
        assert_eq!(effort.add(b, 100), 100);
        assert_eq!(effort.add(a, 50), 50);
        assert_eq!(effort.add(b, u32::MAX), u32::MAX, "saturates");
        let mut by_vault = vec![(a, 50), (b, u32::MAX)];
        by_vault.sort();
        assert_eq!(effort.iter().collect::<Vec<_>>(), by_vault);
        assert_eq!(effort, [(b, u32::MAX), (a, 50)].into(), "the same whatever the order given");
        effort.remove(a);
        effort.remove(b);
        assert!(effort.is_empty());
        assert!(!effort.0.spilled(), "two vaults in place");
        let c = world.spawn_empty().id();
        for v in [a, b, c] {
            effort.add(v, 1);
        }
        assert!(effort.0.spilled(), "three on the heap");
        for v in [a, b, c] {
            effort.remove(v);
        }
        let room = effort.0.as_ptr();
        effort.add(a, 1);
        assert_eq!(effort.0.as_ptr(), room, "the same room");
    }
}
