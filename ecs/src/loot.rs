//! Loot tables in Hytale's drop format (`assets/Server/Drops/<Id>.json`), rolled with a
//! deterministic generator: the same seed gives the same loot on every machine and run.
//!
//! ```json
//! {"Container": {"Type": "Multiple", "Containers": [
//!   {"Type": "Single", "Item": {"ItemId": "Gold_Coin", "QuantityMin": 5, "QuantityMax": 20}},
//!   {"Type": "Choice", "Weight": 30, "Containers": [
//!     {"Type": "Single", "Weight": 95, "Item": {"ItemId": "Silver_Ring"}},
//!     {"Type": "Single", "Weight": 5, "Item": {"ItemId": "Crown_Of_Tides"}}]}]}}
//! ```
//!
//! - `Single` yields its item, a quantity from QuantityMin to QuantityMax (default 1 to 1).
//! - `Choice` rolls RollsMin to RollsMax times (default 1), each time one child picked by its
//!   relative `Weight`.
//! - `Multiple` evaluates every child, each with its `Weight` as a percent chance (0 to 100).
//! - `Empty` yields nothing (a weighted "no drop" in a Choice).
//!
//! `Weight` defaults to 100.

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A drop table file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DropTable {
    pub container: Container,
}

/// One node of a drop table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "Type", deny_unknown_fields)]
pub enum Container {
    #[serde(rename_all = "PascalCase")]
    Single {
        #[serde(default = "default_weight")]
        weight: f64,
        item: ItemDrop,
    },
    #[serde(rename_all = "PascalCase")]
    Choice {
        #[serde(default = "default_weight")]
        weight: f64,
        #[serde(default = "one")]
        rolls_min: u32,
        #[serde(default = "one")]
        rolls_max: u32,
        containers: Vec<Container>,
    },
    #[serde(rename_all = "PascalCase")]
    Multiple {
        #[serde(default = "default_weight")]
        weight: f64,
        containers: Vec<Container>,
    },
    #[serde(rename_all = "PascalCase")]
    Empty {
        #[serde(default = "default_weight")]
        weight: f64,
    },
}

/// The item a `Single` yields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ItemDrop {
    pub item_id: String,
    #[serde(default = "one")]
    pub quantity_min: u32,
    #[serde(default = "one")]
    pub quantity_max: u32,
}

/// Items and how many: what a roll yields, merged by item in order of first appearance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemStack {
    pub item: String,
    pub quantity: u32,
}

fn default_weight() -> f64 {
    100.0
}

fn one() -> u32 {
    1
}

impl Container {
    pub fn weight(&self) -> f64 {
        match self {
            Container::Single { weight, .. }
            | Container::Choice { weight, .. }
            | Container::Multiple { weight, .. }
            | Container::Empty { weight } => *weight,
        }
    }
}

/// The generator for one roll: seeded from the hunt's seed, the vault and the claimant, so a
/// replay of the same claim yields the same loot.
pub fn loot_rng(hunt_seed: u64, vault: &str, claimant: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(stable_hash(hunt_seed, vault, claimant))
}

