//! Every `unsafe` call of the crate, each behind a small safe function.
//!
//! The sandbox needs a few raw system calls that std and tokio do not offer:
//! work in the child between `fork` and `exec` (join the run's cgroup, start a
//! new session, set rlimits, place descriptors at fixed numbers, drop to an
//! unprivileged uid), `memfd_create` to hand data to bubblewrap by descriptor,
//! `pipe2`, and `kill`. Keeping them in this one module (the only one allowed
//! `unsafe`, see Cargo.toml) means a reviewer reads one file to audit them.

use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// The type `setrlimit` takes for a resource on this libc.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) type Resource = libc::__rlimit_resource_t;
/// The type `setrlimit` takes for a resource on this libc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) type Resource = libc::c_int;

/// At most this many descriptors can be placed at fixed numbers (no
/// allocation is allowed in the forked child, so the scratch space is fixed).
pub(crate) const MAX_FIXED_FDS: usize = 12;

/// Where temporary duplicates go while descriptors are moved into place;
/// above every fixed number, so moves never clobber each other.
const SCRATCH_FD_FLOOR: RawFd = 100;

/// An anonymous in-memory file holding `data`, positioned at its start and
/// closed on exec (the child re-opens it at a fixed number by `dup2`).
pub(crate) fn memfd(name: &CStr, data: &[u8]) -> io::Result<OwnedFd> {
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call;
    // memfd_create returns a new descriptor or -1 and touches no other memory.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and nothing else owns it.
    let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    file.write_all(data)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(file.into())
}

/// A pipe as (read end, write end), both close-on-exec.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as RawFd; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both are fresh descriptors owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sends `signal` to one process. Refuses pid 0, 1 and anything that is not
/// a positive pid, so a bad value can never turn into a group or broadcast kill.
pub(crate) fn kill(pid: u32, signal: libc::c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .ok()
        .filter(|p| *p > 1)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: kill has no memory effects; the pid is a single positive pid.
    if unsafe { libc::kill(pid, signal) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends `signal` to a whole process group (used only without namespaces,
/// where a run's processes share the session leader's group).
pub(crate) fn kill_group(pgid: u32, signal: libc::c_int) -> io::Result<()> {
    let pgid = libc::pid_t::try_from(pgid)
        .ok()
        .filter(|p| *p > 1)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: killpg has no memory effects; the group id is positive and > 1.
    if unsafe { libc::killpg(pgid, signal) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes this process the "child subreaper" of its descendants: an orphan
/// (bubblewrap's pid-1 process, when bubblewrap exits before reaping it) is
/// re-parented to us rather than to the host's init, so we can reap it and
/// a run leaves not even a zombie behind.
pub(crate) fn become_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reaps the exited child `pid` if it is one (never waits). The caller has
/// checked that `pid` is the zombie it means (see `pump::reap_orphan`).
pub(crate) fn reap(pid: u32) -> io::Result<bool> {
    let pid = libc::pid_t::try_from(pid)
        .ok()
        .filter(|p| *p > 1)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut status = 0;
    // SAFETY: `status` is a valid int for waitpid to fill; WNOHANG never blocks.
    match unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(false),
        _ => Ok(true),
    }
}

/// The effective uid of this process.
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid cannot fail and has no memory effects.
    unsafe { libc::geteuid() }
}

/// What the child does between `fork` and `exec`, prepared in the parent so
/// the child only makes system calls (no allocation, no locks).
#[derive(Debug, Default)]
pub(crate) struct ChildSetup {
    /// `cgroup.procs` files opened for writing; the child writes "0" to each
    /// to move itself in before it execs, so every descendant starts inside.
    pub cgroup_procs: Vec<RawFd>,
    /// rlimits to set, soft = hard.
    pub rlimits: Vec<(Resource, u64)>,
    /// (descriptor in the parent, number it must have in the child).
    pub fixed_fds: Vec<(RawFd, RawFd)>,
    /// Drop to this (uid, gid) with no supplementary groups.
    pub drop_to: Option<(u32, u32)>,
}

/// Installs `setup` as the command's pre-exec step. The descriptors it names
/// must stay open in the parent until `spawn` has returned.
pub(crate) fn install(command: &mut tokio::process::Command, setup: ChildSetup) -> io::Result<()> {
    if setup.fixed_fds.len() > MAX_FIXED_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "too many fixed descriptors",
        ));
    }
    let first_free = setup
        .fixed_fds
        .iter()
        .map(|(_, to)| to + 1)
        .max()
        .unwrap_or(3)
        .max(3);
    // SAFETY: the closure runs in the forked child of a possibly
    // multi-threaded parent, so it may only call async-signal-safe functions.
    // It reads data prepared before the fork, allocates nothing and takes no
    // lock; every call below (write, setsid, setrlimit, fcntl, dup2,
    // close_range, setgroups, setgid, setuid, prctl) is a plain system call.
    unsafe {
        command.pre_exec(move || child_steps(&setup, first_free));
    }
    Ok(())
}

/// The steps run in the child; see [`install`] for the constraints.
fn child_steps(setup: &ChildSetup, first_free: RawFd) -> io::Result<()> {
    for &fd in &setup.cgroup_procs {
        // SAFETY: writes one byte from a static buffer to an open descriptor.
        if unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) } != 1 {
            return Err(io::Error::last_os_error());
        }
    }
    // Own session and process group: a `kill(0, …)` or a terminal's Ctrl-C
    // can never reach the supervisor through a shared group.
    // SAFETY: setsid has no memory effects.
    if unsafe { libc::setsid() } < 0 {
        return Err(io::Error::last_os_error());
    }
    // Two passes so a move can never overwrite a descriptor still to be moved:
    // first duplicate every source above SCRATCH_FD_FLOOR, then dup2 those
    // into place (dup2 clears close-on-exec on the target).
    let mut scratch = [-1 as RawFd; MAX_FIXED_FDS];
    for (slot, &(from, _)) in scratch.iter_mut().zip(&setup.fixed_fds) {
        // SAFETY: fcntl on a descriptor we own; no memory effects.
        *slot = unsafe { libc::fcntl(from, libc::F_DUPFD_CLOEXEC, SCRATCH_FD_FLOOR) };
        if *slot < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    for (&tmp, &(_, to)) in scratch.iter().zip(&setup.fixed_fds) {
        // SAFETY: dup2 between descriptor numbers; no memory effects.
        if unsafe { libc::dup2(tmp, to) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    // Whatever else this process inherited (from a parent that opened files
    // without O_CLOEXEC) must not reach the sandbox. Best effort: kernels
    // before 5.11 lack CLOSE_RANGE_CLOEXEC, and std opens everything cloexec.
    // SAFETY: close_range only changes descriptor flags.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first_free as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
    }
    // After the descriptor moves: a low RLIMIT_NOFILE would make the
    // temporary duplicates above SCRATCH_FD_FLOOR fail.
    for &(resource, value) in &setup.rlimits {
        let limit = libc::rlimit {
            rlim_cur: value as libc::rlim_t,
            rlim_max: value as libc::rlim_t,
        };
        // SAFETY: `limit` is a valid rlimit that outlives the call.
        if unsafe { libc::setrlimit(resource, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    if let Some((uid, gid)) = setup.drop_to {
        // SAFETY: plain credential system calls; setgroups gets an empty list.
        unsafe {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(io::Error::last_os_error());
            }
        }
    }
    // Die with the supervisor. Set after the uid change, which clears it.
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
