//! The proximity clues released to each player. Keyed (player id, hunt id, run), they are one
//! player's records like its inventory: read as the player joins, written in the tick that
//! released one, and on servers sharing a hunt handed to the next server the player joins.

use std::sync::Arc;

use treasure_hunt_ecs::{
    clues::{ClueOutcome, ClueReleases},
    hunt::ActiveHunt,
};
use veltrix_sdk::{Changes, PlayerId, ReplacedPlayers, Store, StoreError, prelude::*, tracing};

use super::tables::{CLUES, Tables};

/// At start: rewrites the clue records of a store written before they were keyed by player
/// first, (hunt id, run, player id), under their keys now; one transaction, so a crash leaves
/// either form whole.
pub fn migrate_clue_keys(store: &Store) -> Result<(), StoreError> {
    // A key then was an array of three whose first element is a string (MessagePack
    // 0xa0..=0xbf, 0xd9..=0xdb); now it is the id, an unsigned integer.
    let old = store.0.read_range(CLUES, &[0x93, 0xa0], &[0x93, 0xdc])?;
    let mut changes = Changes::default();
    let table: Arc<str> = CLUES.into();
    for (key, value) in &old {
        let Ok((hunt, run, player)) = veltrix_sdk::rmp_serde::from_slice::<(String, u32, PlayerId)>(key) else {
            continue;
        };
        changes.delete(&table, &(&hunt, run, player));
        let clues: Vec<String> = veltrix_sdk::rmp_serde::from_slice(value)
            .map_err(|e| StoreError(format!("table {CLUES}: the value of a key does not decode: {e}")))?;
        changes.put(&table, &(player, &hunt, run), &clues);
    }
    if changes.is_empty() {
        return Ok(());
    }
    store.0.commit(changes.writes())?;
    tracing::info!("rekeyed {} clue record(s) by player", old.len());
    Ok(())
}

/// Tick, before the hunt's input: a joining player's proximity clues of the running run, read
/// from the store unless this server holds them already this run, and read again when the
/// player's records just came from another server. One point read on the tick thread per
/// such join (the host admits at most MaxPlayers).
pub fn restore_clues(
    (store, replaced): (Option<Res<Store>>, Option<Res<ReplacedPlayers>>),
    joining: Query<&Player, Added<Player>>,
    hunt: Option<Res<ActiveHunt>>,
    mut releases: ResMut<ClueReleases>,
) {
    let (Some(store), Some(hunt)) = (store, hunt) else { return };
    for player in &joining {
        let replaced = replaced.as_ref().is_some_and(|r| r.0.contains(&player.id));
        if !replaced && releases.to_player.contains_key(&player.id) {
            continue;
        }
        let stored = super::players::stored::<Vec<String>>(&store, CLUES, &(player.id, &hunt.id, hunt.run));
        // Not a change the hunts' records are written for: those hold the clues given to all.
        let to_player = &mut releases.bypass_change_detection().to_player;
        match stored {
            Ok(Some(clues)) => {
                to_player.insert(player.id, clues.into_iter().collect());
            }
            Ok(None) => {
                if replaced {
                    to_player.remove(&player.id);
                }
            }
            // Released again as the player comes near: a clue, not a reward.
            Err(e) => tracing::error!("player {} ({}): its proximity clues: {e}", player.name, player.id),
        }
    }
}

/// Tick, after the hunt: writes the proximity clues of each player who was given one.
pub fn save_clues(
    tables: Res<Tables>,
    hunt: Option<Res<ActiveHunt>>,
    releases: Res<ClueReleases>,
    mut outcomes: MessageReader<ClueOutcome>,
    mut changes: ResMut<Changes>,
) {
    for outcome in outcomes.read() {
        if let (ClueOutcome::ReleasedTo { player, .. }, Some(hunt)) = (outcome, &hunt) {
            let clues: Vec<&String> = releases.to_player.get(player).into_iter().flatten().collect();
            changes.put(&tables.clues, &(player, &hunt.id, hunt.run), &clues);
        }
    }
}
