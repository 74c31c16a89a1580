//! The figures of one measuring window: tick durations and allocations per tick. Recording,
//! adding one window to another and resetting allocate nothing.

use hdrhistogram::Histogram;

use crate::tick::TickSample;

/// How many of the last ticks that allocated are remembered, to find them.
pub const RECENT_ALLOCATING_TICKS: usize = 16;

/// A tick that allocated on the tick thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllocatingTick {
    pub tick: u64,
    pub allocations: u64,
    pub bytes: u64,
}

/// Allocations on the tick thread, over the ticks recorded.
#[derive(Debug, Clone, Default)]
pub struct AllocationStats {
    /// Ticks with at least one allocation.
    pub ticks_allocating: u64,
    pub allocations: u64,
    pub bytes: u64,
    /// The most allocations in one tick, and that tick (the first to reach it).
    pub max_allocations: u64,
    pub max_tick: u64,
    /// The most bytes allocated in one tick.
    pub max_bytes: u64,
    /// The last allocating ticks, a ring: `recent_len` entries, the next write at `recent_next`.
    recent: [AllocatingTick; RECENT_ALLOCATING_TICKS],
    recent_len: usize,
    recent_next: usize,
}

impl AllocationStats {
    /// Records tick `tick`'s (allocations, bytes).
    pub fn record(&mut self, tick: u64, (allocations, bytes): (u64, u64)) {
        if allocations == 0 {
            return;
        }
        self.push(AllocatingTick { tick, allocations, bytes });
    }

    fn push(&mut self, t: AllocatingTick) {
        self.ticks_allocating += 1;
        self.allocations += t.allocations;
        self.bytes += t.bytes;
        if t.allocations > self.max_allocations {
            self.max_allocations = t.allocations;
            self.max_tick = t.tick;
        }
        self.max_bytes = self.max_bytes.max(t.bytes);
        self.recent[self.recent_next] = t;
        self.recent_next = (self.recent_next + 1) % RECENT_ALLOCATING_TICKS;
        self.recent_len = (self.recent_len + 1).min(RECENT_ALLOCATING_TICKS);
    }

    /// The last ticks that allocated, oldest first.
    pub fn recent(&self) -> impl Iterator<Item = AllocatingTick> + '_ {
        let start = (self.recent_next + RECENT_ALLOCATING_TICKS - self.recent_len) % RECENT_ALLOCATING_TICKS;
        (0..self.recent_len).map(move |i| self.recent[(start + i) % RECENT_ALLOCATING_TICKS])
    }

    /// Adds `later`, whose ticks all come after this one's.
    pub fn absorb(&mut self, later: &AllocationStats) {
        let (count, bytes, max_bytes) = (later.allocations, later.bytes, later.max_bytes);
        let ticks = later.ticks_allocating;
        // The ring's entries (the last ticks), as ticks of this window...
        for t in later.recent() {
            self.push(t);
        }
        // ...and the totals of those the ring no longer holds.
        let pushed = later.recent_len as u64;
        self.ticks_allocating += ticks - pushed;
        self.allocations += count - later.recent().map(|t| t.allocations).sum::<u64>();
        self.bytes += bytes - later.recent().map(|t| t.bytes).sum::<u64>();
        if later.max_allocations > self.max_allocations {
            self.max_allocations = later.max_allocations;
            self.max_tick = later.max_tick;
        }
        self.max_bytes = self.max_bytes.max(max_bytes);
    }

    /// One line for the log: `3 of 900 ticks allocated: 12 allocations, 1.5 KiB; at most 6 in tick 41`.
    pub fn summary(&self) -> String {
        if self.ticks_allocating == 0 {
            return "no tick allocated on the tick thread".into();
        }
        format!(
            "{} ticks allocated on the tick thread: {} allocations, {} bytes; at most {} in tick {}",
            self.ticks_allocating, self.allocations, self.bytes, self.max_allocations, self.max_tick
        )
    }
}

/// One window's figures.
#[derive(Debug, Clone)]
pub struct Window {
    /// Tick durations, in microseconds (the bounds of `TickStats`'s histogram).
    pub durations_us: Histogram<u64>,
    pub ticks: u64,
    pub first_tick: u64,
    pub last_tick: u64,
    pub allocations: AllocationStats,
}

impl Default for Window {
    fn default() -> Self {
        Self::new()
    }
}

impl Window {
    pub fn new() -> Self {
        Self {
            durations_us: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
            ticks: 0,
            first_tick: 0,
            last_tick: 0,
            allocations: AllocationStats::default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ticks == 0
    }

    pub fn record(&mut self, sample: &TickSample) {
        self.durations_us.saturating_record(sample.duration.as_micros().max(1) as u64);
        if self.ticks == 0 {
            self.first_tick = sample.tick;
        }
        self.ticks += 1;
        self.last_tick = sample.tick;
        self.allocations.record(sample.tick, sample.allocations);
    }

    /// Adds `later`, whose ticks all come after this one's.
    pub fn absorb(&mut self, later: &Window) {
        if later.is_empty() {
            return;
        }
        // Same bounds on both sides: adding cannot fail, nor resize.
        let _ = self.durations_us.add(&later.durations_us);
        if self.ticks == 0 {
            self.first_tick = later.first_tick;
        }
        self.ticks += later.ticks;
        self.last_tick = later.last_tick;
        self.allocations.absorb(&later.allocations);
    }

    pub fn reset(&mut self) {
        self.durations_us.reset();
        self.ticks = 0;
        self.first_tick = 0;
        self.last_tick = 0;
        self.allocations = AllocationStats::default();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn sample(tick: u64, us: u64, allocations: u64) -> TickSample {
        TickSample { tick, duration: Duration::from_micros(us), allocations: (allocations, allocations * 16) }
    }

    /// Ticks recorded in one window, or split between it and a window kept aside and added
    /// later, give the same figures; the ring keeps the last allocating ticks, oldest first.
    #[test]
    fn absorbing_equals_recording_in_one_window() {
        let samples: Vec<TickSample> = (1..=100).map(|n| sample(n, 100 + n, if n % 3 == 0 { n } else { 0 })).collect();
        let mut whole = Window::new();
        samples.iter().for_each(|s| whole.record(s));
        let (mut first, mut aside) = (Window::new(), Window::new());
        samples[..40].iter().for_each(|s| first.record(s));
        samples[40..].iter().for_each(|s| aside.record(s));
        first.absorb(&aside);

        for w in [&whole, &first] {
            assert_eq!((w.ticks, w.first_tick, w.last_tick), (100, 1, 100));
            assert_eq!(w.durations_us.len(), 100);
            assert_eq!(w.durations_us.max(), whole.durations_us.max());
            let a = &w.allocations;
            assert_eq!(a.ticks_allocating, 33);
            assert_eq!(a.allocations, (1..=33).map(|i| i * 3).sum::<u64>());
            assert_eq!(a.bytes, a.allocations * 16);
            assert_eq!((a.max_allocations, a.max_tick, a.max_bytes), (99, 99, 99 * 16));
            let recent: Vec<u64> = a.recent().map(|t| t.tick).collect();
            assert_eq!(recent, (18..=33).map(|i| i * 3).collect::<Vec<_>>());
        }
        first.reset();
        assert!(first.is_empty());
        assert_eq!(first.allocations.recent().count(), 0);
    }
}
