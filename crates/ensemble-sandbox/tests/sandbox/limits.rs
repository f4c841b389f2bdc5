//! Hostile programs against the limits: time, CPU, memory, processes,
//! threads, disk and output. Each asserts the exact status and reason.

use std::time::Duration;

use ensemble_sandbox::{Limits, RunRequest, RunStatus, Stdin};

use crate::support::{
    exit, limits, live_processes_named, run, run_with, sandbox_without_cgroups, unique_name,
    wait_for_output, MIB,
};

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

#[tokio::test]
async fn without_a_pids_cgroup_each_run_has_its_own_process_limit() {
    // Where cgroups are not writable (a container), the runner sets
    // RLIMIT_NPROC inside the run's own user namespace. Two runs fork until
    // refused, at the same time: each gets the whole limit (bubblewrap's
    // pid 1 and the program count too), so it is per run, not per uid.
    let sandbox = sandbox_without_cgroups().await;
    let report = sandbox.report();
    let layer = report
        .layers
        .iter()
        .find(|l| l.name == "processes")
        .expect("a processes layer");
    assert!(layer.active, "{layer:?}");
    assert!(
        layer.detail.contains("RLIMIT_NPROC 65 inside"),
        "the default 64, plus pid 1: {layer:?}"
    );
    let code = "import os, sys\n\
                r, w = os.pipe()\n\
                n = 0\n\
                while True:\n\
                \x20   try:\n\
                \x20       pid = os.fork()\n\
                \x20   except OSError as e:\n\
                \x20       print('forked', n, 'then', e.strerror, flush=True)\n\
                \x20       break\n\
                \x20   if pid == 0:\n\
                \x20       os.close(w)\n\
                \x20       os.read(r, 1)\n\
                \x20       os._exit(0)\n\
                \x20   n += 1\n\
                sys.stdin.readline()\n\
                os.close(w)\n\
                while True:\n\
                \x20   try:\n\
                \x20       os.wait()\n\
                \x20   except ChildProcessError:\n\
                \x20       break\n\
                print('all', n, 'children gone', flush=True)\n";
    let l = Limits {
        wall_time: Duration::from_secs(20),
        max_processes: 16,
        ..limits()
    };
    let start = || {
        sandbox.start(RunRequest {
            code: code.to_owned(),
            limits: l.clone(),
            stdin: Stdin::Interactive,
        })
    };
    let mut one = start().await.expect("run one starts");
    let mut two = start().await.expect("run two starts");
    let forked = |out: &str| -> u32 {
        out.split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{out:?}"))
    };
    // Both hold all their children now.
    // (EAGAIN: what fork says at RLIMIT_NPROC.)
    let refused = "then Resource temporarily unavailable\n";
    let out_one = wait_for_output(&mut one, refused).await;
    let out_two = wait_for_output(&mut two, refused).await;
    for out in [&out_one, &out_two] {
        let n = forked(out);
        assert!(
            (13..=15).contains(&n),
            "16 tasks, less bwrap's pid 1 and Python: {out}"
        );
    }
    for run in [&one, &two] {
        run.write_stdin("go\n").await.expect("stdin");
    }
    for run in [one, two] {
        let t = run.collect().await;
        let e = exit(&t);
        assert_eq!(e.status, RunStatus::Ok, "{e:?} {}", t.stderr_text());
        assert!(
            t.stdout_text().contains("children gone"),
            "{}",
            t.stdout_text()
        );
    }
}
