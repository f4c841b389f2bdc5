//! A run's life: streaming, stdin, cancel, clear endings, cleanup, and the
//! supervisor staying responsive while hostile runs go on.

use std::time::Duration;

use ensemble_sandbox::{
    RunEvent, RunStatus, Sandbox, SandboxConfig, SandboxError, SandboxMode, Stdin,
};

use crate::support::{
    cgroup_dirs_named, exit, limits, live_processes_named, run, sandbox, start, unique_name,
    wait_for_input_wanted, wait_for_output,
};

#[tokio::test]
async fn a_double_forked_daemon_dies_with_the_run() {
    let name = unique_name("ensdmn");
    let code = format!(
        "import ctypes, os, sys, time\n\
         r, w = os.pipe()\n\
         if os.fork() == 0:\n\
         \x20   os.setsid()\n\
         \x20   if os.fork() == 0:\n\
         \x20       ctypes.CDLL(None).prctl(15, b'{name}', 0, 0, 0)\n\
         \x20       os.write(w, b'x')\n\
         \x20       while True:\n\
         \x20           time.sleep(1)\n\
         \x20   os._exit(0)\n\
         os.read(r, 1)\n\
         print('daemon ready', flush=True)\n\
         sys.stdin.readline()\n\
         print('parent exiting')\n"
    );
    let mut handle = start(&code, limits(), Stdin::Interactive).await;
    wait_for_output(&mut handle, "daemon ready").await;
    // The checks below can fail: the daemon and the cgroup are visible now.
    assert_eq!(
        live_processes_named(&name).len(),
        1,
        "the daemon runs during the run"
    );
    if sandbox().await.report().is_active("cgroup") {
        assert!(
            !cgroup_dirs_named(handle.id()).is_empty(),
            "the run has a cgroup"
        );
    }
    handle.close_stdin();
    let id = handle.id().to_owned();
    let t = handle.collect().await;
    assert_eq!(exit(&t).status, RunStatus::Ok, "{}", t.stderr_text());
    assert!(t.stdout_text().contains("parent exiting"));
    assert_eq!(
        live_processes_named(&name),
        Vec::<u32>::new(),
        "the daemon outlived the run"
    );
    assert_eq!(
        cgroup_dirs_named(&id),
        Vec::<std::path::PathBuf>::new(),
        "cgroup left behind"
    );
}

#[tokio::test]
async fn stdin_gives_eof_when_no_input_was_given() {
    let t = run("import sys\nprint(repr(sys.stdin.read()))\ninput()\n").await;
    let e = exit(&t);
    assert_eq!(t.stdout_text(), "''\n");
    assert_eq!(t.input_wanted, 0, "EOF is there to read: nothing waits");
    assert!(t.stderr_text().contains("EOFError"), "{}", t.stderr_text());
    assert_eq!((e.status, e.exit_code), (RunStatus::Error, Some(1)));
}

#[tokio::test]
async fn given_stdin_is_read_then_eof() {
    let code = "import sys\nprint(sum(int(l) for l in sys.stdin))\n";
    let t = start(code, limits(), Stdin::Bytes(b"3\n4\n".to_vec()))
        .await
        .collect()
        .await;
    assert_eq!(t.stdout_text(), "7\n");
    assert_eq!(t.input_wanted, 0, "the input was there: nothing waits");
}

#[tokio::test]
async fn a_read_that_waits_says_so_once_per_wait() {
    let code = "a = input('a? ')\nb = input('b? ')\nprint(int(a) + int(b))\n";
    let mut handle = start(code, limits(), Stdin::Interactive).await;
    assert_eq!(wait_for_input_wanted(&mut handle).await, "a? ");
    handle.write_stdin("3\n").await.expect("stdin open");
    assert_eq!(wait_for_input_wanted(&mut handle).await, "b? ");
    handle.write_stdin("4\n").await.expect("stdin open");
    let t = handle.collect().await;
    assert_eq!(t.stdout_text(), "7\n");
    assert_eq!(t.input_wanted, 0, "no third wait");
    assert_eq!(exit(&t).status, RunStatus::Ok);
}

