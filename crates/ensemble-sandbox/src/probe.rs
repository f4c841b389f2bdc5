//! The start-up probe: which layers work on this host.
//!
//! Presence is not enough (a bwrap binary may exist where user namespaces
//! are forbidden), so the probe finishes with a real run through the full
//! sandbox of a small program that reports, from inside, its uid, its
//! seccomp mode, its capabilities and its network interfaces. A layer is
//! reported active only if that run saw it. If the run fails, runs are
//! refused — except that a root server which cannot start bubblewrap as the
//! unprivileged uid retries as root (still uid 65534 inside) and says so.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::cgroup::CgroupHost;
use crate::command;
use crate::report::Layer;
use crate::sandbox::Inner;
use crate::{
    seccomp, Limits, RunRequest, RunStatus, Sandbox, SandboxConfig, SandboxMode, SandboxReport,
};

/// Prints: uid, seccomp mode, no_new_privs, effective capabilities, interfaces.
const SMOKE: &str = r#"import os, resource, socket
status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
names = ",".join(n for _, n in socket.if_nameindex())
nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
print(os.getuid(), status["Seccomp"].strip(), status["NoNewPrivs"].strip(), status["CapEff"].strip(), names, nproc)
"#;

/// What the smoke run saw from inside.
#[derive(Debug, Default)]
struct Inside {
    uid: String,
    seccomp: String,
    no_new_privs: String,
    cap_eff: String,
    interfaces: String,
    /// The hard RLIMIT_NPROC the program has (-1: unlimited).
    nproc: String,
}

impl Sandbox {
    /// Probes the host and returns a sandbox that runs programs with every
    /// layer found to work — or refuses runs, saying why. Logs the summary.
    pub async fn probe(config: SandboxConfig) -> Sandbox {
        let sandbox = probe_inner(config).await;
        let report = sandbox.report();
        match (report.usable, sandbox.config().mode) {
            (false, _) => tracing::error!("{}", report.summary()),
            (true, SandboxMode::NoneUnsafe) => tracing::warn!(
                "{} -- UNSAFE: untrusted code runs WITHOUT namespaces or seccomp; development only",
                report.summary()
            ),
            (true, SandboxMode::Bubblewrap) => tracing::info!("{}", report.summary()),
        }
        sandbox
    }
}

async fn probe_inner(config: SandboxConfig) -> Sandbox {
    let unsafe_mode = config.mode == SandboxMode::NoneUnsafe;
    let cgroups = if config.cgroups {
        CgroupHost::detect().inspect(CgroupHost::sweep_stale)
    } else {
        Err("switched off".to_owned())
    };
    let seccomp = match (unsafe_mode, config.seccomp) {
        (true, _) => Err("none-unsafe mode".to_owned()),
        (false, true) => seccomp::filters().map_err(|e| e.to_string()),
        (false, false) => Err("switched off".to_owned()),
    };
    let root = crate::sys::effective_uid() == 0;
    if !unsafe_mode {
        if let Err(e) = crate::sys::become_subreaper() {
            tracing::warn!(error = %e, "cannot become a child subreaper; sandbox init processes go to the host's init");
        }
    }
    let mut inner = Inner {
        refusal: None,
        cgroups: cgroups.as_ref().ok().cloned(),
        seccomp: seccomp.clone().unwrap_or_default(),
        root_entries: command::root_entries(),
        drop_to: root.then_some(config.run_as),
        report: SandboxReport {
            mode: if unsafe_mode {
                "none-unsafe"
            } else {
                "bubblewrap"
            }
            .to_owned(),
            usable: false,
            error: None,
            layers: Vec::new(),
        },
        config,
    };
    let missing = [
        (!unsafe_mode, inner.config.bwrap.clone(), "bubblewrap"),
        (true, inner.config.python.clone(), "python"),
    ]
    .into_iter()
    .find(|(needed, path, _)| *needed && !is_executable(path));
    if let Some((_, path, what)) = missing {
        return refuse(inner, format!("{what} not found ({})", path.display()));
    }

    let mut inside = smoke(&inner).await;
    let mut uid_note = None;
    if inner.drop_to.is_some() && !unsafe_mode {
        if let Err(first) = &inside {
            tracing::warn!(error = %first, "bubblewrap failed as the unprivileged uid; retrying as root");
            uid_note = Some(format!(
                "bubblewrap runs as root outside: as uid {} it failed ({first})",
                inner.config.run_as.0
            ));
            inner.drop_to = None;
            inside = smoke(&inner).await;
        }
    }
    let inside = match inside {
        Ok(inside) => inside,
        Err(why) => return refuse(inner, format!("the probe run failed: {why}")),
    };
    let bwrap_version = if unsafe_mode {
        String::new()
    } else {
        bwrap_version(&inner.config.bwrap).await
    };
    inner.report.layers = layers(
        &inner,
        &inside,
        &cgroups,
        &seccomp,
        &bwrap_version,
        uid_note,
    );
    inner.report.usable = true;
    Sandbox {
        inner: Arc::new(inner),
    }
}

