//! Shared helpers: one probed sandbox for all tests, small limits so the
//! suite stays fast, and ways to look at the host from outside a run.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ensemble_sandbox::{
    ExitInfo, Limits, RunEvent, RunHandle, RunRequest, Sandbox, SandboxConfig, Stdin, Transcript,
};
use tokio::sync::OnceCell;

pub const MIB: u64 = 1024 * 1024;

static SANDBOX: OnceCell<Sandbox> = OnceCell::const_new();

/// The sandbox of this machine, probed once. Every test needs the real
/// thing: a host without bubblewrap fails here, loudly.
pub async fn sandbox() -> &'static Sandbox {
    SANDBOX
        .get_or_init(|| async {
            let sandbox = Sandbox::probe(SandboxConfig::default()).await;
            assert!(
                sandbox.report().usable,
                "the sandbox must work on this machine: {}",
                sandbox.report().summary()
            );
            sandbox
        })
        .await
}

static SANDBOX_NO_CGROUPS: OnceCell<Sandbox> = OnceCell::const_new();

/// The sandbox as a host without usable cgroups gets it (a container with a
/// read-only `/sys/fs/cgroup`): rlimits and the watchdog only.
pub async fn sandbox_without_cgroups() -> &'static Sandbox {
    SANDBOX_NO_CGROUPS
        .get_or_init(|| async {
            let sandbox = Sandbox::probe(SandboxConfig {
                cgroups: false,
                ..SandboxConfig::default()
            })
            .await;
            assert!(sandbox.report().usable, "{}", sandbox.report().summary());
            sandbox
        })
        .await
}

/// Small limits: 2 s wall clock, 64 MiB, 32 processes, 64 KiB of output.
pub fn limits() -> Limits {
    Limits {
        wall_time: Duration::from_secs(2),
        cpu_time: Duration::from_secs(10),
        memory_bytes: 64 * MIB,
        max_processes: 32,
        output_bytes: 64 * 1024,
        file_size_bytes: 4 * MIB,
        scratch_bytes: 8 * MIB,
        open_files: 64,
        cpu_percent: 100,
    }
}

/// Starts `code` with the given limits and stdin.
pub async fn start(code: &str, limits: Limits, stdin: Stdin) -> RunHandle {
    sandbox()
        .await
        .start(RunRequest {
            code: code.to_owned(),
            limits,
            stdin,
        })
        .await
        .expect("the run starts")
}

/// Runs `code` with the small limits and no input, to the end.
pub async fn run(code: &str) -> Transcript {
    run_with(code, limits()).await
}

/// Runs `code` with `limits` and no input, to the end.
pub async fn run_with(code: &str, limits: Limits) -> Transcript {
    let transcript = start(code, limits, Stdin::Empty).await.collect().await;
    assert!(
        transcript.exit.is_some(),
        "every run ends with an exit event"
    );
    transcript
}

/// The exit event of a transcript.
pub fn exit(t: &Transcript) -> &ExitInfo {
    t.exit.as_ref().expect("exit event")
}

/// Waits for output containing `needle` (bounded), returning all output so far.
pub async fn wait_for_output(handle: &mut RunHandle, needle: &str) -> String {
    let mut seen = String::new();
    let wait = async {
        while let Some(event) = handle.next_event().await {
            match event {
                RunEvent::Output(chunk) => {
                    seen.push_str(&chunk.text());
                    if seen.contains(needle) {
                        return;
                    }
                }
                RunEvent::InputWanted => {}
                RunEvent::Exited(info) => panic!("run ended before {needle:?}: {info:?} {seen:?}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("no {needle:?} within 10 s; saw {seen:?}"));
    seen
}

/// Waits (bounded) for the "waiting for input" hint; returns the output
/// that came before it.
pub async fn wait_for_input_wanted(handle: &mut RunHandle) -> String {
    let mut seen = String::new();
    let wait = async {
        while let Some(event) = handle.next_event().await {
            match event {
                RunEvent::Output(chunk) => seen.push_str(&chunk.text()),
                RunEvent::InputWanted => return,
                RunEvent::Exited(info) => {
                    panic!("run ended before asking for input: {info:?} {seen:?}")
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("no input hint within 10 s; saw {seen:?}"));
    seen
}

/// A name no other test (or earlier test run) uses, at most 15 bytes so it
/// fits a process name (`/proc/PID/comm`).
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut name = format!("{prefix}{:x}{n}", nanos & 0xfffff);
    name.truncate(15);
    name
}

/// Host pids of live (not zombie) processes whose name is `comm`.
pub fn live_processes_named(comm: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
            name.trim() == comm && state.is_some_and(|s| s != 'Z' && s != 'X')
        })
        .collect()
}

/// Cgroup directories named `name` under this process's own cgroups
/// (the layout of these machines: `/sys/fs/cgroup/<controller>/<path>`).
pub fn cgroup_dirs_named(name: &str) -> Vec<std::path::PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    own.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?.trim_start_matches('/');
            let mount = match controllers {
                "" => "unified".to_owned(),
                c => c.trim_start_matches("name=").to_owned(),
            };
            let dir = std::path::Path::new("/sys/fs/cgroup")
                .join(mount)
                .join(path)
                .join(name);
            dir.exists().then_some(dir)
        })
        .collect()
}
