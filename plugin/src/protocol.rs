//! The mod's messages on the wire, in its namespace `Veltrix:TreasureHunt` (docs/protocol.md).
//! Keys are PascalCase, like the assets.

use serde::{Deserialize, Serialize};
use treasure_hunt_ecs::{assets::ClaimRule, loot::ItemStack, paths::Direction};

/// Client: dig at a tile (within reach of the player's position).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Dig {
    pub x: u32,
    pub y: u32,
}

/// Client: throw items away, to make room for pending rewards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Discard {
    pub item: String,
    pub quantity: u32,
}

/// Client: join a team (an empty name leaves it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JoinTeam {
    pub team: String,
}

/// Server, to the digger: effort so far on the vault under this tile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DigProgress {
    pub x: u32,
    pub y: u32,
    pub effort: u32,
    pub required: u32,
}

/// Server, to every player within the vault's sparkle radius: a vault was opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VaultDiscovered {
    pub vault: String,
    pub x: u32,
    pub y: u32,
    /// The player who opened it.
    pub by: String,
    pub claim: ClaimRule,
    /// Whether it was the vault's first opening.
    pub first: bool,
}

/// An item and a quantity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Stack {
    pub item: String,
    pub quantity: u32,
}

impl From<&ItemStack> for Stack {
    fn from(s: &ItemStack) -> Self {
        Stack { item: s.item.clone(), quantity: s.quantity }
    }
}

/// Server, to the claimant: the loot of a vault; `Pending` did not fit and waits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LootGranted {
    /// Its number in the hunt's event log.
    pub seq: u64,
    pub vault: String,
    pub items: Vec<Stack>,
    pub pending: Vec<Stack>,
}

/// Server, to the player: its inventory (one entry per slot, `null` when empty) and pending
/// rewards, after any change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InventoryChanged {
    pub slots: Vec<Option<Stack>>,
    pub pending: Vec<Stack>,
}

/// Server, to the player: items thrown away.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Discarded {
    pub item: String,
    pub quantity: u32,
}

/// Server, to the player: its team now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TeamChanged {
    pub team: Option<String>,
}

/// Client: the events of the running hunt numbered after `After` (the last `Seq` the client
/// saw; 0 for all), after a reconnect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CatchUp {
    pub after: u64,
}

/// Server, to every player: a FirstFinder vault was claimed, so it is closed to everyone (its
/// tile is not said).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VaultClaimed {
    /// Its number in the hunt's event log.
    pub seq: u64,
    pub vault: String,
    /// The player who opened it.
    pub by: String,
}

/// Server, answering CatchUp: the events after `After` were sent (each with its `Seq`); `Seq`
/// is the last event of the hunt so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CaughtUp {
    pub seq: u64,
}

/// Server, answering CatchUp when `After` is older than the events kept: the state instead of
/// the events. The inventory comes as InventoryChanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Snapshot {
    /// The last event of the hunt so far.
    pub seq: u64,
    /// The vaults opened so far, by id.
    pub opened: Vec<String>,
}

/// Client: the clue `Clue` (released to the player, or given on request). Text, Area and
/// Reveal are answered with `Clue`; HotCold and Compass with `Hint`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AskClue {
    pub clue: String,
}

/// Server: a clue, when it is released (to everyone, or to a player who came near), when an
/// area shrinks, to a player joining (each clue released to it so far), or answering
/// `AskClue`. Only the fields of its kind are present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Clue {
    pub clue: String,
    /// `Text`, `Area`, `HotCold`, `Compass` or `Reveal`.
    pub kind: String,
    /// Text: the language key and its text in the server's language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Area: the circle's centre and radius (tiles); Reveal: the vault's tile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radius: Option<f32>,
    /// Reveal: the vault's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<String>,
}

/// Server, to everyone: a hunt's life. `Event` is `Started`, `EndsSoon`, `Ended` or `Waiting`;
/// `Text` says it in words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HuntAnnounced {
    pub hunt: String,
    pub event: String,
    pub text: String,
    /// Started and EndsSoon: seconds until a timed end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_left: Option<u32>,
    /// Ended: the final leaderboard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_board: Option<Leaderboard>,
}

