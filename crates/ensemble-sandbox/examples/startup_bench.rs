//! Start-up overhead of the sandbox, for docs/BENCHMARKS.md.
//!
//! Runs `pass` through the sandbox with every layer, and with layers
//! switched off one at a time, against bare `/usr/bin/python3 -c pass`:
//! 30 runs each, interleaved (one of each variant per round) so drift in the
//! machine's load affects all alike; prints median and 90th percentile.
//! Then runs per second of a trivial program with 2 concurrent slots.
//!
//! `cargo run --release -p ensemble-sandbox --example startup_bench [ROUNDS]`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ensemble_sandbox::{RunRequest, RunStatus, Sandbox, SandboxConfig, SandboxMode};

const THROUGHPUT_RUNS: usize = 60;
const SLOTS: usize = 2;

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(30);
    let full = SandboxConfig::default();
    let variants = [
        ("all layers", full.clone()),
        (
            "no seccomp",
            SandboxConfig {
                seccomp: false,
                ..full.clone()
            },
        ),
        (
            "no cgroup",
            SandboxConfig {
                cgroups: false,
                ..full.clone()
            },
        ),
        (
            "bwrap only (no seccomp, no cgroup)",
            SandboxConfig {
                seccomp: false,
                cgroups: false,
                ..full.clone()
            },
        ),
        (
            "no bwrap (none-unsafe, cgroup kept)",
            SandboxConfig {
                mode: SandboxMode::NoneUnsafe,
                ..full.clone()
            },
        ),
    ];
    let mut sandboxes = Vec::new();
    for (name, config) in variants {
        let sandbox = Sandbox::probe(config).await;
        assert!(
            sandbox.report().usable,
            "{name}: {}",
            sandbox.report().summary()
        );
        sandboxes.push((name, sandbox));
    }
    println!("{}\n", sandboxes[0].1.report().summary());

    let mut bare = Vec::new();
    let mut timings: Vec<Vec<Duration>> = vec![Vec::new(); sandboxes.len()];
    for _ in 0..rounds {
        bare.push(bare_python().await);
        for (i, (_, sandbox)) in sandboxes.iter().enumerate() {
            timings[i].push(sandboxed(sandbox).await);
        }
    }
    println!("| `pass`, {rounds} runs each, interleaved | median | p90 | overhead (median) |");
    println!("| --- | --- | --- | --- |");
    let bare_median = percentile(&mut bare, 50);
    println!(
        "| bare `/usr/bin/python3 -c pass` | {} | {} | — |",
        ms(bare_median),
        ms(percentile(&mut bare, 90))
    );
    for ((name, _), samples) in sandboxes.iter().zip(timings.iter_mut()) {
        let median = percentile(samples, 50);
        println!(
            "| {name} | {} | {} | +{} |",
            ms(median),
            ms(percentile(samples, 90)),
            ms(median.saturating_sub(bare_median))
        );
    }

    let sandbox = Arc::new(sandboxes.swap_remove(0).1);
    let next = Arc::new(AtomicUsize::new(0));
    let began = Instant::now();
    let workers: Vec<_> = (0..SLOTS)
        .map(|_| {
            let (sandbox, next) = (sandbox.clone(), next.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < THROUGHPUT_RUNS {
                    sandboxed(&sandbox).await;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("worker");
    }
    let per_second = THROUGHPUT_RUNS as f64 / began.elapsed().as_secs_f64();
    println!("\n{THROUGHPUT_RUNS} runs of `pass`, {SLOTS} concurrent slots, all layers: {per_second:.1} runs/s");
}

async fn bare_python() -> Duration {
    let began = Instant::now();
    let status = tokio::process::Command::new("/usr/bin/python3")
        .args(["-c", "pass"])
        .status()
        .await
        .expect("python runs");
    assert!(status.success());
    began.elapsed()
}

async fn sandboxed(sandbox: &Sandbox) -> Duration {
    let began = Instant::now();
    let request = RunRequest {
        code: "pass\n".into(),
        ..RunRequest::default()
    };
    let transcript = sandbox
        .start(request)
        .await
        .expect("starts")
        .collect()
        .await;
    let elapsed = began.elapsed();
    let exit = transcript.exit.as_ref().expect("exit event");
    assert_eq!(
        exit.status,
        RunStatus::Ok,
        "{exit:?} {}",
        transcript.stderr_text()
    );
    elapsed
}

fn percentile(samples: &mut [Duration], p: usize) -> Duration {
    samples.sort();
    samples[(samples.len() - 1) * p / 100]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
