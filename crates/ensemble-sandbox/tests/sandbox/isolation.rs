//! Hostile programs against the walls: network, secrets, host files,
//! writes outside the scratch directory, signals, and forbidden calls.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;

use ensemble_sandbox::RunStatus;

use crate::support::{exit, run, unique_name};

#[tokio::test]
async fn there_is_no_network_not_even_localhost() {
    let tcp = TcpListener::bind("127.0.0.1:0").expect("bind");
    tcp.set_nonblocking(true).expect("nonblocking");
    let port = tcp.local_addr().expect("addr").port();
    let abstract_name = unique_name("enstest");
    let unix = {
        use std::os::linux::net::SocketAddrExt;
        let addr =
            std::os::unix::net::SocketAddr::from_abstract_name(&abstract_name).expect("name");
        UnixListener::bind_addr(&addr).expect("bind abstract")
    };
    unix.set_nonblocking(true).expect("nonblocking");
    let code = format!(
        "import socket\n\
         print('interfaces', [n for _, n in socket.if_nameindex()])\n\
         def attempt(name, family, addr):\n\
         \x20   try:\n\
         \x20       s = socket.socket(family, socket.SOCK_STREAM); s.settimeout(1); s.connect(addr)\n\
         \x20       print(name, 'CONNECTED')\n\
         \x20   except OSError as e:\n\
         \x20       print(name, 'failed', type(e).__name__)\n\
         attempt('tcp-localhost', socket.AF_INET, ('127.0.0.1', {port}))\n\
         attempt('tcp-outside', socket.AF_INET, ('1.1.1.1', 53))\n\
         attempt('tcp6-localhost', socket.AF_INET6, ('::1', {port}))\n\
         attempt('unix-abstract', socket.AF_UNIX, '\\0{abstract_name}')\n"
    );
    let t = run(&code).await;
    assert_eq!(exit(&t).status, RunStatus::Ok, "{}", t.stderr_text());
    let out = t.stdout_text();
    assert!(out.contains("interfaces ['lo']"), "{out}");
    assert!(!out.contains("CONNECTED"), "{out}");
    for name in [
        "tcp-localhost",
        "tcp-outside",
        "tcp6-localhost",
        "unix-abstract",
    ] {
        assert!(out.contains(&format!("{name} failed")), "{name}: {out}");
    }
    let tcp_err = tcp
        .accept()
        .map(|_| ())
        .expect_err("nothing reached the TCP listener");
    assert_eq!(tcp_err.kind(), ErrorKind::WouldBlock);
    let unix_err = unix
        .accept()
        .map(|_| ())
        .expect_err("nothing reached the unix listener");
    assert_eq!(unix_err.kind(), ErrorKind::WouldBlock);
}

#[tokio::test]
async fn no_secret_is_visible_in_environment_or_proc() {
    let secret = format!("s3cret-{}", unique_name("v"));
    // Edition 2021: set_var is safe; the name is unique to this test.
    std::env::set_var("ENSEMBLE_TEST_SECRET", &secret);
    let code = "import os, glob\n\
                print('env', sorted(os.environ))\n\
                blobs = []\n\
                for path in ['/proc/1/environ', '/proc/1/cmdline'] + glob.glob('/proc/*/environ') + glob.glob('/proc/*/cmdline'):\n\
                \x20   try:\n\
                \x20       blobs.append(open(path, 'rb').read())\n\
                \x20   except OSError:\n\
                \x20       pass\n\
                print('read', len(blobs))\n\
                print('pid1', open('/proc/1/cmdline', 'rb').read().split(b'\\0')[:3])\n\
                import sys; sys.stdout.flush(); sys.stdout.buffer.write(b'\\n'.join(blobs))\n";
    let t = run(code).await;
    assert_eq!(exit(&t).status, RunStatus::Ok, "{}", t.stderr_text());
    let out = t.stdout_text();
    assert!(!out.contains(&secret), "the secret leaked: {out}");
    assert!(!out.contains("ENSEMBLE_TEST_SECRET"), "{out}");
    let home = std::env::var("HOME").unwrap_or_default();
    let manifest = env!("CARGO_MANIFEST_DIR");
    assert!(!out.contains(manifest), "a host path leaked: {out}");
    if home.len() > 1 {
        assert!(
            !out.contains(&format!("HOME={home}")),
            "host HOME leaked: {out}"
        );
    }
    let env_line = out
        .lines()
        .find(|l| l.starts_with("env "))
        .expect("env line");
    assert_eq!(
        env_line,
        "env ['HOME', 'LANG', 'PATH', 'PWD', 'PYTHONIOENCODING', 'PYTHONUNBUFFERED', 'TMPDIR']"
    );
    assert!(out.contains("pid1 [b'bwrap', b'--args', b'4']"), "{out}");
}