#[tokio::test]
async fn a_program_flooding_the_hint_pipe_gets_one_hint_then_a_closed_pipe() {
    // Small writes get one hint; past 64 KiB the pump stops reading and
    // closes the pipe, so a flood cannot keep a server core busy.
    let code = "import os\n\
                for _ in range(2000):\n    os.write(3, b'i')\n\
                try:\n    while True:\n        os.write(3, b'i' * 65536)\n\
                except BrokenPipeError:\n    print('closed')\n";
    let t = start(code, limits(), Stdin::Interactive)
        .await
        .collect()
        .await;
    assert_eq!(t.stdout_text(), "closed\n", "{}", t.stderr_text());
    assert_eq!(t.input_wanted, 1);
    assert_eq!(exit(&t).status, RunStatus::Ok);
}

#[tokio::test]
async fn a_prompt_arrives_before_any_input_is_written() {
    let code = "name = input('name? ')\nprint('hello', name)\n";
    let mut handle = start(code, limits(), Stdin::Interactive).await;
    let seen = wait_for_output(&mut handle, "name? ").await;
    assert_eq!(
        seen, "name? ",
        "the prompt, without a newline, streams at once"
    );
    handle.write_stdin("bob\n").await.expect("stdin open");
    let t = handle.collect().await;
    assert_eq!(t.stdout_text(), "hello bob\n");
    assert_eq!(exit(&t).status, RunStatus::Ok);
}

#[tokio::test]
async fn cancel_stops_a_run_promptly() {
    let mut handle = start(
        "print('started', flush=True)\nwhile True:\n    pass\n",
        limits(),
        Stdin::Empty,
    )
    .await;
    wait_for_output(&mut handle, "started").await;
    let cancelled_at = std::time::Instant::now();
    handle.control().cancel_by("alice");
    let t = handle.collect().await;
    let e = exit(&t);
    assert_eq!(e.status, RunStatus::Cancelled);
    assert_eq!(e.reason, "cancelled by alice");
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(1),
        "{:?}",
        cancelled_at.elapsed()
    );
}

#[tokio::test]
async fn a_syntax_error_shows_the_users_line() {
    let t = run("x = 1\nprint('a'\ny = 2\n").await;
    let e = exit(&t);
    assert_eq!((e.status, e.exit_code), (RunStatus::Error, Some(1)));
    assert_eq!(e.reason, "exited with code 1");
    let err = t.stderr_text();
    assert!(err.contains("File \"main.py\", line 2"), "{err}");
    assert!(err.contains("SyntaxError: '(' was never closed"), "{err}");
    assert!(
        !err.contains("<string>") && !err.contains("/sandbox") && !err.contains("Traceback"),
        "{err}"
    );
}

#[tokio::test]
async fn a_traceback_shows_only_the_users_frames() {
    let t = run("def f():\n    return 1 / 0\n\nf()\n").await;
    let err = t.stderr_text();
    assert_eq!(exit(&t).status, RunStatus::Error);
    assert!(
        err.starts_with(
            "Traceback (most recent call last):\n  File \"main.py\", line 4, in <module>"
        ),
        "{err}"
    );
    assert!(err.contains("File \"main.py\", line 2, in f"), "{err}");
    assert!(err.contains("ZeroDivisionError: division by zero"), "{err}");
    assert!(
        !err.contains("<string>") && !err.contains("/sandbox"),
        "{err}"
    );
}

#[tokio::test]
async fn exit_codes_and_signals_are_reported() {
    let t = run("import sys\nsys.exit(3)\n").await;
    let e = exit(&t);
    assert_eq!(
        (e.status, e.exit_code, e.reason.as_str()),
        (RunStatus::Error, Some(3), "exited with code 3")
    );
    let t = run("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n").await;
    let e = exit(&t);
    assert_eq!(
        (e.status, e.signal),
        (RunStatus::Killed, Some(libc::SIGSEGV)),
        "{e:?}"
    );
    assert_eq!(e.reason, "killed by signal SIGSEGV");
    let t = run("print('fine')\n").await;
    let e = exit(&t);
    assert_eq!(
        (e.status, e.exit_code, e.reason.as_str()),
        (RunStatus::Ok, Some(0), "exited with code 0")
    );
}

