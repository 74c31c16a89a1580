//! The fixed-timestep tick loop.
//!
//! Each tick has a deadline, `start + n * period`, and the loop sleeps until the next deadline
//! rather than for a fixed time after each tick: a sleep-per-tick loop drifts by every tick's
//! duration and the sleep's overshoot, a deadline loop does not. When the loop falls behind,
//! it runs the missed ticks back to back to catch up; past `max_catch_up` ticks behind it
//! skips ahead instead (with a warning naming the overrun), so one long stall does not turn
//! into a burst of ticks.
//!
//! A [`TickBell`] rung from outside the tick (in a cluster: an answer or news from the shared
//! ledger) lets the next tick start as soon as the tick before it is done, up to one period
//! before its deadline, so what came is handled at once instead of waiting out the period. The
//! deadlines do not move: the hunt's clock is never more than one tick ahead, and over time
//! runs at exactly the tick rate. After early ticks the loop comes back to its deadlines a
//! quarter period per tick: no gap between two ticks' starts is longer than 1.25 periods.
//!
//! The benchmark build (feature `bench`) also counts the heap allocations made on the tick
//! thread during each tick, with the sdk's counting allocator. Only this thread's: with the
//! multi-threaded executor, systems that run on the compute pool are not counted (run the
//! benchmark with `Executor: SingleThreaded` to count every system).

use std::{
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    thread::Thread,
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;

/// How the loop is paced.
#[derive(Debug, Clone, Copy)]
pub struct TickPacing {
    pub period: Duration,
    /// How many ticks behind the loop may be before it skips ahead.
    pub max_catch_up: u32,
}

impl TickPacing {
    pub fn new(rate: u32, max_catch_up: u32) -> Self {
        assert!(rate > 0, "tick rate must be positive");
        Self { period: Duration::from_secs(1) / rate, max_catch_up }
    }
}

/// Wakes the tick loop early: something waits that the next tick should handle now. Cheap to
/// clone and to ring from any thread; rings before the loop starts are kept.
#[derive(Clone, Default)]
pub struct TickBell(Arc<BellState>);

#[derive(Default)]
struct BellState {
    rung: AtomicBool,
    /// The tick loop's thread, once it runs.
    ticker: OnceLock<Thread>,
}

impl TickBell {
    pub fn ring(&self) {
        self.0.rung.store(true, Ordering::Release);
        if let Some(ticker) = self.0.ticker.get() {
            ticker.unpark();
        }
    }

    fn is_rung(&self) -> bool {
        self.0.rung.load(Ordering::Acquire)
    }

    /// Called as a tick starts: what rang until now is that tick's to handle.
    fn clear(&self) {
        self.0.rung.store(false, Ordering::Release);
    }
}

/// Waits for the next tick, due at `deadline`, the tick before it having started at `last`:
/// when `bell` rings, until `deadline - period` (at once if that has passed); otherwise until
/// the deadline, but no more than a period and a quarter after `last`. So a loop ahead of its
/// deadlines after early ticks comes back to them a quarter period per tick, instead of leaving
/// one long gap in which a player's input would wait up to two periods.
fn wait_for_tick(deadline: Instant, last: Instant, period: Duration, bell: &TickBell) {
    let earliest = deadline.checked_sub(period).unwrap_or(deadline);
    let latest = deadline.min(last + period + period / 4);
    loop {
        let now = Instant::now();
        let wake_at = if bell.is_rung() { earliest } else { latest };
        if now >= wake_at {
            return;
        }
        std::thread::park_timeout(wake_at - now);
    }
}

/// What one tick measured.
#[derive(Debug, Clone, Copy)]
pub struct TickSample {
    pub tick: u64,
    pub duration: Duration,
    /// Heap allocations made on the tick thread during the tick: (allocations, bytes).
    #[cfg(feature = "bench")]
    pub allocations: (u64, u64),
}

/// What a run of the loop measured.
#[derive(Debug, Clone)]
pub struct TickStats {
    /// Time spent in each tick, in microseconds.
    pub durations_us: Histogram<u64>,
    /// Ticks run.
    pub ticks: u64,
    /// Ticks skipped by the catch-up clamp.
    pub skipped: u64,
    /// From the first tick's start to the end of the run.
    pub elapsed: Duration,
    /// Allocations on the tick thread, per tick.
    #[cfg(feature = "bench")]
    pub allocations: crate::allocations::AllocationStats,
}

impl TickStats {
    fn new() -> Self {
        Self {
            durations_us: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
            ticks: 0,
            skipped: 0,
            elapsed: Duration::ZERO,
            #[cfg(feature = "bench")]
            allocations: crate::allocations::AllocationStats::default(),
        }
    }

    /// `p50 0.12 ms, p99 0.40 ms, max 1.10 ms` (and the allocations, in the benchmark build).
    pub fn summary(&self) -> String {
        let ms = |us: u64| us as f64 / 1000.0;
        let h = &self.durations_us;
        format!(
            "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms{}",
            ms(h.value_at_quantile(0.5)),
            ms(h.value_at_quantile(0.99)),
            ms(h.max()),
            self.allocation_summary()
        )
    }

    #[cfg(feature = "bench")]
    fn allocation_summary(&self) -> String {
        format!("; {}", self.allocations.summary())
    }

    #[cfg(not(feature = "bench"))]
    fn allocation_summary(&self) -> &'static str {
        ""
    }
}

