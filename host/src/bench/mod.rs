//! The benchmark build's figures (feature `bench`; docs/benchmarks.md, "The benchmark
//! build"): what the tick thread measured, for `/bench` on the admin listener.
//!
//! Sharing without cost on the tick: the figures of the current window (tick durations in an
//! HDR histogram, allocations per tick) sit behind a mutex that the tick thread only ever
//! `try_lock`s, once per tick, after the tick, to record that tick. When `/bench` holds the
//! lock (it holds it only to copy the figures out, a few microseconds), the tick thread
//! records into a window of its own instead and adds it in at the next tick that gets the
//! lock. Recording and adding allocate nothing: both histograms are allocated once at start,
//! with the same bounds. A reset (`/bench/reset`) is done by the admin side under the lock; it
//! bumps a generation number, and the tick thread drops what it kept aside from before it.

mod process;
mod window;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use serde_json::{Value, json};

pub use process::{CpuTimes, cpu_times, memory};
pub use window::Window;

pub use crate::allocations::{AllocatingTick, AllocationStats, RECENT_ALLOCATING_TICKS};

use crate::tick::TickSample;

/// The window shared by the tick thread and the admin listener.
pub struct BenchShared {
    state: Mutex<Shared>,
    /// Whether the sdk's counting allocator is the one this process uses (checked at start).
    counting: bool,
    /// The configured executor: with the multi-threaded one, only the tick thread's share of a
    /// tick's allocations is counted.
    executor: &'static str,
}

struct Shared {
    window: Window,
    generation: u64,
    started: Instant,
    cpu_at_start: CpuTimes,
}

impl BenchShared {
    /// Call on the tick thread: it checks that allocations are counted there.
    pub fn new(executor: &'static str) -> Arc<Self> {
        let counting = veltrix_sdk::alloc_count::counting_is_active();
        if !counting {
            tracing::warn!(
                "benchmark build: heap allocations are not counted (the sdk's allocator is not the process's); \
                 /bench reports them as absent"
            );
        }
        Arc::new(Self {
            state: Mutex::new(Shared {
                window: Window::new(),
                generation: 0,
                started: Instant::now(),
                cpu_at_start: cpu_times(),
            }),
            counting,
            executor,
        })
    }

    /// The figures of the current window as JSON (the `/bench` body); with `reset`, they are
    /// the last of that window, and a new one starts at once.
    pub fn report(&self, reset: bool) -> Value {
        let mut shared = self.state.lock();
        let snapshot = Snapshot::take(&shared);
        if reset {
            shared.window.reset();
            shared.generation += 1;
            shared.started = Instant::now();
            shared.cpu_at_start = cpu_times();
        }
        drop(shared);
        snapshot.to_json(self.counting, self.executor, reset)
    }
}

/// The tick thread's side: records each tick into the shared window when it can.
pub struct TickRecorder {
    shared: Arc<BenchShared>,
    /// Ticks recorded while `/bench` held the lock.
    aside: Window,
    /// The shared window's generation when this side last saw it.
    generation: u64,
}

impl TickRecorder {
    pub fn new(shared: Arc<BenchShared>) -> Self {
        Self { shared, aside: Window::new(), generation: 0 }
    }

    /// Records one tick. Never blocks, never allocates.
    pub fn record(&mut self, sample: &TickSample) {
        let Some(mut shared) = self.shared.state.try_lock() else {
            self.aside.record(sample);
            return;
        };
        if shared.generation != self.generation {
            // A reset came since: what was kept aside was measured before it.
            self.generation = shared.generation;
            self.aside.reset();
        }
        if !self.aside.is_empty() {
            shared.window.absorb(&self.aside);
            self.aside.reset();
        }
        shared.window.record(sample);
    }
}

/// The figures copied out under the lock.
struct Snapshot {
    window_seconds: f64,
    ticks: u64,
    first_tick: u64,
    last_tick: u64,
    durations_us: [u64; 4],
    mean_us: f64,
    allocations: AllocationStats,
    cpu_total: CpuTimes,
    cpu_window: CpuTimes,
    generation: u64,
}

impl Snapshot {
    fn take(shared: &Shared) -> Self {
        let h = &shared.window.durations_us;
        let cpu_total = cpu_times();
        Self {
            window_seconds: shared.started.elapsed().as_secs_f64(),
            ticks: shared.window.ticks,
            first_tick: shared.window.first_tick,
            last_tick: shared.window.last_tick,
            durations_us: if h.is_empty() {
                [0; 4]
            } else {
                [h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.value_at_quantile(0.999), h.max()]
            },
            mean_us: if h.is_empty() { 0.0 } else { h.mean() },
            allocations: shared.window.allocations.clone(),
            cpu_window: cpu_total.since(&shared.cpu_at_start),
            cpu_total,
            generation: shared.generation,
        }
    }

    fn to_json(&self, counting: bool, executor: &str, reset: bool) -> Value {
        let [p50, p99, p999, max] = self.durations_us;
        let a = &self.allocations;
        let allocations = if counting {
            json!({
                "counted": true,
                "thread": "tick",
                "executor": executor,
                "ticks_with_any": a.ticks_allocating,
                "total": a.allocations,
                "total_bytes": a.bytes,
                "max_in_one_tick": a.max_allocations,
                "max_tick": a.max_tick,
                "max_bytes_in_one_tick": a.max_bytes,
                "last_ticks": a.recent().map(|t| json!({
                    "tick": t.tick, "allocations": t.allocations, "bytes": t.bytes
                })).collect::<Vec<_>>(),
            })
        } else {
            json!({ "counted": false, "thread": "tick", "executor": executor })
        };
        let memory = memory();
        json!({
            "window": {
                "seconds": self.window_seconds,
                "resets": self.generation,
                "reset_now": reset,
            },
            "ticks": {
                "count": self.ticks,
                "first": self.first_tick,
                "last": self.last_tick,
                "duration_us": { "p50": p50, "p99": p99, "p999": p999, "max": max, "mean": self.mean_us },
            },
            "allocations": allocations,
            "process": {
                "cpu_user_seconds": seconds(self.cpu_total.user),
                "cpu_system_seconds": seconds(self.cpu_total.system),
                "window_cpu_user_seconds": seconds(self.cpu_window.user),
                "window_cpu_system_seconds": seconds(self.cpu_window.system),
                "rss_bytes": memory.rss_bytes,
                "peak_rss_bytes": memory.peak_rss_bytes,
            },
        })
    }
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}
