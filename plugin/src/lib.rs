//! The Veltrix treasure-hunt mod.
//!
//! The host loads this library from `mods/Veltrix_TreasureHunt/` (see `manifest.json`), checks
//! its header, then calls [`TreasureHunt`]'s setup, start and shutdown.

use serde::{Deserialize, Serialize};
use treasure_hunt_ecs::contract::{ContractProbe, probe_host_contract};
use veltrix_sdk::{prelude::*, tracing};

/// The mod's `config.json`, written with these defaults when absent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields, default)]
pub struct TreasureHuntConfig {
    /// Log what the contract probe saw when the server stops.
    pub log_contract_probe: bool,
}

impl Default for TreasureHuntConfig {
    fn default() -> Self {
        Self { log_contract_probe: true }
    }
}

/// The mod.
#[derive(Default)]
pub struct TreasureHunt {
    config: TreasureHuntConfig,
}

impl Mod for TreasureHunt {
    fn setup(&mut self, ctx: &mut ModContext) -> Result<(), ModError> {
        self.config = ctx.load_config()?;
        ctx.world_mut().init_resource::<ContractProbe>();
        ctx.add_systems(Tick, probe_host_contract);
        Ok(())
    }

    fn shutdown(&mut self, ctx: &mut ModContext) {
        if self.config.log_contract_probe {
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

veltrix_sdk::export_mod!(TreasureHunt::default());
