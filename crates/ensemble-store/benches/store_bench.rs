//! Store benchmark: inserts/s and reads/s of run records and document
//! updates, on SQLite and (when `ENSEMBLE_BENCH_MONGODB_URI` is set) on a
//! MongoDB wire server. Prints a Markdown table; `make bench` runs it with
//! its own nx-27017.

use ensemble_core::ids::{RunId, SessionId, UserId};
use ensemble_core::model::{DocUpdate, OutputChunk, Run, RunStatus, Stream};
use ensemble_core::store::Store;
use ensemble_core::time::now_ms;
use ensemble_store::{MongoStore, SqliteStore};
use std::time::Instant;

const RUNS: usize = 1000;
const UPDATES: usize = 2000;
const BATCH: usize = 50;

fn run(session: &SessionId, author: &UserId) -> Run {
    Run {
        id: RunId::generate(),
        session_id: session.clone(),
        author: author.clone(),
        author_name: "bench".into(),
        code: "for i in range(10):\n    print(i)\n".into(),
        status: RunStatus::Finished,
        exit_code: Some(0),
        reason: None,
        node: "bench".into(),
        created_at: now_ms(),
        started_at: Some(now_ms()),
        finished_at: Some(now_ms()),
        duration_ms: Some(12),
        output: (1..=10)
            .map(|i| OutputChunk {
                seq: i,
                stream: Stream::Stdout,
                data: format!("{i}\n"),
            })
            .collect(),
        truncated: false,
    }
}

fn rate(n: usize, started: Instant) -> String {
    format!("{:.0}", n as f64 / started.elapsed().as_secs_f64())
}

async fn bench(name: &str, store: &dyn Store) {
    let session = SessionId::generate();
    let author = UserId::generate();
    let runs: Vec<Run> = (0..RUNS).map(|_| run(&session, &author)).collect();

    let t = Instant::now();
    for r in &runs {
        store.create_run(r).await.expect("insert run");
    }
    let run_inserts = rate(RUNS, t);

    let t = Instant::now();
    for r in &runs {
        store.run(&r.id).await.expect("read run").expect("found");
    }
    let run_reads = rate(RUNS, t);

    let t = Instant::now();
    let mut before: Option<RunId> = None;
    let mut seen = 0;
    loop {
        let page = store
            .runs_for_session(&session, before.as_ref(), 50)
            .await
            .expect("page");
        if page.is_empty() {
            break;
        }
        seen += page.len();
        before = page.last().map(|r| r.id.clone());
    }
    assert_eq!(seen, RUNS);
    let page_reads = rate(RUNS, t);

    let doc = SessionId::generate();
    let update = vec![7u8; 40];
    let t = Instant::now();
    for seq in 1..=UPDATES as u64 {
        store
            .append_doc_updates(
                &doc,
                &[DocUpdate {
                    seq,
                    data: update.clone(),
                }],
            )
            .await
            .expect("append");
    }
    let single = rate(UPDATES, t);

    let doc2 = SessionId::generate();
    let t = Instant::now();
    for chunk in (1..=UPDATES as u64).collect::<Vec<_>>().chunks(BATCH) {
        let batch: Vec<DocUpdate> = chunk
            .iter()
            .map(|&seq| DocUpdate {
                seq,
                data: update.clone(),
            })
            .collect();
        store
            .append_doc_updates(&doc2, &batch)
            .await
            .expect("append batch");
    }
    let batched = rate(UPDATES, t);

    let t = Instant::now();
    let loaded = store.load_doc(&doc).await.expect("load");
    assert_eq!(loaded.updates.len(), UPDATES);
    let load_ms = t.elapsed().as_secs_f64() * 1000.0;

    println!(
        "| {name} | {run_inserts} | {run_reads} | {page_reads} | {single} | {batched} | {load_ms:.1} |"
    );
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        println!("runs: {RUNS}, doc updates: {UPDATES} (40 B each), batch: {BATCH}\n");
        println!("| store | run inserts/s | run reads/s (by id) | runs listed/s (pages of 50) | doc updates/s (1 per commit) | doc updates/s (batches of {BATCH}) | load {UPDATES} updates (ms) |");
        println!("|---|---|---|---|---|---|---|");
        let dir = tempfile::tempdir().expect("temp dir");
        let sqlite = SqliteStore::open(dir.path()).expect("sqlite");
        bench("SQLite (WAL, synchronous=FULL)", &sqlite).await;
        if let Ok(base) = std::env::var("ENSEMBLE_BENCH_MONGODB_URI") {
            let db = format!("bench_{}", uuid::Uuid::new_v4().simple());
            let mongo = MongoStore::connect(&format!("{}/{db}", base.trim_end_matches('/'))).await.expect("mongo");
            mongo.ping().await.expect("mongo answers");
            bench("MongoDB wire (nx-27017 0.8.1, in memory)", &mongo).await;
        } else {
            println!("\n(set ENSEMBLE_BENCH_MONGODB_URI to include MongoDB)");
        }
    });
}
