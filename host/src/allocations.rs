//! Heap allocations on the tick thread, tick by tick (the benchmark build): how many ticks
//! allocated, how much, the most in one tick, and the last ticks that did. Recording and
//! adding allocate nothing.

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
