//! The treasure hunt as bevy_ecs components, resources, messages and systems.
//!
//! No I/O and no clocks: everything here is a function of the world's state and the tick, so
//! the same seed and the same inputs give the same results on any number of threads.
//!
//! - [`assets`]: the asset kinds designers write (items, loot tables, hunts) and their schemas.
//! - [`pack`]: a pack loaded and checked as a whole, with every error located.
//! - [`placement`]: where vaults go, fixed or random from the hunt's seed.
//! - [`hunt`]: the running hunt: vaults, digging, claims, loot.
//! - [`loot`], [`inventory`]: rolling loot tables (with luck and pity); slots, stacks and
//!   pending rewards.
//! - [`effects`]: active effects (granted by using items), their modifiers and expiry.

pub mod assets;
pub mod contract;
pub mod effects;
pub mod hunt;
pub mod inventory;
pub mod loot;
pub mod pack;
pub mod placement;
