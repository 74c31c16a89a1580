//! The hunt's rules, from the mod's config.

use veltrix_sdk::prelude::*;

/// Rules from the mod's config.
#[derive(Resource, Debug, Clone, PartialEq)]
pub struct HuntRules {
    /// How far from a player's position (to the tile's centre) a dig reaches, in tiles.
    pub reach: f32,
    /// Inventory slots per player.
    pub inventory_slots: usize,
}

impl Default for HuntRules {
    fn default() -> Self {
        Self { reach: 3.0, inventory_slots: 24 }
    }
}
