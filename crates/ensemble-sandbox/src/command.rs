//! The command line of a run: bubblewrap's arguments, the program's
//! environment, and the small Python stub that starts the user's file.
//!
//! Pure functions of the limits and the host layout, so the exact sandbox is
//! readable (and unit-tested) in one place. bubblewrap's options (with their
//! host paths) go through `--args FD` and never appear in a command line;
//! `/proc/*/cmdline` inside shows only `bwrap --args 4 /usr/bin/python3 -I
//! -u -c <stub>`, nothing of the host.

use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use crate::Limits;

/// Inside the sandbox: where the user's file lives, and the working directory.
pub(crate) const SCRATCH: &str = "/sandbox";

/// Descriptor numbers in the child. The stub signals "Python is running" on
/// [`MARKER_FD`] and then closes the others up to [`LAST_FD`] before the
/// user's code runs. [`MARKER_FD`] stays open: the stub writes `i` on it
/// whenever a read of stdin is about to wait (see [`RUNNER`]).
pub(crate) const MARKER_FD: RawFd = 3;
pub(crate) const ARGS_FD: RawFd = 4;
pub(crate) const CODE_FD: RawFd = 5;
pub(crate) const PASSWD_FD: RawFd = 6;
pub(crate) const GROUP_FD: RawFd = 7;
pub(crate) const INFO_FD: RawFd = 8;
pub(crate) const FIRST_SECCOMP_FD: RawFd = 9;
pub(crate) const LAST_FD: RawFd = 15;

/// Starts the user's file as `main.py`. Python's own `python3 main.py` would
/// show `/sandbox/main.py` in tracebacks (3.9+ makes the path absolute), so
/// the stub compiles the file under the name `main.py` and runs it as
/// `__main__`, and its excepthook drops the stub's own frames (`<string>`),
/// so tracebacks and syntax errors show only the user's lines.
///
/// `sys.stdin` becomes a reader that writes one byte (`i`) on fd 3 when a
/// read would wait, so the server can tell people "the program is waiting
/// for input". Only a hint: the program can write there itself, or read
/// fd 0 directly without it; the pump reads whatever comes, and the flag it
/// sets is cleared only by real input (so one hint per line typed).
pub(crate) const RUNNER: &str = r#"def _ensemble_start():
    import io, os, select, sys
    os.write(3, b"1")
    os.closerange(4, 16)
    class Stdin(io.RawIOBase):
        def readable(self):
            return True
        def fileno(self):
            return 0
        def readinto(self, buf):
            try:
                if not select.select([0], [], [], 0)[0]:
                    os.write(3, b"i")
            except (OSError, ValueError):
                pass
            return os.readv(0, [buf])
    sys.stdin = io.TextIOWrapper(io.BufferedReader(Stdin()),
                                 encoding=sys.stdin.encoding, errors=sys.stdin.errors)
    def hook(kind, value, tb, show=sys.__excepthook__):
        while tb is not None and tb.tb_frame.f_code.co_filename == "<string>":
            tb = tb.tb_next
        show(kind, value.with_traceback(tb), tb)
    sys.excepthook = hook
    sys.argv[:] = ["main.py"]
    with open("main.py", "rb") as f:
        source = f.read()
    main = sys.modules["__main__"].__dict__
    del main["_ensemble_start"]
    main["__file__"] = "main.py"
    return compile(source, "main.py", "exec"), main
exec(*_ensemble_start())
"#;

/// What one of `/bin`, `/lib`, … is on the host (merged-/usr systems have
/// symlinks; others real directories).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RootEntry {
    /// Recreate the symlink.
    Symlink { path: String, target: String },
    /// Bind the directory read-only.
    Dir(String),
}

/// Looks at the host's top-level system directories once, at probe time.
pub(crate) fn root_entries() -> Vec<RootEntry> {
    ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]
        .into_iter()
        .filter_map(|path| {
            let meta = std::fs::symlink_metadata(path).ok()?;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(path).ok()?;
                Some(RootEntry::Symlink {
                    path: path.to_owned(),
                    target: target.to_string_lossy().into_owned(),
                })
            } else if meta.is_dir() {
                Some(RootEntry::Dir(path.to_owned()))
            } else {
                None
            }
        })
        .collect()
}

