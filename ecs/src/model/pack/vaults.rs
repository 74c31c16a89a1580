//! Where a hunt's vaults go: each entry of `Vaults` checked and placed on reachable ground,
//! fixed or as a random group.

use std::collections::BTreeSet;

use veltrix_sdk::{
    Spawn, TileWorld,
    assets::{AssetError, LoadedKind},
};

use super::{
    kinds::unknown,
    placed::{PlacedHunt, PlacedVault},
};
use crate::model::{
    assets::{ClaimRule, Hunt, TilePos, VaultSpec},
    distance::DistanceField,
    placement::{Group, PlacementError, place_fixed, place_group},
};

/// Where players can walk from the spawn.
pub(super) struct OnFoot {
    spawn: TilePos,
    spawn_walkable: bool,
    field: DistanceField,
}

impl OnFoot {
    pub(super) fn from_spawn(tiles: &TileWorld, spawn: Spawn) -> Self {
        // Negative and non-finite coordinates saturate to 0: the spawn's tile is then checked.
        let spawn = TilePos { x: spawn.x.floor() as u32, y: spawn.y.floor() as u32 };
        let spawn_walkable = tiles.get(i64::from(spawn.x), i64::from(spawn.y)).is_some_and(|t| t.walkable());
        OnFoot { spawn, spawn_walkable, field: DistanceField::compute(tiles, spawn) }
    }

    fn reachable(&self, at: TilePos) -> bool {
        self.field.reachable(at)
    }

    /// Why a vault at `at` cannot be reached.
    fn unreachable(&self, vault: &str, at: TilePos) -> String {
        let spawn = self.spawn;
        let why = if self.spawn_walkable {
            "it is walled in by rock or water"
        } else {
            "the spawn itself is not on walkable ground"
        };
        format!(
            "vault {vault} at ({}, {}) cannot be reached on foot from the spawn ({}, {}): {why}",
            at.x, at.y, spawn.x, spawn.y
        )
    }
}

/// The world a hunt's vaults go in: its tiles, the spawn, and (when the pack has hunts) where
/// players can walk from the spawn.
pub(super) struct Ground<'a> {
    pub tiles: &'a TileWorld,
    pub spawn: Spawn,
    pub on_foot: Option<&'a OnFoot>,
}

impl Ground<'_> {
    fn reachable(&self, at: TilePos) -> bool {
        self.on_foot.is_none_or(|f| f.reachable(at))
    }
}

/// Places a hunt's vaults, reporting each entry that cannot be placed; returns the vaults
/// placed and the entries that were not (their vaults exist for the clues' checks, without a
/// tile).
pub(super) fn place_hunt<'a>(
    hunts: &LoadedKind<Hunt>,
    id: &str,
    hunt: &'a Hunt,
    drop_ids: &[&str],
    ground: &Ground,
    errors: &mut Vec<AssetError>,
) -> (PlacedHunt, Vec<&'a VaultSpec>) {
    let mut unplaced = Vec::new();
    let mut placed: Vec<(String, TilePos)> = Vec::new();
    let mut vaults = Vec::new();
    let mut seen_ids = BTreeSet::new();
    for (i, spec) in hunt.vaults.iter().enumerate() {
        let path = format!("Vaults[{i}]");
        let mut error = |key: &str, message: String| {
            let at = if key.is_empty() { path.clone() } else { format!("{path}.{key}") };
            errors.push(hunts.error(id, &at, message));
        };
        if !seen_ids.insert(spec.id.clone()) {
            error("Id", format!("another vault of this hunt is already named \"{}\": ids are unique", spec.id));
        }
        check_rules(spec, drop_ids, &mut error);
        let Some(tiles_of_spec) = place_entry(hunt.seed, spec, ground, &placed, &mut error) else {
            unplaced.push(spec);
            continue;
        };
        for (vault_id, at) in tiles_of_spec {
            if vault_id != spec.id && !seen_ids.insert(vault_id.clone()) {
                error("Id", format!("this group's vault {vault_id} has the id of another vault: ids are unique"));
            }
            placed.push((vault_id.clone(), at));
            vaults.push(PlacedVault {
                id: vault_id,
                at,
                loot_table: spec.loot_table.clone(),
                consolation_table: spec.consolation_table.clone(),
                dig_effort: spec.dig_effort,
                claim: spec.claim,
                sparkle_radius: spec.sparkle_radius,
            });
        }
    }
    (PlacedHunt { id: id.to_string(), def: hunt.clone(), vaults, clues: Vec::new() }, unplaced)
}

