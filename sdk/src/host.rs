//! Components the host puts in the world for mods to read.

use bevy_ecs::component::Component;

/// One entity per mod that loaded: mods can see which others are present.
#[derive(Component, Debug, Clone, PartialEq, Eq)]
pub struct LoadedMod {
    /// `Group:Name`.
    pub id: String,
    /// The manifest's `Version`.
    pub version: String,
}
