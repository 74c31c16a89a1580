//! The hunt's asset kinds, as designers write them in the mod's asset pack (Hytale layout):
//!
//! | kind | folder under `Server/` | type |
//! |---|---|---|
//! | items | `Item/Items/<Id>.json` | [`Item`] |
//! | loot tables | `Drops/<Id>.json` | [`DropTable`] |
//! | hunts | `TreasureHunt/Hunts/<Id>.json` | [`Hunt`] |
//! | effects | `TreasureHunt/Effects/<Id>.json` | [`Effect`] |
//!
//! Keys are PascalCase; an asset may name a `Parent` of its kind whose keys it inherits. The
//! JSON Schema of each kind is generated from these types ([`schemas`]) and shipped in the
//! pack's `Schemas/` folder.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::model::loot::{Container, DropTable, ItemDrop, Pity};

/// Folder of items under the pack's `Server/`.
pub const ITEMS: &str = "Item/Items";
/// Folder of loot tables.
pub const DROPS: &str = "Drops";
/// Folder of hunts.
pub const HUNTS: &str = "TreasureHunt/Hunts";
/// Folder of effects.
pub const EFFECTS: &str = "TreasureHunt/Effects";

/// An item players can find (`Item/Items/<Id>.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Item {
    /// The name players see; the id when absent.
    #[serde(default)]
    pub display_name: Option<String>,
    /// How many fit in one inventory slot (at least 1).
    #[serde(default = "one")]
    pub max_stack: u32,
    /// Score points per item on the leaderboard.
    #[serde(default)]
    pub value: u32,
    /// How rare the item is: shown to players, and what pity protection counts.
    #[serde(default)]
    pub rarity: Rarity,
    /// The effect (`TreasureHunt/Effects/<Id>.json`) applied when the item is used.
    #[serde(default)]
    pub effect: Option<String>,
}

/// How rare an item is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub enum Rarity {
    #[default]
    Common,
    Uncommon,
    Rare,
    Legendary,
}

/// An active effect (`TreasureHunt/Effects/<Id>.json`): granted by using an item that names it
/// (or by a hunt event or a command), it changes its holder's modifiers for a while.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Effect {
    /// The name players see; the id when absent.
    #[serde(default)]
    pub display_name: Option<String>,
    /// How long the effect lasts, in seconds (more than 0); a grant may give its own duration.
    pub duration_seconds: f32,
    /// What a grant does while the effect is active.
    #[serde(default)]
    pub stacking: Stacking,
    /// `Stack` only: how many stacks the effect holds at most (at least 1).
    #[serde(default)]
    pub max_stacks: Option<u32>,
    /// Multiplies the holder's movement speed (per stack); 1 changes nothing.
    #[serde(default = "one_f32")]
    pub move_speed: f32,
    /// Multiplies the effort each dig adds (per stack); 1 changes nothing.
    #[serde(default = "one_f32")]
    pub dig_speed: f32,
    /// The holder hears how many vaults it may still claim lie within this many tiles (per
    /// stack, added); 0 for none. Never where they are.
    #[serde(default)]
    pub treasure_sense: f32,
    /// Raises the weights of loot entries that can yield a Rare or Legendary item by this share
    /// (per stack, added): 0.5 is +50%.
    #[serde(default)]
    pub luck: f32,
}

/// What a grant of an effect already active does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Stacking {
    /// The duration starts over.
    #[default]
    Refresh,
    /// One more stack, up to `MaxStacks`, and the duration starts over for all stacks.
    Stack,
    /// Nothing: the effect runs out as it was.
    Ignore,
}

/// A hunt (`TreasureHunt/Hunts/<Id>.json`): its seed and its vaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Hunt {
    /// The name players see; the id when absent.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Seeds random vault placement and every loot roll: the same seed gives the same hunt.
    pub seed: u64,
    /// The vaults: each one fixed (`At`) or a group of `Count` random vaults (`Region`).
    pub vaults: Vec<VaultSpec>,
    /// When the hunt starts: by command (`Manual`), at a date and time, or daily in a window.
    #[serde(default)]
    pub schedule: Schedule,
    /// How long a run lasts once started, in seconds; none: until every FirstFinder vault is
    /// claimed or an operator stops it. A `Daily` window ends the run at the window's end.
    #[serde(default)]
    pub duration_seconds: Option<u32>,
    /// A scheduled start waits (within its window) until this many players are online.
    #[serde(default)]
    pub min_players: u32,
    /// Clues pointing at the vaults, each with its trigger and kind.
    #[serde(default)]
    pub clues: Vec<ClueSpec>,
}

/// When a hunt starts. Times are UTC.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Schedule {
    /// Started by `hunt start <id>` (or the mod's `Hunt` config at server start).
    #[default]
    Manual,
    /// Once, at this date and time (RFC 3339, e.g. `2026-12-24T20:00:00Z`).
    At(String),
    /// Every day in a window.
    Daily(DailyWindow),
}