fn refuse(mut inner: Inner, why: String) -> Sandbox {
    inner.report.mode = "unavailable".to_owned();
    inner.report.error = Some(why.clone());
    inner.refusal = Some(why);
    Sandbox {
        inner: Arc::new(inner),
    }
}

/// One real run through the sandbox as configured so far.
async fn smoke(inner: &Inner) -> Result<Inside, String> {
    let candidate = Sandbox {
        inner: Arc::new(Inner {
            config: inner.config.clone(),
            refusal: None,
            cgroups: inner.cgroups.clone(),
            seccomp: inner.seccomp.clone(),
            root_entries: inner.root_entries.clone(),
            drop_to: inner.drop_to,
            report: inner.report.clone(),
        }),
    };
    let request = RunRequest {
        code: SMOKE.to_owned(),
        limits: Limits {
            wall_time: Duration::from_secs(10),
            ..Limits::default()
        },
        ..RunRequest::default()
    };
    let handle = candidate.start(request).await.map_err(|e| e.to_string())?;
    let transcript = handle.collect().await;
    let exit = transcript.exit.as_ref().ok_or("no exit event")?;
    if exit.status != RunStatus::Ok {
        return Err(format!(
            "{} ({})",
            exit.reason,
            transcript.stderr_text().trim()
        ));
    }
    let out = transcript.stdout_text();
    let mut fields = out.split_whitespace().map(str::to_owned);
    let mut next = || fields.next().unwrap_or_default();
    Ok(Inside {
        uid: next(),
        seccomp: next(),
        no_new_privs: next(),
        cap_eff: next(),
        interfaces: next(),
        nproc: next(),
    })
}

