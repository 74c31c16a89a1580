//! The hunt's model: what designers write and what it means, with no systems and nothing of the
//! running world. The systems above read it; nothing here imports them.
//!
//! - [`assets`]: the asset kinds designers write (items, loot tables, hunts) and their schemas.
//! - [`pack`]: a pack loaded and checked as a whole, with every error located.
//! - [`placement`]: where vaults go, fixed or random from the hunt's seed.
//! - [`schedule`]: when a hunt may start.
//! - [`lang`]: language files for clue texts.
//! - [`loot`], [`inventory`]: rolling loot tables (with luck and pity); slots, stacks and
//!   pending rewards.
//! - [`odds`]: each item's exact chance from a loot table, with luck and pity.
//! - [`distance`]: walking distances over the tiles toward one target.

pub mod assets;
pub mod distance;
pub mod inventory;
pub mod lang;
pub mod loot;
pub mod odds;
pub mod pack;
pub mod placement;
pub mod schedule;
