//! The Veltrix treasure-hunt mod.
//!
//! The host loads this library from `mods/Veltrix_TreasureHunt/` (see `manifest.json`), checks
//! its header, then calls [`TreasureHunt`]'s setup, start and shutdown. The hunt itself lives
//! in `treasure-hunt-ecs`; this crate wires it to the host: the asset pack from disk (and its
//! hot reload), the messages on the wire, the systems in the host's schedules.

pub mod catchup;
pub mod clock;
pub mod commands;
pub mod designer;
pub mod input;
pub mod leaderboard;
pub mod persist;
pub mod preview;
pub mod protocol;
pub mod publish;
pub mod reload;
pub mod runs;
pub mod sets;
pub mod shared_runs;
pub mod simulate;

use std::path::Path;

use serde::{Deserialize, Serialize};
use treasure_hunt_ecs::{
    clues,
    contract::{self, ContractProbe},
    hints,
    hunt::{self, HuntRules},
    leaderboard::{self as board, LeaderboardRules},
    lifecycle,
    paths::PathCacheConfig,
};
use veltrix_sdk::{prelude::*, tracing};

use crate::reload::PackWatcher;

/// The mod's `config.json`, written with these defaults when absent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields, default)]
pub struct TreasureHuntConfig {
    /// The hunt (`assets/Server/TreasureHunt/Hunts/<Id>.json`) started when the server starts,
    /// if no hunt is running and this one never ran (a run that ended stays ended: start it
    /// again with `hunt start`); empty for none.
    pub hunt: String,
    /// The language of clue texts (`assets/Server/Languages/<Language>/`), falling back to
    /// en-US for keys it lacks.
    pub language: String,
    /// How far a player digs, in tiles from its position to the tile's centre (more than 0).
    pub reach: f32,
    /// Inventory slots per player (1 to [`MAX_INVENTORY_SLOTS`]).
    pub inventory_slots: u32,
    /// Re-read the asset pack when its files change.
    pub hot_reload: bool,
    /// How many of the latest events of the running hunt are kept for players catching up
    /// after a disconnect; one further behind gets a snapshot (at least 1).
    pub retained_events: u64,
    /// How many of the top players the leaderboard sends (at most once a second, when they
    /// change); 0 sends none (players may still ask their rank).
    pub leaderboard_size: u32,
    /// Log what the contract probe saw when the server stops.
    pub log_contract_probe: bool,
    /// Memory the cached walking-distance fields of hints may hold, in MiB (a 2048 x 2048
    /// world's field takes 16).
    pub path_cache_megabytes: u32,
    /// Background threads computing walking distances for hints; 0 computes them in the tick
    /// (deterministic, for tests and small worlds); at most [`MAX_PATH_WORKERS`].
    pub path_workers: u32,
}

impl Default for TreasureHuntConfig {
    fn default() -> Self {
        let rules = HuntRules::default();
        Self {
            hunt: "Sunken_Isles".into(),
            language: treasure_hunt_ecs::lang::DEFAULT_LOCALE.into(),
            reach: rules.reach,
            inventory_slots: rules.inventory_slots as u32,
            hot_reload: true,
            retained_events: 4096,
            leaderboard_size: LeaderboardRules::default().size as u32,
            log_contract_probe: true,
            path_cache_megabytes: 256,
            path_workers: 1,
        }
    }
}

/// More inventory slots than any client shows; each player's inventory is sent whole.
pub const MAX_INVENTORY_SLOTS: u32 = 1000;
/// More path threads than the machines this runs on have cores.
pub const MAX_PATH_WORKERS: u32 = 64;

