//! Players' records: read back as a player joins (refused when it cannot be read), written in
//! every tick that changed a player's hunt state, and once more at shutdown for the effects'
//! clocks.

use std::{collections::BTreeMap, sync::Arc};

use serde::{Serialize, de::DeserializeOwned};
use treasure_hunt_ecs::{
    effects::{ActiveEffect, ActiveEffects},
    hunt::{ActiveHunt, ClaimsMade, Digging, HuntRules, PityCounters, PlayerHuntState, Stash, Stashed, Team, Vault},
    inventory::{Inventory, PendingRewards},
};
use veltrix_sdk::{
    Changes, ReplacedPlayers, Store,
    bevy_ecs::{self, system::SystemParam},
    prelude::*,
    tracing,
};

use super::{
    records::{PlayerRecord, PlayerRecordRef},
    tables::{PLAYERS, Tables},
};

/// Tick, before the hunt's input: players joining who are not parked in memory get their
/// stored state parked, for `equip_players` to give back. A store read on the tick thread,
/// bounded: one point read per player in the tick it joins (the host admits at most
/// MaxPlayers).
pub fn restore_players(
    (store, replaced): (Option<Res<Store>>, Option<Res<ReplacedPlayers>>),
    mut stash: ResMut<Stash>,
    joining: Query<&Player, Without<Inventory>>,
    vaults: Query<(Entity, &Vault)>,
    rules: Res<HuntRules>,
    hunt: Option<Res<ActiveHunt>>,
    tick: Res<TickInfo>,
) {
    let Some(store) = store else { return };
    for player in &joining {
        // Its records came from another server: what this one parked of it is older.
        if replaced.as_ref().is_some_and(|r| r.0.contains(&player.id)) {
            stash.0.remove(&player.id);
        }
        if stash.0.contains_key(&player.id) {
            continue;
        }
        // The join check read it in this tick's PreTick: it reads.
        let record = match stored_player(&store, player.id) {
            Ok(Some(record)) => record,
            Ok(None) => continue,
            Err(e) => {
                tracing::error!("player {} ({}): {e}", player.name, player.id);
                continue;
            }
        };
        let same_run = hunt.as_ref().is_some_and(|h| record.effort_run.as_ref() == Some(&(h.id.clone(), h.run)))
            // Records written before runs were numbered: the hunt's first run.
            || (record.effort_run.is_none() && hunt.as_ref().is_some_and(|h| h.run == 1));
        let effort = record
            .effort_in_hundredths()
            .iter()
            .filter(|_| same_run)
            .filter_map(|(id, effort)| vaults.iter().find(|(_, v)| v.0.id == *id).map(|(e, _)| (e, *effort)))
            .collect();
        // The clock counts on from this tick: the time left when the record was written.
        let mut effects: Vec<ActiveEffect> = record
            .effects
            .iter()
            .map(|e| ActiveEffect { id: e.id.clone(), stacks: e.stacks, expires_at: tick.tick + e.ticks_left.max(1) })
            .collect();
        effects.sort_by(|a, b| a.id.cmp(&b.id));
        stash.0.insert(
            player.id,
            Stashed {
                inventory: Inventory::from_slots(record.slots, rules.inventory_slots),
                pending: PendingRewards(record.pending.into()),
                digging: Digging { effort, last_dig_tick: None },
                team: record.team.map(Team),
                effects: ActiveEffects(effects),
                pity: PityCounters(record.pity),
                // Claims of another run are not this run's.
                claims_made: ClaimsMade(record.ledger_claims.map(|asks| if same_run { asks } else { Vec::new() })),
            },
        );
    }
}

/// A player's stored record; `Err` when it cannot be read or does not decode.
fn stored_player(store: &Store, player: PlayerId) -> Result<Option<PlayerRecord>, String> {
    stored(store, PLAYERS, &player)
}

/// The record of `key` in `table`, one point read; `Err`, in words, when it cannot be read or
/// does not decode.
pub(super) fn stored<T: DeserializeOwned>(
    store: &Store,
    table: &str,
    key: &(impl Serialize + ?Sized),
) -> Result<Option<T>, String> {
    let key = veltrix_sdk::rmp_serde::to_vec(key).expect("keys serialise");
    let bytes = store.0.get(table, &key).map_err(|e| format!("cannot read its record: {e}"))?;
    bytes
        .map(|bytes| veltrix_sdk::rmp_serde::from_slice::<T>(&bytes))
        .transpose()
        .map_err(|e| format!("its record in table {table} does not decode ({e})"))
}

/// The join check: a player whose stored record cannot be read stays out, its record kept (let
/// in, it would start empty and be saved over it). One still parked in memory this run is let
/// in: what it has is there, and saved over the damaged record. Runs on the tick thread, in
/// the host's join: one point read per admitted join.
pub fn player_record_reads(world: &World, player: &Player) -> Result<(), String> {
    let Some(store) = world.get_resource::<Store>() else { return Ok(()) };
    if world.get_resource::<Stash>().is_some_and(|stash| stash.0.contains_key(&player.id)) {
        return Ok(());
    }
    stored_player(store, player.id).map(drop)
}

/// A change to any part of a player's hunt state.
type HuntStateChanged = Or<(
    Changed<Inventory>,
    Changed<PendingRewards>,
    Changed<Digging>,
    Changed<Team>,
    Changed<ActiveEffects>,
    Changed<PityCounters>,
    Changed<ClaimsMade>,
)>;

