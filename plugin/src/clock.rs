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
    /// `origin_ms` plus the simulated time of the tick: tick / rate seconds, in whole
    /// milliseconds (exact at any rate: 108,000 ticks at 30 per second are one hour).
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
        ClockSource::Ticks { origin_ms } => {
            origin_ms + (i128::from(tick.tick) * 1000 / i128::from(tick.rate.max(1))) as i64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Simulated time follows the tick rate exactly: a truncated timestep (33 ms at 30 ticks
    /// per second) would lose 36 seconds an hour.
    #[test]
    fn simulated_time_is_exact_at_any_tick_rate() {
        let at =
            |rate: u32, tick: u64| now(ClockSource::Ticks { origin_ms: 5 }, &TickInfo { tick, ..TickInfo::new(rate) });
        assert_eq!(at(30, 108_000), 5 + 3_600_000);
        assert_eq!(at(30, 1), 5 + 33);
        assert_eq!(at(30, 2), 5 + 66);
        assert_eq!(at(30, 3), 5 + 100);
        assert_eq!(at(10, 7), 5 + 700);
    }
}
