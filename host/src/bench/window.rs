//! The figures of one measuring window: tick durations and allocations per tick. Recording,
//! adding one window to another and resetting allocate nothing.

use hdrhistogram::Histogram;

use crate::{allocations::AllocationStats, tick::TickSample};

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
