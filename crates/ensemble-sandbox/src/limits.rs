//! Per-run limits, their defaults, and how they are written in messages.
//!
//! The defaults are the ones in DESIGN.md ("Defaults"). The same formatting
//! helpers produce both the exit reasons ("time limit (10 s) exceeded") and
//! the CLI's messages, so a limit is always spelled the same way.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::SandboxError;

const MIB: u64 = 1024 * 1024;

/// The smallest memory limit accepted: CPython needs about 10 MiB to start.
pub const MIN_MEMORY_BYTES: u64 = 16 * MIB;

/// What one run may use. Every field maps to one `ensemble run` flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Wall-clock time from start to kill. Default 10 s.
    pub wall_time: Duration,
    /// CPU time of all the run's processes together. Default 10 s.
    pub cpu_time: Duration,
    /// Memory of all the run's processes together, no swap. Default 256 MiB.
    pub memory_bytes: u64,
    /// Processes plus threads alive at once. Default 64.
    pub max_processes: u32,
    /// Bytes of stdout plus stderr forwarded before the run is cut. Default 1 MiB.
    pub output_bytes: u64,
    /// Largest file the program may write. Default 16 MiB.
    pub file_size_bytes: u64,
    /// Size of the private scratch directory (and of `/tmp`). Default 32 MiB.
    pub scratch_bytes: u64,
    /// Open file descriptors per process. Default 256.
    pub open_files: u32,
    /// CPU share in percent of one core (100 = one core). Default 100.
    pub cpu_percent: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            wall_time: Duration::from_secs(10),
            cpu_time: Duration::from_secs(10),
            memory_bytes: 256 * MIB,
            max_processes: 64,
            output_bytes: MIB,
            file_size_bytes: 16 * MIB,
            scratch_bytes: 32 * MIB,
            open_files: 256,
            cpu_percent: 100,
        }
    }
}

impl Limits {
    /// Checks that every limit is usable; the error names the first that is not.
    pub fn validate(&self) -> Result<(), SandboxError> {
        let bad = |what: &str| Err(SandboxError::InvalidLimits(what.to_owned()));
        if self.wall_time.is_zero() || self.cpu_time.is_zero() {
            return bad("time limits must be above zero");
        }
        if self.memory_bytes < MIN_MEMORY_BYTES {
            return bad("memory limit must be at least 16 MiB");
        }
        if self.max_processes < 2 {
            return bad("process limit must be at least 2");
        }
        if self.output_bytes == 0 || self.file_size_bytes == 0 || self.scratch_bytes == 0 {
            return bad("output, file size and scratch limits must be above zero");
        }
        if self.open_files < 32 {
            return bad("open files limit must be at least 32");
        }
        if self.cpu_percent == 0 {
            return bad("CPU share must be above zero");
        }
        Ok(())
    }
}

/// A duration as people read it: `10 s`, `1.5 s`, `250 ms`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms >= 1000 && ms % 1000 == 0 {
        format!("{} s", ms / 1000)
    } else if ms >= 1000 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{ms} ms")
    }
}

/// A size as people read it: `256 MiB`, `64 KiB`, `1.5 MiB`, `100 bytes`.
pub fn format_bytes(bytes: u64) -> String {
    const GIB: u64 = 1024 * MIB;
    for (unit, name) in [(GIB, "GiB"), (MIB, "MiB"), (1024, "KiB")] {
        if bytes >= unit {
            return if bytes % unit == 0 {
                format!("{} {name}", bytes / unit)
            } else {
                format!("{:.1} {name}", bytes as f64 / unit as f64)
            };
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_design() {
        let l = Limits::default();
        assert_eq!(l.wall_time, Duration::from_secs(10));
        assert_eq!(l.cpu_time, Duration::from_secs(10));
        assert_eq!(format_bytes(l.memory_bytes), "256 MiB");
        assert_eq!(l.max_processes, 64);
        assert_eq!(format_bytes(l.output_bytes), "1 MiB");
        assert!(l.validate().is_ok());
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(Duration::from_secs(10)), "10 s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250 ms");
    }

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(format_bytes(64 * 1024), "64 KiB");
        assert_eq!(format_bytes(3 * MIB / 2), "1.5 MiB");
        assert_eq!(format_bytes(2 * 1024 * MIB), "2 GiB");
        assert_eq!(format_bytes(100), "100 bytes");
    }

    #[test]
    fn nonsense_limits_are_refused() {
        let l = Limits {
            memory_bytes: MIB,
            ..Limits::default()
        };
        assert!(l.validate().is_err());
        let l = Limits {
            wall_time: Duration::ZERO,
            ..Limits::default()
        };
        assert!(l.validate().is_err());
    }
}
