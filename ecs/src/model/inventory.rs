//! Inventories: a fixed number of slots, each holding up to an item's `MaxStack`. A reward
//! that does not fit goes to the player's pending rewards and is delivered as space frees:
//! never lost, never doubled.

use std::collections::{HashMap, VecDeque};

use veltrix_sdk::prelude::*;

use crate::model::loot::ItemStack;

/// What the hunt knows of each item (from `assets/Server/Item/Items/<Id>.json`).
#[derive(Resource, Debug, Clone, Default)]
pub struct ItemCatalog {
    max_stack: HashMap<String, u32>,
}

impl ItemCatalog {
    pub fn insert(&mut self, item: impl Into<String>, max_stack: u32) {
        assert!(max_stack > 0, "an item stacks at least one");
        self.max_stack.insert(item.into(), max_stack);
    }

    /// An item's MaxStack; an unknown item stacks one per slot (asset validation refuses
    /// unknown items before they get here).
    pub fn max_stack(&self, item: &str) -> u32 {
        self.max_stack.get(item).copied().unwrap_or(1)
    }
}

/// A player's slots.
#[derive(Component, Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    slots: Vec<Option<ItemStack>>,
}

/// Rewards granted but not yet in the inventory, oldest first.
#[derive(Component, Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingRewards(pub VecDeque<ItemStack>);

impl Inventory {
    pub fn with_slots(slots: usize) -> Self {
        Self { slots: vec![None; slots] }
    }

    /// An inventory holding these slots (restored from the store), with at least `slots`
    /// slots: a stored inventory larger than the config's keeps every item.
    pub fn from_slots(mut stored: Vec<Option<ItemStack>>, slots: usize) -> Self {
        if stored.len() < slots {
            stored.resize(slots, None);
        }
        Self { slots: stored }
    }

    pub fn slots(&self) -> &[Option<ItemStack>] {
        &self.slots
    }

    /// How many of `item` the inventory holds.
    pub fn count(&self, item: &str) -> u64 {
        self.slots.iter().flatten().filter(|s| s.item == item).map(|s| u64::from(s.quantity)).sum()
    }

    /// Puts as many of `quantity` as fit (topping up existing stacks first, then empty slots);
    /// returns how many did not fit.
    pub fn insert(&mut self, item: &str, quantity: u32, max_stack: u32) -> u32 {
        let mut left = quantity;
        for stack in self.slots.iter_mut().flatten().filter(|s| s.item == item) {
            let room = max_stack.saturating_sub(stack.quantity);
            let moved = room.min(left);
            stack.quantity += moved;
            left -= moved;
        }
        for slot in self.slots.iter_mut().filter(|s| s.is_none()) {
            if left == 0 {
                break;
            }
            let moved = max_stack.min(left);
            *slot = Some(ItemStack { item: item.to_string(), quantity: moved });
            left -= moved;
        }
        left
    }

    /// Takes up to `quantity` of `item` out; returns how many were taken.
    pub fn remove(&mut self, item: &str, quantity: u32) -> u32 {
        let mut taken = 0;
        for slot in self.slots.iter_mut().rev() {
            if let Some(stack) = slot
                && stack.item == item
            {
                let moved = stack.quantity.min(quantity - taken);
                stack.quantity -= moved;
                taken += moved;
                if stack.quantity == 0 {
                    *slot = None;
                }
            }
            if taken == quantity {
                break;
            }
        }
        taken
    }
}

/// Grants `rewards`: what fits goes into the inventory, the rest to the pending queue.
/// Returns what went into the inventory now.
pub fn grant(
    inventory: &mut Inventory,
    pending: &mut PendingRewards,
    rewards: &[ItemStack],
    catalog: &ItemCatalog,
) -> Vec<ItemStack> {
    let mut delivered = Vec::new();
    for reward in rewards {
        // Behind older pending rewards, in order: a later reward never overtakes.
        let left = if pending.0.is_empty() {
            inventory.insert(&reward.item, reward.quantity, catalog.max_stack(&reward.item))
        } else {
            reward.quantity
        };
        if left < reward.quantity {
            delivered.push(ItemStack { item: reward.item.clone(), quantity: reward.quantity - left });
        }
        if left > 0 {
            pending.0.push_back(ItemStack { item: reward.item.clone(), quantity: left });
        }
    }
    delivered
}