/// A daily window: starts at `At` (`HH:MM`, UTC) and lasts `Minutes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DailyWindow {
    pub at: String,
    pub minutes: u32,
}

/// A clue: what it tells ([`ClueKind`]) about which vault, and when it is released
/// ([`ClueTrigger`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ClueSpec {
    /// Unique in the hunt.
    pub id: String,
    /// The vault the clue is about.
    pub vault: String,
    #[serde(default)]
    pub trigger: ClueTrigger,
    pub kind: ClueKind,
    /// HotCold only: the bands the walking distance is told in, taken in order (the first whose
    /// `Within` holds the distance; a band without `Within` holds any, and goes last). Burning
    /// (5), Hot (15), Warm (40), Cool (100) and Cold when absent.
    #[serde(default)]
    pub bands: Option<Vec<HeatBand>>,
}

/// When a clue is released.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum ClueTrigger {
    /// Any player may ask for it from the hunt's start.
    #[default]
    OnRequest,
    /// To every player, this many seconds after the hunt's start.
    AfterSeconds(u32),
    /// To every player, when this vault is first claimed (clue chains).
    VaultClaimed(String),
    /// To each player who comes within the circle.
    Enter(Circle),
}

/// A circle of tiles: centre and radius.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Circle {
    pub x: f32,
    pub y: f32,
    pub radius: f32,
}

/// What a clue tells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum ClueKind {
    /// A riddle: a key of the language files (`Languages/<locale>/*.lang`).
    Text(String),
    /// A circle that contains the vault; its centre is offset (deterministically) so it does
    /// not give the spot away.
    Area(AreaClue),
    /// How far the asking player is from the vault on foot, as a band (Burning ... Cold).
    HotCold,
    /// The direction of the first step of the shortest walk to the vault.
    Compass,
    /// The vault's exact tile.
    Reveal,
}

impl ClueKind {
    /// The kind's name as designers write it (`"Area"`).
    pub fn name(&self) -> &'static str {
        match self {
            ClueKind::Text(_) => "Text",
            ClueKind::Area(_) => "Area",
            ClueKind::HotCold => "HotCold",
            ClueKind::Compass => "Compass",
            ClueKind::Reveal => "Reveal",
        }
    }
}

/// An area clue's circle: `Radius` at release, shrinking to `ShrinkTo` over `ShrinkSeconds`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AreaClue {
    pub radius: f32,
    #[serde(default)]
    pub shrink_to: Option<f32>,
    #[serde(default)]
    pub shrink_seconds: u32,
}

/// One vault at a fixed tile, or `Count` vaults placed at random in a region.
///
/// A random group's vaults are named `<Id>_1` to `<Id>_<Count>`; their tiles come from the
/// hunt's seed and the group's id, so every server places them alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct VaultSpec {
    /// The vault's id (a group's prefix), unique in the hunt.
    pub id: String,
    /// A fixed vault's tile.
    #[serde(default)]
    pub at: Option<TilePos>,
    /// How many random vaults this group places (with `Region`).
    #[serde(default)]
    pub count: Option<u32>,
    /// Where a group's vaults may go (with `Count`).
    #[serde(default)]
    pub region: Option<Region>,
    /// A group's vaults are at least this many tiles from each other and from every vault
    /// placed before them.
    #[serde(default)]
    pub min_spacing: f32,
    /// A group's vaults are at least this many tiles from the world's spawn.
    #[serde(default)]
    pub min_spawn_distance: f32,
    /// The loot table (`Drops/<Id>.json`) rolled for the claimant; for
    /// FirstFinderThenPerPlayer, the first finder's jackpot.
    pub loot_table: String,
    /// FirstFinderThenPerPlayer only: the table rolled for everyone after the first finder.
    #[serde(default)]
    pub consolation_table: Option<String>,
    /// Digs needed to open the vault (each dig adds one, from a player within reach).
    #[serde(default = "default_dig_effort")]
    pub dig_effort: u32,
    /// Who may claim the vault, and how often.
    #[serde(default)]
    pub claim: ClaimRule,
    /// Players within this many tiles see the vault's sparkle when it is opened.
    #[serde(default = "default_sparkle_radius")]
    pub sparkle_radius: f32,
}

/// A tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct TilePos {
    pub x: u32,
    pub y: u32,
}

impl TilePos {
    /// The distance between the tiles' centres.
    pub fn distance(self, other: TilePos) -> f32 {
        let (dx, dy) = (self.x as f32 - other.x as f32, self.y as f32 - other.y as f32);
        (dx * dx + dy * dy).sqrt()
    }

    /// The distance from the tile's centre to a position.
    pub fn distance_to(self, x: f32, y: f32) -> f32 {
        let (dx, dy) = (self.x as f32 + 0.5 - x, self.y as f32 + 0.5 - y);
        (dx * dx + dy * dy).sqrt()
    }
}

