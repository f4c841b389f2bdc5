//! Starting the supervised process of one run: bubblewrap (or, in the
//! developer-only unsafe mode, Python directly) with an empty environment,
//! its arguments and data on descriptors, rlimits, its own session, the
//! run's cgroup joined before exec, and the unprivileged uid.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::Stdio;

use tokio::process::{Child, ChildStdin, Command};

use crate::cgroup::RunCgroup;
use crate::command::{self, BwrapPlan, RootEntry};
use crate::sys::{self, ChildSetup};
use crate::Limits;

const GIB: u64 = 1024 * 1024 * 1024;

/// What the launch needs to know about the host.
pub(crate) struct HostPlan<'a> {
    pub bwrap: Option<&'a Path>,
    pub python: &'a Path,
    pub run_as: (u32, u32),
    pub drop_to: Option<(u32, u32)>,
    pub root_entries: &'a [RootEntry],
    pub seccomp: &'a [Vec<u8>],
    pub cgroup: Option<&'a RunCgroup>,
    pub limits_memory: bool,
    pub limits_processes: bool,
    /// Unsafe mode: the host directory used as scratch.
    pub host_scratch: Option<&'a Path>,
}

/// The started process and the ends of its pipes we keep.
pub(crate) struct Launched {
    pub child: Child,
    pub stdin: ChildStdin,
    pub stdout: tokio::process::ChildStdout,
    pub stderr: tokio::process::ChildStderr,
    /// Read end of the "Python started" pipe.
    pub marker: OwnedFd,
    /// Read end of bubblewrap's `--info-fd` pipe (not in unsafe mode).
    pub info: Option<OwnedFd>,
}

/// Starts the run's process. `code` is the user's file.
pub(crate) fn launch(host: &HostPlan<'_>, limits: &Limits, code: &str) -> io::Result<Launched> {
    let (marker_read, marker_write) = sys::pipe()?;
    // Descriptors that must reach the child at fixed numbers; they stay open
    // here until spawn returns, then are dropped (closing our copies).
    let mut keep: Vec<(OwnedFd, RawFd)> = vec![(marker_write, command::MARKER_FD)];
    let mut info = None;
    let mut cmd = match host.bwrap {
        Some(bwrap) => {
            let (info_read, info_write) = sys::pipe()?;
            keep.push((info_write, command::INFO_FD));
            info = Some(info_read);
            bwrap_command(bwrap, host, limits, code, &mut keep)?
        }
        None => unsafe_command(host, code)?,
    };
    cmd.env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);

    let procs = match host.cgroup {
        Some(cgroup) => cgroup.procs_files()?,
        None => Vec::new(),
    };
    let setup = ChildSetup {
        cgroup_procs: procs.iter().map(AsRawFd::as_raw_fd).collect(),
        rlimits: rlimits(limits, host),
        fixed_fds: keep.iter().map(|(fd, to)| (fd.as_raw_fd(), *to)).collect(),
        drop_to: host.drop_to,
    };
    sys::install(&mut cmd, setup)?;
    let mut child = cmd.spawn()?;
    drop(keep);
    drop(procs);
    let missing = || io::Error::other("a piped stdio stream is missing");
    Ok(Launched {
        stdin: child.stdin.take().ok_or_else(missing)?,
        stdout: child.stdout.take().ok_or_else(missing)?,
        stderr: child.stderr.take().ok_or_else(missing)?,
        child,
        marker: marker_read,
        info,
    })
}

