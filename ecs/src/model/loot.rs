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
//!
//! A roll may favour rare loot: [`DropTable::roll_boosted`] multiplies the weight of every entry
//! that can yield a Rare or Legendary item (in a `Choice`, its relative weight; in a `Multiple`,
//! its percent chance, up to 100) by a boost, from the claimant's luck and the table's
//! [`Pity`]. Which entries those are is worked out once per table ([`RareEntries`]), when the
//! pack is built. A boost of 1 rolls exactly as an unboosted roll.

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A drop table file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DropTable {
    pub container: Container,
    /// Bad-luck protection: after `After` claims of this table without a Rare or Legendary
    /// item, the rare entries' weights rise with each further claim until one drops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pity: Option<Pity>,
}

/// A table's bad-luck protection (per player).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Pity {
    /// Claims without a Rare-or-better item before the weights start to rise (at least 1).
    pub after: u32,
    /// How much the rare weights rise with each further claim: 0.5 is +50% of their weight per
    /// claim (more than 0).
    pub step: f32,
}

impl Pity {
    /// The boost of the next claim after `dry` claims without a rare item: 1 until `After`
    /// dry claims, then 1 + Step, 1 + 2 Step, ...
    pub fn boost(&self, dry: u32) -> f64 {
        if dry < self.after { 1.0 } else { 1.0 + f64::from(self.step) * f64::from(dry - self.after + 1) }
    }
}

/// Which entries of a table can yield a Rare-or-better item: one flag per node of the table,
/// in pre-order, with the size of each node's subtree to step over children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RareEntries {
    nodes: Vec<RareNode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RareNode {
    rare: bool,
    size: u32,
}

impl RareEntries {
    /// The rare entries of `table`, `is_rare` telling which items are Rare or better.
    pub fn of(table: &DropTable, is_rare: impl Fn(&str) -> bool) -> Self {
        let mut nodes = Vec::new();
        mark(&table.container, &is_rare, &mut nodes);
        Self { nodes }
    }

    /// Whether the table can yield a rare item at all.
    pub fn any(&self) -> bool {
        self.nodes.first().is_some_and(|n| n.rare)
    }

    pub(crate) fn is_rare(&self, node: usize) -> bool {
        self.nodes.get(node).is_some_and(|n| n.rare)
    }

    /// How many nodes the subtree at `node` holds: the step from a child to its next sibling.
    pub(crate) fn size(&self, node: usize) -> usize {
        self.nodes.get(node).map_or(1, |n| n.size as usize)
    }
}

fn mark(container: &Container, is_rare: &impl Fn(&str) -> bool, nodes: &mut Vec<RareNode>) -> bool {
    let at = nodes.len();
    nodes.push(RareNode { rare: false, size: 1 });
    let rare = match container {
        Container::Empty { .. } => false,
        Container::Single { item, .. } => is_rare(&item.item_id),
        Container::Choice { containers, .. } | Container::Multiple { containers, .. } => {
            let mut any = false;
            for child in containers {
                any |= mark(child, is_rare, nodes);
            }
            any
        }
    };
    nodes[at] = RareNode { rare, size: (nodes.len() - at) as u32 };
    rare
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

/// Items and how many: the wire's type (treasure-hunt-wire), named here as always.
pub use treasure_hunt_wire::ItemStack;

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
        self.roll_boosted(rng, &RareEntries::default(), 1.0)
    }

    /// Rolls the table with the weights of its `rare` entries multiplied by `boost` (1 or more).
    pub fn roll_boosted(&self, rng: &mut impl Rng, rare: &RareEntries, boost: f64) -> Vec<ItemStack> {
        let mut out = Vec::new();
        roll(&self.container, rng, &mut out, &Boost::new(rare, boost), 0);
        out
    }
}

/// The rare entries of the table being rolled and the factor on their weights (the odds of
/// [`super::odds`] weigh entries with it too, so they match the roll).
pub(crate) struct Boost<'a> {
    pub(crate) rare: &'a RareEntries,
    factor: f64,
}

