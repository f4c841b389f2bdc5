//! The seccomp filters handed to bubblewrap (`--add-seccomp-fd`).
//!
//! A deny-list, not an allow-list: CPython and its standard library use a
//! wide and version-dependent set of system calls, and the namespaces, the
//! unprivileged uid and the dropped capabilities already make most calls
//! harmless. What is denied is what real attacks on a first prototype used
//! or what has a history of kernel bugs (see SANDBOX.md): ptrace and
//! process_vm_* (attaching to bwrap's reaper), the mount family,
//! unshare/setns and namespace-creating clone flags, bpf, perf_event_open,
//! keyctl, io_uring, userfaultfd, module and kexec calls, and a few more.
//!
//! Three filters, because a filter has one "match" action:
//! 1. the deny-list, failing with `EPERM`;
//! 2. `clone3` failing with `ENOSYS`, so glibc falls back to `clone`, whose
//!    flags filter 1 can inspect (clone3 passes them behind a pointer);
//! 3. on x86_64, every x32-ABI call (`nr >= 0x4000_0000`) failing with
//!    `ENOSYS`, since the deny-list matches x86_64 numbers only. Calls from
//!    another architecture (i386 via `int 0x80`) are killed by filter 1's
//!    architecture check.

use std::collections::BTreeMap;

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

use crate::SandboxError;

/// System calls denied outright with `EPERM`.
const DENIED: &[(&str, libc::c_long)] = &[
    ("ptrace", libc::SYS_ptrace),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("pidfd_getfd", libc::SYS_pidfd_getfd),
    ("kcmp", libc::SYS_kcmp),
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("chroot", libc::SYS_chroot),
    ("fsopen", libc::SYS_fsopen),
    ("fsconfig", libc::SYS_fsconfig),
    ("fsmount", libc::SYS_fsmount),
    ("fspick", libc::SYS_fspick),
    ("move_mount", libc::SYS_move_mount),
    ("open_tree", libc::SYS_open_tree),
    ("mount_setattr", libc::SYS_mount_setattr),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
    ("unshare", libc::SYS_unshare),
    ("setns", libc::SYS_setns),
    ("bpf", libc::SYS_bpf),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("fanotify_init", libc::SYS_fanotify_init),
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    ("kexec_load", libc::SYS_kexec_load),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("reboot", libc::SYS_reboot),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("acct", libc::SYS_acct),
    ("quotactl", libc::SYS_quotactl),
    ("quotactl_fd", libc::SYS_quotactl_fd),
    ("lookup_dcookie", libc::SYS_lookup_dcookie),
    ("syslog", libc::SYS_syslog),
    ("vhangup", libc::SYS_vhangup),
    #[cfg(target_arch = "x86_64")]
    ("iopl", libc::SYS_iopl),
    #[cfg(target_arch = "x86_64")]
    ("ioperm", libc::SYS_ioperm),
    #[cfg(target_arch = "x86_64")]
    ("uselib", libc::SYS_uselib),
    #[cfg(target_arch = "x86_64")]
    ("_sysctl", libc::SYS__sysctl),
];

/// `clone` flags that create a namespace; `clone` with any of them is denied.
const NAMESPACE_FLAGS: &[libc::c_int] = &[
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWCGROUP,
];

/// The names of the denied calls, for the startup report and the docs.
pub fn denied_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = DENIED.iter().map(|(name, _)| *name).collect();
    names.push("clone(CLONE_NEW*)");
    names
}

/// The compiled filters, each as the bytes bubblewrap reads from a descriptor.
pub(crate) fn filters() -> Result<Vec<Vec<u8>>, SandboxError> {
    let arch = target_arch()?;
    let mut programs = vec![deny_list(arch)?, clone3_fallback(arch)?];
    if cfg!(target_arch = "x86_64") {
        programs.push(x32_block());
    }
    Ok(programs.iter().map(|p| to_bytes(p)).collect())
}

fn target_arch() -> Result<TargetArch, SandboxError> {
    TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|e| SandboxError::Seccomp(format!("unsupported architecture: {e}")))
}

fn deny_list(arch: TargetArch) -> Result<BpfProgram, SandboxError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|&(_, nr)| (nr, Vec::new())).collect();
    // One rule per flag: the rules of a call are OR-ed together.
    let clone_rules = NAMESPACE_FLAGS
        .iter()
        .map(|&flag| {
            let flag = flag as u64;
            let condition = SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(flag),
                flag,
            )?;
            SeccompRule::new(vec![condition])
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SandboxError::Seccomp(e.to_string()))?;
    rules.insert(libc::SYS_clone, clone_rules);
    compile(rules, libc::EPERM, arch)
}

fn clone3_fallback(arch: TargetArch) -> Result<BpfProgram, SandboxError> {
    let rules = BTreeMap::from([(libc::SYS_clone3, Vec::new())]);
    compile(rules, libc::ENOSYS, arch)
}

fn compile(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    errno: libc::c_int,
    arch: TargetArch,
) -> Result<BpfProgram, SandboxError> {
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        arch,
    )
    .map_err(|e| SandboxError::Seccomp(e.to_string()))?;
    BpfProgram::try_from(filter).map_err(|e| SandboxError::Seccomp(e.to_string()))
}

/// Hand-built: seccompiler has no way to match a range of call numbers.
fn x32_block() -> BpfProgram {
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    let ins = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    vec![
        ins(LD_W_ABS, 0, 0, 4), // seccomp_data.arch
        ins(JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        ins(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW), // other arches: filter 1 decides
        ins(LD_W_ABS, 0, 0, 0),                    // seccomp_data.nr
        ins(JGE_K, 0, 1, X32_SYSCALL_BIT),
        ins(RET_K, 0, 0, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
        ins(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ]
}

/// `struct sock_filter` in memory order, as bubblewrap reads it.
fn to_bytes(program: &[sock_filter]) -> Vec<u8> {
    let mut out = Vec::with_capacity(program.len() * 8);
    for ins in program {
        out.extend_from_slice(&ins.code.to_ne_bytes());
        out.push(ins.jt);
        out.push(ins.jf);
        out.extend_from_slice(&ins.k.to_ne_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_compile_to_whole_instructions() {
        let programs = filters().expect("filters compile");
        assert!(programs.len() >= 2);
        for p in &programs {
            assert!(!p.is_empty());
            assert_eq!(p.len() % 8, 0);
        }
    }

    #[test]
    fn the_deny_list_names_the_attacks_from_sandbox_md() {
        let names = denied_names();
        for needed in [
            "ptrace",
            "process_vm_readv",
            "mount",
            "umount2",
            "unshare",
            "setns",
            "bpf",
            "perf_event_open",
            "keyctl",
            "add_key",
            "io_uring_setup",
            "userfaultfd",
            "finit_module",
            "kexec_load",
            "reboot",
            "swapon",
        ] {
            assert!(names.contains(&needed), "{needed} is not denied");
        }
    }
}
