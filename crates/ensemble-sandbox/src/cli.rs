//! `ensemble run FILE.py`: one file through the sandbox, on the terminal.
//!
//! Output is written as it arrives (a prompt without a newline shows at
//! once), our stdin is forwarded to the program, Ctrl-C cancels the run, and
//! how the run ended is printed to stderr. The process exit code is the
//! program's own, or one of the documented codes below (also in
//! docs/SANDBOX.md).

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use crate::limits::format_duration;
use crate::{ExitInfo, Limits, OutputStream, RunEvent, RunRequest, RunStatus, Sandbox, Stdin};

/// The file could not be read (as `python3 missing.py` does).
pub const EXIT_UNREADABLE: i32 = 2;
/// The output limit was reached.
pub const EXIT_OUTPUT_LIMIT: i32 = 123;
/// The wall-clock or CPU time limit was reached (as `timeout(1)`).
pub const EXIT_TIME_LIMIT: i32 = 124;
/// The sandbox is unavailable or failed to start the program (as `timeout(1)`
/// does for its own failures).
pub const EXIT_SANDBOX_ERROR: i32 = 125;
/// Cancelled with Ctrl-C (128 + SIGINT, as shells report it).
pub const EXIT_CANCELLED: i32 = 130;
/// The memory limit was reached (128 + SIGKILL: the OOM killer's signal).
pub const EXIT_MEMORY_LIMIT: i32 = 137;

/// The process exit code for how a run ended; a program killed by signal N
/// gives 128 + N.
pub fn exit_code_for(info: &ExitInfo) -> i32 {
    match info.status {
        RunStatus::Ok | RunStatus::Error => info.exit_code.unwrap_or(1),
        RunStatus::Timeout => EXIT_TIME_LIMIT,
        RunStatus::Memory => EXIT_MEMORY_LIMIT,
        RunStatus::OutputLimit => EXIT_OUTPUT_LIMIT,
        RunStatus::Cancelled => EXIT_CANCELLED,
        RunStatus::Killed => 128 + info.signal.unwrap_or(libc::SIGKILL),
        RunStatus::SandboxError => EXIT_SANDBOX_ERROR,
    }
}

/// Runs `path` in `sandbox` with `limits`, streaming to this terminal, and
/// returns the exit code for the `ensemble` process.
pub async fn run_file_cli(sandbox: &Sandbox, path: &Path, limits: Limits) -> i32 {
    let code = match std::fs::read(path).map(String::from_utf8) {
        Ok(Ok(code)) => code,
        Ok(Err(_)) => {
            eprintln!("ensemble: {} is not UTF-8 text", path.display());
            return EXIT_UNREADABLE;
        }
        Err(e) => {
            eprintln!("ensemble: cannot read {}: {e}", path.display());
            return EXIT_UNREADABLE;
        }
    };
    let request = RunRequest {
        code,
        limits,
        stdin: Stdin::Interactive,
    };
    let mut handle = match sandbox.start(request).await {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("ensemble: {e}");
            return EXIT_SANDBOX_ERROR;
        }
    };
    forward_stdin(handle.control());
    let mut ends_with_newline = true;
    let mut ctrl_c = Box::pin(tokio::signal::ctrl_c());
    let mut exit = None;
    let mut cancelled = false;
    loop {
        let event = tokio::select! {
            event = handle.next_event() => event,
            _ = &mut ctrl_c, if !cancelled => {
                cancelled = true;
                handle.cancel();
                continue;
            }
        };
        match event {
            Some(RunEvent::Output(chunk)) => {
                ends_with_newline = chunk.data.ends_with(b"\n");
                let written = match chunk.stream {
                    OutputStream::Stdout => write_now(&mut std::io::stdout().lock(), &chunk.data),
                    OutputStream::Stderr => write_now(&mut std::io::stderr().lock(), &chunk.data),
                };
                if written.is_err() {
                    // Our stdout is gone (a closed pipe): no point going on.
                    handle.cancel();
                }
            }
            // The terminal's own stdin goes straight to the program.
            Some(RunEvent::InputWanted) => {}
            Some(RunEvent::Exited(info)) => exit = Some(info),
            None => break,
        }
    }
    let Some(info) = exit else {
        eprintln!("ensemble: the run ended without an exit report");
        return EXIT_SANDBOX_ERROR;
    };
    let newline = if ends_with_newline { "" } else { "\n" };
    let took = format_duration(Duration::from_millis(info.duration_ms));
    eprintln!("{newline}[ensemble] {} ({took})", info.reason);
    exit_code_for(&info)
}

fn write_now(out: &mut impl Write, data: &[u8]) -> std::io::Result<()> {
    out.write_all(data)?;
    out.flush()
}

/// Forwards our stdin on a plain thread: tokio's stdin would keep the
/// runtime from shutting down while a read is pending, and this thread may
/// sit in `read` until the process exits.
fn forward_stdin(control: crate::RunControl) {
    let runtime = tokio::runtime::Handle::current();
    let spawned = std::thread::Builder::new()
        .name("ensemble-stdin".to_owned())
        .spawn(move || {
            let mut stdin = std::io::stdin();
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if runtime.block_on(control.write_stdin(&buf[..n])).is_err() {
                            return;
                        }
                    }
                }
            }
            control.close_stdin();
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the stdin thread; the program gets EOF");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ResourceUse;

    fn info(status: RunStatus, exit_code: Option<i32>, signal: Option<i32>) -> ExitInfo {
        ExitInfo {
            status,
            reason: String::new(),
            exit_code,
            signal,
            duration_ms: 0,
            resources: ResourceUse::default(),
            output_bytes: 0,
            truncated: false,
        }
    }

    #[test]
    fn exit_codes_are_the_documented_ones() {
        assert_eq!(exit_code_for(&info(RunStatus::Ok, Some(0), None)), 0);
        assert_eq!(exit_code_for(&info(RunStatus::Error, Some(3), None)), 3);
        assert_eq!(exit_code_for(&info(RunStatus::Timeout, None, None)), 124);
        assert_eq!(exit_code_for(&info(RunStatus::Memory, None, None)), 137);
        assert_eq!(
            exit_code_for(&info(RunStatus::OutputLimit, None, None)),
            123
        );
        assert_eq!(exit_code_for(&info(RunStatus::Killed, None, Some(11))), 139);
        assert_eq!(
            exit_code_for(&info(RunStatus::SandboxError, None, None)),
            125
        );
        assert_eq!(exit_code_for(&info(RunStatus::Cancelled, None, None)), 130);
    }
}
