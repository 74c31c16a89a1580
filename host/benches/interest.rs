//! The area of interest in one tick with N players: `interest::update_interest` (the grid, who
//! sees whom with hysteresis, PlayerAppeared / PlayerMoved / PlayerGone encoded and put into
//! the mail for delivery), on the host's own world (`server::new_world`, default
//! config: radius 32, hysteresis 4), the players joined through `intake::receive_network`
//! with connections that lead nowhere. `update_interest` is timed, and apart from it (the
//! `/delivery` benchmarks) delivering its mail into frames and handing them to the writer
//! threads after it (`delivery::deliver_outbox`, `delivery::flush_frames`); moving the players
//! before it is not.
//!
//! Two layouts, players placed at random:
//!
//! - `spread`: a square world that grows with N, keeping the density of 1,000 players on the
//!   default 512 x 512 world (about 12 players within each one's radius, whatever N);
//! - `crowded`: every N on the default 512 x 512 world (the density, and what each player
//!   sees, grows with N).
//!
//! And two kinds of tick: `all` (every player moved a little: a quarter of a tile, about what
//! MaxSpeed 8 allows in a tick at 30 ticks per second, heading drifting) and `tenth` (a tenth of
//! the players moved, in turn).
//!
//! `cargo bench -p veltrix-host --bench interest`

use std::{
    hint::black_box,
    net::SocketAddr,
    sync::{Arc, atomic::AtomicU64},
    time::{Duration, Instant},
};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use veltrix_host::{
    config::{Executor, ServerConfig},
    interest::{Interest, update_interest},
    metrics::Metrics,
    net::{ConnHandle, JoinRequest, NetEvent, writers::Writers},
    server::new_world,
    sessions::{
        ModCatalog, NetLink,
        bans::Bans,
        delivery::{deliver_outbox, flush_frames},
    },
};
use veltrix_sdk::{
    Player, Position, PreTick, TickInfo, TileWorld,
    bevy_ecs::schedule::{Schedule, SingleThreadedExecutor},
    prelude::*,
};

const PLAYER_COUNTS: [usize; 3] = [1_000, 4_000, 12_000];

/// The player counts to run: all of them under `cargo bench`; under `cargo test --benches`
/// (no `--bench` argument: criterion runs each benchmark once, as a check) only the first, so
/// the check stays quick.
fn player_counts() -> &'static [usize] {
    if std::env::args().any(|a| a == "--bench") { &PLAYER_COUNTS } else { &PLAYER_COUNTS[..1] }
}
/// A quarter of a tile: MaxSpeed 8 tiles per second is 0.27 a tick at 30 ticks per second.
const STEP: f32 = 0.25;
const DEFAULT_SIDE: f32 = 512.0;

/// xorshift64*: the benchmark's own positions and turns, the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// In [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

struct Walker {
    entity: Entity,
    x: f32,
    y: f32,
    heading: f32,
}

struct InterestWorld {
    world: World,
    update: Schedule,
    flush: Schedule,
    walkers: Vec<Walker>,
    side: f32,
    rng: Rng,
    tick: u64,
}

