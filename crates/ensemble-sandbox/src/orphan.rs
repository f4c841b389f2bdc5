//! Reaping bubblewrap's pid-1 process after a run.
//!
//! bubblewrap's outer process learns the program's exit status through an
//! eventfd and exits at once, without waiting for its child, the sandbox's
//! pid 1. That process is then an orphan: it goes to the nearest "child
//! subreaper" — the server, which the probe makes one — or else to the
//! host's init, which may reap it late (this machine's init does) and until
//! then it counts against the uid's process limit. So each run reaps its own
//! pid 1. bubblewrap reports that pid on `--info-fd`; the start time read
//! while it lives guards against ever waiting for a reused pid.

use std::os::fd::OwnedFd;
use std::time::Duration;

use tokio::io::AsyncReadExt;

/// The sandbox's pid-1 process, as the host sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pid1 {
    pid: u32,
    start_time: u64,
}

/// Reads bubblewrap's info JSON (`{"child-pid": N, …}`) and notes the
/// process's start time.
pub(crate) async fn read_info(fd: OwnedFd) -> Option<Pid1> {
    let mut pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(fd).ok()?;
    let mut text = Vec::new();
    let mut buf = [0u8; 512];
    // bubblewrap writes the whole object at once and closes; stop at its end
    // rather than waiting for EOF, which a surviving holder could delay.
    while !text.contains(&b'}') && text.len() < 4096 {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
        }
    }
    let pid = child_pid(&String::from_utf8_lossy(&text))?;
    let (_, _, start_time) = stat(pid)?;
    Some(Pid1 { pid, start_time })
}

/// Waits (bounded) until the pid-1 process is gone, reaping it if it was
/// re-parented to us.
pub(crate) async fn reap(pid1: Pid1) {
    let me = std::process::id();
    for _ in 0..200 {
        let Some((state, ppid, start_time)) = stat(pid1.pid) else {
            return; // already reaped
        };
        if start_time != pid1.start_time {
            return; // the pid is another process's now
        }
        if state == 'Z' && ppid == me {
            match crate::sys::reap(pid1.pid) {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "could not reap the sandbox's pid 1");
                    return;
                }
            }
        } else if state == 'Z' && ppid != me {
            return; // someone else's to reap (no subreaper, or outer bwrap alive)
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tracing::warn!(pid = pid1.pid, "the sandbox's pid 1 did not go away");
}

fn child_pid(json: &str) -> Option<u32> {
    let rest = &json[json.find("\"child-pid\"")? + "\"child-pid\"".len()..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// (state, parent pid, start time) from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(char, u32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name (field 2) may hold spaces and parentheses: split after the last ')'.
    let fields: Vec<&str> = text
        .get(text.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let state = fields.first()?.chars().next()?;
    let ppid = fields.get(1)?.parse().ok()?;
    let start_time = fields.get(19)?.parse().ok()?;
    Some((state, ppid, start_time))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_child_pid_is_read_from_bubblewraps_info() {
        let info = "{\n    \"child-pid\": 19621,\n    \"cgroup-namespace\": 4026532183\n}\n";
        assert_eq!(child_pid(info), Some(19621));
        assert_eq!(child_pid("{}"), None);
    }

    #[test]
    fn our_own_stat_is_readable() {
        let (state, ppid, start) = stat(std::process::id()).expect("own stat");
        assert!(matches!(state, 'R' | 'S'));
        assert!(ppid > 0 && start > 0);
    }
}