/// Runs `tick(n)` for n = 1, 2, ... on the deadlines of `pacing` (or up to one period earlier
/// when `bell` rings) until `stop` is set or `max_ticks` ticks have run (then returns at the
/// deadline of the tick after the last). `took` hears what each tick measured, after the tick.
pub fn run(
    pacing: TickPacing,
    stop: &AtomicBool,
    max_ticks: Option<u64>,
    bell: &TickBell,
    mut tick: impl FnMut(u64),
    mut took: impl FnMut(&TickSample),
) -> TickStats {
    let _ = bell.0.ticker.set(std::thread::current());
    let mut stats = TickStats::new();
    let start = Instant::now();
    let mut deadline = start;
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) && max_ticks.is_none_or(|max| n < max) {
        n += 1;
        bell.clear();
        #[cfg(feature = "bench")]
        let allocated_before = veltrix_sdk::alloc_count::thread_allocations();
        let began = Instant::now();
        tick(n);
        let duration = began.elapsed();
        let sample = TickSample {
            tick: n,
            duration,
            #[cfg(feature = "bench")]
            allocations: {
                let (count, bytes) = veltrix_sdk::alloc_count::thread_allocations();
                (count.wrapping_sub(allocated_before.0), bytes.wrapping_sub(allocated_before.1))
            },
        };
        took(&sample);
        stats.durations_us.saturating_record(duration.as_micros().max(1) as u64);
        #[cfg(feature = "bench")]
        stats.allocations.record(n, sample.allocations);
        stats.ticks = n;

        deadline += pacing.period;
        let now = Instant::now();
        if now < deadline {
            wait_for_tick(deadline, began, pacing.period, bell);
            continue;
        }
        let behind = ((now - deadline).as_nanos() / pacing.period.as_nanos()) as u64;
        if behind > u64::from(pacing.max_catch_up) {
            tracing::warn!(
                "tick {n} overran: it took {:.1} ms of a {:.1} ms budget and the loop is {behind} ticks behind; skipping them",
                duration.as_secs_f64() * 1000.0,
                pacing.period.as_secs_f64() * 1000.0,
            );
            stats.skipped += behind;
            deadline = now;
        }
    }
    stats.elapsed = start.elapsed();
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deadline loop whose ticks take a varying share of their budget ends where the clock
    /// says, give or take one tick: 90 ticks at 30 TPS take 3 s.
    #[test]
    fn no_drift_over_a_short_run() {
        let pacing = TickPacing::new(30, 5);
        let stop = AtomicBool::new(false);
        let stats = run(
            pacing,
            &stop,
            Some(90),
            &TickBell::default(),
            |n| std::thread::sleep(Duration::from_millis(n % 20)),
            |_| {},
        );
        let expected = pacing.period * 90;
        let drift = stats.elapsed.abs_diff(expected);
        assert_eq!(stats.ticks, 90);
        assert_eq!(stats.skipped, 0);
        assert!(
            drift < pacing.period,
            "90 ticks took {:?}, expected {expected:?} give or take one tick",
            stats.elapsed
        );
    }

    /// A stall of many ticks is clamped: the loop skips ahead instead of bursting.
    #[test]
    fn long_stall_is_skipped() {
        let pacing = TickPacing::new(100, 2);
        let stop = AtomicBool::new(false);
        let stats = run(
            pacing,
            &stop,
            Some(10),
            &TickBell::default(),
            |n| {
                if n == 3 {
                    std::thread::sleep(Duration::from_millis(100));
                }
            },
            |_| {},
        );
        assert_eq!(stats.ticks, 10);
        assert!(stats.skipped >= 8, "a 100 ms stall at 100 TPS skips about 9 ticks, skipped {}", stats.skipped);
    }

    /// When each of `ticks` ticks at 10 TPS started, after the first, the bell rung in the
    /// ticks `rings` names.
    fn starts_at_10_tps(ticks: u64, rings: impl Fn(u64) -> bool) -> Vec<Duration> {
        let stop = AtomicBool::new(false);
        let bell = TickBell::default();
        let mut starts = Vec::new();
        let first = Instant::now();
        run(
            TickPacing::new(10, 5),
            &stop,
            Some(ticks),
            &bell,
            |n| {
                starts.push(first.elapsed());
                if rings(n) {
                    bell.ring();
                }
            },
            |_| {},
        );
        starts
    }

    /// A bell rung in every tick (news keeps coming) lets each next tick start at once, but
    /// never more than one period before its deadline: at 10 TPS tick 2 follows tick 1 at once,
    /// and tick n starts no earlier than (n - 2) periods after tick 1.
    #[test]
    fn a_rung_bell_starts_the_next_tick_early_but_at_most_one_tick_ahead() {
        let period = Duration::from_millis(100);
        let starts = starts_at_10_tps(6, |_| true);
        assert!(starts[1] < period / 2, "tick 2 started {:?} after tick 1, not at once", starts[1]);
        for (i, started) in starts.iter().enumerate().skip(1) {
            let not_before = period * (i as u32 - 1);
            assert!(*started >= not_before, "tick {} started at {started:?}, before {not_before:?}", i + 1);
        }
    }

    /// After an early tick the loop comes back to its deadlines a quarter period per tick, not
    /// in one gap of two periods: at 10 TPS, with the bell rung in tick 1 only, no two ticks
    /// start more than 125 ms apart (160 with the scheduler's slack), and tick 7 is on time.
    #[test]
    fn after_an_early_tick_the_loop_comes_back_to_its_deadlines_gradually() {
        let period = Duration::from_millis(100);
        let starts = starts_at_10_tps(7, |n| n == 1);
        assert!(starts[1] < period / 2, "tick 2 started {:?} after tick 1, not at once", starts[1]);
        for pair in starts.windows(2).skip(1) {
            let gap = pair[1] - pair[0];
            assert!(gap < Duration::from_millis(160), "two ticks started {gap:?} apart: {starts:?}");
        }
        assert!(starts[6] >= period * 6, "tick 7 started at {:?}, before its deadline", starts[6]);
    }

    /// A bell rung from another thread once a tick is done wakes the loop: at 2 TPS, the tick
    /// after the ring starts long before its deadline.
    #[test]
    fn a_bell_rung_from_another_thread_wakes_the_loop() {
        let pacing = TickPacing::new(2, 5);
        let stop = AtomicBool::new(false);
        let bell = TickBell::default();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let (rung_tx, rung_rx) = std::sync::mpsc::channel::<Instant>();
        let ringer = bell.clone();
        let mut gap = Duration::ZERO;
        std::thread::scope(|scope| {
            scope.spawn(move || {
                done_rx.recv().expect("tick 1 done");
                let _ = rung_tx.send(Instant::now());
                ringer.ring();
            });
            run(
                pacing,
                &stop,
                Some(2),
                &bell,
                |n| {
                    if n == 2 {
                        gap = rung_rx.recv().expect("rung").elapsed();
                    }
                },
                |sample| {
                    if sample.tick == 1 {
                        let _ = done_tx.send(());
                    }
                },
            );
        });
        assert!(gap < pacing.period / 2, "tick 2 started {gap:?} after the ring, not at once");
    }

    #[test]
    fn stop_flag_ends_the_loop() {
        let stop = AtomicBool::new(false);
        let stats = run(
            TickPacing::new(1000, 5),
            &stop,
            None,
            &TickBell::default(),
            |n| {
                if n == 5 {
                    stop.store(true, Ordering::Relaxed);
                }
            },
            |_| {},
        );
        assert_eq!(stats.ticks, 5);
    }
}
