//! The leaderboard in the store: a run's entries read back, the changed ones written each tick.

use treasure_hunt_ecs::{
    hunt::run_key,
    leaderboard::{Entry, Leaderboard},
};
use veltrix_sdk::{Changes, PlayerId, Store, StoreError, prelude::*, tracing};

use super::{
    records::{ScoreRecord, ScoreRecordRef},
    tables::{SCORES, Tables},
};

/// The leaderboard of run `run` of hunt `hunt` from the store, with the entries saved for it
/// (none for a new run). Called at start for the running hunt, after [`restore_hunt`](super::restore_hunt), or for
/// the hunt that ended last ([`last_ended_run`](super::last_ended_run): its board stays until another starts).
pub fn restore_board(world: &mut World, store: &Store, hunt: &str, run: u32) -> Result<(), StoreError> {
    let key = run_key(hunt, run);
    let records: Vec<((String, PlayerId), ScoreRecord)> =
        store.load_range(SCORES, &(key.clone(), 0), &(key.clone(), PlayerId::MAX))?;
    let mut board = world.remove_resource::<Leaderboard>().unwrap_or_default();
    board.start(key);
    let restored = records.len();
    for ((_, player), r) in records {
        board.restore(
            player,
            Entry { name: r.name, vaults: r.vaults, score: r.score, last_find_tick: r.last_find_tick },
        );
    }
    world.insert_resource(board);
    if restored > 0 {
        tracing::info!(
            "hunt {hunt}: {restored} leaderboard entr{} restored from the store",
            if restored == 1 { "y" } else { "ies" }
        );
    }
    Ok(())
}

/// Tick, after the leaderboard: writes the entries that changed this tick.
pub fn save_scores(tables: Res<Tables>, mut board: ResMut<Leaderboard>, mut changes: ResMut<Changes>) {
    if !board.has_changes() {
        return;
    }
    let changed = board.take_changed();
    // Without a hunt, there is nothing to save the changes to: they are forgotten.
    let Some(hunt) = board.hunt() else { return };
    for player in changed {
        let Some(e) = board.entry(player) else { continue };
        let record =
            ScoreRecordRef { name: &e.name, vaults: e.vaults, score: e.score, last_find_tick: e.last_find_tick };
        changes.put(&tables.scores, &(hunt, player), &record);
    }
}
