//! The smallest piece of gameplay that proves the host/mod contract: a system that runs in the
//! host's `Tick` schedule, reads host components with `par_iter` (so it needs the one shared
//! `ComputeTaskPool`) when they change, and counts what it saw.

use std::sync::atomic::{AtomicU64, Ordering};

use veltrix_sdk::prelude::*;

/// What [`probe_host_contract`] observed so far.
#[derive(Resource, Debug, Default, Clone, PartialEq, Eq)]
pub struct ContractProbe {
    /// How many times the system ran.
    pub runs: u64,
    /// The tick number it saw on its last run.
    pub last_tick: u64,
    /// How many host [`LoadedMod`] entities it saw on its last run.
    pub loaded_mods_seen: u64,
}

/// Counts the host's `LoadedMod` entities in parallel when they changed, and records the tick.
/// Not every tick: a parallel pass opens a scope on the task pool, whose tasks allocate, and a
/// steady tick allocates nothing.
pub fn probe_host_contract(tick: Res<TickInfo>, mods: Query<Ref<LoadedMod>>, mut probe: ResMut<ContractProbe>) {
    let changed =
        probe.runs == 0 || mods.iter().count() as u64 != probe.loaded_mods_seen || mods.iter().any(|m| m.is_changed());
    if changed {
        let seen = AtomicU64::new(0);
        mods.par_iter().for_each(|m| {
            debug_assert!(!m.id.is_empty(), "the host never spawns a LoadedMod without an id");
            seen.fetch_add(1, Ordering::Relaxed);
        });
        probe.loaded_mods_seen = seen.into_inner();
    }
    probe.runs += 1;
    probe.last_tick = tick.tick;
}

/// The probe as one unit: its record now, its system once the mod has started.
pub fn plugin(ctx: &mut ModContext) {
    ctx.world_mut().init_resource::<ContractProbe>();
    ctx.add_systems(Tick, probe_host_contract);
}
