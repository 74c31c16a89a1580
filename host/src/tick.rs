//! The fixed-timestep tick loop.
//!
//! Each tick has a deadline, `start + n * period`, and the loop sleeps until the next deadline
//! rather than for a fixed time after each tick: a sleep-per-tick loop drifts by every tick's
//! duration and the sleep's overshoot, a deadline loop does not. When the loop falls behind,
//! it runs the missed ticks back to back to catch up; past `max_catch_up` ticks behind it
//! skips ahead instead (with a warning naming the overrun), so one long stall does not turn
//! into a burst of ticks.
//!
//! The benchmark build (feature `bench`) also counts the heap allocations made on the tick
//! thread during each tick, with the sdk's counting allocator. Only this thread's: with the
//! multi-threaded executor, systems that run on the compute pool are not counted (run the
//! benchmark with `Executor: SingleThreaded` to count every system).

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;

use crate::config::TickPriority;

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

/// Schedules the calling thread, the tick thread, as `priority` says; what it got, for the log.
/// `Err` only when `RealTime` was asked for and refused: the message says how to allow it.
///
/// Real time because the tick is the one thread whose lateness players feel, and the server's
/// other threads (the network's, the writers', the store's) wake in bursts at the very moment a
/// tick runs: at normal priority a tick of 3 ms of work waited 3 to 7 ms for a core with the
/// machine half idle (docs/benchmarks.md, "The tick thread in real time"). The lowest
/// real-time priority is above every normal thread and below the system's own. The threads
/// this one starts afterwards are normal again (`SCHED_RESET_ON_FORK`). A tick that overruns
/// runs back to back and then holds one core; `Auto` asks for it only with a second core.
pub fn prioritize(priority: TickPriority) -> Result<String, String> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if priority == TickPriority::Normal {
        return Ok("normal priority".into());
    }
    if priority == TickPriority::Auto && cores < 2 {
        return Ok("normal priority (one core: real time would starve the network)".into());
    }
    let Err(e) = real_time() else { return Ok("real-time priority (SCHED_FIFO 1)".into()) };
    let how = "give the server CAP_SYS_NICE or a real-time limit (systemd `LimitRTPRIO=1`, docker `--ulimit \
               rtprio=1`; docs/configuration.md, TickPriority)";
    if priority == TickPriority::RealTime {
        return Err(format!(
            "TickPriority is RealTime but the system refused real-time priority ({e}): {how}, or set it to Auto"
        ));
    }
    Ok(format!("normal priority (real time refused: {e}; for steadier ticks {how})"))
}

#[cfg(target_os = "linux")]
fn real_time() -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: sets the calling thread's (0) policy; `param` is a valid sched_param for the call.
    let set = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &param) };
    if set == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

#[cfg(not(target_os = "linux"))]
fn real_time() -> std::io::Result<()> {
    Err(std::io::Error::other("real-time scheduling is set up on Linux only"))
}

/// Runs `tick(n)` for n = 1, 2, ... on the deadlines of `pacing` until `stop` is set or
/// `max_ticks` ticks have run (then returns at the deadline of the tick after the last).
/// `took` hears what each tick measured, after the tick.
pub fn run(
    pacing: TickPacing,
    stop: &AtomicBool,
    max_ticks: Option<u64>,
    mut tick: impl FnMut(u64),
    mut took: impl FnMut(&TickSample),
) -> TickStats {
    let mut stats = TickStats::new();
    let start = Instant::now();
    let mut deadline = start;
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) && max_ticks.is_none_or(|max| n < max) {
        n += 1;
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
            std::thread::sleep(deadline - now);
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
        let stats = run(pacing, &stop, Some(90), |n| std::thread::sleep(Duration::from_millis(n % 20)), |_| {});
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

    /// Real time where the system allows it, for the calling thread only: a thread it starts
    /// is normal again. Where it is refused, `RealTime` is an error saying how to allow it and
    /// `Auto` goes on at normal priority.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_tick_thread_alone_runs_in_real_time() {
        std::thread::spawn(|| {
            let policy = || unsafe { libc::sched_getscheduler(0) } & !libc::SCHED_RESET_ON_FORK;
            assert_eq!(prioritize(TickPriority::Normal).unwrap(), "normal priority");
            assert_eq!(policy(), libc::SCHED_OTHER);
            match prioritize(TickPriority::RealTime) {
                Ok(got) => {
                    assert_eq!(got, "real-time priority (SCHED_FIFO 1)");
                    assert_eq!(policy(), libc::SCHED_FIFO);
                    let child = std::thread::spawn(policy).join().unwrap();
                    assert_eq!(child, libc::SCHED_OTHER, "a thread it starts is normal");
                }
                Err(refused) => {
                    assert!(refused.contains("CAP_SYS_NICE") && refused.contains("set it to Auto"), "{refused}");
                    let auto = prioritize(TickPriority::Auto).unwrap();
                    assert!(auto.starts_with("normal priority"), "{auto}");
                }
            }
        })
        .join()
        .unwrap();
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

    #[test]
    fn stop_flag_ends_the_loop() {
        let stop = AtomicBool::new(false);
        let stats = run(
            TickPacing::new(1000, 5),
            &stop,
            None,
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
