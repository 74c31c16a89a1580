//! A cache of walking distances over the tile world (the fields themselves, and how one is
//! computed, are [`crate::model::distance`]).
//!
//! The [`PathCache`] keeps fields per target under a memory cap, least recently used first out,
//! computes missing ones on background threads (or inline, for deterministic tests), and never
//! hands out a field computed from tiles older than the world's current ones.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
        mpsc::{Receiver, Sender, channel},
    },
};

use veltrix_sdk::prelude::*;

use crate::model::assets::TilePos;
pub use crate::model::distance::{Direction, DistanceField, WalkGrid};

/// The path cache's settings (the mod's `PathCacheMegabytes` and `PathWorkers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathCacheConfig {
    /// Fields are evicted, least recently used first, while they hold more than this.
    pub memory_cap_bytes: usize,
    /// Background threads computing fields; 0 computes them inline in [`PathCache::lookup`]
    /// (deterministic: for tests and tiny worlds).
    pub workers: usize,
}

impl Default for PathCacheConfig {
    fn default() -> Self {
        Self { memory_cap_bytes: 256 << 20, workers: 1 }
    }
}

/// What the cache did so far, for logs and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathStats {
    /// Lookups answered with a cached field.
    pub hits: u64,
    /// Lookups without a field ready.
    pub misses: u64,
    /// Fields computed (or being computed).
    pub computations: u64,
    /// Fields evicted to stay under the memory cap.
    pub evictions: u64,
    /// Fields thrown away because the tiles changed while they were computed or held.
    pub stale: u64,
    /// Bytes the cached fields hold now.
    pub bytes_held: usize,
}

/// The tiles of one version, shared with the workers without copying them per request; the
/// walk grid is built once, by whoever needs it first.
struct Snapshot {
    tiles: TileWorld,
    grid: OnceLock<WalkGrid>,
}

impl Snapshot {
    fn grid(&self) -> &WalkGrid {
        self.grid.get_or_init(|| WalkGrid::of(&self.tiles))
    }
}

struct Job {
    snapshot: Arc<Snapshot>,
    target: TilePos,
}

struct Cached {
    field: Arc<DistanceField>,
    last_used: u64,
}

/// Background threads computing fields: jobs in, fields out.
struct Workers {
    jobs: Sender<Job>,
    /// Behind a mutex only so that the cache is `Sync` (a resource); only the tick locks it.
    done: Mutex<Receiver<DistanceField>>,
    /// The world's tile version, so that workers skip jobs made stale before they start.
    current_version: Arc<AtomicU64>,
}

/// Distance fields by target tile, computed off the tick thread, for the tiles in force.
///
/// [`PathCache::lookup`] hands out a field computed from the world's current tiles or asks for
/// one and returns `None`; a later lookup returns it once it is ready. A target is never queued
/// twice for the same tiles. Fields of older tiles are dropped, never handed out. Cached fields
/// stay under the memory cap, least recently used evicted first; a single field larger than the
/// cap is kept alone (so that it can be handed out) until the next one arrives.
#[derive(Resource)]
pub struct PathCache {
    config: PathCacheConfig,
    /// The tile version of what is cached and in flight.
    version: Option<u64>,
    snapshot: Option<Arc<Snapshot>>,
    fields: HashMap<TilePos, Cached>,
    /// Targets queued for the current version.
    in_flight: HashMap<TilePos, u64>,
    clock: u64,
    stats: PathStats,
    workers: Option<Workers>,
}

impl PathCache {
    /// A cache with `config.workers` background threads (none when 0).
    pub fn new(config: PathCacheConfig) -> Self {
        let workers = (config.workers > 0).then(|| spawn_workers(config.workers));
        Self {
            config,
            version: None,
            snapshot: None,
            fields: HashMap::new(),
            in_flight: HashMap::new(),
            clock: 0,
            stats: PathStats::default(),
            workers,
        }
    }

