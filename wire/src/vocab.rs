//! The words of the hunt's model that its messages carry: who may claim a vault, a direction
//! of a step, items and how many. The model (`treasure-hunt-ecs`) re-exports each where it
//! always stood: `assets::ClaimRule`, `paths::Direction` (and `model::distance`),
//! `loot::ItemStack`. With the feature `schema`, the two an asset may name derive their JSON
//! Schema.

use serde::{Deserialize, Serialize};

/// Who may claim a vault.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum ClaimRule {
    /// Claimed once, worldwide: the first to finish digging takes the loot.
    #[default]
    FirstFinder,
    /// Each player claims it once, with loot of their own.
    PerPlayer,
    /// The first finder rolls `LootTable`, everyone after them `ConsolationTable`, once each.
    FirstFinderThenPerPlayer,
    /// Each team claims it once (a player without a team is a team of one).
    Team,
}

/// One of the eight directions of a step, North being toward y = 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Direction {
    North,
    NorthEast,
    East,
    SouthEast,
    South,
    SouthWest,
    West,
    NorthWest,
}

impl Direction {
    /// Every direction, clockwise from North: the order ties are broken in.
    pub const ALL: [Direction; 8] = [
        Direction::North,
        Direction::NorthEast,
        Direction::East,
        Direction::SouthEast,
        Direction::South,
        Direction::SouthWest,
        Direction::West,
        Direction::NorthWest,
    ];

    /// The step in tiles (dx, dy).
    pub fn offset(self) -> (i32, i32) {
        match self {
            Direction::North => (0, -1),
            Direction::NorthEast => (1, -1),
            Direction::East => (1, 0),
            Direction::SouthEast => (1, 1),
            Direction::South => (0, 1),
            Direction::SouthWest => (-1, 1),
            Direction::West => (-1, 0),
            Direction::NorthWest => (-1, -1),
        }
    }

    /// Whether the step changes both x and y.
    pub fn is_diagonal(self) -> bool {
        let (dx, dy) = self.offset();
        dx != 0 && dy != 0
    }
}

/// Items and how many: what a roll yields, merged by item in order of first appearance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemStack {
    pub item: String,
    pub quantity: u32,
}
