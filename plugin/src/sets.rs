//! The mod's own sets in `Tick`, after the hunt's: each unit puts its systems in one.

use treasure_hunt_ecs::{hunt::HuntSet, leaderboard::LeaderboardSet};
use veltrix_sdk::{bevy_ecs::schedule::SystemSet, prelude::*};

/// After the hunt's sets and the leaderboard, in this order: catch-ups read the log before
/// this tick's events join it; the tick's changes are saved before they are announced; the
/// publisher sends those events with their numbers; the board goes last.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AfterHunt {
    CatchUp,
    Save,
    Publish,
    Board,
}

/// Orders the sets.
pub fn plugin(ctx: &mut ModContext) {
    ctx.configure_sets(
        Tick,
        (AfterHunt::CatchUp, AfterHunt::Save, AfterHunt::Publish, AfterHunt::Board)
            .chain()
            .after(HuntSet::Deliver)
            .after(LeaderboardSet),
    );
}
