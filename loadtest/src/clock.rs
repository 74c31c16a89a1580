//! The machine's monotonic clock in nanoseconds (CLOCK_MONOTONIC, the clock the server's
//! benchmark build stamps frames with: both processes read the same clock), and what the
//! kernel says of a process's CPU time and memory.

/// Nanoseconds of CLOCK_MONOTONIC.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec to write into; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// User plus system CPU seconds a process has used (`/proc/<pid>/stat`); `None` once it is gone.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    cpu_split(pid).map(|c| c.user + c.system)
}

/// A process's CPU seconds, in user space and in the kernel.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuSplit {
    pub user: f64,
    pub system: f64,
}

impl std::ops::Add for CpuSplit {
    type Output = CpuSplit;
    fn add(self, other: CpuSplit) -> CpuSplit {
        CpuSplit { user: self.user + other.user, system: self.system + other.system }
    }
}

impl std::ops::Sub for CpuSplit {
    type Output = CpuSplit;
    fn sub(self, earlier: CpuSplit) -> CpuSplit {
        CpuSplit { user: self.user - earlier.user, system: self.system - earlier.system }
    }
}

/// The user and system CPU seconds a process has used (`utime`, `stime` of `/proc/<pid>/stat`);
/// `None` once it is gone.
pub fn cpu_split(pid: u32) -> Option<CpuSplit> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let (utime, stime): (u64, u64) = (fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?);
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(CpuSplit { user: utime as f64 / ticks, system: stime as f64 / ticks })
}

/// A process's resident set size in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()
}

/// Raises this process's open-file limit to its hard limit (a swarm holds a socket per bot);
/// returns the limit now in force.
pub fn raise_open_files() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: valid pointers to an rlimit.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    limit.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_memory_and_a_moving_clock() {
        let a = monotonic_ns();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        assert!(monotonic_ns() > a);
        assert!(cpu_seconds(std::process::id()).is_some());
        assert!(rss_kib(std::process::id()).unwrap() > 0);
        assert!(cpu_seconds(u32::MAX).is_none());
    }
}
