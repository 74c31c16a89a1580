//! The treasure hunt as bevy_ecs components, resources, messages and systems.
//!
//! No I/O and no clocks: everything here is a function of the world's state and the tick, so
//! the same seed and the same inputs give the same results on any number of threads.

pub mod contract;
pub mod inventory;
pub mod loot;