/// A rectangle of tiles, both corners included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Region {
    pub min_x: u32,
    pub min_y: u32,
    pub max_x: u32,
    pub max_y: u32,
}

/// Who may claim a vault: the wire's type (treasure-hunt-wire), named here as always.
pub use treasure_hunt_wire::ClaimRule;

fn one() -> u32 {
    1
}

fn one_f32() -> f32 {
    1.0
}

fn default_dig_effort() -> u32 {
    10
}

fn default_sparkle_radius() -> f32 {
    16.0
}

/// The JSON Schema of each asset kind, by file name (`Hunt.schema.json`, ...), as shipped in
/// the pack's `Schemas/` folder.
pub fn schemas() -> Vec<(&'static str, String)> {
    let pretty = |schema: schemars::Schema| serde_json::to_string_pretty(&schema).expect("a schema serialises") + "\n";
    vec![
        ("Item.schema.json", pretty(with_pack_keys(schemars::schema_for!(Item)))),
        ("Drop.schema.json", pretty(with_pack_keys(schemars::schema_for!(DropTable)))),
        ("Hunt.schema.json", pretty(with_pack_keys(schemars::schema_for!(Hunt)))),
        ("Effect.schema.json", pretty(with_pack_keys(schemars::schema_for!(Effect)))),
    ]
}

/// Every asset may also hold `Parent` (inheritance) and `$schema` (for editors).
fn with_pack_keys(mut schema: schemars::Schema) -> schemars::Schema {
    if let Some(properties) = schema.get_mut("properties").and_then(|p| p.as_object_mut()) {
        properties.insert(
            "Parent".into(),
            serde_json::json!({"type": "string", "description": "An asset of the same kind whose keys this one inherits."}),
        );
        properties.insert("$schema".into(), serde_json::json!({"type": "string"}));
    }
    if let Some(required) = schema.get_mut("required") {
        // An asset with a Parent may leave any key to it.
        *required = serde_json::json!([]);
    }
    schema
}

/// One band of a HotCold hint: walking distances up to `Within` tiles get `Label`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct HeatBand {
    /// The largest walking distance of the band, in tiles; absent for "any distance" (the last
    /// band).
    #[serde(default)]
    pub within: Option<f32>,
    /// What the player is told (`"Hot"`).
    pub label: String,
}

impl HeatBand {
    /// Burning within 5 tiles, Hot within 15, Warm within 40, Cool within 100, Cold beyond.
    pub fn defaults() -> Vec<HeatBand> {
        let band = |within: Option<f32>, label: &str| HeatBand { within, label: label.into() };
        vec![
            band(Some(5.0), "Burning"),
            band(Some(15.0), "Hot"),
            band(Some(40.0), "Warm"),
            band(Some(100.0), "Cool"),
            band(None, "Cold"),
        ]
    }

    /// The label of the first band (in order) holding `distance`; beyond every band, the last
    /// band's; `None` when there are no bands.
    pub fn label_for(bands: &[HeatBand], distance: f32) -> Option<&str> {
        bands
            .iter()
            .find(|b| b.within.is_none_or(|within| distance <= within))
            .or(bands.last())
            .map(|b| b.label.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The schemas shipped in `assets/Schemas/` are the ones the types generate. After changing
    /// an asset type, regenerate them: `VELTRIX_WRITE_SCHEMAS=1 cargo xtask test`.
    #[test]
    fn shipped_schemas_match_the_types() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/Schemas");
        for (name, schema) in super::schemas() {
            let path = dir.join(name);
            if std::env::var_os("VELTRIX_WRITE_SCHEMAS").is_some() {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &schema).unwrap();
            }
            let shipped = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(shipped == schema, "{} is stale: run VELTRIX_WRITE_SCHEMAS=1 cargo xtask test", path.display());
        }
    }

    #[test]
    fn schemas_describe_the_keys_designers_write() {
        let schemas = super::schemas();
        let hunt = &schemas.iter().find(|(n, _)| *n == "Hunt.schema.json").unwrap().1;
        for key in [
            "\"Seed\"",
            "\"Vaults\"",
            "\"LootTable\"",
            "\"FirstFinderThenPerPlayer\"",
            "\"Parent\"",
            "\"Bands\"",
            "\"Within\"",
        ] {
            assert!(hunt.contains(key), "{key} missing from the hunt schema");
        }
        let drop = &schemas.iter().find(|(n, _)| *n == "Drop.schema.json").unwrap().1;
        for key in ["\"Choice\"", "\"QuantityMin\"", "\"RollsMax\"", "\"Pity\"", "\"After\""] {
            assert!(drop.contains(key), "{key} missing from the drop schema");
        }
        let effect = &schemas.iter().find(|(n, _)| *n == "Effect.schema.json").unwrap().1;
        for key in ["\"DurationSeconds\"", "\"Stacking\"", "\"MaxStacks\"", "\"TreasureSense\"", "\"Luck\""] {
            assert!(effect.contains(key), "{key} missing from the effect schema");
        }
    }
}