/// The vaults of one entry of `Vaults`, by id and tile: the fixed vault, or the group's; `None`
/// (the reason reported) when the entry cannot be placed.
fn place_entry(
    seed: u64,
    spec: &VaultSpec,
    ground: &Ground,
    placed: &[(String, TilePos)],
    error: &mut impl FnMut(&str, String),
) -> Option<Vec<(String, TilePos)>> {
    match (spec.at, spec.count, spec.region) {
        (Some(at), None, None) => match place_fixed(at, ground.tiles, placed) {
            Ok(at) if !ground.reachable(at) => {
                error("At", ground.on_foot.map(|f| f.unreachable(&spec.id, at)).unwrap_or_default());
                None
            }
            Ok(at) => Some(vec![(spec.id.clone(), at)]),
            Err(e) => {
                error("At", e.to_string());
                None
            }
        },
        (None, Some(count), Some(region)) => {
            if count == 0 {
                error("Count", "expected at least 1".into());
                return None;
            }
            let group = Group { hunt_seed: seed, spec, region, count };
            let spawn = (ground.spawn.x, ground.spawn.y);
            match place_group(&group, ground.tiles, spawn, placed, &|at| ground.reachable(at)) {
                Ok(at) => {
                    Some(at.into_iter().enumerate().map(|(n, at)| (format!("{}_{}", spec.id, n + 1), at)).collect())
                }
                Err(e) => {
                    let key = if matches!(e, PlacementError::BadRegion { .. }) { "Region" } else { "Count" };
                    error(key, e.to_string());
                    None
                }
            }
        }
        _ => {
            error(
                "",
                "expected either At (one vault on a fixed tile) or both Count and Region (random vaults), \
                 not both and not neither"
                    .into(),
            );
            None
        }
    }
}

/// Whether the vault `id` is one of the entry's: the fixed vault `<Id>`, or `<Id>_1` to
/// `<Id>_<Count>` of a group.
pub(super) fn names_vault(spec: &VaultSpec, id: &str) -> bool {
    let fixed = spec.at.is_some() && id == spec.id;
    let in_group = spec.count.is_some_and(|count| {
        id.strip_prefix(spec.id.as_str())
            .and_then(|rest| rest.strip_prefix('_'))
            .and_then(|n| n.parse::<u32>().ok().filter(|k| k.to_string() == n))
            .is_some_and(|k| (1..=count).contains(&k))
    });
    fixed || in_group
}

/// An entry's rules: its loot and consolation tables exist and fit its claim rule; its effort,
/// sparkle radius and spacings make sense.
fn check_rules(spec: &VaultSpec, drop_ids: &[&str], error: &mut impl FnMut(&str, String)) {
    if !drop_ids.contains(&spec.loot_table.as_str()) {
        error("LootTable", unknown("loot table", &spec.loot_table, drop_ids));
    }
    match (&spec.consolation_table, spec.claim) {
        (Some(table), ClaimRule::FirstFinderThenPerPlayer) => {
            if !drop_ids.contains(&table.as_str()) {
                error("ConsolationTable", unknown("loot table", table, drop_ids));
            }
        }
        (None, ClaimRule::FirstFinderThenPerPlayer) => error(
            "Claim",
            "FirstFinderThenPerPlayer needs a ConsolationTable for everyone after the first finder".into(),
        ),
        (Some(_), rule) => error(
            "ConsolationTable",
            format!("only FirstFinderThenPerPlayer vaults use a ConsolationTable; this one is {rule:?}"),
        ),
        (None, _) => {}
    }
    if spec.dig_effort == 0 {
        error("DigEffort", "expected at least 1 (the digs needed to open the vault)".into());
    }
    if !(spec.sparkle_radius >= 0.0 && spec.sparkle_radius.is_finite()) {
        error("SparkleRadius", format!("expected a radius of 0 or more tiles, not {}", spec.sparkle_radius));
    }
    if !(spec.min_spacing >= 0.0 && spec.min_spacing.is_finite()) {
        error("MinSpacing", format!("expected a distance of 0 or more tiles, not {}", spec.min_spacing));
    }
    if !(spec.min_spawn_distance >= 0.0 && spec.min_spawn_distance.is_finite()) {
        error("MinSpawnDistance", format!("expected a distance of 0 or more tiles, not {}", spec.min_spawn_distance));
    }
    if spec.at.is_some() && (spec.min_spacing > 0.0 || spec.min_spawn_distance > 0.0) {
        error("At", "MinSpacing and MinSpawnDistance apply to random groups (Count and Region), not to At".into());
    }
}