impl InterestWorld {
    fn new(players: usize, side: f32) -> Self {
        let config =
            ServerConfig { max_players: players as u32, executor: Executor::SingleThreaded, ..Default::default() };
        let tiles = TileWorld::flat(side.ceil() as u32, side.ceil() as u32);
        let mut world = new_world(&config, tiles);
        let (events, received) = flume::bounded(players);
        let metrics = Arc::new(Metrics::new());
        world.insert_resource(Writers::start(1, Arc::clone(&metrics)).expect("a writer thread"));
        world.insert_resource(NetLink { events: received, current_tick: Arc::new(AtomicU64::new(0)), metrics });
        world.insert_resource(Bans::default());
        world.insert_resource(ModCatalog(Vec::new()));
        let addr: SocketAddr = "127.0.0.1:40000".parse().expect("an address");
        for conn in 0..players as u64 {
            let join = JoinRequest {
                conn,
                name: format!("player{conn}"),
                authenticated: false,
                addr,
                handle: ConnHandle::detached(),
            };
            events.try_send(NetEvent::Join(join)).map_err(|_| ()).expect("room for every join");
        }
        world.resource_mut::<TickInfo>().tick = 1;
        world.run_schedule(PreTick);

        let mut joined: Vec<(u64, Entity)> =
            world.query::<(Entity, &Player)>().iter(&world).map(|(e, p)| (p.id, e)).collect();
        assert_eq!(joined.len(), players, "everyone joined");
        joined.sort_unstable();
        let mut rng = Rng(0x5eed_1234_abcd_ef01);
        let walkers = joined
            .into_iter()
            .map(|(_, entity)| Walker {
                entity,
                x: rng.unit() * side,
                y: rng.unit() * side,
                heading: rng.unit() * std::f32::consts::TAU,
            })
            .collect();
        let mut update = Schedule::default();
        update.set_executor(SingleThreadedExecutor::new()).add_systems(update_interest);
        let mut flush = Schedule::default();
        flush.set_executor(SingleThreadedExecutor::new()).add_systems((deliver_outbox, flush_frames).chain());
        let mut this = InterestWorld { world, update, flush, walkers, side, rng, tick: 1 };
        // Everyone where it stands (a joined player counts as moved): the first update fills the
        // grid and every player's view.
        this.place(|_| true);
        this.update.run(&mut this.world);
        this.flush.run(&mut this.world);
        this
    }

    /// Moves the walkers `moves` picks a step on (bouncing off the world's edges) and writes
    /// their positions.
    fn place(&mut self, moves: impl Fn(usize) -> bool) {
        for (i, w) in self.walkers.iter_mut().enumerate() {
            if !moves(i) {
                continue;
            }
            w.heading += (self.rng.unit() - 0.5) * 0.6;
            let (mut x, mut y) = (w.x + STEP * w.heading.cos(), w.y + STEP * w.heading.sin());
            if !(0.0..self.side).contains(&x) {
                w.heading = std::f32::consts::PI - w.heading;
                x = w.x;
            }
            if !(0.0..self.side).contains(&y) {
                w.heading = -w.heading;
                y = w.y;
            }
            (w.x, w.y) = (x, y);
            let mut position = self.world.get_mut::<Position>(w.entity).expect("a player has a position");
            *position = Position { x, y };
        }
    }

    /// One tick: the movers move, then `update_interest`, then the frames go. How long the
    /// interest update took, and the delivery.
    fn tick(&mut self, tenth: bool) -> (Duration, Duration) {
        self.tick += 1;
        self.world.resource_mut::<TickInfo>().tick = self.tick;
        let turn = (self.tick % 10) as usize;
        self.place(|i| !tenth || i % 10 == turn);
        let start = Instant::now();
        self.update.run(&mut self.world);
        let updated = Instant::now();
        self.flush.run(&mut self.world);
        (updated - start, updated.elapsed())
    }

    /// How many players each sees, on average.
    fn seen(&mut self) -> f64 {
        let total: usize = self.world.query::<&Interest>().iter(&self.world).map(|i| i.visible.len()).sum();
        total as f64 / self.walkers.len() as f64
    }
}

fn interest(c: &mut Criterion) {
    let mut group = c.benchmark_group("interest");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    for (layout, crowded) in [("spread", false), ("crowded", true)] {
        for &players in player_counts() {
            let side = if crowded { DEFAULT_SIDE } else { DEFAULT_SIDE * (players as f32 / 1000.0).sqrt() };
            let mut world = InterestWorld::new(players, side);
            eprintln!("{layout}, {players} players on {side:.0} x {side:.0}: each sees {:.1}", world.seen());
            group.throughput(Throughput::Elements(players as u64));
            for (moved, tenth) in [("all", false), ("tenth", true)] {
                group.bench_function(BenchmarkId::new(format!("{layout}/{moved}"), players), |b| {
                    b.iter_custom(|ticks| (0..ticks).map(|_| world.tick(tenth).0).sum())
                });
                group.bench_function(BenchmarkId::new(format!("{layout}/{moved}/delivery"), players), |b| {
                    b.iter_custom(|ticks| (0..ticks).map(|_| world.tick(tenth).1).sum())
                });
            }
            black_box(world.seen());
        }
    }
    group.finish();
}

criterion_group!(benches, interest);
criterion_main!(benches);
