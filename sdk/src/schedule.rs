//! The host's schedules and the tick resource.

use std::time::Duration;

use bevy_ecs::{resource::Resource, schedule::ScheduleLabel};

/// Runs first in every tick: the host drains network input and applies movement.
#[derive(ScheduleLabel, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PreTick;

/// The mods' gameplay.
#[derive(ScheduleLabel, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tick;

/// Runs last: the host commits the tick to storage, then queues output.
#[derive(ScheduleLabel, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PostTick;

/// The tick being run. Inserted by the host before the first tick and updated before each.
#[derive(Resource, Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickInfo {
    /// Number of the tick being run; the first tick is 1.
    pub tick: u64,
    /// The fixed timestep: simulated time advances by exactly this much each tick.
    pub dt: Duration,
    /// Ticks per second.
    pub rate: u32,
}

impl TickInfo {
    /// Tick 0 (before the first tick) at the given rate.
    pub fn new(rate: u32) -> Self {
        assert!(rate > 0, "tick rate must be positive");
        Self { tick: 0, dt: Duration::from_secs(1) / rate, rate }
    }

    /// Simulated time elapsed since tick 0.
    pub fn elapsed(&self) -> Duration {
        self.dt * u32::try_from(self.tick).unwrap_or(u32::MAX)
    }
}
