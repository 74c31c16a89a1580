//! What the hunt's concerns share in the world: the assets in force, the running hunt and its
//! vaults, teams, the hunts' runs and the clock. Each concern reads these; none of them owns
//! them, so no concern imports another to reach them.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
};

use serde::{Deserialize, Serialize};
use veltrix_sdk::{PlayerId, prelude::*};

use crate::{
    model::assets::{ClaimRule, TilePos},
    model::loot::stable_hash,
    model::pack::{HuntAssets, PlacedVault},
    vocab::{Claimant, Reason},
};

/// The assets in force (replaced whole on a valid reload).
#[derive(Resource, Debug, Clone, Default)]
pub struct AssetsInForce(pub Arc<HuntAssets>);

/// The hunt being played: its id and seed. Absent when none runs.
#[derive(Resource, Debug, Clone, PartialEq, Eq)]
pub struct ActiveHunt {
    pub id: String,
    /// The seed of this run's loot ([`run_seed`]).
    pub seed: u64,
    /// The run's number: 1 for the hunt's first run.
    pub run: u32,
}

impl ActiveHunt {
    /// What the run's leaderboard is stored under: `<hunt id>#<run>`, so each run ranks anew.
    pub fn run_key(&self) -> String {
        run_key(&self.id, self.run)
    }
}

/// The key of run `run` of hunt `id` (see [`ActiveHunt::run_key`]).
pub fn run_key(id: &str, run: u32) -> String {
    format!("{id}#{run}")
}

/// Whether `key` is [`run_key`]`(id, run)`, compared without building it (the leaderboard asks
/// every tick).
pub fn is_run_key(key: &str, id: &str, run: u32) -> bool {
    key.strip_prefix(id).and_then(|rest| rest.strip_prefix('#')).is_some_and(|number| {
        // As `format!` writes a number: digits only, no leading zero.
        number.bytes().all(|b| b.is_ascii_digit())
            && (number.len() == 1 || !number.starts_with('0'))
            && number.parse() == Ok(run)
    })
}

/// A vault of the running hunt. Its tile is secret until it is opened. Shared: each claim of
/// it holds the definition too ([`Claim::vault`](crate::vocab::Claim::vault)), by reference,
/// not by a copy of its names.
#[derive(Component, Debug, Clone, PartialEq)]
pub struct Vault(pub Arc<PlacedVault>);

/// Who claimed a vault.
#[derive(Component, Debug, Clone, Default, PartialEq, Eq)]
pub struct VaultClaims {
    /// The first claimant's id and name.
    pub first: Option<(PlayerId, String)>,
    /// Every claim so far (for FirstFinder, only the first).
    pub claimed_by: BTreeSet<Claimant>,
}

/// Vaults by tile.
#[derive(Resource, Debug, Clone, Default)]
pub struct VaultIndex(pub HashMap<TilePos, Entity>);

/// A player's team, for vaults under the Team rule.
#[derive(Component, Debug, Clone, PartialEq, Eq)]
pub struct Team(pub String);

/// Why `player` may not claim the vault (again), or `None` when it may; a name in it is
/// borrowed (nothing is allocated to check: treasure sense checks every vault in its radius).
pub(crate) fn already_claimed<'a>(
    vault: &PlacedVault,
    claims: &'a VaultClaims,
    player: PlayerId,
    team: Option<&'a Team>,
) -> Option<Claimed<'a>> {
    let by_player = || claims.claimed_by.contains(&Claimant::Player(player)).then_some(Claimed::ByYou);
    match vault.claim {
        ClaimRule::FirstFinder => claims.first.as_ref().map(|(_, name)| Claimed::FirstBy(name)),
        ClaimRule::PerPlayer | ClaimRule::FirstFinderThenPerPlayer => by_player(),
        // The player's own claim counts too: changing teams does not open a vault again.
        ClaimRule::Team => match team {
            // Teams sort after players: from the first team on, without building a claimant.
            Some(team)
                if claims
                    .claimed_by
                    .range(Claimant::Team(String::new())..)
                    .any(|c| matches!(c, Claimant::Team(t) if *t == team.0)) =>
            {
                Some(Claimed::ByYourTeam(&team.0))
            }
            _ => by_player(),
        },
    }
}

/// Why a player may not claim a vault (again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claimed<'a> {
    /// A FirstFinder vault, opened first by this player (its name).
    FirstBy(&'a str),
    /// The player opened it before.
    ByYou,
    /// The player's team (this one) opened it.
    ByYourTeam(&'a str),
}

impl Claimed<'_> {
    /// The refusal, in words.
    pub(crate) fn reason(self) -> Reason {
        match self {
            Claimed::FirstBy(name) => format!("already claimed: {name} opened this vault first").into(),
            Claimed::ByYou => "already claimed: you opened this vault before".into(),
            Claimed::ByYourTeam(team) => format!("already claimed: your team {team} opened this vault").into(),
        }
    }
}

/// Wall-clock time in milliseconds since the Unix epoch, as of this tick. The ECS reads no
/// clock: the mod sets this before each tick (tests set it from the tick number).
#[derive(Resource, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HuntClock {
    pub unix_ms: i64,
}

/// Where a hunt is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Not running: waiting for its schedule or a command.
    Scheduled,
    Active,
    /// Its last run is over (runs before the last are archived in [`HuntRun::archived`]).
    Ended,
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EndReason {
    /// Every FirstFinder vault was claimed.
    AllClaimed,
    TimeUp,
    /// `hunt stop`.
    Stopped,
}

/// A hunt's state, stored with the hunt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HuntRun {
    pub phase: Phase,
    /// The number of the current (or last) run; 0 before the first.
    pub run: u32,
    pub started_ms: Option<i64>,
    /// When the run ends by time, if it does.
    pub ends_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    pub end_reason: Option<EndReason>,
    /// End warnings given this run: bit 0 at 60 s, bit 1 at 10 s.
    pub warned: u8,
    /// A scheduled start waiting for players: the online count last announced.
    pub waiting_announced: Option<u32>,
    /// Earlier runs, oldest first.
    pub archived: Vec<ArchivedRun>,
}

impl Default for HuntRun {
    fn default() -> Self {
        Self {
            phase: Phase::Scheduled,
            run: 0,
            started_ms: None,
            ends_ms: None,
            ended_ms: None,
            end_reason: None,
            warned: 0,
            waiting_announced: None,
            archived: Vec::new(),
        }
    }
}

/// A past run, kept after the hunt runs again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchivedRun {
    pub run: u32,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    pub end_reason: Option<EndReason>,
}

/// Every hunt's state, by hunt id. Hunts of the pack without an entry are Scheduled.
#[derive(Resource, Debug, Clone, Default, PartialEq)]
pub struct HuntRuns(pub BTreeMap<String, HuntRun>);

/// The loot seed of run `run` of a hunt seeded `seed`: the first run uses the hunt's seed,
/// later runs a seed derived from it, so each run rolls new loot, alike on every server.
pub fn run_seed(seed: u64, run: u32) -> u64 {
    if run <= 1 { seed } else { stable_hash(seed, "run", u64::from(run)) }
}
