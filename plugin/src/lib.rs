//! The Veltrix treasure-hunt mod.
//!
//! The host loads this library from `mods/Veltrix_TreasureHunt/` (see `manifest.json`), checks
//! its header, then calls [`TreasureHunt`]'s setup, start and shutdown. The hunt itself lives
//! in `treasure-hunt-ecs`; this crate wires it to the host: the asset pack from disk (and its
//! hot reload), the messages on the wire, the systems in the host's schedules.

pub mod catchup;
pub mod input;
pub mod persist;
pub mod protocol;
pub mod publish;
pub mod reload;

use std::path::Path;

use serde::{Deserialize, Serialize};
use treasure_hunt_ecs::{
    contract::{ContractProbe, probe_host_contract},
    hunt::{self, HuntRules, HuntSet},
};
use veltrix_sdk::{prelude::*, tracing};

use crate::reload::PackWatcher;

/// The mod's `config.json`, written with these defaults when absent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields, default)]
pub struct TreasureHuntConfig {
    /// The hunt (`assets/Server/TreasureHunt/Hunts/<Id>.json`) that runs from the start;
    /// empty for none.
    pub hunt: String,
    /// How far a player digs, in tiles from its position to the tile's centre.
    pub reach: f32,
    /// Inventory slots per player.
    pub inventory_slots: u32,
    /// Re-read the asset pack when its files change.
    pub hot_reload: bool,
    /// How many of the latest events of the running hunt are kept for players catching up
    /// after a disconnect; one further behind gets a snapshot.
    pub retained_events: u64,
    /// Log what the contract probe saw when the server stops.
    pub log_contract_probe: bool,
}

impl Default for TreasureHuntConfig {
    fn default() -> Self {
        let rules = HuntRules::default();
        Self {
            hunt: "Sunken_Isles".into(),
            reach: rules.reach,
            inventory_slots: rules.inventory_slots as u32,
            hot_reload: true,
            retained_events: 4096,
            log_contract_probe: true,
        }
    }
}

/// The mod.
#[derive(Default)]
pub struct TreasureHunt {
    /// Read from `config.json` in setup unless given.
    config: Option<TreasureHuntConfig>,
    watcher: Option<PackWatcher>,
}

impl TreasureHunt {
    /// The mod with this config instead of its `config.json` (tests, the snapshot harness).
    pub fn with_config(config: TreasureHuntConfig) -> Self {
        Self { config: Some(config), watcher: None }
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
        let pack_dir = ctx.mod_dir().join("assets");
        let tiles = ctx.world().resource::<TileWorld>().clone();
        let spawn = spawn_of(ctx.world());
        let assets = reload::load_pack(&pack_dir, &tiles, spawn).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            format!("the asset pack has {} error(s):\n{}", errors.len(), lines.join("\n"))
        })?;
        let world = ctx.world_mut();
        hunt::register(world, HuntRules { reach: config.reach, inventory_slots: config.inventory_slots as usize });
        hunt::put_in_force(world, assets)?;
        world.init_resource::<ContractProbe>();
        world.init_resource::<persist::Tables>();
        veltrix_sdk::bevy_ecs::message::MessageRegistry::register_message::<persist::Logged>(world);

        ctx.add_client_message::<protocol::Dig>("Dig")
            .add_client_message::<protocol::Discard>("Discard")
            .add_client_message::<protocol::JoinTeam>("JoinTeam")
            .add_client_message::<protocol::CatchUp>("CatchUp")
            .add_client_message::<protocol::UseItem>("UseItem")
            .add_server_message::<protocol::DigProgress>("DigProgress")
            .add_server_message::<protocol::VaultDiscovered>("VaultDiscovered")
            .add_server_message::<protocol::LootGranted>("LootGranted")
            .add_server_message::<protocol::InventoryChanged>("InventoryChanged")
            .add_server_message::<protocol::Discarded>("Discarded")
            .add_server_message::<protocol::TeamChanged>("TeamChanged")
            .add_server_message::<protocol::VaultClaimed>("VaultClaimed")
            .add_server_message::<protocol::CaughtUp>("CaughtUp")
            .add_server_message::<protocol::Snapshot>("Snapshot")
            .add_server_message::<protocol::EffectStarted>("EffectStarted")
            .add_server_message::<protocol::EffectEnded>("EffectEnded")
            .add_server_message::<protocol::TreasureSense>("TreasureSense");
        hunt::add_systems(ctx);
        ctx.add_systems(Tick, (input::receive_requests, persist::restore_players).before(HuntSet::Input))
            // Catch-ups read the log before this tick's events join it; the publisher sends
            // those events with their numbers.
            .add_systems(
                Tick,
                (
                    catchup::catch_up,
                    persist::save_players,
                    persist::save_claims,
                    persist::log_events,
                    publish::publish_outcomes,
                )
                    .chain()
                    .after(HuntSet::Deliver),
            )
            .add_systems(Tick, probe_host_contract);
        if config.hot_reload {
            let (watcher, reloads) = reload::watch(pack_dir, tiles, spawn)?;
            self.watcher = Some(watcher);
            ctx.world_mut().insert_resource(reloads);
            ctx.add_systems(PreTick, reload::apply_reload);
        }
        Ok(())
    }

    fn start(&mut self, ctx: &mut ModContext) -> Result<(), ModError> {
        let id = self.config().hunt.clone();
        if !id.is_empty() {
            hunt::start_hunt(ctx.world_mut(), &id)?;
            let retained = self.config().retained_events.max(1);
            let world = ctx.world_mut();
            world.insert_resource(persist::HuntLog { hunt: id.clone(), next_seq: 1, retained });
            if let Some(store) = world.get_resource::<veltrix_sdk::Store>().cloned() {
                persist::restore_hunt(world, &store)?;
            }
            let vaults = ctx.world().resource::<hunt::VaultIndex>().0.len();
            tracing::info!("hunt {id} running with {vaults} vaults");
        }
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
