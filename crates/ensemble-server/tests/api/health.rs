//! `/healthz`, `/readyz` and `/metrics` on both stores, including MongoDB
//! going away and coming back while the server runs.

use crate::helpers::{eventually, spawn_app, spawn_app_with, Nx};
use serde_json::Value;
use std::time::Duration;

async fn readyz(app: &crate::helpers::TestApp) -> (u16, Value) {
    let r = app.get("/readyz").await;
    let status = r.status().as_u16();
    (status, r.json().await.expect("json body"))
}

#[tokio::test]
async fn healthz_and_readyz_name_the_sqlite_store() {
    let app = spawn_app().await;
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), 200);
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["store"]["kind"], "sqlite");
    assert_eq!(body["store"]["state"], "ok");
    assert!(body["store"]["latency_ms"].as_f64().is_some(), "{body}");
    assert_eq!(body["sandbox"]["usable"], true, "{body}");
    let layers = body["sandbox"]["layers"].as_array().expect("layers");
    assert!(
        layers
            .iter()
            .any(|l| l["name"] == "seccomp" && l["active"] == true),
        "{body}"
    );
}

#[tokio::test]
async fn readyz_follows_mongodb_down_and_back_without_a_restart() {
    let nx = Nx::start();
    let app = spawn_app_with(Some(nx.uri("readyz"))).await;
    eventually(Duration::from_secs(10), || async {
        readyz(&app).await.0 == 200
    })
    .await;
    let (_, body) = readyz(&app).await;
    assert_eq!(
        (
            body["store"]["kind"].as_str(),
            body["store"]["state"].as_str()
        ),
        (Some("mongodb"), Some("ok"))
    );

    let port = nx.kill();
    let took = eventually(Duration::from_secs(5), || async {
        readyz(&app).await.0 == 503
    })
    .await;
    let (_, body) = readyz(&app).await;
    assert_eq!(body["store"]["state"], "down");
    println!("readyz went 503 {took:?} after MongoDB stopped");

    let _nx = Nx::start_on(port);
    let took = eventually(Duration::from_secs(10), || async {
        readyz(&app).await.0 == 200
    })
    .await;
    println!("readyz went 200 {took:?} after MongoDB came back");
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn mongodb_unreachable_at_start_is_not_fatal() {
    let port = Nx::start().kill();
    let app = spawn_app_with(Some(format!("mongodb://127.0.0.1:{port}/late"))).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let (status, body) = readyz(&app).await;
    assert_eq!(
        (status, body["store"]["state"].as_str()),
        (503, Some("down"))
    );
    let _nx = Nx::start_on(port);
    eventually(Duration::from_secs(10), || async {
        readyz(&app).await.0 == 200
    })
    .await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = spawn_app().await;
    for _ in 0..3 {
        app.get("/healthz").await;
    }
    assert_eq!(app.get("/api/no/such/route").await.status(), 404);
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains(
            r#"ensemble_http_requests_total{method="GET",route="/healthz",status="200"} 3"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"ensemble_http_requests_total{method="GET",route="unmatched",status="404"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(
        r#"ensemble_http_request_duration_seconds_count{method="GET",route="/healthz"} 3"#
    ));
    assert!(text.contains("ensemble_store_up 1"));
}

#[tokio::test]
async fn unknown_routes_get_the_json_error_shape() {
    let app = spawn_app().await;
    let r = app.get("/api/nothing-here").await;
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert!(body["error"]["message"].is_string());
}

#[tokio::test]
async fn stopping_finishes_promptly_and_checkpoints_sqlite() {
    let app = spawn_app().await;
    let dir = app.state.store.location();
    let started = std::time::Instant::now();
    app.stop().await.expect("clean stop");
    assert!(started.elapsed() < Duration::from_secs(10));
    // A clean stop folds the WAL back into the database file.
    let wal = std::path::Path::new(&dir).join("ensemble.db-wal");
    assert!(
        std::fs::metadata(&wal)
            .map(|m| m.len() == 0)
            .unwrap_or(true),
        "WAL left behind"
    );
}

#[tokio::test]
async fn the_web_app_is_served_with_index_html_for_client_routes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("index.html"),
        "<!doctype html><title>Ensemble</title>APP",
    )
    .unwrap();
    let static_dir = dir.path().to_path_buf();
    let app = crate::helpers::spawn_with(crate::helpers::Backend::Sqlite, move |c| {
        c.static_dir = static_dir
    })
    .await;
    for path in ["/", "/s/0190e0e0-0000-7000-8000-000000000000", "/join/abc"] {
        let r = app.get(path).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["cache-control"], "no-cache", "{path}");
        assert!(r.text().await.unwrap().contains("APP"), "{path}");
    }
    assert_eq!(app.get("/api/missing").await.status(), 404);
}

#[tokio::test]
async fn assets_are_sent_precompressed_and_cached_by_their_hashed_names() {
    let dir = tempfile::tempdir().unwrap();
    let assets = dir.path().join("assets");
    std::fs::create_dir(&assets).unwrap();
    std::fs::write(dir.path().join("index.html"), "<!doctype html>APP").unwrap();
    std::fs::write(assets.join("app-1a2b.js"), "console.log('plain')").unwrap();
    std::fs::write(assets.join("app-1a2b.js.br"), b"BROTLI BYTES").unwrap();
    std::fs::write(assets.join("app-1a2b.js.gz"), b"GZIP BYTES").unwrap();
    let static_dir = dir.path().to_path_buf();
    let app = crate::helpers::spawn_with(crate::helpers::Backend::Sqlite, move |c| {
        c.static_dir = static_dir
    })
    .await;
    let get = |accept: &'static str| {
        let mut req = app.client.get(app.url("/assets/app-1a2b.js"));
        if !accept.is_empty() {
            req = req.header("accept-encoding", accept);
        }
        req.send()
    };
    for (accept, encoding, body) in [
        ("gzip, deflate, br", Some("br"), "BROTLI BYTES"),
        ("gzip", Some("gzip"), "GZIP BYTES"),
        ("", None, "console.log('plain')"),
    ] {
        let r = get(accept).await.unwrap();
        assert_eq!(r.status(), 200, "{accept}");
        let h = r.headers();
        assert_eq!(
            h.get("content-encoding").map(|v| v.to_str().unwrap()),
            encoding,
            "{accept}"
        );
        assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
        assert_eq!(h["vary"], "accept-encoding");
        assert!(h["content-type"].to_str().unwrap().contains("javascript"));
        assert_eq!(r.text().await.unwrap(), body, "{accept}");
    }
    // A stale asset name is a 404, not index.html cached for a year.
    let r = app.get("/assets/app-old.js").await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["cache-control"], "no-cache");
}

#[tokio::test]
async fn without_a_built_app_the_root_says_how_to_build_it() {
    let app = spawn_app().await;
    let r = app.get("/").await;
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("make run"));
}
