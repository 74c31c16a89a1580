//! The tick pipeline, once, for every driver: the server (network in, frames to sockets, time
//! from the tick loop) and the test harness ([`crate::testing`]: a script in, a transcript out,
//! time when the test says so) build their world here and run their ticks with [`run_tick`].
//!
//! What lives here: the three schedules and their order ([`tick_schedules`]), the executor and
//! the compute task pool ([`Executor`], [`init_task_pools`]), the stages a tick goes through
//! ([`Stage`]: input, departures, the commit, delivery, the flush, in this order), the
//! resources every tick needs ([`new_world`]), and how a player's requests are applied
//! ([`requests`]: mod messages delivered or refused, commands run with their permissions, the
//! refusal texts) and who receives what ([`routing`]). A driver adds its systems to the
//! stages; it never orders them itself.

pub mod requests;
pub mod routing;

use bevy_ecs::{
    message::message_update_system,
    schedule::{
        InternedScheduleLabel, IntoScheduleConfigs, MultiThreadedExecutor, Schedule, ScheduleLabel, Schedules,
        SingleThreadedExecutor, SystemSet,
    },
    world::World,
};
use bevy_tasks::{ComputeTaskPool, TaskPoolBuilder};

use crate::{
    Changes, ClientMessages, CommandRegistry, Outbox, PostTick, PreTick, StoreHealth, Tick, TickInfo, TileWorld,
};

/// Which bevy executor runs the three schedules (the server's `Executor` setting). Both give
/// identical results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Executor {
    /// Every system on the calling thread.
    #[default]
    SingleThreaded,
    /// Systems in parallel on the compute task pool.
    MultiThreaded,
}

/// The schedules of a tick, in the order each tick runs them.
pub fn tick_schedules() -> [InternedScheduleLabel; 3] {
    [PreTick.intern(), Tick.intern(), PostTick.intern()]
}

/// The stages of a tick a driver puts its systems in. Their order is set here: `Input` in
/// `PreTick` (after the message update, so that mods read this tick's messages in this tick);
/// `Departures`, `Commit`, `Deliver` and `Flush` in `PostTick`, one after the other.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// What the clients (or the script) sent, applied: joins, moves, mod messages, commands.
    Input,
    /// Players whose connection ended this tick leave, after their last input was applied.
    Departures,
    /// Saved before announced: the tick's answers recorded and its changes committed.
    Commit,
    /// The outbox routed into recipients' frames.
    Deliver,
    /// Each frame handed to its client.
    Flush,
}

/// The compute task pool shared by the host and every mod (through the sdk dylib), made once
/// per process (a no-op when it exists). It is made on either executor: a mod's `par_iter`
/// needs it even when its systems run one by one.
pub fn init_task_pools() {
    ComputeTaskPool::get_or_init(|| TaskPoolBuilder::new().thread_name("veltrix-compute".into()).build());
}

/// The three schedules on `executor`, with the stages in their order.
pub fn schedules(executor: Executor) -> Schedules {
    let mut schedules = Schedules::new();
    for label in tick_schedules() {
        let mut schedule = Schedule::new(label);
        match executor {
            Executor::SingleThreaded => schedule.set_executor(SingleThreadedExecutor::new()),
            Executor::MultiThreaded => schedule.set_executor(MultiThreadedExecutor::new()),
        };
        schedules.insert(schedule);
    }
    schedules.add_systems(PreTick, message_update_system.before(Stage::Input));
    schedules.configure_sets(PostTick, (Stage::Departures, Stage::Commit, Stage::Deliver, Stage::Flush).chain());
    schedules
}

/// A world ready to tick (the driver makes the task pool, [`init_task_pools`]): the schedules
/// on `executor`, [`TickInfo`] at `tick_rate`, the tiles, and the resources of the pipeline
/// (the outbox, the client message kinds, the commands, the tick's changes and the store's
/// health). The store itself is the driver's.
pub fn new_world(executor: Executor, tick_rate: u32, tiles: TileWorld) -> World {
    let mut world = World::new();
    world.insert_resource(schedules(executor));
    world.insert_resource(TickInfo::new(tick_rate));
    world.insert_resource(tiles);
    world.init_resource::<Outbox>();
    world.init_resource::<ClientMessages>();
    world.init_resource::<CommandRegistry>();
    world.init_resource::<Changes>();
    world.init_resource::<StoreHealth>();
    world
}

/// Runs tick `n`: `PreTick`, `Tick`, `PostTick`, then clears the change trackers.
pub fn run_tick(world: &mut World, n: u64) {
    world.resource_mut::<TickInfo>().tick = n;
    for label in tick_schedules() {
        world.run_schedule(label);
    }
    world.clear_trackers();
}