impl TreasureHuntConfig {
    /// The values that parse but make no sense, one line each, naming the key: all of them, so
    /// one edit of `config.json` fixes them all.
    pub fn check(&self) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        if !(self.reach > 0.0 && self.reach.is_finite()) {
            errors.push(format!("Reach: expected a distance of more than 0 tiles (3 by default), not {}", self.reach));
        }
        if !(1..=MAX_INVENTORY_SLOTS).contains(&self.inventory_slots) {
            errors.push(format!(
                "InventorySlots: expected 1 to {MAX_INVENTORY_SLOTS} slots (24 by default), not {}",
                self.inventory_slots
            ));
        }
        if self.retained_events == 0 {
            errors.push("RetainedEvents: expected at least 1 event (4096 by default), not 0".into());
        }
        if self.path_workers > MAX_PATH_WORKERS {
            errors.push(format!(
                "PathWorkers: expected 0 to {MAX_PATH_WORKERS} threads (1 by default), not {}",
                self.path_workers
            ));
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

/// The mod.
#[derive(Default)]
pub struct TreasureHunt {
    /// Read from `config.json` in setup unless given.
    config: Option<TreasureHuntConfig>,
    watcher: Option<PackWatcher>,
    /// The asset pack folder, when not the mod's own `assets/` (a simulation of another pack).
    pack_dir: Option<std::path::PathBuf>,
}

impl TreasureHunt {
    /// The mod with this config instead of its `config.json` (tests, the snapshot harness).
    pub fn with_config(config: TreasureHuntConfig) -> Self {
        Self { config: Some(config), watcher: None, pack_dir: None }
    }

    /// The mod with this config, reading its assets from `pack_dir` (the folder holding
    /// `Server/`) instead of its own `assets/`.
    pub fn with_pack(config: TreasureHuntConfig, pack_dir: &Path) -> Self {
        Self { config: Some(config), watcher: None, pack_dir: Some(pack_dir.to_path_buf()) }
    }

    fn config(&self) -> &TreasureHuntConfig {
        self.config.as_ref().expect("setup read the config")
    }
}

impl Mod for TreasureHunt {
    fn setup(&mut self, ctx: &mut ModContext) -> Result<(), ModError> {
        if self.config.is_none() {
            self.config = Some(ctx.load_config()?);
        }
        let config = self.config().clone();
        config.check().map_err(|errors| {
            let file = ctx.data_dir().join("config.json");
            let lines: Vec<String> = errors.iter().map(|e| format!("{}: {e}", file.display())).collect();
            format!("the mod's config has {} error(s):\n{}", errors.len(), lines.join("\n"))
        })?;
        let pack_dir = self.pack_dir.clone().unwrap_or_else(|| ctx.mod_dir().join("assets"));
        let tiles = ctx.world().resource::<TileWorld>().clone();
        let spawn = spawn_of(ctx.world());
        let assets = reload::load_pack(&pack_dir, &tiles, spawn).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            format!("the asset pack has {} error(s):\n{}", errors.len(), lines.join("\n"))
        })?;
        hunt::plugin(ctx, HuntRules { reach: config.reach, inventory_slots: config.inventory_slots as usize });
        hunt::put_in_force(ctx.world_mut(), assets)?;
        board::plugin(ctx, LeaderboardRules { size: config.leaderboard_size as usize });
        hints::plugin(
            ctx,
            PathCacheConfig {
                memory_cap_bytes: (config.path_cache_megabytes as usize) << 20,
                workers: config.path_workers as usize,
            },
        );
        clues::plugin(ctx);
        lifecycle::plugin(ctx);
        contract::plugin(ctx);
        protocol::plugin(ctx);
        sets::plugin(ctx);
        input::plugin(ctx);
        persist::plugin(ctx, config.retained_events);
        catchup::plugin(ctx);
        publish::plugin(ctx, config.language.clone());
        leaderboard::plugin(ctx);
        commands::register(ctx);
        let (watcher, reloads) = reload::start_loader(pack_dir, tiles, spawn, config.hot_reload)?;
        self.watcher = watcher;
        ctx.world_mut().insert_resource(reloads);
        ctx.world_mut().init_resource::<clock::ClockSource>();
        // Between ticks, in order: a reloaded pack, the time, then the hunt's life (a start or
        // an end takes effect before the tick's digs).
        // On servers sharing the hunt, its runs' starts and ends are then told and followed.
        ctx.add_systems(
            PreTick,
            (reload::apply_reload, clock::advance_clock, runs::drive_runs, shared_runs::share_runs).chain(),
        );
        Ok(())
    }

