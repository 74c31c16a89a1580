//! The contract between the Veltrix host and its mods.
//!
//! This crate is built as a Rust `dylib`. The host and every mod link this one library, so the
//! process holds a single copy of std, bevy_ecs and bevy_tasks: one `ComputeTaskPool`, one
//! allocator, one set of `TypeId`s. Mods reach bevy_ecs through the re-export below
//! (`use veltrix_sdk::bevy_ecs;` makes the derive macros resolve).
//!
//! A mod implements [`Mod`], exports it with [`export_mod!`], and in [`Mod::setup`] adds its
//! systems to the host schedules [`PreTick`], [`Tick`] and [`PostTick`] through a
//! [`ModContext`]. The host checks the exported [`ModHeader`] before calling anything in the
//! library.
//!
//! Feature `count-allocations` (benchmark builds only, docs/benchmarks.md) makes the sdk's
//! `alloc_count::CountingAllocator` the process's global allocator. It is part of the build
//! fingerprint: a server and its mods are built with it together or not at all.

pub use bevy_ecs;
pub use bevy_tasks;
pub use bytes;
pub use rmp_serde;
pub use serde;
pub use serde_json;
pub use tracing;
pub use veltrix_protocol as protocol;

use bevy_ecs::world::World;

mod commands;
mod context;
mod designer;
mod header;
mod host;
mod ledger;
mod net;
mod schedule;
mod store;
mod tiles;

#[cfg(any(feature = "count-allocations", test))]
pub mod alloc_count;
pub mod assets;
pub mod runtime;
pub mod testing;

pub use commands::{CommandFn, CommandRegistry, CommandSource, CommandSpec, Subcommand, permission_node, run_command};
pub use context::{ModContext, ModError, ModId, PendingRegistration};
pub use designer::{Behaviour, DesignerCommand, DesignerError, Simulation};
pub use header::{ABI_VERSION, HEADER_SYMBOL, MAGIC, ModHeader, StrRef, fingerprint};
pub use host::LoadedMod;
pub use ledger::{Decision, Ledger, LedgerAsk, LedgerNews, PlayersOnOtherServers, key_level, shared_player_id};
pub use net::{
    Audience, ClientMessages, DeliverError, FromClient, JoinCheck, JoinChecks, Outbox, Player, Position, Sender,
    SpeedFactor,
};
pub use protocol::PlayerId;
pub use schedule::{PostTick, PreTick, Tick, TickInfo};
pub use store::{
    Changes, CommitOutcome, KeyRange, MemoryStore, PendingCommit, PlayerTables, Record, ReplacedPlayers, Storage,
    Store, StoreError, StoreHealth, Write, commit_tick, finish_commit, take_tick_writes,
};
pub use tiles::{Blocked, Spawn, Tile, TileWorld};

/// The version of this sdk, which a mod's header records.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The closest known word, when it is close enough to be a likely typo: the "did you mean" of
/// every error about a name (a config key, a command, an asset id).
pub fn did_you_mean<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(&word.to_lowercase(), &k.to_lowercase()), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// What a mod is: a value the host drives through setup, start and shutdown.
///
/// Setup runs for all mods in dependency order, then start for all, then at exit shutdown in
/// reverse order. A mod whose setup or start fails (an `Err` or a panic) is disabled and the
/// server goes on with the others.
pub trait Mod: Send + 'static {
    /// Register components, resources and systems. Runs once, before the first tick.
    fn setup(&mut self, ctx: &mut ModContext) -> Result<(), ModError>;

    /// Runs once after every mod's setup, before the first tick.
    fn start(&mut self, _ctx: &mut ModContext) -> Result<(), ModError> {
        Ok(())
    }

    /// Runs once at exit, after the last tick, in reverse load order.
    fn shutdown(&mut self, _ctx: &mut ModContext) {}

    /// Checks an asset pack folder without running anything (the server's `validate`
    /// command): `world` holds what setup would see of the host (tiles, spawn). Returns a
    /// one-line summary of what was checked, or every error found, one per entry, each naming
    /// its file, line and column.
    fn validate_assets(&mut self, _pack_dir: &std::path::Path, _world: &World) -> Result<String, Vec<String>> {
        Ok("no assets to check".into())
    }

    /// Answers a designer's command of the server's command line (`veltrix-server odds`,
    /// `preview`, `simulate`) from an asset pack folder, without running the server (a
    /// simulation runs a world of its own); `world` is as for
    /// [`validate_assets`](Mod::validate_assets). Returns what to print, or `None` when this mod
    /// has no such command (the host then asks the next mod).
    fn designer_command(
        &mut self,
        _pack_dir: &std::path::Path,
        _world: &World,
        _command: &DesignerCommand,
    ) -> Option<Result<String, DesignerError>> {
        None
    }
}

/// Everything a mod usually imports.
pub mod prelude {
    // `bevy_ecs` itself, so that the derive macros' `bevy_ecs::...` paths resolve in mods.
    pub use crate::bevy_ecs::{self, prelude::*};
    pub use crate::{
        Audience, FromClient, LoadedMod, Mod, ModContext, ModError, Outbox, Player, PlayerId, Position, PostTick,
        PreTick, Spawn, SpeedFactor, Tick, TickInfo, Tile, TileWorld,
    };
}
