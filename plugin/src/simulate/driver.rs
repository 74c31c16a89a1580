//! The world a simulation plays in: the server's tick pipeline ([`veltrix_sdk::runtime`]) with
//! this mod set up in it as the host sets it up, simulated players as its input, a store in
//! memory committed each tick, and the mod's own outcomes read back after each tick.
//!
//! What differs from the server is only where input comes from and where output goes, as in
//! the sdk's test harness: players are spawned and their requests written as the host's intake
//! writes them (`FromClient<Dig>` and the others, read by the mod's `receive_requests`); the
//! outbox is encoded by the mod's publishers as on a server and then dropped, since nobody
//! listens; and the clock is the tick's simulated time ([`ClockSource::Ticks`]).

use std::{path::Path, sync::Arc};

use treasure_hunt_ecs::{
    clues::ClueOutcome,
    hints::HintOutcome,
    hunt::{ClaimOutcome, DigOutcome, LootGranted},
    lifecycle::Announcement,
};
use veltrix_sdk::{
    DesignerError, FromClient, MemoryStore, ModContext, ModId, Outbox, Player, PlayerId, Position, PostTick, PreTick,
    Spawn, Store, TileWorld,
    bevy_ecs::{
        message::{Message, MessageCursor, Messages},
        schedule::{IntoScheduleConfigs, Schedules},
    },
    commit_tick,
    prelude::*,
    runtime::{self, Executor, Stage},
};

use crate::{
    TreasureHunt, TreasureHuntConfig,
    clock::ClockSource,
    protocol::{AskClue, Dig, JoinTeam, UseItem},
};

/// What the simulated players do in the next tick, applied in its input stage.
#[derive(Resource, Default)]
pub struct SimInput {
    /// Players joining: id, name, where.
    pub joins: Vec<(PlayerId, String, Position)>,
    /// Players' new positions (each already checked against the movement rules).
    pub moves: Vec<(Entity, Position)>,
    pub digs: Vec<FromClient<Dig>>,
    pub asks: Vec<FromClient<AskClue>>,
    pub uses: Vec<FromClient<UseItem>>,
    pub teams: Vec<FromClient<JoinTeam>>,
    /// The entities of the players who joined, by id - 1 (filled as joins are applied).
    pub entities: Vec<Entity>,
}

/// PreTick, input stage: the players' joins, moves and messages, as the host applies what the
/// network received.
fn apply_input(world: &mut World) {
    let mut input = std::mem::take(&mut *world.resource_mut::<SimInput>());
    for (id, name, at) in input.joins.drain(..) {
        let entity = world.spawn((Player { id, name }, at)).id();
        input.entities.push(entity);
    }
    for (entity, to) in input.moves.drain(..) {
        // As the host: the component changes only when the player does move.
        if let Some(mut position) = world.get_mut::<Position>(entity)
            && *position != to
        {
            *position = to;
        }
    }
    write_all(world, &mut input.digs);
    write_all(world, &mut input.asks);
    write_all(world, &mut input.uses);
    write_all(world, &mut input.teams);
    *world.resource_mut::<SimInput>() = input;
}

fn write_all<T: Send + Sync + 'static>(world: &mut World, messages: &mut Vec<FromClient<T>>) {
    if !messages.is_empty() {
        world.resource_mut::<Messages<FromClient<T>>>().write_batch(messages.drain(..));
    }
}

/// PostTick, commit stage: the tick's changes into the store in memory.
fn commit(world: &mut World) {
    commit_tick(world);
}

/// PostTick, delivery stage: nobody listens; the tick's messages are dropped.
fn discard_outbox(mut outbox: ResMut<Outbox>) {
    outbox.drain();
}

/// The mod's outcomes of a tick, read after it ran.
pub struct Outcomes {
    pub digs: MessageCursor<DigOutcome>,
    pub claims: MessageCursor<ClaimOutcome>,
    pub loot: MessageCursor<LootGranted>,
    pub clues: MessageCursor<ClueOutcome>,
    pub hints: MessageCursor<HintOutcome>,
    pub news: MessageCursor<Announcement>,
}

/// A simulation's world, ready to tick.
pub struct SimWorld {
    pub world: World,
    pub outcomes: Outcomes,
}

impl SimWorld {
    /// The server's pipeline on one thread (deterministic), this mod set up and started in it
    /// with `config` on the pack in `pack_dir`, its clock at `origin_ms` at tick 0.
    pub fn new(
        pack_dir: &Path,
        tiles: &TileWorld,
        spawn: Spawn,
        tick_rate: u32,
        config: TreasureHuntConfig,
        origin_ms: i64,
    ) -> Result<Self, DesignerError> {
        runtime::init_task_pools();
        let mut world = runtime::new_world(Executor::SingleThreaded, tick_rate, tiles.clone());
        world.insert_resource(spawn);
        world.insert_resource(Store(Arc::new(MemoryStore::default())));
        world.insert_resource(ClockSource::Ticks { origin_ms });
        world.init_resource::<SimInput>();
        let mut schedules = world.resource_mut::<Schedules>();
        schedules.add_systems(PreTick, apply_input.in_set(Stage::Input));
        schedules.add_systems(PostTick, commit.in_set(Stage::Commit));
        schedules.add_systems(PostTick, discard_outbox.in_set(Stage::Deliver));
        // As the host adds a loaded mod: setup, start, then what they registered.
        let id = ModId::new("Veltrix", "TreasureHunt");
        let mut instance = TreasureHunt::with_pack(config, pack_dir);
        let failed =
            |e: veltrix_sdk::ModError| DesignerError::Failed(format!("the simulated server did not start: {e}"));
        let mut ctx = ModContext::new(&mut world, &id, pack_dir, pack_dir);
        veltrix_sdk::Mod::setup(&mut instance, &mut ctx).map_err(failed)?;
        let mut pending = ctx.into_pending();
        let mut ctx = ModContext::new(&mut world, &id, pack_dir, pack_dir);
        veltrix_sdk::Mod::start(&mut instance, &mut ctx).map_err(failed)?;
        pending.extend(ctx.into_pending());
        ModContext::commit(&mut world, pending);
        let outcomes = Outcomes {
            digs: cursor(&world),
            claims: cursor(&world),
            loot: cursor(&world),
            clues: cursor(&world),
            hints: cursor(&world),
            news: cursor(&world),
        };
        Ok(Self { world, outcomes })
    }

    /// Runs tick `n` with `input` given to it; `input` comes back empty (its room kept).
    pub fn tick(&mut self, n: u64, input: &mut SimInput) {
        std::mem::swap(&mut *self.world.resource_mut::<SimInput>(), input);
        runtime::run_tick(&mut self.world, n);
        std::mem::swap(&mut *self.world.resource_mut::<SimInput>(), input);
    }
}

/// Reads the messages of kind `M` written since `cursor` last read them.
pub fn read<'a, M: Message>(cursor: &'a mut MessageCursor<M>, world: &'a World) -> impl Iterator<Item = &'a M> {
    cursor.read(world.resource::<Messages<M>>())
}

fn cursor<M: Message>(world: &World) -> MessageCursor<M> {
    world.resource::<Messages<M>>().get_cursor()
}