#[tokio::test]
async fn host_files_are_not_visible() {
    let mut secret_file = tempfile::NamedTempFile::new().expect("temp file");
    std::io::Write::write_all(&mut secret_file, b"host secret").expect("write");
    let paths = [
        secret_file.path().display().to_string(),
        format!("{}/Cargo.toml", env!("CARGO_MANIFEST_DIR")),
        "/etc/shadow".to_owned(),
        "/etc/hostname".to_owned(),
        "/root/.bashrc".to_owned(),
    ];
    let code = format!(
        "import os\n\
         for p in {paths:?}:\n\
         \x20   try:\n\
         \x20       open(p, 'rb').read(); print(p, 'READ')\n\
         \x20   except OSError as e:\n\
         \x20       print(p, type(e).__name__)\n\
         print('etc', sorted(os.listdir('/etc')))\n\
         print('root', sorted(os.listdir('/')))\n"
    );
    let t = run(&code).await;
    assert_eq!(exit(&t).status, RunStatus::Ok, "{}", t.stderr_text());
    let out = t.stdout_text();
    assert!(!out.contains("READ"), "{out}");
    assert!(!out.contains("host secret"), "{out}");
    assert!(
        out.contains("etc ['group', 'ld.so.cache', 'localtime', 'passwd']"),
        "{out}"
    );
    assert!(
        !out.contains("'home'") && !out.contains("'work'") && !out.contains("'root'"),
        "{out}"
    );
}

#[tokio::test]
async fn writes_outside_scratch_fail_and_scratch_is_gone_afterwards() {
    let marker = unique_name("left");
    let code = format!(
        "import os\n\
         for p in ['/x', '/usr/x', '/etc/x', '/dev/x', '/proc/x', '/bin/x']:\n\
         \x20   try:\n\
         \x20       open(p, 'w').write('x'); print(p, 'WROTE')\n\
         \x20   except OSError as e:\n\
         \x20       print(p, type(e).__name__)\n\
         for p in ['/sandbox/{marker}', '/tmp/{marker}', '/dev/shm/{marker}']:\n\
         \x20   open(p, 'w').write('x'); print(p, 'ok')\n\
         print('cwd', os.getcwd())\n"
    );
    let t = run(&code).await;
    assert_eq!(exit(&t).status, RunStatus::Ok, "{}", t.stderr_text());
    let out = t.stdout_text();
    assert!(!out.contains("WROTE"), "{out}");
    assert_eq!(out.matches(" ok").count(), 3, "{out}");
    assert!(out.contains("cwd /sandbox"), "{out}");

    let check = format!(
        "import os\nprint([os.path.exists(p) for p in ['/sandbox/{marker}', '/tmp/{marker}', '/dev/shm/{marker}']])\n"
    );
    let t = run(&check).await;
    assert_eq!(t.stdout_text(), "[False, False, False]\n");
    assert!(!std::path::Path::new(&format!("/tmp/{marker}")).exists());
    assert!(!std::path::Path::new(&format!("/dev/shm/{marker}")).exists());
}

