//! One tick of the hunt's dig resolution with N players: the `HuntSet` systems (input, dig,
//! claims, loot, delivery) in `Tick`, as `hunt::add_systems` adds them, on a plain world with
//! the shipped pack's hunt running on a flat 512 x 512 world.
//!
//! Each player digs once a second (one tick in 30, by player number), so a tick carries the
//! digs of N / 30 players. Each player keeps one role for the run (drawn from its number):
//!
//! - half search: they dig the tile they stand on, anywhere in the world, and find nothing
//!   (a refusal);
//! - a quarter dig a `Buried_Cache` (PerPlayer, 6 digs): every second starts with their effort
//!   on it at 0 to 5 digs, so one in six of them finishes with this dig and claims it (a loot
//!   roll with pity, into the inventory);
//! - a quarter dig one of the other vaults (FirstFinder and the like, 15 to 60 digs): progress.
//!
//! Before each second's first tick (outside the timing) claims, effort, inventories, pending
//! rewards and pity go back to that state, so every second of the benchmark is the same second.
//! `idle` is the same tick with nobody digging: what the hunt's systems cost with N players
//! online and nothing to do.
//!
//! `cargo bench -p treasure-hunt-ecs --bench dig`

mod common;

use std::{
    hint::black_box,
    path::Path,
    time::{Duration, Instant},
};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use treasure_hunt_ecs::{
    assets::{ClaimRule, TilePos},
    hunt::{
        self, AssetsInForce, DigRequest, Digging, EFFORT_PER_DIG, HuntRules, PityCounters, VaultClaims, VaultIndex,
    },
    inventory::{Inventory, PendingRewards},
};
use veltrix_sdk::{
    ModContext, ModId, Player, Position, PreTick, Spawn, Tick, TickInfo, TileWorld, prelude::*, runtime,
};

const PLAYER_COUNTS: [usize; 3] = [1_000, 4_000, 12_000];

/// The player counts to run: all of them under `cargo bench`; under `cargo test --benches`
/// (no `--bench` argument: criterion runs each benchmark once, as a check) only the first, so
/// the check stays quick.
fn player_counts() -> &'static [usize] {
    if std::env::args().any(|a| a == "--bench") { &PLAYER_COUNTS } else { &PLAYER_COUNTS[..1] }
}
const TICK_RATE: u32 = 30;
const HUNT: &str = "Sunken_Isles";
const WORLD_SIDE: u32 = 512;

/// What a player does each time it digs.
#[derive(Clone, Copy)]
enum Role {
    /// Digs the tile it stands on: no vault there.
    Search,
    /// Digs a PerPlayer cache; its effort starts each second at `phase` digs (0 to 5).
    Cache { vault: Entity, phase: u32 },
    /// Digs a vault that takes many digs.
    Landmark,
}

struct Digger {
    entity: Entity,
    id: u64,
    at: TilePos,
    role: Role,
}

/// A world with the hunt running and `players` players equipped (one tick run).
struct HuntWorld {
    world: World,
    /// Diggers by the tick of the second they dig in (`tick % 30`).
    by_slot: Vec<Vec<Digger>>,
    tick: u64,
}

