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