/// Moves pending rewards into the inventory as far as they fit, oldest first; returns what
/// moved.
pub fn deliver_pending(
    inventory: &mut Inventory,
    pending: &mut PendingRewards,
    catalog: &ItemCatalog,
) -> Vec<ItemStack> {
    let mut delivered = Vec::new();
    while let Some(front) = pending.0.front_mut() {
        let left = inventory.insert(&front.item, front.quantity, catalog.max_stack(&front.item));
        if left < front.quantity {
            delivered.push(ItemStack { item: front.item.clone(), quantity: front.quantity - left });
        }
        if left > 0 {
            front.quantity = left;
            break;
        }
        pending.0.pop_front();
    }
    delivered
}

#[cfg(test)]
mod tests {
    use rand::{RngExt, SeedableRng};

    use super::*;

    fn catalog() -> ItemCatalog {
        let mut c = ItemCatalog::default();
        c.insert("Coin", 50);
        c.insert("Crown", 1);
        c
    }

    fn stack(item: &str, quantity: u32) -> ItemStack {
        ItemStack { item: item.into(), quantity }
    }

    #[test]
    fn overflow_goes_pending_and_arrives_as_space_frees() {
        let catalog = catalog();
        let mut inv = Inventory::with_slots(2);
        let mut pending = PendingRewards::default();
        let now = grant(&mut inv, &mut pending, &[stack("Coin", 70), stack("Crown", 1)], &catalog);
        assert_eq!(now, vec![stack("Coin", 70)]);
        assert_eq!(pending.0, vec![stack("Crown", 1)]);
        // Both slots hold coins (50 + 20): no room for the crown until one empties.
        assert_eq!(inv.remove("Coin", 10), 10);
        assert_eq!(deliver_pending(&mut inv, &mut pending, &catalog), vec![]);
        assert_eq!(inv.remove("Coin", 10), 10);
        assert_eq!(deliver_pending(&mut inv, &mut pending, &catalog), vec![stack("Crown", 1)]);
        assert!(pending.0.is_empty());
        assert_eq!(inv.count("Crown"), 1);
    }

    /// Whatever the order of grants, removals and deliveries: inventory + pending always equals
    /// granted - removed, item by item. Never lost, never doubled.
    #[test]
    fn items_are_conserved_under_random_operations() {
        let catalog = catalog();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for _ in 0..200 {
            let mut inv = Inventory::with_slots(rng.random_range(1..6));
            let mut pending = PendingRewards::default();
            let mut expected: HashMap<&str, i64> = HashMap::new();
            for _ in 0..100 {
                let item = if rng.random_bool(0.7) { "Coin" } else { "Crown" };
                match rng.random_range(0..3) {
                    0 => {
                        let q = rng.random_range(1..120);
                        grant(&mut inv, &mut pending, &[stack(item, q)], &catalog);
                        *expected.entry(item).or_default() += i64::from(q);
                    }
                    1 => {
                        let q = rng.random_range(1..60);
                        *expected.entry(item).or_default() -= i64::from(inv.remove(item, q));
                    }
                    _ => {
                        deliver_pending(&mut inv, &mut pending, &catalog);
                    }
                }
                for item in ["Coin", "Crown"] {
                    let held = inv.count(item) as i64
                        + pending.0.iter().filter(|s| s.item == item).map(|s| i64::from(s.quantity)).sum::<i64>();
                    assert_eq!(held, expected.get(item).copied().unwrap_or(0), "{item}");
                }
                for s in inv.slots().iter().flatten() {
                    assert!(s.quantity >= 1 && s.quantity <= catalog.max_stack(&s.item));
                }
            }
        }
    }
}
