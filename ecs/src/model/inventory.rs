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

/// A player's slots: how many there are, and the stacks in those that hold one. Most slots of
/// most players are empty: a list of every slot cost 32 bytes a slot, about 770 bytes a
/// player at 24 slots, most of a playing player's memory on the server after its connection.
#[derive(Component, Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    len: u32,
    /// (slot, its stack), by slot.
    stacks: Vec<(u32, ItemStack)>,
}

/// Rewards granted but not yet in the inventory, oldest first.
#[derive(Component, Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingRewards(pub VecDeque<ItemStack>);

impl Inventory {
    pub fn with_slots(slots: usize) -> Self {
        Self { len: slot_number(slots), stacks: Vec::new() }
    }

    /// An inventory holding these slots (restored from the store), with at least `slots`
    /// slots: a stored inventory larger than the config's keeps every item.
    pub fn from_slots(stored: Vec<Option<ItemStack>>, slots: usize) -> Self {
        let len = slot_number(stored.len().max(slots));
        let stacks = stored.into_iter().zip(0..).filter_map(|(stack, slot)| Some((slot, stack?))).collect();
        Self { len, stacks }
    }

    /// Every slot in order, `None` where it is empty.
    pub fn slots(&self) -> impl ExactSizeIterator<Item = Option<&ItemStack>> + '_ {
        let mut stacks = self.stacks.iter().peekable();
        (0..self.len).map(move |slot| stacks.next_if(|(at, _)| *at == slot).map(|(_, stack)| stack))
    }

    /// The slots as a list, as a player's record stores them.
    pub fn slot_list(&self) -> Vec<Option<ItemStack>> {
        self.slots().map(Option::<&ItemStack>::cloned).collect()
    }

    /// The stacks it holds, by slot.
    pub fn stacks(&self) -> impl Iterator<Item = &ItemStack> + '_ {
        self.stacks.iter().map(|(_, stack)| stack)
    }

    /// How many of `item` the inventory holds.
    pub fn count(&self, item: &str) -> u64 {
        self.stacks().filter(|s| s.item == item).map(|s| u64::from(s.quantity)).sum()
    }

    /// Puts as many of `quantity` as fit (topping up existing stacks first, then empty slots,
    /// lowest first); returns how many did not fit.
    pub fn insert(&mut self, item: &str, quantity: u32, max_stack: u32) -> u32 {
        let mut left = quantity;
        for (_, stack) in self.stacks.iter_mut().filter(|(_, s)| s.item == item) {
            let room = max_stack.saturating_sub(stack.quantity);
            let moved = room.min(left);
            stack.quantity += moved;
            left -= moved;
        }
        // The empty slots, lowest first: the gaps between the stacks, by slot.
        let (mut at, mut slot) = (0, 0);
        while left > 0 && slot < self.len {
            if self.stacks.get(at).is_some_and(|&(taken, _)| taken == slot) {
                at += 1;
            } else {
                let moved = max_stack.min(left);
                self.stacks.insert(at, (slot, ItemStack { item: item.to_string(), quantity: moved }));
                at += 1;
                left -= moved;
            }
            slot += 1;
        }
        left
    }

    /// Takes up to `quantity` of `item` out, from the last slots first; returns how many were
    /// taken.
    pub fn remove(&mut self, item: &str, quantity: u32) -> u32 {
        let mut taken = 0;
        for at in (0..self.stacks.len()).rev() {
            if taken == quantity {
                break;
            }
            let stack = &mut self.stacks[at].1;
            if stack.item == item {
                let moved = stack.quantity.min(quantity - taken);
                stack.quantity -= moved;
                taken += moved;
                if stack.quantity == 0 {
                    self.stacks.remove(at);
                }
            }
        }
        taken
    }
}

/// A count of slots as stored (the config allows at most 1,000; a record could hold more).
fn slot_number(slots: usize) -> u32 {
    u32::try_from(slots).expect("fewer than 4 billion inventory slots")
}

/// The slots as a list, empty ones `None`, written without making one: how a player's record
/// stores them.
pub struct SlotList<'a>(pub &'a Inventory);

impl serde::Serialize for SlotList<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.slots())
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

    /// A list of every slot, filled as the inventory fills its slots: the reference the
    /// inventory's slots must match after every change.
    struct Dense(Vec<Option<ItemStack>>);

    impl Dense {
        fn insert(&mut self, item: &str, quantity: u32, max_stack: u32) {
            let mut left = quantity;
            for stack in self.0.iter_mut().flatten().filter(|s| s.item == item) {
                let moved = max_stack.saturating_sub(stack.quantity).min(left);
                stack.quantity += moved;
                left -= moved;
            }
            for slot in self.0.iter_mut().filter(|s| s.is_none()) {
                if left == 0 {
                    break;
                }
                let moved = max_stack.min(left);
                *slot = Some(stack(item, moved));
                left -= moved;
            }
        }

        fn remove(&mut self, item: &str, quantity: u32) {
            let mut taken = 0;
            for slot in self.0.iter_mut().rev() {
                if let Some(s) = slot
                    && s.item == item
                {
                    let moved = s.quantity.min(quantity - taken);
                    s.quantity -= moved;
                    taken += moved;
                    if s.quantity == 0 {
                        *slot = None;
                    }
                }
                if taken == quantity {
                    break;
                }
            }
        }
    }

    /// Stacks go into the lowest empty slots after topping up, and come out of the last slots
    /// first: slot by slot what a list of every slot would hold, whatever the changes.
    #[test]
    fn the_slots_are_those_a_list_of_every_slot_would_hold() {
        let catalog = catalog();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        for _ in 0..200 {
            let slots = rng.random_range(1..8);
            let (mut inv, mut dense) = (Inventory::with_slots(slots), Dense(vec![None; slots]));
            for _ in 0..60 {
                let item = ["Coin", "Crown", "Gem"][rng.random_range(0..3)];
                let max_stack = catalog.max_stack(item);
                let q = rng.random_range(1..80);
                if rng.random_bool(0.6) {
                    inv.insert(item, q, max_stack);
                    dense.insert(item, q, max_stack);
                } else {
                    inv.remove(item, q);
                    dense.remove(item, q);
                }
                assert_eq!(inv.slot_list(), dense.0);
                assert_eq!(Inventory::from_slots(dense.0.clone(), 1), inv, "read back from its record, the same");
            }
        }
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
                for s in inv.stacks() {
                    assert!(s.quantity >= 1 && s.quantity <= catalog.max_stack(&s.item));
                }
            }
        }
    }
}
