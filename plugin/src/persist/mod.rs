//! The hunt in the store: what it writes each tick (through the host's per-tick commit, saved
//! before announced) and what it reads back after a restart.
//!
//! | table | key | value |
//! |---|---|---|
//! | `Veltrix:TreasureHunt/players` | player id | inventory slots, pending rewards, team, dig effort by vault id, active effects (ticks left), pity counters |
//! | `Veltrix:TreasureHunt/claims` | (hunt id, vault id) | first finder, every claimant |
//! | `Veltrix:TreasureHunt/hunts` | hunt id | seed, next event sequence number, its life (phase, run, start, end, archived runs), clues released to everyone this run |
//! | `Veltrix:TreasureHunt/clues` | (player id, hunt id, run) | the proximity clues released to the player |
//! | `Veltrix:TreasureHunt/events` | (hunt id, sequence) | tick and what happened (a vault opened, loot granted); the last `RetainedEvents` |
//! | `Veltrix:TreasureHunt/scores` | (`<hunt id>#<run>`, player id) | the player's leaderboard entry: name, vaults, score, last find (kept after the hunt) |
//! | `Veltrix:TreasureHunt/boards` | hunt id | the final board of an ended hunt: its top `LeaderboardSize`, how many were ranked |
//!
//! Keys and values are MessagePack (values as maps with field names, so fields can be added).
//! A player's record is written in every tick that changed it; a returning player's record and
//! proximity clues are read when it joins, not at start, so start time does not grow with the
//! players ever seen.
//!
//! Effects are stored with the ticks they had left when the record was written, and restored
//! relative to the tick the player joins in after a restart. At shutdown the records of the
//! players (online or away) with active effects are written once more, so a restart keeps the
//! time left when the server stopped; after a crash, the time left at the last write counts.
//!
//! In modules: `tables` (their names), `records` (what is stored), `players`, `clues`, `hunts` (claims,
//! the hunts' records and the event log) and `scores`. Their items are named here.

mod clues;
mod hunts;
mod players;
mod records;
mod scores;
mod tables;

pub use self::{
    clues::{migrate_clue_keys, restore_clues, save_clues},
    hunts::{
        CatchUp, EventLog, HuntLog, HuntRecordSources, LogPositions, Logged, active_run, events_since, last_ended_run,
        log_events, point_log_at, restore_hunt, restore_runs, save_claims, save_hunts,
    },
    players::{ChangedPlayers, player_record_reads, restore_players, save_effect_clocks, save_players},
    records::{ClaimRecord, EventRecord, FinalBoard, HuntEvent, HuntRecord, PlayerRecord, ScoreRecord, StoredEffect},
    scores::{restore_board, save_scores},
    tables::{BOARDS, CLAIMS, CLUES, EVENTS, HUNTS, PLAYERS, SCORES, Tables},
};
use veltrix_sdk::prelude::*;

/// Persistence as one unit: its tables, log and message now; a returning player's record read
/// before the hunt's input, and the tick's changes saved after the hunt, once the mod has
/// started.
pub fn plugin(ctx: &mut ModContext, retained_events: u64) {
    let world = ctx.world_mut();
    world.init_resource::<Tables>();
    world.init_resource::<LogPositions>();
    world.insert_resource(HuntLog { hunt: String::new(), next_seq: 1, retained: retained_events.max(1) });
    veltrix_sdk::bevy_ecs::message::MessageRegistry::register_message::<Logged>(world);
    // A player whose record cannot be read is refused before joining: nothing is saved over it.
    ctx.add_join_check(player_record_reads);
    // Keyed by player id first: a player's records follow it between servers sharing the hunt.
    ctx.world_mut().get_resource_or_init::<veltrix_sdk::PlayerTables>().0.extend([PLAYERS.into(), CLUES.into()]);
    ctx.add_systems(Tick, (restore_players, restore_clues).before(treasure_hunt_ecs::hunt::HuntSet::Input))
        .add_systems(
            Tick,
            (save_players, save_claims, log_events, save_hunts, save_clues, save_scores)
                .chain()
                .in_set(crate::sets::AfterHunt::Save),
        );
}
