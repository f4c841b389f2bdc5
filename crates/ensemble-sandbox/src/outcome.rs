//! Turning what the supervisor observed into a status and a reason.
//!
//! Pure, so every ending is unit-tested without running anything. The order
//! of the rules is the point: a kill we made ourselves (time, output,
//! cancel) explains the ending better than the signal it caused; an OOM
//! kill seen in the cgroup explains a SIGKILL; a program that never started
//! is the sandbox's failure, not the user's; only then does the exit code
//! speak.

use std::time::Duration;

use crate::limits::{format_bytes, format_duration};
use crate::{signal_name, Limits, RunStatus};

/// Why the supervisor killed a run (the first cause wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KillCause {
    /// The wall-clock limit.
    WallTime,
    /// The CPU-time limit, seen in the cgroup's CPU counter.
    CpuTime,
    /// The output limit.
    OutputLimit,
    /// A cancel request, with who asked if known.
    Cancelled { by: Option<String> },
}

/// How the supervised process (bwrap, or python in unsafe mode) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Exited with this code.
    Code(i32),
    /// Died from this signal.
    Signal(i32),
}

/// Everything the decision needs.
#[derive(Debug)]
pub(crate) struct Facts<'a> {
    pub cause: Option<KillCause>,
    pub oom_killed: bool,
    pub started: bool,
    pub ended: Ended,
    /// bubblewrap reports a program killed by signal N as exit code 128 + N.
    pub through_bwrap: bool,
    pub cpu_used: Option<Duration>,
    pub limits: &'a Limits,
}

/// The decision: status, reason, exit code, signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    pub status: RunStatus,
    pub reason: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
}

impl Decision {
    fn new(status: RunStatus, reason: String) -> Self {
        Self {
            status,
            reason,
            exit_code: None,
            signal: None,
        }
    }
}

/// Applies the rules described at the top of this file.
pub(crate) fn decide(f: &Facts<'_>) -> Decision {
    let limits = f.limits;
    let cpu_reason = || {
        format!(
            "CPU time limit ({}) exceeded",
            format_duration(limits.cpu_time)
        )
    };
    if let Some(cause) = &f.cause {
        return match cause {
            KillCause::WallTime => Decision::new(
                RunStatus::Timeout,
                format!(
                    "time limit ({}) exceeded",
                    format_duration(limits.wall_time)
                ),
            ),
            KillCause::CpuTime => Decision::new(RunStatus::Timeout, cpu_reason()),
            KillCause::OutputLimit => {
                Decision::new(RunStatus::OutputLimit, "output limit reached".to_owned())
            }
            KillCause::Cancelled { by: Some(who) } => {
                Decision::new(RunStatus::Cancelled, format!("cancelled by {who}"))
            }
            KillCause::Cancelled { by: None } => {
                Decision::new(RunStatus::Cancelled, "cancelled".to_owned())
            }
        };
    }
    if f.oom_killed {
        return Decision::new(
            RunStatus::Memory,
            format!(
                "memory limit ({}) exceeded",
                format_bytes(limits.memory_bytes)
            ),
        );
    }
    if !f.started {
        return Decision::new(
            RunStatus::SandboxError,
            "sandbox failed to start".to_owned(),
        );
    }
    let killed = |signal: i32| {
        let over_cpu = f.cpu_used.is_some_and(|used| used >= limits.cpu_time);
        if signal == libc::SIGXCPU || (signal == libc::SIGKILL && over_cpu) {
            // The RLIMIT_CPU backstop fired before our own CPU check.
            return Decision::new(RunStatus::Timeout, cpu_reason());
        }
        Decision {
            signal: Some(signal),
            ..Decision::new(
                RunStatus::Killed,
                format!("killed by signal {}", signal_name(signal)),
            )
        }
    };
    let code = match f.ended {
        Ended::Signal(s) => return killed(s),
        Ended::Code(c) if f.through_bwrap && (129..=192).contains(&c) => return killed(c - 128),
        Ended::Code(c) => c,
    };
    let status = if code == 0 {
        RunStatus::Ok
    } else {
        RunStatus::Error
    };
    Decision {
        exit_code: Some(code),
        ..Decision::new(status, format!("exited with code {code}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(limits: &Limits) -> Facts<'_> {
        Facts {
            cause: None,
            oom_killed: false,
            started: true,
            ended: Ended::Code(0),
            through_bwrap: true,
            cpu_used: None,
            limits,
        }
    }

    #[test]
    fn exit_codes_speak_last() {
        let l = Limits::default();
        let d = decide(&facts(&l));
        assert_eq!(
            (d.status, d.exit_code, d.reason.as_str()),
            (RunStatus::Ok, Some(0), "exited with code 0")
        );
        let d = decide(&Facts {
            ended: Ended::Code(3),
            ..facts(&l)
        });
        assert_eq!((d.status, d.exit_code), (RunStatus::Error, Some(3)));
    }

    #[test]
    fn our_own_kills_explain_the_signal() {
        let l = Limits::default();
        let killed = Facts {
            ended: Ended::Signal(9),
            oom_killed: true,
            ..facts(&l)
        };
        let d = decide(&Facts {
            cause: Some(KillCause::WallTime),
            ..killed
        });
        assert_eq!(d.status, RunStatus::Timeout);
        assert_eq!(d.reason, "time limit (10 s) exceeded");
        let d = decide(&Facts {
            cause: Some(KillCause::OutputLimit),
            ended: Ended::Signal(9),
            ..facts(&l)
        });
        assert_eq!(
            (d.status, d.reason.as_str()),
            (RunStatus::OutputLimit, "output limit reached")
        );
        let by = Some(KillCause::Cancelled {
            by: Some("alice".into()),
        });
        assert_eq!(
            decide(&Facts {
                cause: by,
                ..facts(&l)
            })
            .reason,
            "cancelled by alice"
        );
    }

    #[test]
    fn an_oom_kill_is_memory() {
        let l = Limits::default();
        let d = decide(&Facts {
            oom_killed: true,
            ended: Ended::Code(137),
            ..facts(&l)
        });
        assert_eq!(d.status, RunStatus::Memory);
        assert_eq!(d.reason, "memory limit (256 MiB) exceeded");
    }

    #[test]
    fn bwrap_codes_above_128_are_signals() {
        let l = Limits::default();
        let d = decide(&Facts {
            ended: Ended::Code(139),
            ..facts(&l)
        });
        assert_eq!(
            (d.status, d.signal, d.exit_code),
            (RunStatus::Killed, Some(11), None)
        );
        assert_eq!(d.reason, "killed by signal SIGSEGV");
        let direct = decide(&Facts {
            ended: Ended::Code(139),
            through_bwrap: false,
            ..facts(&l)
        });
        assert_eq!(direct.status, RunStatus::Error);
    }

    #[test]
    fn the_cpu_backstop_reads_as_a_cpu_limit() {
        let l = Limits::default();
        let d = decide(&Facts {
            ended: Ended::Code(137),
            cpu_used: Some(Duration::from_secs(11)),
            ..facts(&l)
        });
        assert_eq!(d.status, RunStatus::Timeout);
        assert_eq!(d.reason, "CPU time limit (10 s) exceeded");
    }

    #[test]
    fn a_program_that_never_started_is_the_sandboxs_fault() {
        let l = Limits::default();
        let d = decide(&Facts {
            started: false,
            ended: Ended::Code(1),
            ..facts(&l)
        });
        assert_eq!(d.status, RunStatus::SandboxError);
    }
}
