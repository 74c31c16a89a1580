//! The treasure hunt as bevy_ecs components, resources, messages and systems.
//!
//! No I/O and no clocks: everything here is a function of the world's state and the tick, so
//! the same seed and the same inputs give the same results on any number of threads.
//!
//! - [`assets`]: the asset kinds designers write (items, loot tables, hunts) and their schemas.
//! - [`pack`]: a pack loaded and checked as a whole, with every error located.
//! - [`placement`]: where vaults go, fixed or random from the hunt's seed.
//! - [`vocab`]: the words the systems share: their sets, requests, outcomes and refusals.
//! - [`state`]: what the concerns share in the world: the assets in force, the running hunt,
//!   its vaults, teams, the hunts' runs and the clock.
//! - [`hunt`]: the running hunt: vaults, digging, claims, loot.
//! - [`lifecycle`]: a hunt's runs: scheduled, active, ended; announcements.
//! - [`clues`]: clues released by time, chains and proximity, or on request.
//! - [`lang`]: language files for clue texts.
//! - [`loot`], [`inventory`]: rolling loot tables; slots, stacks and pending rewards.
//! - [`leaderboard`]: the running hunt's ranking: vaults, score, last find; its top and ranks.
//! - [`paths`]: walking distances over the tiles and their cache, computed off the tick thread.
//! - [`hints`]: HotCold and Compass hints toward a clue's target, along walkable paths.
//! - [`loot`], [`inventory`]: rolling loot tables (with luck and pity); slots, stacks and
//!   pending rewards.
//! - [`effects`]: active effects (granted by using items), their modifiers and expiry.

pub mod assets;
pub mod clues;
pub mod contract;
pub mod effects;
pub mod hints;
pub mod hunt;
pub mod inventory;
pub mod lang;
pub mod leaderboard;
pub mod lifecycle;
pub mod loot;
pub mod pack;
pub mod paths;
pub mod placement;
pub mod state;
pub mod vocab;
