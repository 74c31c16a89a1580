//! Heap allocations counted per thread: the benchmark build's view of what a tick allocates
//! (feature `count-allocations`, off by default; docs/benchmarks.md).
//!
//! With the feature, [`CountingAllocator`] is the process's `#[global_allocator]`: it hands
//! every request to [`System`] and adds one to a count of this thread's allocations, and the
//! size to a count of bytes. It lives here, in the sdk dylib, because nowhere else works under
//! `-C prefer-dynamic`: rustc emits no allocator shim for an executable that links std
//! dynamically, so a `#[global_allocator]` in the server binary is silently not used. The sdk
//! dylib does get the shim (`__rust_alloc` and friends); the binary lists the sdk before std
//! among its libraries, so the dynamic linker binds every `__rust_alloc` of the process to
//! it, std's own calls and the dlopened mods' included. Allocations that still reached std's
//! default shim would go to the same [`System`] allocator, only uncounted: mixing the two is
//! safe. [`counting_is_active`] checks the binding at run time.
//!
//! The counts are plain `Cell`s in a const-initialised `thread_local!`: no lock, no atomic,
//! no allocation of their own, no lazy initialisation.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
};

thread_local! {
    /// This thread's allocations and allocated bytes since it started.
    static COUNTS: (Cell<u64>, Cell<u64>) = const { (Cell::new(0), Cell::new(0)) };
}

/// [`System`], counting each allocation (`alloc`, `alloc_zeroed`, `realloc`) and its size on
/// the thread that asked. Freeing is not counted.
pub struct CountingAllocator;

#[cfg(feature = "count-allocations")]
#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

impl CountingAllocator {
    #[inline]
    fn count(size: usize) {
        // `try_with`: never a panic inside the allocator, even while the thread is ending.
        let _ = COUNTS.try_with(|(count, bytes)| {
            count.set(count.get().wrapping_add(1));
            bytes.set(bytes.get().wrapping_add(size as u64));
        });
    }
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the contract; counting
// touches only thread-local cells and never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::count(layout.size());
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::count(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::count(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// This thread's allocations since it started: (allocations, bytes). Subtract two readings
/// to count what happened in between; the counts wrap, so use `wrapping_sub`.
#[inline]
pub fn thread_allocations() -> (u64, u64) {
    COUNTS.try_with(|(count, bytes)| (count.get(), bytes.get())).unwrap_or((0, 0))
}

/// Whether allocations are being counted: one allocation made here shows in
/// [`thread_allocations`]. False when the feature is off, or if the process did not bind its
/// allocations to the sdk's allocator (see the module's documentation).
pub fn counting_is_active() -> bool {
    let (before, _) = thread_allocations();
    drop(std::hint::black_box(Box::new(std::hint::black_box(0u64))));
    let (after, _) = thread_allocations();
    after != before
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the allocator counts goes to the thread that allocated, and only to it. (The test
    /// calls the allocator directly: a test binary links std dynamically, so it does not use
    /// the sdk's `#[global_allocator]`; the server's integration tests check that it does.)
    #[test]
    fn counts_this_threads_allocations_not_another_threads() {
        let layout = Layout::from_size_align(48, 8).unwrap();
        let (count, bytes) = thread_allocations();
        // SAFETY: a valid non-zero layout; each block is freed with the layout it came with.
        unsafe {
            let a = CountingAllocator.alloc(layout);
            let b = CountingAllocator.alloc_zeroed(layout);
            assert!(!a.is_null() && !b.is_null());
            let a = CountingAllocator.realloc(a, layout, 96);
            assert!(!a.is_null());
            CountingAllocator.dealloc(a, Layout::from_size_align(96, 8).unwrap());
            CountingAllocator.dealloc(b, layout);
        }
        let (after_count, after_bytes) = thread_allocations();
        assert_eq!(after_count.wrapping_sub(count), 3, "alloc, alloc_zeroed and realloc; not dealloc");
        assert_eq!(after_bytes.wrapping_sub(bytes), 48 + 48 + 96);

        // Spawning and joining may allocate on this thread (when this process counts through
        // the global allocator), but never the other thread's big block.
        let big = Layout::from_size_align(64 << 20, 8).unwrap();
        let other = std::thread::spawn(move || {
            let before = thread_allocations();
            // SAFETY: as above.
            unsafe { CountingAllocator.dealloc(CountingAllocator.alloc(big), big) };
            let after = thread_allocations();
            (after.0.wrapping_sub(before.0), after.1.wrapping_sub(before.1))
        })
        .join()
        .unwrap();
        assert_eq!(other, (1, 64 << 20), "the other thread counted its own allocation");
        let this_thread = thread_allocations().1.wrapping_sub(after_bytes);
        assert!(this_thread < 64 << 20, "this thread did not count it ({this_thread} bytes)");
    }
}
