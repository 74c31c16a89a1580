//! The wall clock the hunt's lifecycle reads ([`HuntClock`]), set before each tick. A server
//! reads the system clock; tests derive it from the tick number, so their runs repeat exactly.

use std::time::{SystemTime, UNIX_EPOCH};

use treasure_hunt_ecs::lifecycle::HuntClock;
use veltrix_sdk::prelude::*;

/// Where the time comes from.
#[derive(Resource, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClockSource {
    /// The system's clock.
    #[default]
    System,
    /// `origin_ms` plus the simulated time of the tick (tick x the fixed timestep).
    Ticks { origin_ms: i64 },
}

/// PreTick: the time of this tick.
pub fn advance_clock(source: Res<ClockSource>, tick: Res<TickInfo>, mut clock: ResMut<HuntClock>) {
    clock.unix_ms = now(*source, &tick);
}

/// Sets the clock outside the schedules (at start).
pub fn set_now(world: &mut World) {
    let source = *world.resource::<ClockSource>();
    let unix_ms = now(source, world.resource::<TickInfo>());
    world.resource_mut::<HuntClock>().unix_ms = unix_ms;
}

fn now(source: ClockSource, tick: &TickInfo) -> i64 {
    match source {
        ClockSource::System => SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64),
        ClockSource::Ticks { origin_ms } => origin_ms + (tick.dt.as_millis() as u64 * tick.tick) as i64,
    }
}