/// Client: this player's place on the leaderboard of the running hunt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Rank {}

/// One row of the leaderboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BoardRow {
    /// 1 for the leader; no two players share a rank.
    pub rank: u32,
    /// The player's name.
    pub player: String,
    pub vaults: u32,
    pub score: u64,
}

/// Server, to every player: the top of the leaderboard, when it changed (at most once a
/// second), and to a player joining while anyone is ranked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Leaderboard {
    /// The first `LeaderboardSize` players, in rank order.
    pub top: Vec<BoardRow>,
    /// How many players are ranked.
    pub players: u32,
}

/// Server, answering Rank: the player's place; `Rank` is nil when it is not ranked (it claimed
/// nothing yet).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct YourRank {
    pub rank: Option<u32>,
    /// How many players are ranked.
    pub of: u32,
    pub vaults: u32,
    pub score: u64,
}

/// Server, to the player who used a clue: a hint toward what the clue points at, measured along
/// walkable paths from where the player stood when it was answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Hint {
    /// The clue's id.
    pub clue: String,
    /// `"HotCold"` or `"Compass"`.
    pub kind: HintKind,
    /// HotCold: the band of the walking distance (`"Warm"`); nil for Compass.
    pub band: Option<String>,
    /// Compass: the first step of a shortest walk (`"NorthEast"`, North toward y = 0); nil for
    /// HotCold, and for Compass when the player stands on the spot.
    pub direction: Option<Direction>,
}

/// Which hint a [`Hint`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HintKind {
    HotCold,
    Compass,
}

/// Client: use one of an item held (consumed), for its effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UseItem {
    pub item: String,
}

/// Server, to the player: an effect it has now, started, refreshed or stacked (answering the
/// `UseItem` that granted it), or still active as it joins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EffectStarted {
    /// The effect's id.
    pub effect: String,
    pub stacks: u32,
    /// Ticks from this frame's tick to the tick whose frame brings `EffectEnded`.
    pub ticks: u64,
}

/// Server, to the player: an effect ran out (in this frame's tick).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EffectEnded {
    pub effect: String,
}

/// Server, to a holder of treasure sense: how many vaults it may still claim lie within the
/// sense's radius (never where).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TreasureSense {
    pub vaults: u32,
}

/// The wire as one unit: the messages clients may send and those the mod sends, by kind.
pub fn plugin(ctx: &mut veltrix_sdk::ModContext) {
    ctx.add_client_message::<Dig>("Dig")
        .add_client_message::<Discard>("Discard")
        .add_client_message::<JoinTeam>("JoinTeam")
        .add_client_message::<CatchUp>("CatchUp")
        .add_client_message::<AskClue>("AskClue")
        .add_client_message::<Rank>("Rank")
        .add_client_message::<UseItem>("UseItem")
        .add_server_message::<DigProgress>("DigProgress")
        .add_server_message::<VaultDiscovered>("VaultDiscovered")
        .add_server_message::<LootGranted>("LootGranted")
        .add_server_message::<InventoryChanged>("InventoryChanged")
        .add_server_message::<Discarded>("Discarded")
        .add_server_message::<TeamChanged>("TeamChanged")
        .add_server_message::<VaultClaimed>("VaultClaimed")
        .add_server_message::<CaughtUp>("CaughtUp")
        .add_server_message::<Snapshot>("Snapshot")
        .add_server_message::<Clue>("Clue")
        .add_server_message::<HuntAnnounced>("HuntAnnounced")
        .add_server_message::<Leaderboard>("Leaderboard")
        .add_server_message::<YourRank>("YourRank")
        .add_server_message::<Hint>("Hint")
        .add_server_message::<EffectStarted>("EffectStarted")
        .add_server_message::<EffectEnded>("EffectEnded")
        .add_server_message::<TreasureSense>("TreasureSense");
}