fn bwrap_command(
    bwrap: &Path,
    host: &HostPlan<'_>,
    limits: &Limits,
    code: &str,
    keep: &mut Vec<(OwnedFd, RawFd)>,
) -> io::Result<Command> {
    let args = command::bwrap_args(&BwrapPlan {
        limits,
        run_as: host.run_as,
        root_entries: host.root_entries,
        seccomp_filters: host.seccomp.len(),
    });
    let (passwd, group) = command::passwd_and_group(host.run_as.0, host.run_as.1);
    let memfd = |name: &CStr, data: &[u8]| sys::memfd(name, data);
    keep.push((
        memfd(c"ensemble-args", &command::nul_separated(&args))?,
        command::ARGS_FD,
    ));
    keep.push((memfd(c"ensemble-main", code.as_bytes())?, command::CODE_FD));
    keep.push((
        memfd(c"ensemble-passwd", passwd.as_bytes())?,
        command::PASSWD_FD,
    ));
    keep.push((
        memfd(c"ensemble-group", group.as_bytes())?,
        command::GROUP_FD,
    ));
    for (i, program) in host.seccomp.iter().enumerate() {
        let fd = command::FIRST_SECCOMP_FD + i as RawFd;
        if fd > command::LAST_FD {
            return Err(io::Error::other("too many seccomp filters"));
        }
        keep.push((memfd(c"ensemble-seccomp", program)?, fd));
    }
    let mut cmd = Command::new(bwrap);
    // argv[0] is what the sandbox sees in /proc/1/cmdline: no host path.
    cmd.arg0("bwrap")
        .arg("--args")
        .arg(command::ARGS_FD.to_string())
        .args(command::python_argv(host.python, tasks_limit(host, limits)))
        .current_dir("/");
    Ok(cmd)
}

/// Developer-only: Python straight on the host, in a fresh scratch directory.
fn unsafe_command(host: &HostPlan<'_>, code: &str) -> io::Result<Command> {
    let scratch = host
        .host_scratch
        .ok_or_else(|| io::Error::other("unsafe mode without a scratch directory"))?;
    std::fs::write(scratch.join("main.py"), code)?;
    if let Some((uid, gid)) = host.drop_to {
        std::os::unix::fs::chown(scratch, Some(uid), Some(gid))?;
        std::os::unix::fs::chown(scratch.join("main.py"), Some(uid), Some(gid))?;
    }
    let argv = command::python_argv(host.python, None);
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).current_dir(scratch);
    for (key, value) in command::environment(&scratch.to_string_lossy()) {
        cmd.env(key, value);
    }
    Ok(cmd)
}

/// The RLIMIT_NPROC set inside the sandbox when no pids cgroup limits the
/// run: its processes plus threads, and bubblewrap's pid 1, which the run's
/// user namespace counts too.
fn tasks_limit(host: &HostPlan<'_>, limits: &Limits) -> Option<u64> {
    (!host.limits_processes).then(|| u64::from(limits.max_processes) + 1)
}

/// rlimits, soft = hard. They apply to bubblewrap too, and every process of
/// the run inherits them; they are per process, so the cgroup (where there
/// is one) is the real limit and these are the backstop.
fn rlimits(limits: &Limits, host: &HostPlan<'_>) -> Vec<(sys::Resource, u64)> {
    let cpu_secs = limits.cpu_time.as_secs() + u64::from(limits.cpu_time.subsec_nanos() > 0);
    // An address-space limit is a poor memory limit (glibc reserves memory
    // per thread), so with a memory cgroup it is only a generous backstop.
    let address_space = if host.limits_memory {
        limits
            .memory_bytes
            .saturating_mul(4)
            .saturating_add(2 * GIB)
    } else {
        limits.memory_bytes.saturating_add(GIB / 2)
    };
    // No RLIMIT_NPROC here: it would count every process of the uid
    // outside, shared by concurrent runs (and, for a non-root server, its
    // own threads). The per-run limit is set inside (`tasks_limit`).
    vec![
        (libc::RLIMIT_FSIZE, limits.file_size_bytes),
        (libc::RLIMIT_NOFILE, u64::from(limits.open_files)),
        (libc::RLIMIT_CORE, 0),
        (libc::RLIMIT_CPU, cpu_secs + 1),
        (libc::RLIMIT_AS, address_space),
    ]
}