    /// The settings it was made with.
    pub fn config(&self) -> PathCacheConfig {
        self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> PathStats {
        PathStats { bytes_held: self.bytes_held(), ..self.stats }
    }

    fn bytes_held(&self) -> usize {
        self.fields.values().map(|c| c.field.heap_bytes()).sum()
    }

    /// Whether a field of `target` is being computed for the current tiles.
    pub fn is_computing(&self, target: TilePos) -> bool {
        self.in_flight.contains_key(&target)
    }

    /// The field of `target` for the tiles as they are now, or `None` while it is computed (its
    /// computation is then queued, once). With no workers, it is computed here and returned.
    pub fn lookup(&mut self, tiles: &TileWorld, target: TilePos) -> Option<Arc<DistanceField>> {
        self.sync(tiles);
        self.clock += 1;
        if let Some(cached) = self.fields.get_mut(&target) {
            cached.last_used = self.clock;
            self.stats.hits += 1;
            return Some(cached.field.clone());
        }
        self.stats.misses += 1;
        self.schedule(tiles, target)
    }

    /// Has the field of `target` computed ahead of any hint (say, for every clue's target when
    /// a hunt starts), so that hints toward it are answered in the tick they are asked. Counts
    /// neither a hit nor a miss; nothing is queued when the field is cached or in flight.
    pub fn prefetch(&mut self, tiles: &TileWorld, target: TilePos) {
        self.sync(tiles);
        if !self.fields.contains_key(&target) {
            self.schedule(tiles, target);
        }
    }

    /// Queues the computation of a field not cached (computes it at once without workers).
    fn schedule(&mut self, tiles: &TileWorld, target: TilePos) -> Option<Arc<DistanceField>> {
        if self.in_flight.contains_key(&target) {
            return None;
        }
        self.stats.computations += 1;
        let version = tiles.version();
        let snapshot = self
            .snapshot
            .get_or_insert_with(|| Arc::new(Snapshot { tiles: tiles.clone(), grid: OnceLock::new() }))
            .clone();
        match &self.workers {
            None => {
                let field = Arc::new(DistanceField::compute_on(snapshot.grid(), target));
                self.keep(field.clone());
                Some(field)
            }
            Some(workers) => {
                self.in_flight.insert(target, version);
                // A send fails only when every worker is gone (a panic): the target then stays
                // in flight and its hints unanswered, but the tick goes on.
                let _ = workers.jobs.send(Job { snapshot, target });
                None
            }
        }
    }

    /// Follows the world's tiles (a new version drops every field and snapshot of the old
    /// one) and takes in the fields the workers finished.
    pub fn sync(&mut self, tiles: &TileWorld) {
        let version = tiles.version();
        if self.version != Some(version) {
            self.stats.stale += self.fields.len() as u64;
            self.fields.clear();
            self.in_flight.clear();
            self.snapshot = None;
            self.version = Some(version);
            if let Some(workers) = &self.workers {
                workers.current_version.store(version, Ordering::Relaxed);
            }
        }
        let Some(workers) = &self.workers else { return };
        let done: Vec<DistanceField> = {
            let receiver = workers.done.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            receiver.try_iter().collect()
        };
        for field in done {
            if field.tile_version() != version || self.in_flight.get(&field.target()) != Some(&version) {
                self.stats.stale += 1;
                continue;
            }
            self.in_flight.remove(&field.target());
            self.keep(Arc::new(field));
        }
    }

    /// Caches a field, then evicts the least recently used others while over the cap.
    fn keep(&mut self, field: Arc<DistanceField>) {
        self.clock += 1;
        let target = field.target();
        self.fields.insert(target, Cached { field, last_used: self.clock });
        let mut held = self.bytes_held();
        while held > self.config.memory_cap_bytes {
            // Few fields fit in memory, so a scan is cheap; it happens only when inserting.
            let Some(oldest) =
                self.fields.iter().filter(|(t, _)| **t != target).min_by_key(|(_, c)| c.last_used).map(|(t, _)| *t)
            else {
                break;
            };
            if let Some(gone) = self.fields.remove(&oldest) {
                held -= gone.field.heap_bytes();
                self.stats.evictions += 1;
            }
        }
    }
}

impl std::fmt::Debug for PathCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PathCache")
            .field("config", &self.config)
            .field("version", &self.version)
            .field("cached", &self.fields.len())
            .field("in_flight", &self.in_flight.len())
            .field("stats", &self.stats)
            .finish()
    }
}

