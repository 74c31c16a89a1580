//! The hunt's asset pack, loaded and checked as a whole: every reference resolves, every
//! number makes sense, every vault is placed on diggable ground. What passes is a
//! [`HuntAssets`]; what does not is the full list of errors, each naming the file, line, column
//! and JSON path.
//!
//! No I/O: the caller reads the files ([`veltrix_sdk::assets::read_kind`]) and passes their text.

use std::collections::{BTreeMap, BTreeSet};

use veltrix_sdk::{
    Spawn, TileWorld,
    assets::{AssetError, AssetSource, LoadedKind, load_kind},
    did_you_mean,
};

use crate::model::{
    assets::{
        ClaimRule, ClueKind, ClueTrigger, Container, DropTable, Effect, HeatBand, Hunt, Item, Rarity, Stacking,
        TilePos, VaultSpec,
    },
    distance::DistanceField,
    lang::{DEFAULT_LOCALE, Languages},
    loot::{RareEntries, stable_hash},
    placement::{place_fixed, place_group},
    schedule::Start,
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
        check_container(&drops, id, &table.container, "Container", &item_ids, &mut errors);
        if let Some(pity) = &table.pity {
            if pity.after == 0 {
                errors.push(drops.error(id, "Pity.After", "expected at least 1 (claims without a rare item)"));
            }
            if !(pity.step > 0.0 && pity.step.is_finite()) {
                errors.push(drops.error(
                    id,
                    "Pity.Step",
                    format!("expected a rise of more than 0 per claim (0.5 is +50%), not {}", pity.step),
                ));
            }
        }
    }
    let mut placed_hunts = BTreeMap::new();
    // One walk from the spawn says which tiles players can reach on foot: every vault must be.
    let on_foot = (!hunts.assets.is_empty()).then(|| OnFoot::from_spawn(tiles, spawn));
    for (id, hunt) in &hunts.assets {
        // Every part of a hunt is checked even when another part has errors, so one pass of
        // `validate` names them all.
        let before = errors.len();
        let (mut placed, unplaced) =
            place_hunt(&hunts, id, hunt, &drop_ids, tiles, spawn, on_foot.as_ref(), &mut errors);
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

fn check_effect(effects: &LoadedKind<Effect>, id: &str, effect: &Effect, errors: &mut Vec<AssetError>) {
    if !(effect.duration_seconds > 0.0 && effect.duration_seconds.is_finite()) {
        errors.push(effects.error(
            id,
            "DurationSeconds",
            format!("expected a duration of more than 0 seconds, not {}", effect.duration_seconds),
        ));
    }
    match (effect.stacking, effect.max_stacks) {
        (Stacking::Stack, None) => {
            errors.push(effects.error(id, "Stacking", "Stack needs MaxStacks (how many stacks at most)"))
        }
        (Stacking::Stack, Some(0)) => errors.push(effects.error(id, "MaxStacks", "expected at least 1")),
        (Stacking::Stack, Some(_)) | (_, None) => {}
        (rule, Some(_)) => {
            errors.push(effects.error(id, "MaxStacks", format!("only Stack effects have stacks; this one is {rule:?}")))
        }
    }
    for (key, factor) in [("MoveSpeed", effect.move_speed), ("DigSpeed", effect.dig_speed)] {
        if !(factor > 0.0 && factor <= 100.0) {
            errors.push(effects.error(
                id,
                key,
                format!("expected a factor above 0 and at most 100 (1 changes nothing), not {factor}"),
            ));
        }
    }
    if !(effect.treasure_sense >= 0.0 && effect.treasure_sense.is_finite()) {
        errors.push(effects.error(
            id,
            "TreasureSense",
            format!("expected a radius of 0 or more tiles, not {}", effect.treasure_sense),
        ));
    }
    if !(effect.luck >= 0.0 && effect.luck.is_finite()) {
        errors.push(effects.error(
            id,
            "Luck",
            format!("expected 0 or more (0.5 raises rare weights by 50%), not {}", effect.luck),
        ));
    }
}

/// Where players can walk from the spawn.
struct OnFoot {
    spawn: TilePos,
    spawn_walkable: bool,
    field: DistanceField,
}

impl OnFoot {
    fn from_spawn(tiles: &TileWorld, spawn: Spawn) -> Self {
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

/// Every item file's id, loaded or not: a reference to a broken item is that item's error,
/// not an unknown id.
fn item_file_ids(sources: &PackSources) -> Vec<&str> {
    sources.items.iter().map(|s| s.id.as_str()).collect()
}

fn unknown(kind: &str, id: &str, known: &[&str]) -> String {
    match did_you_mean(id, known) {
        Some(hint) => format!("unknown {kind} \"{id}\" (did you mean \"{hint}\"?)"),
        None if known.is_empty() => format!("unknown {kind} \"{id}\": the pack has none"),
        None => format!("unknown {kind} \"{id}\""),
    }
}

fn check_item(items: &LoadedKind<Item>, id: &str, item: &Item, effects: &BTreeSet<&str>, errors: &mut Vec<AssetError>) {
    if item.max_stack == 0 {
        errors.push(items.error(id, "MaxStack", "expected at least 1 (how many fit in one slot)"));
    }
    if let Some(effect) = &item.effect
        && !effects.contains(effect.as_str())
    {
        let known: Vec<&str> = effects.iter().copied().collect();
        errors.push(items.error(id, "Effect", unknown("effect", effect, &known)));
    }
}

fn check_container(
    drops: &LoadedKind<DropTable>,
    id: &str,
    container: &Container,
    path: &str,
    item_ids: &[&str],
    errors: &mut Vec<AssetError>,
) {
    let weight = container.weight();
    if !(weight >= 0.0 && weight.is_finite()) {
        errors.push(drops.error(
            id,
            &format!("{path}.Weight"),
            format!("expected a weight of 0 or more, not {weight}"),
        ));
    }
    match container {
        Container::Empty { .. } => {}
        Container::Single { item, .. } => {
            if !item_ids.contains(&item.item_id.as_str()) {
                errors.push(drops.error(id, &format!("{path}.Item.ItemId"), unknown("item", &item.item_id, item_ids)));
            }
            if item.quantity_min > item.quantity_max {
                errors.push(drops.error(
                    id,
                    &format!("{path}.Item.QuantityMin"),
                    format!(
                        "QuantityMin ({}) is more than QuantityMax ({}): expected QuantityMin <= QuantityMax",
                        item.quantity_min, item.quantity_max
                    ),
                ));
            }
        }
        Container::Multiple { containers, .. } => {
            for (i, child) in containers.iter().enumerate() {
                let child_path = format!("{path}.Containers[{i}]");
                if child.weight() > 100.0 {
                    errors.push(drops.error(
                        id,
                        &format!("{child_path}.Weight"),
                        format!("in a Multiple, Weight is a percent chance: expected 0 to 100, not {}", child.weight()),
                    ));
                }
                check_container(drops, id, child, &child_path, item_ids, errors);
            }
        }
        Container::Choice { rolls_min, rolls_max, containers, .. } => {
            if rolls_min > rolls_max {
                errors.push(drops.error(
                    id,
                    &format!("{path}.RollsMin"),
                    format!(
                        "RollsMin ({rolls_min}) is more than RollsMax ({rolls_max}): expected RollsMin <= RollsMax"
                    ),
                ));
            }
            if containers.iter().all(|c| c.weight() <= 0.0) {
                errors.push(drops.error(
                    id,
                    &format!("{path}.Containers"),
                    "every Weight in this Choice is 0 (or it has no Containers): expected at least one above 0",
                ));
            }
            for (i, child) in containers.iter().enumerate() {
                check_container(drops, id, child, &format!("{path}.Containers[{i}]"), item_ids, errors);
            }
        }
    }
}

/// Places a hunt's vaults, reporting each entry that cannot be placed; returns the vaults
/// placed and the entries that were not (their vaults exist for the clues' checks, without a
/// tile).
#[allow(clippy::too_many_arguments)]
fn place_hunt<'a>(
    hunts: &LoadedKind<Hunt>,
    id: &str,
    hunt: &'a Hunt,
    drop_ids: &[&str],
    tiles: &TileWorld,
    spawn: Spawn,
    on_foot: Option<&OnFoot>,
    errors: &mut Vec<AssetError>,
) -> (PlacedHunt, Vec<&'a VaultSpec>) {
    let reachable = |at: TilePos| on_foot.is_none_or(|f| f.reachable(at));
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
        let tiles_of_spec: Vec<(String, TilePos)> = match (spec.at, spec.count, spec.region) {
            (Some(at), None, None) => match place_fixed(at, tiles, &placed) {
                Ok(at) if !reachable(at) => {
                    error("At", on_foot.map(|f| f.unreachable(&spec.id, at)).unwrap_or_default());
                    unplaced.push(spec);
                    continue;
                }
                Ok(at) => vec![(spec.id.clone(), at)],
                Err(e) => {
                    error("At", e.to_string());
                    unplaced.push(spec);
                    continue;
                }
            },
            (None, Some(count), Some(region)) => {
                if count == 0 {
                    error("Count", "expected at least 1".into());
                    unplaced.push(spec);
                    continue;
                }
                match place_group(hunt.seed, spec, region, count, tiles, (spawn.x, spawn.y), &placed, &reachable) {
                    Ok(at) => {
                        at.into_iter().enumerate().map(|(n, at)| (format!("{}_{}", spec.id, n + 1), at)).collect()
                    }
                    Err(e) => {
                        let key = if matches!(e, crate::model::placement::PlacementError::BadRegion { .. }) {
                            "Region"
                        } else {
                            "Count"
                        };
                        error(key, e.to_string());
                        unplaced.push(spec);
                        continue;
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
                unplaced.push(spec);
                continue;
            }
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

/// Whether the vault `id` is one of the entry's: the fixed vault `<Id>`, or `<Id>_1` to
/// `<Id>_<Count>` of a group.
fn names_vault(spec: &VaultSpec, id: &str) -> bool {
    let fixed = spec.at.is_some() && id == spec.id;
    let in_group = spec.count.is_some_and(|count| {
        id.strip_prefix(spec.id.as_str())
            .and_then(|rest| rest.strip_prefix('_'))
            .and_then(|n| n.parse::<u32>().ok().filter(|k| k.to_string() == n))
            .is_some_and(|k| (1..=count).contains(&k))
    });
    fixed || in_group
}

/// The schedule parses; durations and player counts make sense.
fn check_lifecycle(hunts: &LoadedKind<Hunt>, id: &str, hunt: &Hunt, errors: &mut Vec<AssetError>) {
    if let Err(e) = Start::parse(&hunt.schedule) {
        errors.push(hunts.error(id, "Schedule", e));
    }
    if hunt.duration_seconds == Some(0) {
        errors.push(hunts.error(id, "DurationSeconds", "expected at least 1 second (leave it out for no time limit)"));
    }
}

/// Checks each clue (its vault, its trigger, its kind) and places Area circles. A clue about a
/// vault of an entry that could not be placed (`unplaced`, reported there) is checked all the
/// same, but not placed.
fn place_clues(
    hunts: &LoadedKind<Hunt>,
    id: &str,
    hunt: &Hunt,
    vaults: &[PlacedVault],
    unplaced: &[&VaultSpec],
    languages: &Languages,
    errors: &mut Vec<AssetError>,
) -> Vec<PlacedClue> {
    let vault_ids: Vec<&str> = vaults
        .iter()
        .map(|v| v.id.as_str())
        .chain(unplaced.iter().filter(|s| s.at.is_some()).map(|s| s.id.as_str()))
        .collect();
    let known_vault =
        |vault: &str| vaults.iter().any(|v| v.id == vault) || unplaced.iter().any(|s| names_vault(s, vault));
    let text_keys = languages.default_keys();
    let mut seen = BTreeSet::new();
    let mut placed = Vec::new();
    for (i, clue) in hunt.clues.iter().enumerate() {
        let mut error =
            |key: &str, message: String| errors.push(hunts.error(id, &format!("Clues[{i}].{key}"), message));
        if !seen.insert(clue.id.as_str()) {
            error("Id", format!("another clue of this hunt is already named \"{}\": ids are unique", clue.id));
        }
        let vault = vaults.iter().find(|v| v.id == clue.vault);
        if !known_vault(&clue.vault) {
            error("Vault", unknown("vault", &clue.vault, &vault_ids));
        }
        match &clue.trigger {
            ClueTrigger::VaultClaimed(other) if !known_vault(other) => {
                error("Trigger.VaultClaimed", unknown("vault", other, &vault_ids))
            }
            ClueTrigger::Enter(circle) if !(circle.radius > 0.0 && circle.radius.is_finite()) => {
                error("Trigger.Enter.Radius", format!("expected a radius above 0 tiles, not {}", circle.radius))
            }
            _ => {}
        }
        let mut centre = None;
        match &clue.kind {
            ClueKind::Text(key) if !text_keys.contains(&key.as_str()) => error(
                "Kind.Text",
                match did_you_mean(key, &text_keys) {
                    Some(hint) => {
                        format!("no text \"{key}\" in the {DEFAULT_LOCALE} language files (did you mean \"{hint}\"?)")
                    }
                    None => format!(
                        "no text \"{key}\" in the {DEFAULT_LOCALE} language files: add `{key} = ...` to a file of \
                         Server/Languages/{DEFAULT_LOCALE}/"
                    ),
                },
            ),
            ClueKind::Area(area) => {
                let final_radius = area.shrink_to.unwrap_or(area.radius);
                if !(area.radius > 0.0 && area.radius.is_finite()) {
                    error("Kind.Area.Radius", format!("expected a radius above 0 tiles, not {}", area.radius));
                } else if !(final_radius > 0.0 && final_radius <= area.radius) {
                    error(
                        "Kind.Area.ShrinkTo",
                        format!("expected a radius above 0 and at most Radius ({}), not {final_radius}", area.radius),
                    );
                } else if area.shrink_to.is_some_and(|to| to < area.radius) && area.shrink_seconds == 0 {
                    error("Kind.Area.ShrinkSeconds", "a shrinking area needs ShrinkSeconds above 0".into());
                } else if let Some(vault) = vault {
                    centre = Some(area_centre(hunt.seed, &clue.id, vault.at, final_radius));
                }
            }
            _ => {}
        }
        let bands = match (&clue.kind, &clue.bands) {
            (ClueKind::HotCold, Some(bands)) => {
                check_bands(bands, &mut error);
                bands.clone()
            }
            (ClueKind::HotCold, None) => HeatBand::defaults(),
            (kind, Some(_)) => {
                error("Bands", format!("only HotCold clues have Bands; this one is {}", kind.name()));
                Vec::new()
            }
            (_, None) => Vec::new(),
        };
        let Some(vault) = vault else { continue };
        placed.push(PlacedClue {
            id: clue.id.clone(),
            vault: vault.id.clone(),
            at: vault.at,
            trigger: clue.trigger.clone(),
            kind: clue.kind.clone(),
            centre,
            bands,
        });
    }
    placed
}

/// A HotCold clue's bands: at least one, each given for some distance (`Within` rising, the
/// band without `Within` last), each with a label.
fn check_bands(bands: &[HeatBand], error: &mut impl FnMut(&str, String)) {
    if bands.is_empty() {
        error("Bands", "expected at least one band, or no Bands for the default ones".into());
    }
    let mut before: Option<f32> = None;
    for (i, band) in bands.iter().enumerate() {
        let path = format!("Bands[{i}]");
        if band.label.trim().is_empty() {
            error(&format!("{path}.Label"), "expected the words players read, not an empty label".into());
        }
        match band.within {
            None if i + 1 < bands.len() => error(
                &path,
                "a band without Within holds any distance, so no band after it is ever told: put it last".into(),
            ),
            None => {}
            Some(within) if !(within >= 0.0 && within.is_finite()) => error(
                &format!("{path}.Within"),
                format!("expected a walking distance of 0 or more tiles, not {within}"),
            ),
            Some(within) => {
                if let Some(previous) = before.filter(|previous| within <= *previous) {
                    error(
                        &format!("{path}.Within"),
                        format!(
                            "expected more than the band before ({previous}): bands are taken in order, so this \
                             one is never told"
                        ),
                    );
                }
                before = Some(within);
            }
        }
    }
}

/// An Area clue's centre: within `final_radius` of the vault's centre (at 20% to 80% of it),
/// in a direction drawn from the seed and the clue's id; to a tenth of a tile.
fn area_centre(seed: u64, clue: &str, at: TilePos, final_radius: f32) -> (f32, f32) {
    let unit = |n| (stable_hash(seed, clue, n) >> 11) as f64 / (1u64 << 53) as f64;
    let distance = f64::from(final_radius) * (0.2 + 0.6 * unit(1));
    let angle = std::f64::consts::TAU * unit(2);
    let (x, y) = (f64::from(at.x) + 0.5 + distance * angle.cos(), f64::from(at.y) + 0.5 + distance * angle.sin());
    ((x * 10.0).round() as f32 / 10.0, (y * 10.0).round() as f32 / 10.0)
}

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

#[cfg(test)]
mod tests {
    use veltrix_sdk::Tile;

    use super::*;
    use crate::model::assets::{DROPS, EFFECTS, HUNTS, ITEMS};

    fn source(kind: &str, id: &str, text: &str) -> AssetSource {
        AssetSource::from_text(kind, id, format!("Server/{kind}/{id}.json"), text)
    }

    const COIN: &str = r#"{"MaxStack": 50, "Value": 1}"#;
    const COINS: &str =
        r#"{"Container": {"Type": "Single", "Item": {"ItemId": "Coin", "QuantityMin": 1, "QuantityMax": 5}}}"#;

    fn pack(hunt: &str) -> PackSources {
        PackSources {
            items: vec![source(ITEMS, "Coin", COIN)],
            drops: vec![source(DROPS, "Coins", COINS)],
            hunts: vec![source(HUNTS, "Test", hunt)],
            effects: vec![],
            languages: vec![],
        }
    }

    fn world() -> TileWorld {
        let mut tiles = TileWorld::flat(64, 64);
        tiles.set(5, 5, Tile::Rock);
        tiles
    }

    const SPAWN: Spawn = Spawn { x: 32.0, y: 32.0 };

    fn errors(sources: &PackSources) -> Vec<String> {
        build(sources, &world(), SPAWN).unwrap_err().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_good_pack_places_fixed_and_random_vaults() {
        let hunt = r#"{"Seed": 9, "Vaults": [
            {"Id": "Well", "At": {"X": 3, "Y": 4}, "LootTable": "Coins", "Claim": "PerPlayer"},
            {"Id": "Dune", "Count": 5, "Region": {"MinX": 0, "MinY": 0, "MaxX": 63, "MaxY": 63},
             "MinSpacing": 6, "MinSpawnDistance": 10, "LootTable": "Coins"}]}"#;
        let assets = build(&pack(hunt), &world(), SPAWN).unwrap();
        let hunt = &assets.hunts["Test"];
        let ids: Vec<&str> = hunt.vaults.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(ids, ["Well", "Dune_1", "Dune_2", "Dune_3", "Dune_4", "Dune_5"]);
        assert_eq!(hunt.vaults[0].at, TilePos { x: 3, y: 4 });
        assert_eq!(hunt.vaults[0].claim, ClaimRule::PerPlayer);
        assert_eq!(hunt.vaults[1].dig_effort, 10, "the default effort");
        assert_eq!(build(&pack(r#"{"Seed": 9, "Vaults": []}"#), &world(), SPAWN).unwrap().hunts["Test"].vaults, []);
    }

    #[test]
    fn unknown_ids_are_located_with_a_hint() {
        let hunt =
            "{\"Seed\": 1, \"Vaults\": [\n  {\"Id\": \"A\", \"At\": {\"X\": 1, \"Y\": 1}, \"LootTable\": \"Coinz\"}]}";
        let mut sources = pack(hunt);
        sources.drops.push(source(DROPS, "Bad", r#"{"Container": {"Type": "Single", "Item": {"ItemId": "Con"}}}"#));
        assert_eq!(
            errors(&sources),
            [
                "Server/Drops/Bad.json:1:53: Container.Item.ItemId: unknown item \"Con\" (did you mean \"Coin\"?)",
                "Server/TreasureHunt/Hunts/Test.json:2:52: Vaults[0].LootTable: unknown loot table \"Coinz\" \
                 (did you mean \"Coins\"?)",
            ]
        );
    }

    #[test]
    fn loot_table_mistakes_are_each_reported() {
        let mut sources = pack(r#"{"Seed": 1, "Vaults": []}"#);
        sources.drops = vec![source(
            DROPS,
            "Broken",
            r#"{"Container": {"Type": "Multiple", "Containers": [
                {"Type": "Single", "Weight": 150, "Item": {"ItemId": "Coin", "QuantityMin": 5, "QuantityMax": 2}},
                {"Type": "Choice", "RollsMin": 3, "RollsMax": 1, "Containers": [
                    {"Type": "Single", "Weight": 0, "Item": {"ItemId": "Coin"}},
                    {"Type": "Empty", "Weight": 0}]}]}}"#,
        )];
        let errors = errors(&sources);
        let expected = [
            "Container.Containers[0].Weight: in a Multiple, Weight is a percent chance: expected 0 to 100, not 150",
            "Container.Containers[0].Item.QuantityMin: QuantityMin (5) is more than QuantityMax (2): expected \
             QuantityMin <= QuantityMax",
            "Container.Containers[1].RollsMin: RollsMin (3) is more than RollsMax (1): expected RollsMin <= RollsMax",
            "Container.Containers[1].Containers: every Weight in this Choice is 0 (or it has no Containers): expected \
             at least one above 0",
        ];
        assert_eq!(errors.len(), expected.len(), "{errors:#?}");
        for (error, want) in errors.iter().zip(expected) {
            assert!(error.starts_with("Server/Drops/Broken.json:") && error.ends_with(want), "{error}\n  {want}");
        }
    }

    #[test]
    fn vaults_outside_the_world_on_rock_or_crowded_are_refused() {
        let hunt = r#"{"Seed": 1, "Vaults": [
            {"Id": "Far", "At": {"X": 64, "Y": 3}, "LootTable": "Coins"},
            {"Id": "Stone", "At": {"X": 5, "Y": 5}, "LootTable": "Coins"},
            {"Id": "Crowd", "Count": 30, "Region": {"MinX": 0, "MinY": 0, "MaxX": 15, "MaxY": 15}, "MinSpacing": 8,
             "LootTable": "Coins"},
            {"Id": "Jackpot", "At": {"X": 9, "Y": 9}, "LootTable": "Coins", "Claim": "FirstFinderThenPerPlayer"},
            {"Id": "Both", "At": {"X": 9, "Y": 9}, "Count": 2, "LootTable": "Coins"}]}"#;
        let errors = errors(&pack(hunt));
        let expected = [
            "Vaults[0].At: the tile (64, 3) is outside the world, which is 64 x 64 tiles (x 0 to 63, y 0 to 63)",
            "Vaults[1].At: the tile (5, 5) is Rock: a vault must be on diggable ground",
            "Vaults[2].Count: the region is too small for 30 vaults with these constraints: only",
            "Vaults[3].Claim: FirstFinderThenPerPlayer needs a ConsolationTable for everyone after the first finder",
            "Vaults[4]: expected either At (one vault on a fixed tile) or both Count and Region",
        ];
        assert_eq!(errors.len(), expected.len(), "{errors:#?}");
        for (error, want) in errors.iter().zip(expected) {
            assert!(error.contains(want), "{error}\n  {want}");
        }
    }

    #[test]
    fn every_vault_must_be_reachable_on_foot_from_the_spawn() {
        // A pond of water around (50, 50), and a ring of rock around the island (8, 8) to (12, 12).
        let mut tiles = world();
        for i in 6..=14 {
            for (x, y) in [(i, 6), (i, 14), (6, i), (14, i)] {
                tiles.set(x, y, Tile::Rock);
            }
        }
        let hunt = r#"{"Seed": 3, "Vaults": [
            {"Id": "Crater_Vault", "At": {"X": 10, "Y": 10}, "LootTable": "Coins"},
            {"Id": "Open", "At": {"X": 40, "Y": 10}, "LootTable": "Coins"},
            {"Id": "Ring", "Count": 9, "Region": {"MinX": 6, "MinY": 6, "MaxX": 16, "MaxY": 16}, "LootTable": "Coins"}]}"#;
        let errors: Vec<String> =
            build(&pack(hunt), &tiles, SPAWN).unwrap_err().iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            errors[0].ends_with(
                "Vaults[0].At: vault Crater_Vault at (10, 10) cannot be reached on foot from the spawn (32, 32): \
                 it is walled in by rock or water"
            ),
            "{}",
            errors[0]
        );
        // A group takes only reachable tiles: of the region, the 40 outside the ring.
        let hunt = r#"{"Seed": 3, "Vaults": [
            {"Id": "Ring", "Count": 40, "Region": {"MinX": 6, "MinY": 6, "MaxX": 16, "MaxY": 16}, "LootTable": "Coins"}]}"#;
        let assets = build(&pack(hunt), &tiles, SPAWN).unwrap();
        assert!(assets.hunts["Test"].vaults.iter().all(|v| v.at.x > 14 || v.at.y > 14), "none inside the ring");
        let hunt = hunt.replace("40", "41");
        let errors: Vec<String> =
            build(&pack(&hunt), &tiles, SPAWN).unwrap_err().iter().map(ToString::to_string).collect();
        assert!(errors[0].contains("Count: the region is too small for 41 vaults"), "{errors:#?}");
        assert!(errors[0].contains("only 40 fit on ground reachable on foot from the spawn"), "{errors:#?}");
        // A spawn on rock reaches nothing, and says so.
        let errors: Vec<String> = build(
            &pack(r#"{"Seed": 1, "Vaults": [{"Id": "A", "At": {"X": 1, "Y": 1}, "LootTable": "Coins"}]}"#),
            &tiles,
            Spawn { x: 5.5, y: 5.5 },
        )
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
        assert!(
            errors[0].ends_with("from the spawn (5, 5): the spawn itself is not on walkable ground"),
            "{errors:#?}"
        );
    }

    #[test]
    fn a_group_vault_may_not_take_another_vaults_id() {
        let hunt = r#"{"Seed": 1, "Vaults": [
            {"Id": "Ruin_2", "At": {"X": 1, "Y": 1}, "LootTable": "Coins"},
            {"Id": "Ruin", "Count": 3, "Region": {"MinX": 0, "MinY": 0, "MaxX": 63, "MaxY": 63}, "LootTable": "Coins"}]}"#;
        let errors = errors(&pack(hunt));
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            errors[0].ends_with("Vaults[1].Id: this group's vault Ruin_2 has the id of another vault: ids are unique")
        );
    }

    #[test]
    fn every_file_reports_its_errors_in_one_pass() {
        let mut sources = pack("{\"Seed\": 1, \"Vaults\": [}");
        sources.items.push(source(ITEMS, "Gem", r#"{"MaxStak": 5}"#));
        sources.items.push(source(ITEMS, "Loop_A", r#"{"Parent": "Loop_B"}"#));
        sources.items.push(source(ITEMS, "Loop_B", r#"{"Parent": "Loop_A"}"#));
        let errors = errors(&sources);
        assert!(errors.iter().any(|e| e.contains("Gem.json:1:2: ") && e.contains("\"MaxStak\"")), "{errors:#?}");
        assert!(errors.iter().any(|e| e.contains("Loop_A -> Loop_B -> Loop_A")), "{errors:#?}");
        assert!(errors.iter().any(|e| e.starts_with("Server/TreasureHunt/Hunts/Test.json:1:")), "{errors:#?}");
    }

    /// A hunt's vault, schedule and clue mistakes all come in one pass: a clue about a vault
    /// that could not be placed, or about an unknown vault, still has its kind checked.
    #[test]
    fn a_hunts_vault_schedule_and_clue_errors_are_reported_together() {
        let hunt = r#"{"Seed": 1, "DurationSeconds": 0, "Schedule": {"Daily": {"At": "8pm", "Minutes": 5}},
            "Vaults": [
            {"Id": "Stone", "At": {"X": 5, "Y": 5}, "LootTable": "Coinz"},
            {"Id": "Dune", "Count": 2, "Region": {"MinX": 0, "MinY": 0, "MaxX": 99, "MaxY": 9}, "LootTable": "Coins"}],
            "Clues": [
            {"Id": "On_Rock", "Vault": "Stone", "Kind": {"Text": "clue.rock"}},
            {"Id": "Lost", "Vault": "Nowhere", "Kind": {"Text": "clue.lost"}},
            {"Id": "Chain", "Vault": "Dune_1", "Trigger": {"VaultClaimed": "Stone"},
             "Kind": {"Area": {"Radius": 0}}}]}"#;
        let errors = errors(&pack(hunt));
        let expected = [
            "DurationSeconds: expected at least 1 second",
            "Schedule: \"8pm\" is not a time of day",
            "Vaults[0].LootTable: unknown loot table \"Coinz\" (did you mean \"Coins\"?)",
            "Vaults[0].At: the tile (5, 5) is Rock",
            "Vaults[1].Region: the region (0, 0) to (99, 9) must lie inside the world",
            "Clues[0].Kind.Text: no text \"clue.rock\" in the en-US language files",
            "Clues[1].Vault: unknown vault \"Nowhere\"",
            "Clues[1].Kind.Text: no text \"clue.lost\" in the en-US language files",
            "Clues[2].Kind.Area.Radius: expected a radius above 0 tiles, not 0",
        ];
        for want in expected {
            assert!(errors.iter().any(|e| e.contains(want)), "missing {want:?} in {errors:#?}");
        }
        assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    }

    /// A HotCold clue takes the bands written for it (the defaults otherwise); bands that would
    /// never be told, and Bands on another kind, are refused.
    #[test]
    fn hotcold_bands_are_loaded_and_checked() {
        let hunt = |clues: &str| {
            format!(
                r#"{{"Seed": 1, "Vaults": [{{"Id": "A", "At": {{"X": 1, "Y": 1}}, "LootTable": "Coins"}}], "Clues": [{clues}]}}"#
            )
        };
        let ok = hunt(
            r#"{"Id": "Near", "Vault": "A", "Kind": "HotCold", "Bands": [{"Within": 3, "Label": "Close"}, {"Label": "Far"}]},
               {"Id": "Plain", "Vault": "A", "Kind": "HotCold"}"#,
        );
        let assets = build(&pack(&ok), &world(), SPAWN).unwrap();
        let clues = &assets.hunts["Test"].clues;
        let labels = |i: usize| clues[i].bands.iter().map(|b| (b.within, b.label.as_str())).collect::<Vec<_>>();
        assert_eq!(labels(0), [(Some(3.0), "Close"), (None, "Far")]);
        assert_eq!(clues[1].bands, HeatBand::defaults());

        let bad = hunt(
            r#"{"Id": "B", "Vault": "A", "Kind": "HotCold", "Bands": [{"Label": "Any"}, {"Within": 9, "Label": ""}]},
               {"Id": "C", "Vault": "A", "Kind": "HotCold", "Bands": [{"Within": 9, "Label": "x"}, {"Within": 4, "Label": "y"}, {"Within": -1, "Label": "z"}]},
               {"Id": "D", "Vault": "A", "Kind": "HotCold", "Bands": []},
               {"Id": "E", "Vault": "A", "Kind": "Compass", "Bands": [{"Label": "Any"}]}"#,
        );
        let errors = errors(&pack(&bad));
        let expected = [
            "Clues[0].Bands[0]: a band without Within holds any distance, so no band after it is ever told: put it last",
            "Clues[0].Bands[1].Label: expected the words players read, not an empty label",
            "Clues[1].Bands[1].Within: expected more than the band before (9): bands are taken in order, so this one \
             is never told",
            "Clues[1].Bands[2].Within: expected a walking distance of 0 or more tiles, not -1",
            "Clues[2].Bands: expected at least one band, or no Bands for the default ones",
            "Clues[3].Bands: only HotCold clues have Bands; this one is Compass",
        ];
        assert_eq!(errors.len(), expected.len(), "{errors:#?}");
        for (error, want) in errors.iter().zip(expected) {
            assert!(error.ends_with(want), "{error}\n  {want}");
        }
    }

    #[test]
    fn changes_name_what_was_added_changed_and_removed() {
        let hunt = r#"{"Seed": 1, "Vaults": [{"Id": "A", "At": {"X": 1, "Y": 1}, "LootTable": "Coins"}]}"#;
        let old = build(&pack(hunt), &world(), SPAWN).unwrap();
        let mut sources = pack(hunt);
        sources.items = vec![source(ITEMS, "Coin", r#"{"MaxStack": 60}"#), source(ITEMS, "Gem", "{}")];
        let new = build(&sources, &world(), SPAWN).unwrap();
        assert_eq!(new.changes_since(&old), ["Item/Items/Coin changed", "Item/Items/Gem added"]);
        assert_eq!(old.changes_since(&new), ["Item/Items/Coin changed", "Item/Items/Gem removed"]);
        assert!(new.changes_since(&new).is_empty());
    }

    #[test]
    fn effects_load_with_their_rules_and_mistakes_are_located() {
        let mut sources = pack(r#"{"Seed": 1, "Vaults": []}"#);
        sources.items.push(source(ITEMS, "Charm", r#"{"Effect": "Lucky", "Rarity": "Rare"}"#));
        sources.effects = vec![
            source(EFFECTS, "Lucky", r#"{"DurationSeconds": 60, "Stacking": "Stack", "MaxStacks": 3, "Luck": 0.5}"#),
            source(EFFECTS, "Swift", r#"{"DurationSeconds": 30, "MoveSpeed": 1.5}"#),
        ];
        sources.drops.push(source(
            DROPS,
            "Charms",
            r#"{"Container": {"Type": "Choice", "Containers": [
                {"Type": "Single", "Item": {"ItemId": "Coin"}},
                {"Type": "Single", "Item": {"ItemId": "Charm"}}]}, "Pity": {"After": 4, "Step": 0.5}}"#,
        ));
        let assets = build(&sources, &world(), SPAWN).unwrap();
        assert_eq!(assets.effects["Lucky"].max_stacks, Some(3));
        assert_eq!(assets.effects["Swift"].stacking, Stacking::Refresh, "the default");
        assert_eq!(assets.effects["Swift"].dig_speed, 1.0, "the default");
        assert_eq!(assets.drops["Charms"].pity, Some(crate::model::loot::Pity { after: 4, step: 0.5 }));
        assert!(assets.rare_entries["Charms"].any() && !assets.rare_entries["Coins"].any());

        sources.effects = vec![
            source(EFFECTS, "Lucky", r#"{"DurationSeconds": 0, "Stacking": "Stack", "Luck": -1}"#),
            source(EFFECTS, "Swift", r#"{"DurationSeconds": 30, "MoveSpeed": 0, "MaxStacks": 2, "TreasureSense": -3}"#),
        ];
        sources.drops[1] = source(
            DROPS,
            "Charms",
            r#"{"Container": {"Type": "Single", "Item": {"ItemId": "Charm"}}, "Pity": {"After": 0, "Step": 0}}"#,
        );
        let errors = errors(&sources);
        let expected = [
            "Server/Drops/Charms.json:1:82: Pity.After: expected at least 1 (claims without a rare item)",
            "Server/Drops/Charms.json:1:93: Pity.Step: expected a rise of more than 0 per claim (0.5 is +50%), not 0",
            "Lucky.json:1:21: DurationSeconds: expected a duration of more than 0 seconds, not 0",
            "Lucky.json:1:36: Stacking: Stack needs MaxStacks (how many stacks at most)",
            "Lucky.json:1:53: Luck: expected 0 or more (0.5 raises rare weights by 50%), not -1",
            "Swift.json:1:38: MoveSpeed: expected a factor above 0 and at most 100 (1 changes nothing), not 0",
            "Swift.json:1:54: MaxStacks: only Stack effects have stacks; this one is Refresh",
            "Swift.json:1:74: TreasureSense: expected a radius of 0 or more tiles, not -3",
        ];
        assert_eq!(errors.len(), expected.len(), "{errors:#?}");
        for (error, want) in errors.iter().zip(expected) {
            assert!(error.ends_with(want), "{error}\n  {want}");
        }
    }
}