/// SplitMix64: a player's number to well-spread bits (roles, positions), the same every run.
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl HuntWorld {
    fn new(players: usize) -> Self {
        let mut world = World::new();
        // The host's schedules (messages swap their buffers at the start of each tick).
        world.insert_resource(runtime::schedules(runtime::Executor::SingleThreaded));
        world.insert_resource(TickInfo::new(TICK_RATE));
        let tiles = TileWorld::flat(WORLD_SIDE, WORLD_SIDE);
        let spawn = Spawn { x: WORLD_SIDE as f32 / 2.0 + 0.5, y: WORLD_SIDE as f32 / 2.0 + 0.5 };
        let assets = common::shipped_pack(&tiles, spawn);
        world.insert_resource(tiles);
        world.insert_resource(spawn);
        hunt::register(&mut world, HuntRules::default());
        hunt::put_in_force(&mut world, assets).expect("the shipped pack goes in force");
        hunt::start_hunt(&mut world, HUNT).expect("the shipped hunt starts");
        let id = ModId::new("Veltrix", "TreasureHunt");
        let mut ctx = ModContext::new(&mut world, &id, Path::new("."), Path::new("."));
        hunt::add_systems(&mut ctx);
        let pending = ctx.into_pending();
        ModContext::commit(&mut world, pending);

        let placed = world.resource::<AssetsInForce>().0.hunts[HUNT].vaults.clone();
        let index = world.resource::<VaultIndex>().0.clone();
        let caches: Vec<(TilePos, Entity)> =
            placed.iter().filter(|v| v.claim == ClaimRule::PerPlayer).map(|v| (v.at, index[&v.at])).collect();
        let landmarks: Vec<TilePos> = placed.iter().filter(|v| v.claim != ClaimRule::PerPlayer).map(|v| v.at).collect();
        assert!(!caches.is_empty() && !landmarks.is_empty(), "the shipped hunt has both kinds of vault");

        let mut by_slot: Vec<Vec<Digger>> = (0..TICK_RATE).map(|_| Vec::new()).collect();
        for i in 0..players as u64 {
            let bits = mix(i);
            let (role, at, position) = match bits % 4 {
                0 => {
                    let (at, vault) = caches[(bits >> 8) as usize % caches.len()];
                    let phase = ((bits >> 24) % 6) as u32;
                    (Role::Cache { vault, phase }, at, beside(at))
                }
                1 => {
                    let at = landmarks[(bits >> 8) as usize % landmarks.len()];
                    (Role::Landmark, at, beside(at))
                }
                _ => {
                    let x = ((bits >> 8) % u64::from(WORLD_SIDE)) as u32;
                    let y = ((bits >> 24) % u64::from(WORLD_SIDE)) as u32;
                    // Off any vault: a searcher finds nothing.
                    let x = if index.contains_key(&TilePos { x, y }) { (x + 1) % WORLD_SIDE } else { x };
                    let at = TilePos { x, y };
                    (Role::Search, at, Position { x: x as f32 + 0.5, y: y as f32 + 0.5 })
                }
            };
            let id = i + 1;
            let entity = world.spawn((Player { id, name: format!("player{id}") }, position)).id();
            by_slot[(i % u64::from(TICK_RATE)) as usize].push(Digger { entity, id, at, role });
        }
        // The first tick (the last of a second) equips everyone: inventory, digging, effects, pity.
        let mut hunt = HuntWorld { world, by_slot, tick: u64::from(TICK_RATE) - 2 };
        hunt.step(false);
        hunt.world.run_schedule(Tick);
        // One whole second, to tell what a second holds.
        let mut digs = 0;
        for _ in 0..TICK_RATE {
            hunt.step(true);
            digs += hunt.by_slot[(hunt.tick % u64::from(TICK_RATE)) as usize].len();
            hunt.world.run_schedule(Tick);
        }
        let claims = hunt.world.query::<&Inventory>().iter(&hunt.world).filter(|i| i.stacks().next().is_some()).count();
        eprintln!("{players} players: {digs} digs and {claims} claims in a second");
        hunt
    }

    /// Starts the next tick, outside the timing: messages swap, the tick number advances, each
    /// second starts from the same state, and this tick's diggers send their digs.
    fn step(&mut self, digs: bool) {
        self.world.run_schedule(PreTick);
        self.tick += 1;
        self.world.resource_mut::<TickInfo>().tick = self.tick;
        let slot = (self.tick % u64::from(TICK_RATE)) as usize;
        if !digs {
            return;
        }
        if slot == 0 {
            self.reset();
        }
        for d in &self.by_slot[slot] {
            self.world.write_message(DigRequest {
                entity: d.entity,
                player: d.id,
                request: Some(self.tick as u32),
                at: d.at,
            });
        }
    }

    /// Claims, effort, inventories, pending rewards and pity as at the start of every second
    /// (without marking anything changed, as no system did it).
    fn reset(&mut self) {
        let slots = self.world.resource::<HuntRules>().inventory_slots;
        for mut claims in self.world.query::<&mut VaultClaims>().iter_mut(&mut self.world) {
            *claims.bypass_change_detection() = VaultClaims::default();
        }
        let mut players = self.world.query::<(&mut Digging, &mut Inventory, &mut PendingRewards, &mut PityCounters)>();
        for (mut digging, mut inventory, mut pending, mut pity) in players.iter_mut(&mut self.world) {
            digging.bypass_change_detection().effort.clear();
            *inventory.bypass_change_detection() = Inventory::with_slots(slots);
            pending.bypass_change_detection().0.clear();
            pity.bypass_change_detection().0.clear();
        }
        for d in self.by_slot.iter().flatten() {
            if let Role::Cache { vault, phase } = d.role {
                let mut digging = self.world.get_mut::<Digging>(d.entity).expect("equipped");
                digging.bypass_change_detection().effort.insert(vault, phase * EFFORT_PER_DIG);
            }
        }
    }
}

/// A position one tile east of the tile's centre: within reach (3 tiles).
fn beside(at: TilePos) -> Position {
    Position { x: at.x as f32 + 1.5, y: at.y as f32 + 0.5 }
}

fn dig_tick(c: &mut Criterion) {
    let mut group = c.benchmark_group("dig_tick");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    for &players in player_counts() {
        let mut hunt = HuntWorld::new(players);
        group.throughput(Throughput::Elements(players as u64));
        for (name, digs) in [("digs", true), ("idle", false)] {
            group.bench_function(BenchmarkId::new(name, players), |b| {
                b.iter_custom(|ticks| {
                    let mut took = Duration::ZERO;
                    for _ in 0..ticks {
                        hunt.step(digs);
                        let start = Instant::now();
                        hunt.world.run_schedule(Tick);
                        took += start.elapsed();
                    }
                    black_box(&hunt.world);
                    took
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, dig_tick);
criterion_main!(benches);
