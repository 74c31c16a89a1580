//! The treasure hunt as bevy_ecs components, resources, messages and systems.
//!
//! No I/O and no clocks: everything here is a function of the world's state and the tick, so
//! the same seed and the same inputs give the same results on any number of threads.
//!
//! In layers, each importing only those below it:
//!
//! 1. [`model`]: assets, pack checks, placement, loot, inventories, walking distances. No
//!    systems. Its modules are also named at the crate's root (`assets`, `pack`, ...), where
//!    the mod and the tests have always found them.
//! 2. [`vocab`]: the words the systems share: their sets, requests, outcomes and refusals;
//!    [`state`]: what the concerns share in the world: the assets in force, the running hunt,
//!    its vaults, teams, the hunts' runs and the clock.
//! 3. The concerns, each with its systems and its `plugin` that registers them as one unit:
//!    - [`effects`]: active effects (granted by using items), their modifiers and expiry.
//!    - [`hunt`]: the running hunt: vaults, digging, claims, loot, the players' stash.
//!    - [`paths`], [`hints`]: the cache of walking distances, computed off the tick thread;
//!      HotCold and Compass hints toward a clue's target.
//!    - [`clues`]: clues released by time, chains and proximity, or on request.
//!    - [`leaderboard`]: the running hunt's ranking: vaults, score, last find; its top and ranks.
//!    - [`lifecycle`]: a hunt's runs: scheduled, active, ended; announcements.
//! - [`contract`]: a probe of what the host guarantees a mod.

pub mod clues;
pub mod contract;
pub mod effects;
pub mod hints;
pub mod hunt;
pub mod leaderboard;
pub mod lifecycle;
pub mod model;
pub mod paths;
pub mod state;
pub mod vocab;

pub use model::{assets, inventory, lang, loot, pack, placement};
