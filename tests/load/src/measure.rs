//! What the tool measures besides its own sockets: the server process's CPU
//! time and resident memory (from `/proc`, so Linux only, and only with
//! `--server-pid`), the machine's load average, a process-wide clock for
//! latency stamps, and percentiles.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Clock ticks per second in `/proc/PID/stat` (Linux's `USER_HZ`, which is
/// 100 on every architecture the kernel exposes to user space).
const USER_HZ: f64 = 100.0;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since this process first asked; monotonic and shared by all
/// tasks, so a writer's stamp and a reader's arrival time compare directly.
pub fn now_ns() -> u64 {
    u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The server process, if we were told its pid.
#[derive(Clone, Copy)]
pub struct Server {
    pid: Option<u32>,
}

impl Server {
    /// Watches `pid` (or nothing).
    pub fn new(pid: Option<u32>) -> Self {
        Self { pid }
    }

    /// User plus system CPU time used so far (all threads, live and exited).
    pub fn cpu(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid?)).ok()?;
        // Fields after the command name (which may hold spaces) start at
        // field 3, "state"; utime and stime are fields 14 and 15.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        Some(Duration::from_secs_f64((utime + stime) as f64 / USER_HZ))
    }

    /// Resident set size in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    }
}

/// The 1-minute load average.
pub fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// This process's soft limit on open files.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The `p`-th percentile (0–100) of sorted samples, nearest rank.
pub fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds with one decimal.
pub fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// A value or "n/a".
pub fn or_na<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "n/a".into(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7u32], 99.0), 7);
        assert_eq!(percentile::<u32>(&[], 50.0), 0);
    }

    #[test]
    fn reads_our_own_process() {
        let me = Server::new(Some(std::process::id()));
        assert!(me.cpu().is_some());
        assert!(me.rss_kib().unwrap() > 0);
        assert!(Server::new(None).cpu().is_none());
    }
}