/// A hash of (seed, name, number) that every platform and Rust release computes alike (FNV-1a;
/// std's hasher promises neither): the seed of each deterministic generator of the hunt.
pub fn stable_hash(seed: u64, name: &str, n: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in seed.to_le_bytes().iter().chain(name.as_bytes()).chain(&[0xff]).chain(&n.to_le_bytes()) {
        h = (h ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl DropTable {
    /// Rolls the table.
    pub fn roll(&self, rng: &mut impl Rng) -> Vec<ItemStack> {
        let mut out = Vec::new();
        roll(&self.container, rng, &mut out);
        out
    }
}

fn roll(container: &Container, rng: &mut impl Rng, out: &mut Vec<ItemStack>) {
    match container {
        Container::Empty { .. } => {}
        Container::Single { item, .. } => {
            let (lo, hi) = (item.quantity_min.min(item.quantity_max), item.quantity_max.max(item.quantity_min));
            let quantity = rng.random_range(lo..=hi);
            if quantity == 0 {
                return;
            }
            match out.iter_mut().find(|s| s.item == item.item_id) {
                Some(stack) => stack.quantity = stack.quantity.saturating_add(quantity),
                None => out.push(ItemStack { item: item.item_id.clone(), quantity }),
            }
        }
        Container::Multiple { containers, .. } => {
            for child in containers {
                let chance = child.weight().clamp(0.0, 100.0);
                if chance >= 100.0 || rng.random_range(0.0..100.0) < chance {
                    roll(child, rng, out);
                }
            }
        }
        Container::Choice { rolls_min, rolls_max, containers, .. } => {
            let total: f64 = containers.iter().map(|c| c.weight().max(0.0)).sum();
            if total <= 0.0 {
                return;
            }
            let rolls = rng.random_range((*rolls_min).min(*rolls_max)..=(*rolls_max).max(*rolls_min));
            for _ in 0..rolls {
                let mut pick = rng.random_range(0.0..total);
                for child in containers {
                    let weight = child.weight().max(0.0);
                    if pick < weight {
                        roll(child, rng, out);
                        break;
                    }
                    pick -= weight;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(json: &str) -> DropTable {
        serde_json::from_str(json).unwrap()
    }

    const GEMS: &str = r#"{"Container": {"Type": "Choice", "Containers": [
        {"Type": "Single", "Weight": 70, "Item": {"ItemId": "Common_Gem"}},
        {"Type": "Single", "Weight": 25, "Item": {"ItemId": "Uncommon_Gem"}},
        {"Type": "Single", "Weight": 5, "Item": {"ItemId": "Rare_Gem"}}]}}"#;

    #[test]
    fn same_seed_same_loot() {
        let t = table(GEMS);
        let a: Vec<_> = (0..50).map(|c| t.roll(&mut loot_rng(42, "Ancient_Vault", c))).collect();
        let b: Vec<_> = (0..50).map(|c| t.roll(&mut loot_rng(42, "Ancient_Vault", c))).collect();
        assert_eq!(a, b);
        let other: Vec<_> = (0..50).map(|c| t.roll(&mut loot_rng(43, "Ancient_Vault", c))).collect();
        assert_ne!(a, other);
    }

    #[test]
    fn choice_follows_relative_weights() {
        let t = table(GEMS);
        let mut rng = loot_rng(1, "v", 1);
        let mut counts = [0u32; 3];
        for _ in 0..20_000 {
            let loot = t.roll(&mut rng);
            assert_eq!(loot.len(), 1);
            counts[["Common_Gem", "Uncommon_Gem", "Rare_Gem"].iter().position(|i| *i == loot[0].item).unwrap()] += 1;
        }
        for (count, share) in counts.iter().zip([0.70, 0.25, 0.05]) {
            let got = f64::from(*count) / 20_000.0;
            assert!((got - share).abs() < 0.015, "expected about {share}, got {got} ({counts:?})");
        }
    }

    #[test]
    fn multiple_uses_weights_as_percent_chances_and_quantities_stay_in_range() {
        let t = table(
            r#"{"Container": {"Type": "Multiple", "Containers": [
                {"Type": "Single", "Item": {"ItemId": "Bone", "QuantityMin": 2, "QuantityMax": 4}},
                {"Type": "Single", "Weight": 50, "Item": {"ItemId": "Leather"}},
                {"Type": "Empty"}]}}"#,
        );
        let mut rng = loot_rng(7, "v", 9);
        let mut leather = 0;
        for _ in 0..10_000 {
            let loot = t.roll(&mut rng);
            let bone = loot.iter().find(|s| s.item == "Bone").expect("bone is guaranteed");
            assert!((2..=4).contains(&bone.quantity));
            leather += loot.iter().filter(|s| s.item == "Leather").count();
        }
        assert!((4_700..=5_300).contains(&leather), "about half: {leather}");
    }

    #[test]
    fn choice_rolls_several_times_and_stacks_merge() {
        let t = table(
            r#"{"Container": {"Type": "Choice", "RollsMin": 3, "RollsMax": 3, "Containers": [{"Type": "Single", "Item": {"ItemId": "Coin"}}]}}"#,
        );
        assert_eq!(t.roll(&mut loot_rng(0, "v", 0)), vec![ItemStack { item: "Coin".into(), quantity: 3 }]);
    }

    #[test]
    fn all_zero_weights_yield_nothing() {
        let t = table(
            r#"{"Container": {"Type": "Choice", "Containers": [{"Type": "Single", "Weight": 0, "Item": {"ItemId": "X"}}]}}"#,
        );
        assert!(t.roll(&mut loot_rng(0, "v", 0)).is_empty());
    }
}
