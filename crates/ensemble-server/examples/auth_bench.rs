//! Measures argon2id verify time with the default parameters, and logins per
//! second over real HTTP against an in-process server (SQLite store), with
//! as many concurrent clients as CPUs and twice that.
//!
//! `cargo run --release -p ensemble-server --example auth_bench`

use ensemble_server::app::Application;
use ensemble_server::auth::passwords::Hasher;
use ensemble_server::config::Config;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

const PASSWORD: &str = "correct horse battery staple";

#[tokio::main]
async fn main() {
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let hasher = Hasher::new(19456, 2, 1).expect("params");
    let hash = hasher.hash(PASSWORD.into()).await.expect("hash");
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        assert!(
            hasher
                .verify(PASSWORD.into(), Some(hash.clone()))
                .await
                .expect("verify")
                .ok
        );
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!("argon2id m=19456 KiB, t=2, p=1 verify: median {:.1} ms, p90 {:.1} ms (20 runs, one at a time)", times[10], times[18]);

    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::for_tests(dir.path().join("data"));
    config.auth.login_per_minute = 1_000_000;
    let app = Application::build(config).await.expect("server");
    let base = format!("http://127.0.0.1:{}", app.port());
    let stop = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(stop.clone()));
    let client = reqwest::Client::new();
    let creds = serde_json::json!({"username": "bench", "password": PASSWORD});
    let r = client
        .post(format!("{base}/api/auth/register"))
        .json(&creds)
        .send()
        .await
        .expect("register");
    assert_eq!(r.status(), 201);
    for workers in [cpus, cpus * 2, cpus * 8] {
        let per_worker = 40 / workers.min(40) + 5;
        let t = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let (client, base, creds) = (client.clone(), base.clone(), creds.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..per_worker {
                    let r = client
                        .post(format!("{base}/api/auth/login"))
                        .json(&creds)
                        .send()
                        .await
                        .expect("login");
                    assert_eq!(r.status(), 200);
                }
            }));
        }
        for t in tasks {
            t.await.expect("worker");
        }
        let n = workers * per_worker;
        println!("logins/s with {workers} concurrent clients on {cpus} CPUs: {:.1} ({n} logins in {:.2} s)", n as f64 / t.elapsed().as_secs_f64(), t.elapsed().as_secs_f64());
    }
    stop.cancel();
    let _ = server.await;
}
