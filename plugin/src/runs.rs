//! A hunt's runs in the mod: the lifecycle of `treasure-hunt-ecs`, plus the final leaderboard
//! kept at each end (whether by claims, by time or by `hunt stop`).

use treasure_hunt_ecs::{
    hunt::{ActiveHunt, Vault, VaultClaims},
    lifecycle::{self, EndReason},
};
use veltrix_sdk::{prelude::*, tracing};

use crate::{leaderboard, persist::FinalBoard};

/// PreTick, after the clock: starts, warns and ends runs; a run that ended gets its final board.
pub fn drive_runs(
    world: &mut World,
    vaults: &mut QueryState<(&'static Vault, &'static VaultClaims)>,
    players: &mut QueryState<&'static Player>,
) {
    let run_before = world.get_resource::<ActiveHunt>().map(|a| a.run);
    lifecycle::drive_lifecycle(world, vaults, players);
    if run_before.is_some() && world.get_resource::<ActiveHunt>().is_none() {
        // The run ended this tick (a new one cannot start in the same call).
        if let Some((id, _)) = crate::persist::last_ended_run(world) {
            keep_final_board(world, &id);
        }
    }
}

/// Ends the running hunt `id` now (`hunt stop`), keeping its final board.
pub fn stop(world: &mut World, id: &str) -> Result<String, String> {
    end(world, id, EndReason::Stopped)
}

/// Ends the running hunt `id` now for `reason`, keeping its final board.
pub fn end(world: &mut World, id: &str, reason: EndReason) -> Result<String, String> {
    let text = lifecycle::end_run(world, id, reason)?;
    keep_final_board(world, id);
    Ok(text)
}

fn keep_final_board(world: &mut World, id: &str) {
    if let Err(e) = leaderboard::freeze(world, id) {
        // Nothing was ranked in this run: its final board is empty.
        tracing::debug!("hunt {id}: {e}");
        let empty = FinalBoard { top: Vec::new(), players: 0 };
        world.get_resource_or_init::<leaderboard::FinalBoards>().0.insert(id.to_string(), empty);
    }
}
