//! The words the hunt's systems share: their sets, the requests players make, the outcomes
//! the systems write, and why a request is refused.
//!
//! Systems never send to players: they write outcome messages ([`DigOutcome`],
//! [`ClaimOutcome`], [`LootGranted`], [`InventoryChanged`], ...) that the mod turns into
//! protocol messages after the sets. That keeps the hunt free of I/O and its systems free of
//! the one shared outbox, so bevy can run them side by side.
//!
//! This module sits below every concern (digging, effects, clues, hints, the leaderboard, the
//! lifecycle): each may read and write these messages without importing another concern.

use std::{borrow::Cow, fmt, sync::Arc};

use veltrix_sdk::{
    PlayerId,
    bevy_ecs::{message::Message, schedule::SystemSet},
    prelude::*,
};

use crate::{
    model::assets::TilePos,
    model::loot::{ItemStack, stable_hash},
    model::pack::PlacedVault,
};

/// The hunt's system sets, run in this order in `Tick`.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HuntSet {
    Input,
    Claim,
    Loot,
    Deliver,
}

// ---- input messages (written by the mod from its clients' messages) ----

/// A player digs at a tile.
#[derive(Message, Debug, Clone, PartialEq)]
pub struct DigRequest {
    pub entity: Entity,
    pub player: PlayerId,
    pub request: Option<u32>,
    pub at: TilePos,
}

/// A player throws items away (to make room).
#[derive(Message, Debug, Clone, PartialEq)]
pub struct DiscardRequest {
    pub entity: Entity,
    pub player: PlayerId,
    pub request: Option<u32>,
    pub item: String,
    pub quantity: u32,
}

/// A player joins a team (an empty name leaves it).
#[derive(Message, Debug, Clone, PartialEq)]
pub struct TeamRequest {
    pub entity: Entity,
    pub player: PlayerId,
    pub request: Option<u32>,
    pub team: String,
}

/// A refused request: who, which request, why (a sentence the player reads).
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub player: PlayerId,
    pub request: Option<u32>,
    pub reason: Reason,
}

/// Why a request was refused: a sentence the player reads ([`fmt::Display`]). The refusals a
/// busy hunt makes all the time (digs that find nothing) keep their figures and are put in
/// words as they are sent, into the outbox's own buffer: refusing allocates nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// The sentence itself.
    Text(Cow<'static, str>),
    /// A dig at a ground tile with no vault under it.
    NothingHere(TilePos),
    /// A dig at a tile that is not ground (`None`: outside the world).
    NotGround(TilePos, Option<Tile>),
    /// A dig at a tile farther than the player reaches.
    OutOfReach { at: TilePos, distance: f32, reach: f32 },
}

impl From<&'static str> for Reason {
    fn from(text: &'static str) -> Self {
        Reason::Text(Cow::Borrowed(text))
    }
}

impl From<String> for Reason {
    fn from(text: String) -> Self {
        Reason::Text(Cow::Owned(text))
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Text(text) => f.write_str(text),
            Reason::NothingHere(at) => write!(f, "nothing here: you dig at ({}, {}) and find only earth", at.x, at.y),
            Reason::NotGround(at, Some(tile)) => write!(f, "nothing to dig: the tile ({}, {}) is {tile:?}", at.x, at.y),
            Reason::NotGround(at, None) => {
                write!(f, "nothing to dig: the tile ({}, {}) is outside the world", at.x, at.y)
            }
            Reason::OutOfReach { at, distance, reach } => write!(
                f,
                "out of reach: the tile ({}, {}) is {distance:.1} tiles from you; you reach {reach:.1}",
                at.x, at.y
            ),
        }
    }
}

/// Who a claim counts against: a player, or the player's team under the Team rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum Claimant {
    Player(PlayerId),
    Team(String),
}

impl Claimant {
    /// The claimant part of the loot seed: the same claimant rolls the same loot.
    pub(crate) fn seed(&self) -> u64 {
        match self {
            Claimant::Player(id) => *id,
            Claimant::Team(name) => stable_hash(0, name, u64::MAX),
        }
    }
}

/// What a dig did.
#[derive(Message, Debug, Clone, PartialEq)]
pub enum DigOutcome {
    /// Effort added; the vault is not open yet. Both in whole digs at normal speed (`effort`
    /// rounded down).
    Progress {
        player: PlayerId,
        request: Option<u32>,
        at: TilePos,
        effort: u32,
        required: u32,
    },
    /// The player's effort reached the vault's: a claim for [`resolve_claims`].
    Finished {
        arrival: u32,
        entity: Entity,
        player: PlayerId,
        request: Option<u32>,
        vault: Entity,
    },
    Refused(Refused),
}

/// What a finished dig claimed.
#[derive(Message, Debug, Clone, PartialEq)]
pub enum ClaimOutcome {
    Claimed(Claim),
    Refused(Refused),
}

/// One claim of one vault.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    /// The claimant's entity; `Entity::PLACEHOLDER` for a claim made on another server
    /// ([`Claim::made_elsewhere`]).
    pub entity: Entity,
    pub player: PlayerId,
    pub player_name: String,
    pub request: Option<u32>,
    pub vault: Arc<PlacedVault>,
    pub claimant: Claimant,
    /// The table rolled: the vault's loot table, or its consolation table after the first finder.
    pub table: String,
    /// Whether this is the vault's first claim.
    pub first: bool,
    /// Whether the players here were told of the vault's opening already: a first claim made
    /// after the news of it (on a server that shares its hunt, for a player whose claim was
    /// decided for a shard that did not save it), whose loot alone is new.
    pub opening_told: bool,
}

impl Claim {
    /// Whether the claim was made on another server sharing the hunt: its player is not here
    /// (no loot, and its player id is that server's).
    pub fn made_elsewhere(&self) -> bool {
        self.entity == Entity::PLACEHOLDER
    }
}

/// Loot a claim yielded: what went into the inventory now, and what waits in pending rewards.
#[derive(Message, Debug, Clone, PartialEq)]
pub struct LootGranted {
    pub player: PlayerId,
    pub request: Option<u32>,
    pub vault: String,
    pub items: Vec<ItemStack>,
    pub pending: Vec<ItemStack>,
}

/// A player's inventory or pending rewards changed this tick.
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
pub struct InventoryChanged {
    pub entity: Entity,
    pub player: PlayerId,
}

/// What a discard did.
#[derive(Message, Debug, Clone, PartialEq)]
pub enum DiscardOutcome {
    Discarded { player: PlayerId, request: Option<u32>, item: String, quantity: u32 },
    Refused(Refused),
}

/// What a team request did.
#[derive(Message, Debug, Clone, PartialEq)]
pub enum TeamOutcome {
    Joined { player: PlayerId, request: Option<u32>, team: Option<String> },
    Refused(Refused),
}
