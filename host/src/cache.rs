//! Hints to the processor's caches. The tick reads players' components and tables by entity in
//! orders memory does not follow (the interest update by cell, moves in the order received):
//! at 12,000 players those reads missed the caches one after another. Asked for a few items
//! ahead, the misses overlap.

/// Asks the processor to bring `value`'s cache line near; reads nothing the program sees.
#[inline(always)]
pub fn prefetch<T: ?Sized>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing the program sees and never faults; `value` is a live
    // reference besides.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(value).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// How many items ahead [`prefetch`] asks: far enough for a read from memory to land before the
/// item is reached, near enough that its lines are still in the cache then.
pub const PREFETCH_AHEAD: usize = 4;
