//! The leaderboard for players and for the hunt's lifecycle: its top sent to everyone when it
//! changes (at most once a second) and to players joining, each player's rank on request, and
//! the final board of a hunt that ended, kept in the store.
//!
//! The ranking itself is `treasure_hunt_ecs::leaderboard`; its entries are saved each tick by
//! `persist::save_scores`.

use std::collections::BTreeMap;

use treasure_hunt_ecs::{
    hunt::{ActiveHunt, run_key},
    leaderboard::{BoardChanged, BoardEntry, Leaderboard, LeaderboardRules, final_board, ranks_of},
    lifecycle::HuntRuns,
};
use veltrix_sdk::{Changes, Store, StoreError, prelude::*};

use crate::{
    persist::{BOARDS, FinalBoard, Tables},
    protocol,
};

/// The final boards of the hunts that ended while the server runs, by hunt id (the store holds
/// them all).
#[derive(Resource, Debug, Clone, Default)]
pub struct FinalBoards(pub BTreeMap<String, FinalBoard>);

/// The board on the wire.
pub fn message(top: &[BoardEntry], players: u32) -> protocol::Leaderboard {
    protocol::Leaderboard {
        top: top
            .iter()
            .map(|e| protocol::BoardRow { rank: e.rank, player: e.name.clone(), vaults: e.vaults, score: e.score })
            .collect(),
        players,
    }
}

/// Tick, after the hunt's other messages: the board to everyone when it changed (one broadcast,
/// encoded once); otherwise to each player who joined this tick, when anyone is ranked; then
/// the answers to `Rank`.
pub fn publish_board(
    mut changed: MessageReader<BoardChanged>,
    mut requests: MessageReader<FromClient<protocol::Rank>>,
    joined: Query<&Player, Added<Player>>,
    board: Res<Leaderboard>,
    rules: Res<LeaderboardRules>,
    mut outbox: ResMut<Outbox>,
) {
    // At most one a tick; the last is the one in force.
    if let Some(change) = changed.read().last() {
        outbox.send(Audience::All, &message(&change.top, change.players));
    } else if rules.size > 0 && !board.is_empty() && !joined.is_empty() {
        let board_now = message(&final_board(&board, rules.size), board.len() as u32);
        for player in &joined {
            outbox.send(Audience::Player(player.id), &board_now);
        }
    }
    if requests.is_empty() {
        return;
    }
    if board.hunt().is_none() {
        for r in requests.read() {
            outbox.refuse(r.player, r.request, "no hunt is running: there is no leaderboard yet");
        }
        return;
    }
    // One walk down the board for all of the tick's requests.
    let asked: Vec<(PlayerId, Option<u32>)> = requests.read().map(|r| (r.player, r.request)).collect();
    let players: Vec<PlayerId> = asked.iter().map(|(p, _)| *p).collect();
    for ((player, request), rank) in asked.into_iter().zip(ranks_of(&board, &players)) {
        let answer = match rank {
            Some(rank) => protocol::YourRank {
                rank: Some(rank.rank),
                of: rank.of,
                vaults: rank.entry.vaults,
                score: rank.entry.score,
            },
            None => protocol::YourRank { rank: None, of: board.len() as u32, vaults: 0, score: 0 },
        };
        outbox.reply(player, request, &answer);
    }
}

/// Ends the leaderboard of hunt `hunt`: its top `LeaderboardSize` and how many were ranked
/// become the hunt's final board, saved in the store (in this tick's commit) and kept in
/// [`FinalBoards`]. Every entry stays in the scores table. The board itself stays as it is
/// (players may still ask their rank) until another hunt starts.
///
/// Refused when the board is another hunt's.
pub fn freeze(world: &mut World, hunt: &str) -> Result<FinalBoard, String> {
    let run = world.get_resource::<HuntRuns>().and_then(|r| r.0.get(hunt)).map_or(1, |r| r.run);
    let key = run_key(hunt, run);
    let board = world.resource::<Leaderboard>();
    let running = world.get_resource::<ActiveHunt>().is_some_and(|a| a.id == hunt);
    let frozen = match board.hunt() {
        Some(id) if id == key => {
            let size = world.resource::<LeaderboardRules>().size;
            FinalBoard { top: final_board(board, size), players: board.len() as u32 }
        }
        // The hunt runs but no tick counted anything yet: an empty board.
        _ if running => FinalBoard { top: Vec::new(), players: 0 },
        Some(id) => return Err(format!("the leaderboard is hunt {id}'s, not {hunt}'s")),
        None => return Err(format!("hunt {hunt} has no leaderboard: it is not running")),
    };
    let tables = world.resource::<Tables>().clone();
    if let Some(mut changes) = world.get_resource_mut::<Changes>() {
        changes.put(&tables.boards, hunt, &frozen);
    }
    world.get_resource_or_init::<FinalBoards>().0.insert(hunt.to_string(), frozen.clone());
    Ok(frozen)
}

/// The final board of hunt `hunt`, when it ended: from this run, or from the store. The store
/// is read on the tick thread only for `hunt status` of a hunt ended in an earlier run: one
/// point read per command, run by the console or a player holding its permission.
pub fn final_board_of(world: &World, hunt: &str) -> Result<Option<FinalBoard>, StoreError> {
    if let Some(frozen) = world.get_resource::<FinalBoards>().and_then(|f| f.0.get(hunt)) {
        return Ok(Some(frozen.clone()));
    }
    let Some(store) = world.get_resource::<Store>() else { return Ok(None) };
    let key = veltrix_sdk::rmp_serde::to_vec(hunt).expect("keys serialise");
    match store.0.get(BOARDS, &key)? {
        Some(bytes) => veltrix_sdk::rmp_serde::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError(format!("table {BOARDS}: the final board of hunt {hunt} does not decode: {e}"))),
        None => Ok(None),
    }
}

/// The board's publishing as one unit: the final boards now, the board sent last in the tick.
pub fn plugin(ctx: &mut ModContext) {
    ctx.world_mut().init_resource::<FinalBoards>();
    ctx.add_systems(Tick, publish_board.in_set(crate::sets::AfterHunt::Board));
}
