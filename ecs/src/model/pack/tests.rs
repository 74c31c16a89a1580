use veltrix_sdk::Tile;

use super::*;
use crate::model::assets::{ClaimRule, HeatBand, Stacking, TilePos};
use crate::model::assets::{DROPS, EFFECTS, HUNTS, ITEMS};
use veltrix_sdk::assets::AssetSource;

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
    let errors: Vec<String> = build(&pack(hunt), &tiles, SPAWN).unwrap_err().iter().map(ToString::to_string).collect();
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
    let errors: Vec<String> = build(&pack(&hunt), &tiles, SPAWN).unwrap_err().iter().map(ToString::to_string).collect();
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
    assert!(errors[0].ends_with("from the spawn (5, 5): the spawn itself is not on walkable ground"), "{errors:#?}");
}

#[test]
fn a_group_vault_may_not_take_another_vaults_id() {
    let hunt = r#"{"Seed": 1, "Vaults": [
        {"Id": "Ruin_2", "At": {"X": 1, "Y": 1}, "LootTable": "Coins"},
        {"Id": "Ruin", "Count": 3, "Region": {"MinX": 0, "MinY": 0, "MaxX": 63, "MaxY": 63}, "LootTable": "Coins"}]}"#;
    let errors = errors(&pack(hunt));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].ends_with("Vaults[1].Id: this group's vault Ruin_2 has the id of another vault: ids are unique"));
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