    fn start(&mut self, ctx: &mut ModContext) -> Result<(), ModError> {
        let configured = self.config().hunt.clone();
        let world = ctx.world_mut();
        clock::set_now(world);
        let store = world.get_resource::<veltrix_sdk::Store>().cloned();
        if let Some(store) = &store {
            persist::restore_runs(world, store)?;
            persist::migrate_clue_keys(store)?;
        }
        // Every hunt's hint fields computed before anyone asks (a run's start queues its own
        // again if they were evicted meanwhile).
        clues::prefetch_paths(world);
        let id = if let Some(id) = persist::active_run(world) {
            lifecycle::resume_run(world, &id)?;
            persist::point_log_at(world, &id);
            if let Some(store) = &store {
                persist::restore_hunt(world, store)?;
                // Shared by several servers, the board is told again by the ledger instead.
                if !world.contains_resource::<veltrix_sdk::Ledger>() {
                    let run = world.resource::<hunt::ActiveHunt>().run;
                    persist::restore_board(world, store, &id, run)?;
                }
            }
            id
        } else if !configured.is_empty()
            && world.resource::<lifecycle::HuntRuns>().0.get(&configured).is_none_or(|r| r.run == 0)
        {
            lifecycle::start_run(world, &configured)?;
            persist::point_log_at(world, &configured);
            configured
        } else {
            // The hunt that ended last keeps its board until another starts, as it did before
            // the restart: players joining get it, and may ask their rank.
            if let (Some(store), Some((id, run))) = (&store, persist::last_ended_run(world)) {
                persist::restore_board(world, store, &id, run)?;
            }
            tracing::info!("no hunt running: start one with `hunt start <id>` (hunt list shows them)");
            return Ok(());
        };
        let vaults = world.resource::<hunt::VaultIndex>().0.len();
        let run = world.resource::<hunt::ActiveHunt>().run;
        tracing::info!("hunt {id} running with {vaults} vaults (run {run})");
        Ok(())
    }

    fn validate_assets(&mut self, pack_dir: &Path, world: &World) -> Result<String, Vec<String>> {
        let assets = reload::load_pack(pack_dir, world.resource::<TileWorld>(), spawn_of(world))
            .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>())?;
        let vaults: usize = assets.hunts.values().map(|h| h.vaults.len()).sum();
        Ok(format!(
            "{} item(s), {} loot table(s), {} effect(s), {} hunt(s) with {vaults} vault(s)",
            assets.items.len(),
            assets.drops.len(),
            assets.effects.len(),
            assets.hunts.len()
        ))
    }

    fn designer_command(
        &mut self,
        pack_dir: &Path,
        world: &World,
        command: &veltrix_sdk::DesignerCommand,
    ) -> Option<Result<String, veltrix_sdk::DesignerError>> {
        Some(designer::run(pack_dir, world.resource::<TileWorld>(), spawn_of(world), command))
    }

    fn shutdown(&mut self, ctx: &mut ModContext) {
        self.watcher = None;
        persist::save_effect_clocks(ctx.world_mut());
        if self.config.as_ref().is_some_and(|c| c.log_contract_probe) {
            let probe = ctx.world().resource::<ContractProbe>();
            tracing::info!(
                "contract probe: the Tick system ran {} times and saw {} loaded mods (last tick {})",
                probe.runs,
                probe.loaded_mods_seen,
                probe.last_tick
            );
        }
    }
}

/// The world's spawn; its centre when the host gave none.
fn spawn_of(world: &World) -> Spawn {
    world.get_resource::<Spawn>().copied().unwrap_or_else(|| {
        let tiles = world.resource::<TileWorld>();
        Spawn { x: tiles.width() as f32 / 2.0, y: tiles.depth() as f32 / 2.0 }
    })
}

veltrix_sdk::export_mod!(TreasureHunt::default());

#[cfg(test)]
mod tests {
    use super::TreasureHuntConfig;

    /// Values that parse but make no sense are refused, each naming its key, all at once;
    /// sensible ones and the defaults pass.
    #[test]
    fn config_values_out_of_range_are_refused_naming_their_key() {
        let read = |text: &str| veltrix_sdk::serde_json::from_str::<TreasureHuntConfig>(text).unwrap().check();
        let errors =
            read(r#"{"InventorySlots": 0, "Reach": -1, "RetainedEvents": 0, "PathWorkers": 1000}"#).unwrap_err();
        assert_eq!(
            errors,
            [
                "Reach: expected a distance of more than 0 tiles (3 by default), not -1",
                "InventorySlots: expected 1 to 1000 slots (24 by default), not 0",
                "RetainedEvents: expected at least 1 event (4096 by default), not 0",
                "PathWorkers: expected 0 to 64 threads (1 by default), not 1000",
            ]
        );
        assert_eq!(read(r#"{"Reach": 0, "InventorySlots": 5000000}"#).unwrap_err().len(), 2);
        assert_eq!(read(r#"{"InventorySlots": 1, "Reach": 0.5, "RetainedEvents": 1, "PathWorkers": 0}"#), Ok(()));
        assert_eq!(read("{}"), Ok(()));
    }
}
