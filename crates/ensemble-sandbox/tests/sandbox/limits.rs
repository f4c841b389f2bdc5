//! Hostile programs against the limits: time, CPU, memory, processes,
//! threads, disk and output. Each asserts the exact status and reason.

use std::time::Duration;

use ensemble_sandbox::{Limits, RunStatus};

use crate::support::{exit, limits, live_processes_named, run, run_with, unique_name, MIB};

/// Killed runs must end within the limit plus this (kill, cleanup, a busy machine).
const SLACK_MS: u64 = 3000;

#[tokio::test]
async fn an_infinite_loop_is_killed_at_the_wall_limit() {
    let t = run("while True:\n    pass\n").await;
    let e = exit(&t);
    assert_eq!(e.status, RunStatus::Timeout, "{e:?}");
    assert_eq!(e.reason, "time limit (2 s) exceeded");
    assert!(
        e.duration_ms >= 2000 && e.duration_ms < 2000 + SLACK_MS,
        "{e:?}"
    );
    assert_eq!(e.exit_code, None);
}

#[tokio::test]
async fn a_sleep_is_killed_at_the_wall_limit() {
    let t = run("import time\nprint('sleeping')\ntime.sleep(600)\n").await;
    let e = exit(&t);
    assert_eq!(e.status, RunStatus::Timeout, "{e:?}");
    assert_eq!(e.reason, "time limit (2 s) exceeded");
    assert!(
        e.duration_ms >= 2000 && e.duration_ms < 2000 + SLACK_MS,
        "{e:?}"
    );
    assert_eq!(t.stdout_text(), "sleeping\n");
}

#[tokio::test]
async fn cpu_time_is_limited_for_all_processes_together() {
    // Two busy processes: the CPU limit counts both.
    let code = "import os\nos.fork()\nwhile True:\n    pass\n";
    let l = Limits {
        wall_time: Duration::from_secs(8),
        cpu_time: Duration::from_secs(1),
        ..limits()
    };
    let t = run_with(code, l).await;
    let e = exit(&t);
    assert_eq!(e.status, RunStatus::Timeout, "{e:?}");
    assert_eq!(e.reason, "CPU time limit (1 s) exceeded");
    assert!(e.duration_ms < 1000 + SLACK_MS, "{e:?}");
    assert!(e.resources.cpu_ms.is_some_and(|ms| ms >= 1000), "{e:?}");
}

#[tokio::test]
async fn a_memory_bomb_is_reported_as_memory() {
    let code = "chunks = []\nwhile True:\n    chunks.append(b'x' * (8 << 20))\n";
    let t = run(code).await;
    let e = exit(&t);
    assert_eq!(e.status, RunStatus::Memory, "{e:?} {}", t.stderr_text());
    assert_eq!(e.reason, "memory limit (64 MiB) exceeded");
    assert!(
        e.resources.peak_memory_bytes.is_some_and(|p| p <= 64 * MIB),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_fork_bomb_is_stopped_and_leaves_nothing() {
    let name = unique_name("ensfork");
    let code = format!(
        "import ctypes, os\n\
         ctypes.CDLL(None).prctl(15, b'{name}', 0, 0, 0)\n\
         print('bombing', flush=True)\n\
         while True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    );
    let t = run(&code).await;
    let e = exit(&t);
    assert_eq!(e.status, RunStatus::Timeout, "{e:?} {}", t.stderr_text());
    assert!(e.duration_ms < 2000 + SLACK_MS, "{e:?}");
    assert_eq!(t.stdout_text(), "bombing\n");
    if let Some(peak) = e.resources.peak_processes {
        assert!(peak <= 32, "the process limit held: peak {peak}");
    }
    assert_eq!(
        live_processes_named(&name),
        Vec::<u32>::new(),
        "bomb processes survived"
    );
}

#[tokio::test]
async fn a_thread_bomb_is_stopped() {
    let code = "import threading, time\n\
                n = 0\n\
                try:\n    while True:\n        threading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n        n += 1\n\
                except RuntimeError as e:\n    print('stopped after', n, 'threads:', e)\n";
    let t = run(code).await;
    let e = exit(&t);
    assert_eq!(e.status, RunStatus::Ok, "{e:?} {}", t.stderr_text());
    let out = t.stdout_text();
    assert!(out.contains("can't start new thread"), "{out}");
    let n: u32 = out
        .split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .expect("count");
    assert!(
        (10..32).contains(&n),
        "threads stopped by the process limit, not earlier: {n}"
    );
}

#[tokio::test]
async fn a_growing_file_stops_at_the_file_size_limit() {
    let code = "import errno\n\
                size = 0\n\
                try:\n    with open('big', 'wb') as f:\n        while True:\n            f.write(b'x' * (1 << 20)); f.flush(); size += 1 << 20\n\
                except OSError as e:\n    print(errno.errorcode[e.errno], size)\n";
    let t = run(code).await;
    assert_eq!(exit(&t).status, RunStatus::Ok, "{}", t.stderr_text());
    assert_eq!(t.stdout_text(), format!("EFBIG {}\n", 4 * MIB));
}

#[tokio::test]
async fn many_files_stop_when_the_scratch_directory_is_full() {
    let code = "import errno\n\
                total = 0\n\
                try:\n    for i in range(1000):\n        with open(f'f{i}', 'wb') as f:\n            for _ in range(4):\n                f.write(b'x' * (256 << 10)); f.flush(); total += 256 << 10\n\
                except OSError as e:\n    print(errno.errorcode[e.errno], total)\n";
    let t = run(code).await;
    assert_eq!(exit(&t).status, RunStatus::Ok, "{}", t.stderr_text());
    let out = t.stdout_text();
    let mut words = out.split_whitespace();
    assert_eq!(words.next(), Some("ENOSPC"), "{out}");
    let total: u64 = words.next().and_then(|n| n.parse().ok()).expect("total");
    assert!(total <= 8 * MIB, "scratch held at 8 MiB: {total}");
}

#[tokio::test]
async fn an_output_flood_is_cut_at_the_cap() {
    let t = run("while True:\n    print('x' * 999)\n").await;
    let e = exit(&t);
    assert_eq!(e.status, RunStatus::OutputLimit, "{e:?}");
    assert_eq!(e.reason, "output limit reached");
    assert!(e.truncated);
    assert_eq!(e.output_bytes, 64 * 1024);
    assert_eq!(t.stdout.len(), 64 * 1024, "exactly the cap is forwarded");
    assert!(
        t.stderr_text().contains("output limit (64 KiB) reached"),
        "a visible notice: {}",
        t.stderr_text()
    );
    assert!(
        e.duration_ms < 2000,
        "killed at the cap, not at the time limit: {e:?}"
    );
}
