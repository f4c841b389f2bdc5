//! The `ensemble` binary itself: bad configuration gives one clear line and
//! exit code 2; SIGTERM stops a serving process with exit code 0.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ensemble() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ensemble"));
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    c
}

fn fails_with_one_line(args: &[&str], needle: &str) {
    let out = ensemble().args(args).output().expect("runs");
    assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("error:") && first.contains(needle),
        "{args:?}: {err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
}

#[test]
fn a_bad_bind_address_exits_2() {
    fails_with_one_line(&["--bind", "localhost:eighty"], "--bind");
}

#[test]
fn an_unusable_data_directory_exits_2() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let inside_a_file = file.path().join("data");
    fails_with_one_line(
        &["--data-dir", inside_a_file.to_str().unwrap()],
        "data directory",
    );
}

#[test]
fn a_malformed_mongodb_uri_exits_2() {
    fails_with_one_line(&["--mongodb-uri", "mongo://nope"], "MongoDB URI");
}

#[test]
fn help_names_every_option_and_its_variable() {
    let out = ensemble().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for (flag, var) in [
        ("--bind", "ENSEMBLE_BIND"),
        ("--data-dir", "ENSEMBLE_DATA_DIR"),
        ("--mongodb-uri", "ENSEMBLE_MONGODB_URI"),
        ("--allowed-origins", "ENSEMBLE_ALLOWED_ORIGINS"),
        ("--node-id", "ENSEMBLE_NODE_ID"),
        ("--log", "ENSEMBLE_LOG"),
    ] {
        assert!(
            help.contains(flag) && help.contains(var),
            "{flag} / {var} missing:\n{help}"
        );
    }
}

#[test]
fn sigterm_stops_the_server_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = ensemble()
        .args(["--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("ENSEMBLE_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the start-up line, which names the store and the address.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("ensemble listening"))
        .expect("start-up line");
    assert!(
        line.contains("sqlite") && line.contains("http://127.0.0.1:"),
        "{line}"
    );
    let started = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(started.elapsed() < Duration::from_secs(10));
}

fn run_py(code: &str, extra: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prog.py");
    std::fs::write(&file, code).unwrap();
    ensemble()
        .args(["--log", "warn"])
        .args(extra)
        .arg("run")
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn run_streams_output_and_passes_the_exit_code_through() {
    let out = run_py(
        "import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)\nsys.exit(3)\n",
        &[],
    );
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "to stdout\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("to stderr") && err.contains("exited with code 3"),
        "{err}"
    );
}

#[test]
fn run_reports_a_time_limit_with_its_own_exit_code() {
    let out = run_py("while True:\n    pass\n", &["--run-timeout-secs", "1"]);
    assert_eq!(out.status.code(), Some(124), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("time limit (1 s) exceeded"));
}

#[test]
fn run_shows_the_users_line_in_a_syntax_error() {
    let out = run_py("print('ok')\ndef broken(:\n    pass\n", &[]);
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2") && err.contains("SyntaxError"),
        "{err}"
    );
}