/// The players whose hunt state changed this tick: in any part, or by leaving their team.
#[derive(SystemParam)]
pub struct ChangedPlayers<'w, 's> {
    changed: Query<'w, 's, PlayerHuntState, HuntStateChanged>,
    all: Query<'w, 's, PlayerHuntState>,
    left_teams: RemovedComponents<'w, 's, Team>,
}

/// Tick, after the hunt: writes the players whose hunt state changed this tick.
pub fn save_players(
    tables: Res<Tables>,
    tick: Res<TickInfo>,
    players: ChangedPlayers,
    vaults: Query<&Vault>,
    hunt: Option<Res<ActiveHunt>>,
    mut changes: ResMut<Changes>,
) {
    let ChangedPlayers { changed, all, mut left_teams } = players;
    let run = hunt.as_ref().map(|h| (h.id.as_str(), h.run));
    let mut save = |state: &treasure_hunt_ecs::hunt::PlayerHuntStateItem| {
        let vault_id = |vault| vaults.get(vault).ok().map(|v| v.0.id.as_str());
        let record = PlayerRecordRef::new(state.into(), tick.tick, run, vault_id);
        changes.put(&tables.players, &state.player.id, &record);
    };
    for row in &changed {
        save(&row);
    }
    for entity in left_teams.read() {
        if let Ok(row) = all.get(entity)
            && !changed.contains(entity)
        {
            save(&row);
        }
    }
}

/// At shutdown: writes the records of the players with active effects, online or away, with
/// the ticks they have left now (a restart counts on from there). Written straight to the
/// store: the host committed the last tick before the mods' shutdown. Not written when that
/// commit failed: the records would carry what no player was told.
pub fn save_effect_clocks(world: &mut World) {
    let Some(store) = world.get_resource::<Store>().cloned() else { return };
    // A whole record written now would save with it what the ticks could not commit (a grant
    // no one was told of): saved before announced holds at shutdown too.
    // (A failed commit keeps its writes in `Changes`: they are what is unsaved.)
    let unsaved = world.get_resource::<Changes>().map_or(0, Changes::len);
    if unsaved > 0 {
        tracing::warn!(
            "the effects' time left is not saved: {unsaved} change(s) of the last ticks could not be saved, and a \
             player's record written now would hold them"
        );
        return;
    }
    let now = world.resource::<TickInfo>().tick;
    let mut vault_ids: BTreeMap<Entity, String> = BTreeMap::new();
    for (entity, vault) in world.query::<(Entity, &Vault)>().iter(world) {
        vault_ids.insert(entity, vault.0.id.clone());
    }
    let vault_id = |e: Entity| vault_ids.get(&e).map(String::as_str);
    // Effort, online or stashed, is always for the running hunt's run: a new run clears it.
    let mut online = world.query::<PlayerHuntState>();
    let hunt = world.get_resource::<ActiveHunt>();
    let run = hunt.map(|h| (h.id.as_str(), h.run));
    let mut changes = Changes::default();
    let table: Arc<str> = PLAYERS.into();
    for state in online.iter(world) {
        if !state.effects.0.is_empty() {
            let record = PlayerRecordRef::new((&state).into(), now, run, vault_id);
            changes.put(&table, &state.player.id, &record);
        }
    }
    for (id, s) in &world.resource::<Stash>().0 {
        if s.effects.0.iter().any(|e| e.expires_at > now) {
            let record = PlayerRecordRef::new(s.into(), now, run, vault_id);
            changes.put(&table, id, &record);
        }
    }
    if changes.is_empty() {
        return;
    }
    match store.0.commit(changes.writes()) {
        Ok(()) => tracing::info!("saved the effects' time left of {} player(s)", changes.len()),
        Err(e) => tracing::error!("could not save the effects' time left: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use veltrix_sdk::{MemoryStore, Storage as _};

    use super::*;

    /// At shutdown the records of players under an effect are written straight to the store,
    /// but not while changes of the last ticks are unsaved: the records would carry them (a
    /// grant no one was told of) past a restart.
    #[test]
    fn effect_clocks_are_saved_at_shutdown_only_when_the_last_ticks_were() {
        let store = Arc::new(MemoryStore::default());
        let mut world = World::new();
        world.insert_resource(Store(Arc::clone(&store) as _));
        world.insert_resource(TickInfo { tick: 10, ..TickInfo::new(30) });
        world.init_resource::<HuntRules>();
        let effects = ActiveEffects(vec![ActiveEffect { id: "Haste".into(), stacks: 1, expires_at: 100 }]);
        let away = Stashed {
            inventory: Inventory::with_slots(4),
            pending: PendingRewards::default(),
            digging: Digging::default(),
            team: None,
            effects,
            pity: PityCounters::default(),
            claims_made: ClaimsMade::default(),
        };
        world.insert_resource(Stash([(7, away)].into_iter().collect()));
        let mut unsaved = Changes::default();
        unsaved.put(&"Veltrix:TreasureHunt/claims".into(), &1u32, &1u32);
        world.insert_resource(unsaved);

        save_effect_clocks(&mut world);
        assert!(store.read_all(PLAYERS).unwrap().is_empty(), "nothing written over unsaved changes");

        world.insert_resource(Changes::default());
        save_effect_clocks(&mut world);
        assert_eq!(store.read_all(PLAYERS).unwrap().len(), 1, "the away player's clock saved");
    }
}
