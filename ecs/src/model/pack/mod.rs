//! The hunt's asset pack, loaded and checked as a whole: every reference resolves, every
//! number makes sense, every vault is placed on diggable ground. What passes is a
//! [`HuntAssets`]; what does not is the full list of errors, each naming the file, line, column
//! and JSON path.
//!
//! No I/O: the caller reads the files ([`veltrix_sdk::assets::read_kind`]) and passes their text.
//!
//! - `placed`: what a checked pack is ([`HuntAssets`], [`PlacedHunt`], ...).
//! - `kinds`: the checks of each asset kind on its own.
//! - `vaults`: a hunt's vaults placed on reachable ground.
//! - `clues`: a hunt's clues checked, Area circles placed.

mod clues;
mod kinds;
mod placed;
#[cfg(test)]
mod tests;
mod vaults;

use std::collections::{BTreeMap, BTreeSet};

use veltrix_sdk::{
    Spawn, TileWorld,
    assets::{AssetError, load_kind},
};

pub use self::placed::{HuntAssets, PackSources, PlacedClue, PlacedHunt, PlacedVault};
use self::{
    clues::place_clues,
    kinds::{check_drop_table, check_effect, check_item, check_lifecycle, item_file_ids},
    vaults::{Ground, OnFoot, place_hunt},
};
use crate::model::{
    assets::{DropTable, Effect, Hunt, Item, Rarity},
    lang::Languages,
    loot::RareEntries,
};

/// Loads and checks a pack against the world it will run in. All errors at once, sorted.
pub fn build(sources: &PackSources, tiles: &TileWorld, spawn: Spawn) -> Result<HuntAssets, Vec<AssetError>> {
    let items = load_kind::<Item>(&sources.items);
    let drops = load_kind::<DropTable>(&sources.drops);
    let hunts = load_kind::<Hunt>(&sources.hunts);
    let loaded_effects = load_kind::<Effect>(&sources.effects);
    // Every effect file's id, loaded or not: a reference to a broken effect is that effect's
    // error, not an unknown id.
    let effects: BTreeSet<&str> = sources.effects.iter().map(|s| s.id.as_str()).collect();
    let mut errors: Vec<AssetError> = Vec::new();
    let languages = Languages::parse(&sources.languages).unwrap_or_else(|e| {
        errors.extend(e);
        Languages::default()
    });
    errors.extend(items.errors.iter().cloned());
    errors.extend(drops.errors.iter().cloned());
    errors.extend(hunts.errors.iter().cloned());
    errors.extend(loaded_effects.errors.iter().cloned());
    for (id, effect) in &loaded_effects.assets {
        check_effect(&loaded_effects, id, effect, &mut errors);
    }

    let item_ids: Vec<&str> = item_file_ids(sources);
    for (id, item) in &items.assets {
        check_item(&items, id, item, &effects, &mut errors);
    }
    let drop_ids: Vec<&str> = sources.drops.iter().map(|s| s.id.as_str()).collect();
    for (id, table) in &drops.assets {
        check_drop_table(&drops, id, table, &item_ids, &mut errors);
    }
    let mut placed_hunts = BTreeMap::new();
    // One walk from the spawn says which tiles players can reach on foot: every vault must be.
    let on_foot = (!hunts.assets.is_empty()).then(|| OnFoot::from_spawn(tiles, spawn));
    let ground = Ground { tiles, spawn, on_foot: on_foot.as_ref() };
    for (id, hunt) in &hunts.assets {
        // Every part of a hunt is checked even when another part has errors, so one pass of
        // `validate` names them all.
        let before = errors.len();
        let (mut placed, unplaced) = place_hunt(&hunts, id, hunt, &drop_ids, &ground, &mut errors);
        check_lifecycle(&hunts, id, hunt, &mut errors);
        placed.clues = place_clues(&hunts, id, hunt, &placed.vaults, &unplaced, &languages, &mut errors);
        if errors.len() == before {
            placed_hunts.insert(id.clone(), placed);
        }
    }
    if !errors.is_empty() {
        errors.sort_by(|a, b| (&a.path, a.line, a.column).cmp(&(&b.path, b.line, b.column)));
        errors.dedup();
        return Err(errors);
    }
    let is_rare = |item: &str| items.assets.get(item).is_some_and(|i| i.rarity >= Rarity::Rare);
    let rare_entries = drops.assets.iter().map(|(id, table)| (id.clone(), RareEntries::of(table, is_rare))).collect();
    Ok(HuntAssets {
        items: items.assets,
        drops: drops.assets,
        hunts: placed_hunts,
        effects: loaded_effects.assets,
        rare_entries,
        languages,
    })
}