/// The program's whole environment: nothing of the server's.
pub(crate) fn environment(home: &str) -> Vec<(&'static str, String)> {
    vec![
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_owned()),
        ("HOME", home.to_owned()),
        ("TMPDIR", "/tmp".to_owned()),
        ("LANG", "C.UTF-8".to_owned()),
        // `-I` makes our interpreter ignore PYTHON* variables; these are for
        // Python processes the program itself starts.
        ("PYTHONUNBUFFERED", "1".to_owned()),
        ("PYTHONIOENCODING", "utf-8".to_owned()),
    ]
}

/// `/etc/passwd` and `/etc/group` inside: only the sandbox user.
pub(crate) fn passwd_and_group(uid: u32, gid: u32) -> (String, String) {
    (
        format!("sandbox:x:{uid}:{gid}:sandbox:{SCRATCH}:/usr/sbin/nologin\n"),
        format!("sandbox:x:{gid}:\n"),
    )
}

/// Inputs of [`bwrap_args`].
pub(crate) struct BwrapPlan<'a> {
    pub limits: &'a Limits,
    pub run_as: (u32, u32),
    pub root_entries: &'a [RootEntry],
    pub seccomp_filters: usize,
}

/// bubblewrap's options for one run, in order (later mounts go on top of
/// earlier ones, and `--remount-ro` applies to what exists at that point).
/// bubblewrap 0.8 reads only options from `--args`; the command itself
/// ([`python_argv`]) must follow on its real command line, which is why the
/// interpreter's arguments hold nothing host-specific.
pub(crate) fn bwrap_args(plan: &BwrapPlan<'_>) -> Vec<String> {
    let mut a = Args::default();
    let scratch = plan.limits.scratch_bytes.to_string();
    let (uid, gid) = plan.run_as;
    // Every namespace; no network at all; no user namespaces inside.
    a.push(["--unshare-all", "--unshare-user", "--disable-userns"]);
    a.push(["--die-with-parent", "--new-session", "--cap-drop", "ALL"]);
    // bubblewrap tells us the host pid of its pid-1 process, to reap it.
    a.push(["--info-fd", &INFO_FD.to_string()]);
    a.push(["--uid", &uid.to_string(), "--gid", &gid.to_string()]);
    a.push(["--hostname", "sandbox"]);
    // A read-only system: /usr and the top-level links into it.
    a.push(["--ro-bind", "/usr", "/usr"]);
    for entry in plan.root_entries {
        match entry {
            RootEntry::Symlink { path, target } => a.push(["--symlink", target, path]),
            RootEntry::Dir(path) => a.push(["--ro-bind", path, path]),
        }
    }
    // A minimal /etc: the loader cache, the time zone, and a passwd/group
    // naming only the sandbox user. Nothing else of the host's /etc.
    a.push(["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]);
    a.push(["--ro-bind-try", "/etc/localtime", "/etc/localtime"]);
    a.push(["--ro-bind-data", &PASSWD_FD.to_string(), "/etc/passwd"]);
    a.push(["--ro-bind-data", &GROUP_FD.to_string(), "/etc/group"]);
    a.push(["--proc", "/proc", "--dev", "/dev"]);
    // Writable places, all size-capped tmpfs that vanish with the run.
    a.push(["--size", &scratch, "--perms", "1777", "--tmpfs", "/tmp"]);
    a.push(["--size", &scratch, "--perms", "1777", "--tmpfs", "/dev/shm"]);
    a.push(["--size", &scratch, "--perms", "0700", "--tmpfs", SCRATCH]);
    a.push([
        "--perms",
        "0644",
        "--file",
        &CODE_FD.to_string(),
        &format!("{SCRATCH}/main.py"),
    ]);
    a.push(["--remount-ro", "/dev", "--remount-ro", "/"]);
    a.push(["--chdir", SCRATCH, "--clearenv"]);
    for (key, value) in environment(SCRATCH) {
        a.push(["--setenv", key, &value]);
    }
    for i in 0..plan.seccomp_filters {
        let fd = FIRST_SECCOMP_FD + i as RawFd;
        a.push(["--add-seccomp-fd", &fd.to_string()]);
    }
    a.0
}

/// The interpreter's own arguments: isolated mode, unbuffered, the stub.
///
/// `max_tasks`, when set, becomes the program's RLIMIT_NPROC, set by the
/// runner before the program starts. Inside the run's own user namespace
/// the kernel counts it against that namespace's user only (Linux 5.14+
/// ucounts), so it limits this run's processes and threads, whatever the
/// server's uid and however many runs share it; with every capability
/// dropped the program cannot raise it.
pub(crate) fn python_argv(python: &Path, max_tasks: Option<u64>) -> Vec<String> {
    let runner = match max_tasks {
        Some(n) => format!(
            "import resource\nresource.setrlimit(resource.RLIMIT_NPROC, ({n}, {n}))\ndel resource\n{RUNNER}"
        ),
        None => RUNNER.to_owned(),
    };
    vec![
        python.to_string_lossy().into_owned(),
        "-I".to_owned(),
        "-u".to_owned(),
        "-c".to_owned(),
        runner,
    ]
}

/// `--args` content: NUL-terminated arguments.
pub(crate) fn nul_separated(args: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for arg in args {
        out.extend_from_slice(arg.as_bytes());
        out.push(0);
    }
    out
}

/// The scratch directory of an unsafe-mode run on the host.
pub(crate) fn unsafe_scratch(run_name: &str) -> PathBuf {
    std::env::temp_dir().join(run_name)
}

#[derive(Default)]
struct Args(Vec<String>);

impl Args {
    fn push<'a>(&mut self, items: impl IntoIterator<Item = &'a str>) {
        self.0.extend(items.into_iter().map(str::to_owned));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> Vec<String> {
        let limits = Limits::default();
        let roots = vec![RootEntry::Symlink {
            path: "/lib".into(),
            target: "usr/lib".into(),
        }];
        bwrap_args(&BwrapPlan {
            limits: &limits,
            run_as: (65534, 65534),
            root_entries: &roots,
            seccomp_filters: 3,
        })
    }

    fn has_seq(args: &[String], seq: &[&str]) -> bool {
        args.windows(seq.len())
            .any(|w| w.iter().zip(seq).all(|(a, b)| a == b))
    }

    #[test]
    fn every_namespace_and_no_privilege() {
        let a = args();
        for seq in [
            &["--unshare-all"][..],
            &["--disable-userns"],
            &["--new-session"],
            &["--die-with-parent"],
            &["--cap-drop", "ALL"],
            &["--uid", "65534", "--gid", "65534"],
        ] {
            assert!(has_seq(&a, seq), "missing {seq:?}");
        }
        assert!(!a.iter().any(|x| x == "--share-net"));
    }

    #[test]
    fn the_system_is_read_only_and_scratch_is_capped() {
        let a = args();
        assert!(has_seq(&a, &["--ro-bind", "/usr", "/usr"]));
        assert!(has_seq(&a, &["--symlink", "usr/lib", "/lib"]));
        assert!(has_seq(&a, &["--remount-ro", "/"]));
        let cap = Limits::default().scratch_bytes.to_string();
        assert!(has_seq(
            &a,
            &["--size", &cap, "--perms", "0700", "--tmpfs", SCRATCH]
        ));
        assert!(!a
            .iter()
            .any(|x| x == "/etc" || x == "/home" || x == "/root"));
    }

    #[test]
    fn the_interpreter_is_isolated_and_unbuffered() {
        let argv = python_argv(Path::new("/usr/bin/python3"), None);
        assert_eq!(&argv[..4], ["/usr/bin/python3", "-I", "-u", "-c"]);
        assert_eq!(argv[4], RUNNER);
        let limited = python_argv(Path::new("/usr/bin/python3"), Some(65));
        assert!(limited[4]
            .starts_with("import resource\nresource.setrlimit(resource.RLIMIT_NPROC, (65, 65))\n"));
        assert!(limited[4].ends_with(RUNNER));
        assert_eq!(
            args().iter().filter(|x| *x == "--add-seccomp-fd").count(),
            3
        );
    }

    #[test]
    fn the_environment_is_an_allow_list() {
        let keys: Vec<&str> = environment(SCRATCH).iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            [
                "PATH",
                "HOME",
                "TMPDIR",
                "LANG",
                "PYTHONUNBUFFERED",
                "PYTHONIOENCODING"
            ]
        );
    }

    #[test]
    fn the_runner_closes_every_descriptor_we_pass_but_the_marker() {
        assert!(RUNNER.contains(&format!(
            "os.closerange({}, {})",
            MARKER_FD + 1,
            LAST_FD + 1
        )));
        assert!(RUNNER.contains(&format!("os.write({MARKER_FD}, b\"1\")")));
        assert!(RUNNER.contains(&format!("os.write({MARKER_FD}, b\"i\")")));
    }

    #[test]
    fn args_are_nul_terminated() {
        assert_eq!(nul_separated(&["a".into(), "bc".into()]), b"a\0bc\0");
    }
}