#[tokio::test]
async fn invalid_utf8_and_nul_survive_and_later_output_still_arrives() {
    let code = "import sys\n\
                sys.stdout.buffer.write(b'a\\x00b\\xff\\xfe\\n'); sys.stdout.flush()\n\
                sys.stderr.write('err\\n'); sys.stderr.flush()\n\
                sys.stdout.buffer.write('€'.encode()[:1]); sys.stdout.flush()\n\
                sys.stdout.buffer.write('€'.encode()[1:]); sys.stdout.flush()\n\
                print(' later')\n";
    let t = run(code).await;
    assert_eq!(exit(&t).status, RunStatus::Ok, "{}", t.stderr_text());
    let mut expected = b"a\0b\xff\xfe\n".to_vec();
    expected.extend_from_slice("€ later\n".as_bytes());
    assert_eq!(t.stdout, expected);
    assert_eq!(t.stderr_text(), "err\n");
    let expected: Vec<u64> = (1..=t.seqs.len() as u64).collect();
    assert_eq!(
        t.seqs, expected,
        "sequence numbers count from 1 without gaps"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_supervisor_stays_responsive_during_hostile_runs() {
    let hostile: [&'static str; 4] = [
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        "chunks = []\nwhile True:\n    chunks.append(b'x' * (8 << 20))\n",
        "while True:\n    print('y' * 999)\n",
        "while True:\n    pass\n",
    ];
    let runs: Vec<_> = hostile
        .into_iter()
        .map(|code| {
            tokio::spawn(async move { start(code, limits(), Stdin::Empty).await.collect().await })
        })
        .collect();
    let mut worst = Duration::ZERO;
    let tick = Duration::from_millis(10);
    let until = tokio::time::Instant::now() + Duration::from_millis(2500);
    while tokio::time::Instant::now() < until {
        let before = tokio::time::Instant::now();
        tokio::time::sleep(tick).await;
        worst = worst.max(before.elapsed().saturating_sub(tick));
    }
    for run in runs {
        let t = run.await.expect("run task");
        assert!(t.exit.is_some());
    }
    assert!(
        worst < Duration::from_millis(500),
        "a timer was late by {worst:?}"
    );
}

#[tokio::test]
async fn without_bubblewrap_runs_are_refused() {
    let config = SandboxConfig {
        bwrap: "/nonexistent/bwrap".into(),
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::probe(config).await;
    assert!(!sandbox.report().usable);
    assert_eq!(sandbox.report().mode, "unavailable");
    let err = sandbox
        .start(ensemble_sandbox::RunRequest {
            code: "print(1)".into(),
            ..Default::default()
        })
        .await
        .expect_err("refused");
    assert!(matches!(err, SandboxError::Unavailable(_)));
    assert_eq!(
        err.to_string(),
        "sandbox unavailable: bubblewrap not found (/nonexistent/bwrap)"
    );
}

#[tokio::test]
async fn the_probe_reports_the_layers_that_work_here() {
    let report = sandbox().await.report();
    assert_eq!(report.mode, "bubblewrap");
    for layer in [
        "namespaces",
        "uid",
        "seccomp",
        "rlimits",
        "watchdog",
        "output cap",
    ] {
        assert!(report.is_active(layer), "{layer}: {}", report.summary());
    }
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    if root && std::path::Path::new("/sys/fs/cgroup/pids").exists() {
        for layer in ["cgroup", "memory", "processes"] {
            assert!(report.is_active(layer), "{layer}: {}", report.summary());
        }
    }
}

#[tokio::test]
async fn the_unsafe_mode_still_runs_with_limits() {
    let sandbox = Sandbox::probe(SandboxConfig {
        mode: SandboxMode::NoneUnsafe,
        ..SandboxConfig::default()
    })
    .await;
    assert_eq!(sandbox.report().mode, "none-unsafe");
    assert!(!sandbox.report().is_active("namespaces"));
    let handle = sandbox
        .start(ensemble_sandbox::RunRequest {
            code: "import time\nprint('hi', flush=True)\ntime.sleep(60)\n".into(),
            limits: limits(),
            stdin: Stdin::Empty,
        })
        .await
        .expect("starts");
    let mut handle = handle;
    let mut out = String::new();
    let mut end = None;
    while let Some(event) = handle.next_event().await {
        match event {
            RunEvent::Output(c) => out.push_str(&c.text()),
            RunEvent::InputWanted => {}
            RunEvent::Exited(info) => end = Some(info),
        }
    }
    let end = end.expect("exit");
    assert_eq!(out, "hi\n");
    assert_eq!(end.status, RunStatus::Timeout);
}
