//! The treasure hunt's messages on the wire, in the mod's namespace [`NAMESPACE`]
//! (docs/protocol.md, "The treasure hunt's messages"). Keys are PascalCase, like the assets.
//!
//! Plain data with serde, and nothing of the sdk or bevy_ecs: the mod (`treasure-hunt`, which
//! registers these kinds), clients, the integration tests and the bot swarm share these types
//! without linking the mod. The few words of the hunt's model that messages carry
//! ([`ClaimRule`], [`ItemStack`], [`Direction`]) live here too, in [`vocab`]; the model
//! (`treasure-hunt-ecs`) names them where it always has (`assets::ClaimRule`,
//! `loot::ItemStack`, `paths::Direction`).

use serde::{Deserialize, Serialize};

pub mod vocab;

pub use vocab::{ClaimRule, Direction, ItemStack};

/// The mod's namespace: every message here travels as a mod message of this namespace, its
/// kind being the type's name (`Dig`, `LootGranted`, ...).
pub const NAMESPACE: &str = "Veltrix:TreasureHunt";

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

#[cfg(test)]
mod tests {
    use veltrix_protocol::encode_value;

    use super::*;

    fn encoded<T: Serialize>(value: &T) -> Vec<u8> {
        let mut out = Vec::new();
        encode_value(value, &mut out);
        out
    }

    /// The `Dig` body of docs/protocol.md ("The treasure hunt's messages"), byte for byte.
    #[test]
    fn dig_encodes_as_the_protocol_doc_shows() {
        let bytes = encoded(&Dig { x: 257, y: 256 });
        assert_eq!(bytes, [0x82, 0xa1, b'X', 0xcd, 0x01, 0x01, 0xa1, b'Y', 0xcd, 0x01, 0x00]);
    }

    /// Whether `bytes` hold `text` as a MessagePack fixstr.
    fn holds_str(bytes: &[u8], text: &str) -> bool {
        let mut want = vec![0xa0 | text.len() as u8];
        want.extend_from_slice(text.as_bytes());
        bytes.windows(want.len()).any(|w| w == want)
    }

    /// The model's words travel by name: a claim rule, a direction and a hint's kind are strs.
    #[test]
    fn the_models_words_travel_by_name() {
        let hint =
            Hint { clue: "Gulls".into(), kind: HintKind::Compass, band: None, direction: Some(Direction::NorthEast) };
        let bytes = encoded(&hint);
        assert!(holds_str(&bytes, "Compass") && holds_str(&bytes, "NorthEast"), "{bytes:02x?}");
        let discovered = VaultDiscovered {
            vault: "Ruin_5".into(),
            x: 1,
            y: 2,
            by: "alice".into(),
            claim: ClaimRule::FirstFinderThenPerPlayer,
            first: true,
        };
        assert!(holds_str(&encoded(&discovered), "FirstFinderThenPerPlayer"));
    }
}
