//! Runs untrusted Python in isolation and streams its output.
//!
//! A run goes through every layer the host supports (see SANDBOX.md and
//! docs/SANDBOX.md): bubblewrap namespaces with no network and a read-only
//! system, a seccomp deny-list, a cgroup per run (memory without swap,
//! processes, CPU), rlimits, a wall-clock watchdog that kills the whole run,
//! and an output cap. [`Sandbox::probe`] finds out at start-up which layers
//! work and reports them; without bubblewrap, runs are refused.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ensemble_sandbox::SandboxError> {
//! use ensemble_sandbox::{RunEvent, RunRequest, Sandbox, SandboxConfig};
//! let sandbox = Sandbox::probe(SandboxConfig::default()).await;
//! let mut run = sandbox
//!     .start(RunRequest { code: "print('hi')".into(), ..RunRequest::default() })
//!     .await?;
//! while let Some(event) = run.next_event().await {
//!     match event {
//!         RunEvent::Output(chunk) => print!("{}", chunk.text()),
//!         RunEvent::InputWanted => eprintln!("(waiting for input)"),
//!         RunEvent::Exited(info) => println!("{}", info.reason),
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Layout:
//! - `sandbox`, `probe`: [`Sandbox`] — the host set-up, starting runs, and
//!   the start-up probe.
//! - `launch`, `command`, `seccomp`, `sys`: how the process is started — the
//!   bubblewrap command line, the filters, and the only `unsafe` code.
//! - `cgroup`: per-run cgroups, v1 and v2.
//! - `watchdog`, `pump`, `outcome`, `utf8`, `orphan`: supervising a run —
//!   kills, output streaming and the cap, how it ended, and reaping.
//! - [`handle`], [`event`], [`limits`], [`config`], [`report`]: the public types.
//! - [`cli`]: `ensemble run FILE.py`.

mod cgroup;
pub mod cli;
mod command;
pub mod config;
mod error;
pub mod event;
pub mod handle;
mod launch;
pub mod limits;
mod orphan;
mod outcome;
mod probe;
mod pump;
pub mod report;
mod sandbox;
mod seccomp;
#[allow(unsafe_code)]
mod sys;
mod utf8;
mod watchdog;

pub use cli::{exit_code_for, run_file_cli};
pub use config::{SandboxConfig, SandboxMode};
pub use error::SandboxError;
pub use event::{
    signal_name, ExitInfo, OutputChunk, OutputStream, ResourceUse, RunEvent, RunStatus,
};
pub use handle::{RunControl, RunHandle, RunRequest, Stdin, Transcript};
pub use limits::{format_bytes, format_duration, Limits};
pub use report::{Layer, SandboxReport};
pub use sandbox::Sandbox;
pub use seccomp::denied_names;