fn layers(
    inner: &Inner,
    inside: &Inside,
    cgroups: &Result<CgroupHost, String>,
    seccomp: &Result<Vec<Vec<u8>>, String>,
    bwrap_version: &str,
    uid_note: Option<String>,
) -> Vec<Layer> {
    let cfg = &inner.config;
    let unsafe_mode = cfg.mode == SandboxMode::NoneUnsafe;
    let mut layers = Vec::new();
    if unsafe_mode {
        layers.push(Layer::new(
            "namespaces",
            false,
            "none-unsafe mode: the host's files and network are visible",
        ));
    } else {
        let isolated_net = inside.interfaces == "lo";
        let detail = format!(
            "{bwrap_version} at {}: user, pid, mount, ipc, uts, cgroup and network namespaces ({}); read-only system; private scratch; user namespaces disabled inside",
            cfg.bwrap.display(),
            if isolated_net { "no network" } else { "NETWORK VISIBLE" }
        );
        layers.push(Layer::new("namespaces", isolated_net, detail));
    }
    let uid_detail = match (&uid_note, inner.drop_to) {
        (Some(note), _) => format!("uid {} inside; {note}", inside.uid),
        (None, Some((uid, _))) => format!("uid {} inside, {uid} outside", inside.uid),
        (None, None) => format!("uid {} inside; server's own uid outside", inside.uid),
    };
    let unprivileged = inside.uid == cfg.run_as.0.to_string() && uid_note.is_none();
    let no_caps = inside.cap_eff.chars().all(|c| c == '0');
    layers.push(Layer::new(
        "uid",
        unprivileged && no_caps,
        format!(
            "{uid_detail}; capabilities {}",
            if no_caps { "none" } else { "PRESENT" }
        ),
    ));
    let seccomp_on = inside.seccomp == "2" && inside.no_new_privs == "1";
    let seccomp_detail = match seccomp {
        Ok(_) if seccomp_on => format!(
            "{} calls denied with EPERM (ptrace, process_vm_*, the mount family, unshare, setns, \
             namespace clone flags, bpf, perf_event_open, keyctl, io_uring, userfaultfd, modules, \
             kexec, …); clone3 ENOSYS; x32 ABI blocked",
            seccomp::denied_names().len()
        ),
        Ok(_) => "filter built but not seen inside".to_owned(),
        Err(why) => why.clone(),
    };
    layers.push(Layer::new("seccomp", seccomp_on, seccomp_detail));
    layers.push(match cgroups {
        Ok(host) => Layer::new(
            "cgroup",
            true,
            format!("{} per run, killed as a whole", host.describe()),
        ),
        Err(why) => Layer::new("cgroup", false, why.clone()),
    });
    let host = inner.cgroups.as_ref();
    let memory = host.is_some_and(CgroupHost::limits_memory);
    layers.push(Layer::new(
        "memory",
        memory,
        if memory {
            "cgroup limit, no swap; OOM kills reported as memory"
        } else {
            "address-space rlimit only"
        },
    ));
    let pids = host.is_some_and(CgroupHost::limits_processes);
    // Without a pids cgroup the runner sets RLIMIT_NPROC in the run's own
    // user namespace; the smoke run shows whether it took.
    // (It does not bind a run that is root outside: bubblewrap fell back to
    // running as root.)
    let smoke_tasks = i64::from(Limits::default().max_processes) + 1;
    let nproc_inside = !unsafe_mode
        && inside
            .nproc
            .parse::<i64>()
            .is_ok_and(|n| (1..=smoke_tasks).contains(&n));
    let root_outside = crate::sys::effective_uid() == 0 && inner.drop_to.is_none();
    let (processes, processes_detail) = match (pids, nproc_inside) {
        (true, _) => (true, "cgroup pids limit".to_owned()),
        (false, true) if root_outside => (
            false,
            "no process limit: runs are root outside, which RLIMIT_NPROC does not bind".to_owned(),
        ),
        (false, true) => (
            true,
            format!(
                "RLIMIT_NPROC {} inside the run's own user namespace (counts that run only; no pids cgroup)",
                inside.nproc
            ),
        ),
        (false, false) if unsafe_mode => (false, "none-unsafe mode: no process limit".to_owned()),
        (false, false) => (
            false,
            format!("no process limit: RLIMIT_NPROC inside is {}", inside.nproc),
        ),
    };
    layers.push(Layer::new("processes", processes, processes_detail));
    let cpu = host.is_some_and(CgroupHost::counts_cpu);
    layers.push(Layer::new(
        "cpu",
        true,
        if cpu {
            "cgroup CPU counter checked every 100 ms; RLIMIT_CPU backstop"
        } else {
            "RLIMIT_CPU per process only"
        },
    ));
    layers.push(Layer::new(
        "rlimits",
        true,
        "soft = hard: file size, open files, no core files, CPU, address space",
    ));
    layers.push(Layer::new(
        "watchdog",
        true,
        "wall clock; kills the whole run without waiting on it",
    ));
    layers.push(Layer::new(
        "output cap",
        true,
        "cut with a notice, then the run is killed",
    ));
    layers
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

async fn bwrap_version(bwrap: &Path) -> String {
    let output = tokio::process::Command::new(bwrap)
        .arg("--version")
        .env_clear()
        .output()
        .await;
    match output {
        Ok(o) => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        Err(_) => "bubblewrap (version unknown)".to_owned(),
    }
}
