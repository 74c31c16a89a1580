//! The process's own CPU time and memory, as the kernel counts them.

use std::time::Duration;

/// CPU time used by the process, all threads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub user: Duration,
    pub system: Duration,
}

impl CpuTimes {
    /// The time used since `earlier`.
    pub fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes { user: self.user.saturating_sub(earlier.user), system: self.system.saturating_sub(earlier.system) }
    }
}

/// User and system CPU time of the whole process so far (`getrusage(RUSAGE_SELF)`, microsecond
/// resolution); zero if the call fails.
pub fn cpu_times() -> CpuTimes {
    // SAFETY: an all-zero `rusage` is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid `rusage` to write; RUSAGE_SELF needs nothing else.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return CpuTimes::default();
    }
    let time = |t: libc::timeval| Duration::new(t.tv_sec.max(0) as u64, (t.tv_usec.clamp(0, 999_999) as u32) * 1000);
    CpuTimes { user: time(usage.ru_utime), system: time(usage.ru_stime) }
}

/// Resident memory, from `/proc/self/status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident now. `None` where `/proc` cannot be read.
    pub rss_bytes: Option<u64>,
    /// `VmHWM`: the most it has been resident.
    pub peak_rss_bytes: Option<u64>,
}

pub fn memory() -> Memory {
    std::fs::read_to_string("/proc/self/status").map(|status| parse_status(&status)).unwrap_or_default()
}

/// The `VmRSS` and `VmHWM` lines of a `/proc/<pid>/status` (in kB, that is KiB).
fn parse_status(status: &str) -> Memory {
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|k| k * 1024)
    };
    Memory { rss_bytes: kib("VmRSS:"), peak_rss_bytes: kib("VmHWM:") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_resident_memory_from_proc_status() {
        let status = "Name:\tveltrix-server\nVmHWM:\t   40960 kB\nVmRSS:\t   30720 kB\nThreads:\t9\n";
        assert_eq!(parse_status(status), Memory { rss_bytes: Some(30 << 20), peak_rss_bytes: Some(40 << 20) });
        assert_eq!(parse_status("Name:\tx\n"), Memory::default());
        let now = memory();
        assert!(now.rss_bytes.is_some_and(|b| b > 0), "this process has resident memory: {now:?}");
    }

    /// CPU time only grows; a busy loop shows in user time.
    #[test]
    fn cpu_time_grows_with_work() {
        let before = cpu_times();
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let used = cpu_times().since(&before);
        assert!(used.user + used.system > Duration::ZERO, "{used:?}");
    }
}
