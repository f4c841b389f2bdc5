//! What a run reports to its caller: output chunks, then exactly one exit.
//!
//! These are plain data with serde derives so the server can store them and
//! turn them into its wire messages without translating field by field. The
//! status names are the ones the issue and the protocol use (`ok`, `error`,
//! `timeout`, `memory`, `output_limit`, `killed`, `cancelled`,
//! `sandbox_error`).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// One thing that happened in a run, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunEvent {
    /// Bytes the program wrote, forwarded as they arrived (never per line).
    Output(OutputChunk),
    /// The program is waiting to read stdin (a hint from its `sys.stdin`;
    /// sent again only after [`crate::RunControl::write_stdin`]).
    InputWanted,
    /// The run is over and nothing of it is left running. Always the last event.
    Exited(ExitInfo),
}

/// A piece of the program's output.
///
/// Chunks are cut on UTF-8 character boundaries where the bytes are valid
/// UTF-8, so [`OutputChunk::text`] on each chunk alone decodes correctly.
/// Invalid bytes and NUL are kept as they are in `data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputChunk {
    /// Position of this chunk in the run, counting from 1 over both streams.
    pub seq: u64,
    /// Which stream it was written to.
    pub stream: OutputStream,
    /// The raw bytes.
    pub data: Vec<u8>,
}

impl OutputChunk {
    /// The chunk as text; invalid UTF-8 becomes U+FFFD.
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.data)
    }
}

/// The program's two output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error (also carries the sandbox's own notices, such as the
    /// output-limit cut).
    Stderr,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// The program exited with code 0.
    Ok,
    /// The program exited with a non-zero code (an uncaught exception, a
    /// syntax error, `sys.exit(3)`).
    Error,
    /// The wall-clock or CPU time limit was reached; the run was killed.
    Timeout,
    /// The memory limit was reached; the kernel killed the program.
    Memory,
    /// The output limit was reached; output was cut and the run killed.
    OutputLimit,
    /// The program died from a signal nobody in the sandbox's supervisor sent.
    Killed,
    /// Someone cancelled the run.
    Cancelled,
    /// The sandbox could not set itself up; the program never ran.
    SandboxError,
}

impl RunStatus {
    /// The wire name (`"ok"`, `"output_limit"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Timeout => "timeout",
            Self::Memory => "memory",
            Self::OutputLimit => "output_limit",
            Self::Killed => "killed",
            Self::Cancelled => "cancelled",
            Self::SandboxError => "sandbox_error",
        }
    }
}

/// The exit event's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// How it ended.
    pub status: RunStatus,
    /// In plain words, fit to show users: "exited with code 1", "time limit
    /// (10 s) exceeded", "memory limit (256 MiB) exceeded", "output limit
    /// reached", "killed by signal SIGSEGV", "cancelled by alice".
    pub reason: String,
    /// The program's exit code when it exited by itself (`ok` and `error`).
    pub exit_code: Option<i32>,
    /// The signal that ended the program when status is `killed`.
    pub signal: Option<i32>,
    /// From start to the moment nothing of the run was left, in milliseconds.
    pub duration_ms: u64,
    /// What the run used, where the host can measure it.
    pub resources: ResourceUse,
    /// Bytes of output forwarded (stdout plus stderr, without notices).
    pub output_bytes: u64,
    /// Whether output was cut at the output limit.
    pub truncated: bool,
}

/// Resource use of a run; `None` where the host has no counter for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceUse {
    /// CPU time of all the run's processes, in milliseconds.
    pub cpu_ms: Option<u64>,
    /// Highest memory use of the run, in bytes.
    pub peak_memory_bytes: Option<u64>,
    /// Highest number of processes plus threads at once.
    pub peak_processes: Option<u64>,
}

/// The usual name of a signal number (`9` → `SIGKILL`), for exit reasons.
pub fn signal_name(signal: i32) -> Cow<'static, str> {
    let name = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        other => return Cow::Owned(format!("signal {other}")),
    };
    Cow::Borrowed(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_use_the_wire_names() {
        assert_eq!(RunStatus::Ok.as_str(), "ok");
        assert_eq!(RunStatus::OutputLimit.as_str(), "output_limit");
        assert_eq!(RunStatus::SandboxError.as_str(), "sandbox_error");
    }

    #[test]
    fn signals_are_named() {
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(11), "SIGSEGV");
        assert_eq!(signal_name(63), "signal 63");
    }

    #[test]
    fn chunk_text_replaces_invalid_bytes() {
        let chunk = OutputChunk {
            seq: 1,
            stream: OutputStream::Stdout,
            data: b"a\0b\xff".to_vec(),
        };
        assert_eq!(chunk.text(), "a\0b\u{fffd}");
    }
}