impl<'a> Boost<'a> {
    /// The boost of a roll: `boost` when it is a finite number above 1, else 1.
    pub(crate) fn new(rare: &'a RareEntries, boost: f64) -> Self {
        Boost { rare, factor: if boost.is_finite() && boost > 1.0 { boost } else { 1.0 } }
    }

    /// The factor on the rare entries' weights.
    pub(crate) fn factor(&self) -> f64 {
        self.factor
    }

    /// A node's weight, boosted when it can yield a rare item.
    pub(crate) fn weight(&self, container: &Container, node: usize) -> f64 {
        let weight = container.weight().max(0.0);
        // A factor of 1 leaves the weight untouched: the roll is the unboosted one, bit for bit.
        if self.factor != 1.0 && self.rare.is_rare(node) { weight * self.factor } else { weight }
    }
}

fn roll(container: &Container, rng: &mut impl Rng, out: &mut Vec<ItemStack>, boost: &Boost, node: usize) {
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
            let mut child_node = node + 1;
            for child in containers {
                let chance = boost.weight(child, child_node).clamp(0.0, 100.0);
                if chance >= 100.0 || rng.random_range(0.0..100.0) < chance {
                    roll(child, rng, out, boost, child_node);
                }
                child_node += boost.rare.size(child_node);
            }
        }
        Container::Choice { rolls_min, rolls_max, containers, .. } => {
            let mut total = 0.0;
            let mut child_node = node + 1;
            for child in containers {
                total += boost.weight(child, child_node);
                child_node += boost.rare.size(child_node);
            }
            if total <= 0.0 {
                return;
            }
            let rolls = rng.random_range((*rolls_min).min(*rolls_max)..=(*rolls_max).max(*rolls_min));
            for _ in 0..rolls {
                let mut pick = rng.random_range(0.0..total);
                let mut child_node = node + 1;
                for child in containers {
                    let weight = boost.weight(child, child_node);
                    if pick < weight {
                        roll(child, rng, out, boost, child_node);
                        break;
                    }
                    pick -= weight;
                    child_node += boost.rare.size(child_node);
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

    const TWO_PERCENT: &str = r#"{"Container": {"Type": "Choice", "Containers": [
        {"Type": "Single", "Weight": 98, "Item": {"ItemId": "Common_Gem"}},
        {"Type": "Single", "Weight": 2, "Item": {"ItemId": "Rare_Gem"}}]}}"#;

    fn rare_gem(item: &str) -> bool {
        item == "Rare_Gem"
    }

    /// One player claiming the table `claims` times (each claim its own seed), with `luck`
    /// and the table's pity: how many claims yielded the rare item, and the longest run of
    /// claims without it.
    fn claim_many(t: &DropTable, claims: u64, luck: f64) -> (u64, u64) {
        let rare = RareEntries::of(t, rare_gem);
        let (mut hits, mut dry, mut longest) = (0, 0u32, 0u64);
        for claim in 0..claims {
            let boost = (1.0 + luck) * t.pity.map_or(1.0, |p| p.boost(dry));
            let loot = t.roll_boosted(&mut loot_rng(3, "Pity_Vault", claim), &rare, boost);
            if loot.iter().any(|s| rare_gem(&s.item)) {
                hits += 1;
                dry = 0;
            } else {
                dry += 1;
                longest = longest.max(u64::from(dry));
            }
        }
        (hits, longest)
    }

    #[test]
    fn rare_entries_are_marked_through_nested_containers() {
        let t = table(
            r#"{"Container": {"Type": "Multiple", "Containers": [
                {"Type": "Single", "Item": {"ItemId": "Coin"}},
                {"Type": "Choice", "Weight": 30, "Containers": [
                    {"Type": "Empty"},
                    {"Type": "Single", "Item": {"ItemId": "Rare_Gem"}}]},
                {"Type": "Single", "Item": {"ItemId": "Common_Gem"}}]}}"#,
        );
        let rare = RareEntries::of(&t, rare_gem);
        let flags: Vec<bool> = rare.nodes.iter().map(|n| n.rare).collect();
        assert_eq!(flags, [true, false, true, false, true, false]);
        let sizes: Vec<u32> = rare.nodes.iter().map(|n| n.size).collect();
        assert_eq!(sizes, [6, 1, 3, 1, 1, 1]);
        assert!(rare.any());
        assert!(!RareEntries::of(&t, |_| false).any());
    }

    /// A boost of 1 (no luck, no pity yet) rolls exactly what an unboosted roll does.
    #[test]
    fn no_boost_rolls_the_same_loot() {
        let t = table(GEMS);
        let rare = RareEntries::of(&t, rare_gem);
        for claim in 0..500 {
            assert_eq!(t.roll_boosted(&mut loot_rng(9, "v", claim), &rare, 1.0), t.roll(&mut loot_rng(9, "v", claim)));
        }
    }

    /// Pity over 100,000 claims of a 2% table: without it, dry runs of well over 200 claims
    /// happen; with `Pity {After: 10, Step: 1.0}`, none is longer than the length a run
    /// reaches with a chance below one in a billion, and the rare rate rises.
    #[test]
    fn pity_bounds_dry_runs_and_raises_the_rare_rate() {
        const CLAIMS: u64 = 100_000;
        let mut t = table(TWO_PERCENT);
        let (plain_hits, plain_longest) = claim_many(&t, CLAIMS, 0.0);
        let plain_rate = plain_hits as f64 / CLAIMS as f64;
        assert!((0.018..0.022).contains(&plain_rate), "about 2%: {plain_rate}");
        assert!(plain_longest > 200, "without pity a dry run is long: {plain_longest}");

        let pity = Pity { after: 10, step: 1.0 };
        t.pity = Some(pity);
        // The chance that a run of dry claims reaches `len`: the product of each claim's chance
        // of missing, 98 / (98 + 2 * boost). The bound is where it falls below 1e-9.
        let (mut survive, mut bound) = (1.0f64, 0u32);
        while survive >= 1e-9 {
            survive *= 98.0 / (98.0 + 2.0 * pity.boost(bound));
            bound += 1;
        }
        let (pity_hits, pity_longest) = claim_many(&t, CLAIMS, 0.0);
        assert!(pity_longest <= u64::from(bound), "longest dry run {pity_longest}, bound {bound}");
        assert!(bound <= 60, "the bound is short: {bound}");
        let pity_rate = pity_hits as f64 / CLAIMS as f64;
        eprintln!(
            "2% table, {CLAIMS} claims: without pity {plain_rate:.4} rare, longest dry run {plain_longest}; \
             with pity {pity_rate:.4} rare, longest dry run {pity_longest} (bound {bound})"
        );
        assert!(pity_rate > plain_rate * 1.5, "pity raises the rare rate: {plain_rate} -> {pity_rate}");
    }

    /// Luck 0.5 multiplies the rare weight by 1.5: 2% becomes 3 / 101, about 2.97%.
    #[test]
    fn luck_raises_the_rare_rate() {
        const CLAIMS: u64 = 100_000;
        let t = table(TWO_PERCENT);
        let (hits, _) = claim_many(&t, CLAIMS, 0.5);
        let rate = hits as f64 / CLAIMS as f64;
        eprintln!("2% table, {CLAIMS} claims with luck 0.5: {rate:.4} rare");
        assert!((0.0275..0.032).contains(&rate), "about 2.97%: {rate}");
        // In a Multiple, luck raises the percent chance of a rare entry, up to 100.
        let chance = table(
            r#"{"Container": {"Type": "Multiple", "Containers": [
                {"Type": "Single", "Weight": 40, "Item": {"ItemId": "Rare_Gem"}}]}}"#,
        );
        let rare = RareEntries::of(&chance, rare_gem);
        let count = |boost: f64| {
            (0..20_000).filter(|c| !chance.roll_boosted(&mut loot_rng(5, "m", *c), &rare, boost).is_empty()).count()
        };
        assert!((7_600..8_400).contains(&count(1.0)), "40%");
        assert!((11_600..12_400).contains(&count(1.5)), "60%");
        assert_eq!(count(3.0), 20_000, "capped at 100%");
    }
}