fn spawn_workers(count: usize) -> Workers {
    let (jobs, job_receiver) = channel::<Job>();
    let (done_sender, done) = channel::<DistanceField>();
    let job_receiver = Arc::new(Mutex::new(job_receiver));
    let current_version = Arc::new(AtomicU64::new(0));
    for n in 0..count {
        let (jobs, done, current) = (job_receiver.clone(), done_sender.clone(), current_version.clone());
        let spawned = std::thread::Builder::new().name(format!("veltrix-paths-{n}")).spawn(move || {
            loop {
                // The lock is held only while waiting for the next job, not while computing.
                let job = {
                    let receiver = jobs.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    receiver.recv()
                };
                // The cache was dropped: nothing more to do.
                let Ok(job) = job else { return };
                let grid = job.snapshot.grid();
                if grid.tile_version() != current.load(Ordering::Relaxed) {
                    continue;
                }
                if done.send(DistanceField::compute_on(grid, job.target)).is_err() {
                    return;
                }
            }
        });
        // Without a thread the jobs wait in the channel; any other worker still takes them.
        if let Err(e) = spawned {
            veltrix_sdk::tracing::error!("cannot start path worker {n}: {e}");
        }
    }
    Workers { jobs, done: Mutex::new(done), current_version }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use veltrix_sdk::Tile;

    use super::*;

    fn at(x: u32, y: u32) -> TilePos {
        TilePos { x, y }
    }

    /// 40 x 20 tiles with a rock wall along x = 20 from y = 0 to y = 17: the one gap is at the
    /// bottom (y = 18, 19).
    fn walled() -> TileWorld {
        let mut tiles = TileWorld::flat(40, 20);
        for y in 0..18 {
            tiles.set(20, y, Tile::Rock);
        }
        tiles
    }

    #[test]
    fn distances_follow_the_walk_around_a_wall_not_the_straight_line() {
        let tiles = walled();
        let field = DistanceField::compute(&tiles, at(22, 2));
        let from = at(18, 2);
        let straight = from.distance(at(22, 2));
        assert_eq!(straight, 4.0);
        // One diagonal step to the wall's side, 15 down to the gap, 2 through it, 15 up and one
        // diagonal step: 32 straight and 2 diagonal steps.
        let walked = field.distance(from).unwrap();
        assert!(walked > 8.0 * straight, "{walked} is the walk around the wall, not {straight}");
        assert_eq!(walked, 34.8);
        assert_eq!(field.distance(at(22, 2)), Some(0.0));
        assert_eq!(field.distance(at(23, 3)), Some(1.4), "one diagonal step");
        assert_eq!(field.distance(at(20, 5)), None, "the wall itself");
        assert_eq!(field.distance(at(40, 0)), None, "outside the world");
        assert_eq!(field.tile_version(), tiles.version());
        assert_eq!(field.target(), at(22, 2));
    }

    #[test]
    fn the_first_step_heads_for_the_gap_not_at_the_target() {
        let field = DistanceField::compute(&walled(), at(22, 2));
        assert_eq!(field.first_step(at(18, 2)), Some(Direction::SouthEast), "toward the gap at the bottom");
        assert_eq!(field.first_step(at(19, 17)), Some(Direction::South), "no cutting the wall's corner");
        assert_eq!(field.first_step(at(19, 18)), Some(Direction::East), "through the gap");
        assert_eq!(field.first_step(at(21, 18)), Some(Direction::North), "up along the wall");
        assert_eq!(field.first_step(at(22, 10)), Some(Direction::North));
        assert_eq!(field.first_step(at(30, 2)), Some(Direction::West));
        assert_eq!(field.first_step(at(25, 5)), Some(Direction::NorthWest));
        assert_eq!(field.first_step(at(22, 2)), None, "at the target");
        // Following the first steps walks the whole path, as long as the distance says.
        let (mut here, mut steps) = (at(18, 2), 0.0);
        while let Some(d) = field.first_step(here) {
            let (dx, dy) = d.offset();
            here = at(here.x.wrapping_add_signed(dx), here.y.wrapping_add_signed(dy));
            steps += if d.is_diagonal() { 1.4 } else { 1.0 };
        }
        assert_eq!(here, at(22, 2));
        assert!((steps - 34.8f32).abs() < 1e-3, "{steps}");
    }

    #[test]
    fn ties_are_broken_toward_the_straight_line() {
        let field = DistanceField::compute(&TileWorld::flat(32, 32), at(20, 12));
        // Every mix of 8 East and 2 SouthEast steps is as short: East is closest to the line.
        assert_eq!(field.first_step(at(10, 10)), Some(Direction::East));
        assert_eq!(field.first_step(at(18, 10)), Some(Direction::SouthEast));
        assert_eq!(field.first_step(at(20, 20)), Some(Direction::North));
    }

    #[test]
    fn a_walled_in_target_is_unreachable() {
        let mut tiles = TileWorld::flat(16, 16);
        for (x, y) in [(4, 4), (5, 4), (6, 4), (4, 5), (6, 5), (4, 6), (5, 6), (6, 6)] {
            tiles.set(x, y, Tile::Water);
        }
        let field = DistanceField::compute(&tiles, at(5, 5));
        assert_eq!(field.distance(at(0, 0)), None);
        assert_eq!(field.first_step(at(0, 0)), None);
        assert_eq!(field.distance(at(5, 5)), Some(0.0));
        let rock = DistanceField::compute(&tiles, at(4, 4));
        assert_eq!(rock.distance(at(0, 0)), None, "a target on water is reached by no one");
        assert_eq!(rock.heap_bytes(), 0);
        let outside = DistanceField::compute(&tiles, at(99, 0));
        assert_eq!(outside.distance(at(0, 0)), None);
        // Diagonal gaps do not let a walker through: a rock pair touching at a corner blocks.
        let mut corner = TileWorld::flat(2, 2);
        corner.set(1, 0, Tile::Rock);
        corner.set(0, 1, Tile::Rock);
        assert_eq!(DistanceField::compute(&corner, at(1, 1)).distance(at(0, 0)), None);
    }

    #[test]
    fn storage_is_four_bytes_a_tile() {
        let field = DistanceField::compute(&TileWorld::flat(100, 50), at(0, 0));
        assert_eq!(field.heap_bytes(), 102 * 52 * 4);
    }

    fn inline(cap: usize) -> PathCache {
        PathCache::new(PathCacheConfig { memory_cap_bytes: cap, workers: 0 })
    }

    #[test]
    fn a_field_of_old_tiles_is_never_handed_out() {
        let mut tiles = walled();
        let mut cache = inline(1 << 20);
        let before = cache.lookup(&tiles, at(22, 2)).unwrap();
        assert_eq!(before.distance(at(18, 2)), Some(34.8));
        tiles.set(20, 2, Tile::Ground);
        let after = cache.lookup(&tiles, at(22, 2)).unwrap();
        assert_eq!(after.tile_version(), tiles.version());
        assert_eq!(after.distance(at(18, 2)), Some(4.0), "through the new opening");
        assert_eq!(cache.stats().computations, 2);
        assert_eq!(cache.stats().stale, 1);

        // With a worker: a field finished after the tiles changed is dropped and computed anew.
        let mut cache = PathCache::new(PathCacheConfig { memory_cap_bytes: 1 << 20, workers: 1 });
        assert!(cache.lookup(&tiles, at(22, 2)).is_none());
        let first = wait_for(&mut cache, &tiles, at(22, 2));
        assert_eq!(first.distance(at(18, 2)), Some(4.0));
        assert!(cache.lookup(&tiles, at(5, 5)).is_none(), "queued for the old tiles");
        tiles.set(20, 2, Tile::Rock);
        std::thread::sleep(Duration::from_millis(50));
        let fresh = wait_for(&mut cache, &tiles, at(5, 5));
        assert_eq!(fresh.tile_version(), tiles.version());
        let again = wait_for(&mut cache, &tiles, at(22, 2));
        assert_eq!(again.distance(at(18, 2)), Some(34.8), "the wall is back");
        assert!(cache.stats().stale >= 1, "{:?}", cache.stats());
    }

    fn wait_for(cache: &mut PathCache, tiles: &TileWorld, target: TilePos) -> Arc<DistanceField> {
        let start = Instant::now();
        loop {
            if let Some(field) = cache.lookup(tiles, target) {
                assert_eq!(field.tile_version(), tiles.version());
                return field;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "no field after 10 s");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn the_least_recently_used_field_goes_first_under_the_cap() {
        let tiles = TileWorld::flat(30, 30);
        let one = DistanceField::compute(&tiles, at(0, 0)).heap_bytes();
        let mut cache = inline(2 * one);
        for target in [at(1, 1), at(2, 2)] {
            cache.lookup(&tiles, target).unwrap();
        }
        cache.lookup(&tiles, at(1, 1)).unwrap(); // (2, 2) is now the least recently used
        cache.lookup(&tiles, at(3, 3)).unwrap();
        let stats = cache.stats();
        assert_eq!((stats.evictions, stats.bytes_held, stats.computations), (1, 2 * one, 3));
        cache.lookup(&tiles, at(1, 1)).unwrap();
        assert_eq!(cache.stats().computations, 3, "(1, 1) stayed");
        cache.lookup(&tiles, at(2, 2)).unwrap();
        assert_eq!(cache.stats().computations, 4, "(2, 2) was evicted");

        // A field larger than the cap is handed out and kept alone.
        let mut tiny = inline(one / 2);
        let field = tiny.lookup(&tiles, at(1, 1)).unwrap();
        assert_eq!(field.distance(at(0, 0)), Some(1.4));
        tiny.lookup(&tiles, at(2, 2)).unwrap();
        assert_eq!(tiny.stats().bytes_held, one);
        assert_eq!(tiny.stats().evictions, 1);
    }

    #[test]
    fn a_target_asked_for_twice_is_computed_once() {
        let tiles = walled();
        let mut cache = PathCache::new(PathCacheConfig { memory_cap_bytes: 1 << 20, workers: 2 });
        assert!(cache.lookup(&tiles, at(22, 2)).is_none());
        assert!(cache.is_computing(at(22, 2)));
        let _ = cache.lookup(&tiles, at(22, 2));
        wait_for(&mut cache, &tiles, at(22, 2));
        wait_for(&mut cache, &tiles, at(22, 2));
        cache.prefetch(&tiles, at(22, 2));
        let stats = cache.stats();
        assert_eq!(stats.computations, 1, "{stats:?}");
        assert!(stats.hits >= 2 && stats.misses >= 1, "{stats:?}");
        cache.prefetch(&tiles, at(3, 3));
        // The second prefetch finds it in flight, or (on a quick worker) already done.
        cache.prefetch(&tiles, at(3, 3));
        assert_eq!(cache.stats().computations, 2, "queued once");
        wait_for(&mut cache, &tiles, at(3, 3));
        assert_eq!(cache.stats().computations, 2);
    }
}