#[tokio::test]
async fn signals_cannot_escape() {
    // A bystander with the sandbox's own uid: only the pid namespace protects it.
    let mut victim = std::process::Command::new("/usr/bin/sleep")
        .arg("60")
        .uid(65534)
        .gid(65534)
        .spawn()
        .expect("start a bystander");
    let host_pid = std::process::id();
    let victim_pid = victim.id();
    let code = format!(
        "import os, signal\n\
         signal.signal(signal.SIGTERM, signal.SIG_IGN)\n\
         attempts = [\n\
         \x20   ('kill(-1)', lambda: os.kill(-1, signal.SIGKILL)),\n\
         \x20   ('kill(0)', lambda: os.kill(0, signal.SIGTERM)),\n\
         \x20   ('killpg(parent)', lambda: os.killpg(os.getpgid(os.getppid()), signal.SIGTERM)),\n\
         \x20   ('kill(parent)', lambda: os.kill(os.getppid(), signal.SIGKILL)),\n\
         \x20   ('kill(1)', lambda: os.kill(1, signal.SIGKILL)),\n\
         \x20   ('kill(host)', lambda: os.kill({host_pid}, signal.SIGKILL)),\n\
         \x20   ('kill(victim)', lambda: os.kill({victim_pid}, signal.SIGKILL)),\n\
         ]\n\
         for name, attempt in attempts:\n\
         \x20   try:\n\
         \x20       attempt(); print(name, 'sent')\n\
         \x20   except OSError as e:\n\
         \x20       print(name, type(e).__name__)\n\
         print('survived')\n"
    );
    let t = run(&code).await;
    let still_running = victim.try_wait().expect("try_wait").is_none();
    let _ = victim.kill();
    let _ = victim.wait();
    assert!(
        still_running,
        "the bystander was killed from inside the sandbox"
    );
    let out = t.stdout_text();
    assert_eq!(exit(&t).status, RunStatus::Ok, "{out} {}", t.stderr_text());
    assert!(out.contains("survived"), "{out}");
    assert!(out.contains("kill(host) ProcessLookupError"), "{out}");
    assert!(out.contains("kill(victim) ProcessLookupError"), "{out}");
}

#[tokio::test]
async fn ptrace_namespaces_mounts_and_kernel_interfaces_are_refused() {
    let calls = [
        ("ptrace-init", format!("{}, 16, 1, 0, 0", libc::SYS_ptrace)), // PTRACE_ATTACH to pid 1
        (
            "ptrace-traceme",
            format!("{}, 0, 0, 0, 0", libc::SYS_ptrace),
        ),
        (
            "process_vm_readv",
            format!("{}, 1, 0, 0, 0, 0, 0", libc::SYS_process_vm_readv),
        ),
        (
            "unshare-user",
            format!("{}, {}", libc::SYS_unshare, libc::CLONE_NEWUSER),
        ),
        (
            "unshare-net",
            format!("{}, {}", libc::SYS_unshare, libc::CLONE_NEWNET),
        ),
        (
            "clone-newuser",
            format!(
                "{}, {}, 0, 0, 0, 0",
                libc::SYS_clone,
                libc::CLONE_NEWUSER | libc::SIGCHLD
            ),
        ),
        ("setns", format!("{}, 0, 0", libc::SYS_setns)),
        (
            "mount",
            format!("{}, b'none', b'/tmp', b'tmpfs', 0, 0", libc::SYS_mount),
        ),
        ("umount2", format!("{}, b'/proc', 2", libc::SYS_umount2)),
        ("bpf", format!("{}, 0, 0, 0", libc::SYS_bpf)),
        (
            "perf_event_open",
            format!("{}, 0, 0, -1, -1, 0", libc::SYS_perf_event_open),
        ),
        ("keyctl", format!("{}, 0, 0, 0, 0, 0", libc::SYS_keyctl)),
        (
            "add_key",
            format!("{}, b'user', b'k', b'v', 1, 0", libc::SYS_add_key),
        ),
        (
            "io_uring_setup",
            format!("{}, 1, 0", libc::SYS_io_uring_setup),
        ),
        ("userfaultfd", format!("{}, 0", libc::SYS_userfaultfd)),
        (
            "finit_module",
            format!("{}, 0, b'', 0", libc::SYS_finit_module),
        ),
        (
            "kexec_load",
            format!("{}, 0, 0, 0, 0", libc::SYS_kexec_load),
        ),
    ];
    let lines: String = calls
        .iter()
        .map(|(name, args)| format!("attempt('{name}', {args})\n"))
        .collect();
    let code = format!(
        "import ctypes, errno\n\
         libc = ctypes.CDLL(None, use_errno=True)\n\
         libc.syscall.restype = ctypes.c_long\n\
         def attempt(name, *args):\n\
         \x20   r = libc.syscall(*[ctypes.c_long(a) if isinstance(a, int) else a for a in args])\n\
         \x20   print(name, 'ALLOWED' if r >= 0 else errno.errorcode.get(ctypes.get_errno()))\n\
         {lines}"
    );
    let t = run(&code).await;
    let out = t.stdout_text();
    assert_eq!(exit(&t).status, RunStatus::Ok, "{out}\n{}", t.stderr_text());
    for (name, _) in &calls {
        assert!(
            out.contains(&format!("{name} EPERM\n")),
            "{name} not refused by seccomp: {out}"
        );
    }
}
