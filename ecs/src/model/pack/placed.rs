//! What a checked pack is: its sources by kind, and the hunts with their vaults and clues
//! placed.

use std::collections::BTreeMap;

use veltrix_sdk::assets::AssetSource;

use crate::model::{
    assets::{ClaimRule, ClueKind, ClueTrigger, DropTable, Effect, HeatBand, Hunt, Item, Rarity, TilePos},
    lang::Languages,
    loot::RareEntries,
};

/// The files of a pack, by kind.
#[derive(Debug, Clone, Default)]
pub struct PackSources {
    pub items: Vec<AssetSource>,
    pub drops: Vec<AssetSource>,
    pub hunts: Vec<AssetSource>,
    pub effects: Vec<AssetSource>,
    /// Language files (`Languages/<locale>/*.lang`; each source's kind is `Languages/<locale>`).
    pub languages: Vec<AssetSource>,
}

/// A checked pack: items, loot tables, effects and hunts with their vaults placed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HuntAssets {
    pub items: BTreeMap<String, Item>,
    pub drops: BTreeMap<String, DropTable>,
    pub hunts: BTreeMap<String, PlacedHunt>,
    pub languages: Languages,
    pub effects: BTreeMap<String, Effect>,
    /// Per loot table, the entries that can yield a Rare-or-better item (luck and pity boost
    /// them).
    pub rare_entries: BTreeMap<String, RareEntries>,
}

impl HuntAssets {
    /// Whether the item is Rare or better (an unknown item is not).
    pub fn is_rare(&self, item: &str) -> bool {
        self.items.get(item).is_some_and(|i| i.rarity >= Rarity::Rare)
    }
}

/// A hunt with every vault on its tile.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacedHunt {
    pub id: String,
    pub def: Hunt,
    pub vaults: Vec<PlacedVault>,
    pub clues: Vec<PlacedClue>,
}

/// A clue of a hunt, its vault found.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacedClue {
    pub id: String,
    pub vault: String,
    /// The vault's tile.
    pub at: TilePos,
    pub trigger: ClueTrigger,
    pub kind: ClueKind,
    /// An Area clue's centre: off the vault by a distance and angle drawn from the hunt's seed
    /// and the clue's id, within the circle's final radius, so the vault is always inside.
    pub centre: Option<(f32, f32)>,
    /// A HotCold clue's bands: its own, or the default ones (empty for other kinds).
    pub bands: Vec<HeatBand>,
}

/// One vault of a hunt, on its tile.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacedVault {
    pub id: String,
    pub at: TilePos,
    pub loot_table: String,
    pub consolation_table: Option<String>,
    pub dig_effort: u32,
    pub claim: ClaimRule,
    pub sparkle_radius: f32,
}

impl HuntAssets {
    /// What differs from `old`, one line per asset (`Drops/Jackpot changed`), for the reload log.
    pub fn changes_since(&self, old: &HuntAssets) -> Vec<String> {
        let mut out = Vec::new();
        diff("Item/Items", &old.items, &self.items, &mut out);
        diff("Drops", &old.drops, &self.drops, &mut out);
        diff("TreasureHunt/Hunts", &old.hunts, &self.hunts, &mut out);
        diff("Languages", &old.languages.0, &self.languages.0, &mut out);
        diff("TreasureHunt/Effects", &old.effects, &self.effects, &mut out);
        out
    }
}

fn diff<T: PartialEq>(kind: &str, old: &BTreeMap<String, T>, new: &BTreeMap<String, T>, out: &mut Vec<String>) {
    for (id, value) in new {
        match old.get(id) {
            None => out.push(format!("{kind}/{id} added")),
            Some(previous) if previous != value => out.push(format!("{kind}/{id} changed")),
            Some(_) => {}
        }
    }
    out.extend(old.keys().filter(|id| !new.contains_key(*id)).map(|id| format!("{kind}/{id} removed")));
}
