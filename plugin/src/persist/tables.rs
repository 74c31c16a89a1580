//! The hunt's tables in the store, by name.

use std::sync::Arc;

use veltrix_sdk::prelude::*;

pub const PLAYERS: &str = "Veltrix:TreasureHunt/players";
pub const CLAIMS: &str = "Veltrix:TreasureHunt/claims";
pub const HUNTS: &str = "Veltrix:TreasureHunt/hunts";
pub const EVENTS: &str = "Veltrix:TreasureHunt/events";
pub const CLUES: &str = "Veltrix:TreasureHunt/clues";
pub const SCORES: &str = "Veltrix:TreasureHunt/scores";
pub const BOARDS: &str = "Veltrix:TreasureHunt/boards";

/// The table names, made once.
#[derive(Resource, Clone)]
pub struct Tables {
    pub(super) players: Arc<str>,
    pub(super) claims: Arc<str>,
    pub(super) hunts: Arc<str>,
    pub(super) events: Arc<str>,
    pub(super) clues: Arc<str>,
    pub(super) scores: Arc<str>,
    pub(crate) boards: Arc<str>,
}

impl Default for Tables {
    fn default() -> Self {
        Self {
            players: PLAYERS.into(),
            claims: CLAIMS.into(),
            hunts: HUNTS.into(),
            events: EVENTS.into(),
            clues: CLUES.into(),
            scores: SCORES.into(),
            boards: BOARDS.into(),
        }
    }
}
