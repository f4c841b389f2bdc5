//! Accounts over real HTTP, on both stores: registration rules, login,
//! logout, token expiry, brute-force limits, bad input, CORS, and what is
//! actually stored.

use crate::both_stores;
use crate::helpers::{respawn, sign_up, spawn_with, Backend, TestApp, PASSWORD};
use reqwest::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_ORIGIN, ORIGIN, RETRY_AFTER,
};
use serde_json::{json, Value};

async fn app(backend: Backend) -> TestApp {
    spawn_with(backend, |_| {}).await
}

async fn status_and_body(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn register(app: &TestApp, username: &str, password: &str) -> (u16, Value) {
    status_and_body(
        app.post_json(
            "/api/auth/register",
            &json!({"username": username, "password": password}),
        )
        .await,
    )
    .await
}

async fn login(app: &TestApp, username: &str, password: &str) -> (u16, Value) {
    status_and_body(
        app.post_json(
            "/api/auth/login",
            &json!({"username": username, "password": password}),
        )
        .await,
    )
    .await
}

async fn me(app: &TestApp, token: &str) -> u16 {
    app.client
        .get(app.url("/api/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

both_stores!(
    register_login_me_and_logout,
    usernames_are_unique_regardless_of_case,
    reserved_names_and_bad_passwords_are_refused,
    unknown_users_and_wrong_passwords_answer_alike,
    the_sixth_rapid_failure_is_throttled,
    expired_tokens_are_refused,
    bad_input_gets_clear_errors_and_writes_nothing,
    hashes_are_argon2id_and_tokens_never_stored_in_clear,
    changed_argon2_parameters_rehash_on_login,
);

async fn register_login_me_and_logout(b: Backend) {
    let app = app(b).await;
    let (status, body) = register(&app, "Alice", PASSWORD).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["user"]["username"], "Alice");
    let id = body["user"]["id"].as_str().unwrap().to_owned();

    let (status, body) = login(&app, "alice", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 64);
    assert!(body["expires_at"].as_i64().unwrap() > ensemble_core::time::now_ms());
    assert_eq!(body["user"]["id"], id.as_str());

    let r = app
        .client
        .get(app.url("/api/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_body(r).await;
    assert_eq!(
        (status, body["id"].as_str(), body["username"].as_str()),
        (200, Some(id.as_str()), Some("Alice"))
    );

    let r = app
        .client
        .post(app.url("/api/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        me(&app, &token).await,
        401,
        "logout revokes the token at once"
    );
    assert_eq!(me(&app, "not-a-token").await, 401);
    assert_eq!(app.get("/api/me").await.status(), 401);
}

async fn usernames_are_unique_regardless_of_case(b: Backend) {
    let app = app(b).await;
    assert_eq!(register(&app, "Bob", PASSWORD).await.0, 201);
    let (status, body) = register(&app, "bOB", "another good password").await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "username_taken");
    assert_eq!(body["error"]["message"], "username taken");
}

async fn reserved_names_and_bad_passwords_are_refused(b: Backend) {
    let app = app(b).await;
    for name in ["admin", "Anonymous", "root", "guest", "system"] {
        let (status, body) = register(&app, name, PASSWORD).await;
        assert_eq!(status, 422, "{name}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("username:"),
            "{body}"
        );
    }
    for (password, why) in [
        ("short", "between 10"),
        ("password123", "too common"),
        ("carol_smith", "not be the username"),
    ] {
        let (status, body) = register(&app, "carol_smith", password).await;
        assert_eq!(status, 422, "{password}");
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with("password:") && msg.contains(why), "{msg}");
    }
    assert!(
        app.raw_rows("users").await.is_empty(),
        "nothing was written"
    );
}

async fn unknown_users_and_wrong_passwords_answer_alike(b: Backend) {
    let app = app(b).await;
    sign_up(&app, "dave").await;
    let wrong = login(&app, "dave", "not the password").await;
    let unknown = login(&app, "nobody_here", "not the password").await;
    assert_eq!(wrong.0, 401);
    assert_eq!(
        wrong, unknown,
        "status and body must not reveal which accounts exist"
    );
}

async fn the_sixth_rapid_failure_is_throttled(b: Backend) {
    let app = app(b).await;
    sign_up(&app, "erin").await;
    for attempt in 1..=5 {
        assert_eq!(
            login(&app, "erin", "wrong password!").await.0,
            401,
            "attempt {attempt}"
        );
    }
    let r = app
        .post_json(
            "/api/auth/login",
            &json!({"username": "erin", "password": "wrong password!"}),
        )
        .await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()[RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("try again in"));
    // Locked means locked: even the right password waits.
    assert_eq!(login(&app, "erin", PASSWORD).await.0, 429);

    // A name without an account behaves the same way.
    for _ in 1..=5 {
        assert_eq!(login(&app, "ghost_user", "wrong password!").await.0, 401);
    }
    assert_eq!(login(&app, "ghost_user", "wrong password!").await.0, 429);

    // Both locks are kept in the store: a restarted server (or another
    // node) answers the same, so it cannot tell the two names apart.
    let app = app.restart().await;
    for name in ["erin", "ghost_user"] {
        assert_eq!(login(&app, name, "wrong password!").await.0, 429, "{name}");
    }
}

async fn expired_tokens_are_refused(b: Backend) {
    let app = spawn_with(b, |c| c.auth.token_ttl_hours = 0).await;
    let token = sign_up(&app, "frank").await;
    assert_eq!(me(&app, &token).await, 401);
}

async fn bad_input_gets_clear_errors_and_writes_nothing(b: Backend) {
    let app = app(b).await;
    let url = app.url("/api/auth/register");
    let send = |body: String| {
        let c = app.client.clone();
        let url = url.clone();
        async move {
            let r = c
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            status_and_body(r).await
        }
    };
    let huge = json!({"username": "gina", "password": "x".repeat(70 * 1024)}).to_string();
    let (status, body) = send(huge).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("payload_too_large"))
    );

    let (status, body) = send("{\"username\": \"gina\", ".into()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("malformed_json"))
    );

    let (status, body) = send(json!({"username": "gina"}).to_string()).await;
    assert_eq!(status, 422);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("password:"),
        "{body}"
    );

    let (status, body) = send(json!({"username": 42, "password": PASSWORD}).to_string()).await;
    assert_eq!(status, 422);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("username:"),
        "{body}"
    );

    for name in ["gi na", "gína", "\u{430}lice", "ｇｉｎａ", "g"] {
        let (status, body) =
            send(json!({"username": name, "password": PASSWORD}).to_string()).await;
        assert_eq!(status, 422, "{name}: {body}");
    }
    assert!(
        app.raw_rows("users").await.is_empty(),
        "nothing was written"
    );
}

async fn hashes_are_argon2id_and_tokens_never_stored_in_clear(b: Backend) {
    let app = app(b).await;
    let token = sign_up(&app, "hank").await;
    let users = app.raw_rows("users").await;
    assert_eq!(users.len(), 1);
    assert!(
        users[0].contains("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{}",
        users[0]
    );
    assert!(!users[0].contains(PASSWORD));
    let tokens = app.raw_rows("tokens").await;
    assert_eq!(tokens.len(), 1);
    assert!(
        !tokens[0].contains(&token),
        "the bearer token is stored in clear"
    );
    let digest = ensemble_server::auth::tokens::digest(&token);
    assert!(tokens[0].contains(&digest), "only its SHA-256 is kept");
}

async fn changed_argon2_parameters_rehash_on_login(b: Backend) {
    let first = app(b).await;
    sign_up(&first, "ivy_r").await;
    let second = respawn(&first, |c| c.auth.argon2_iterations = 3).await;
    assert_eq!(login(&second, "ivy_r", PASSWORD).await.0, 200);
    let users = second.raw_rows("users").await;
    assert!(
        users[0].contains("$argon2id$v=19$m=19456,t=3,p=1$"),
        "{}",
        users[0]
    );
}

#[tokio::test]
async fn registration_is_rate_limited_per_address() {
    let app = spawn_with(Backend::Sqlite, |c| c.auth.register_per_hour = 2).await;
    assert_eq!(register(&app, "jane1", PASSWORD).await.0, 201);
    assert_eq!(register(&app, "jane2", PASSWORD).await.0, 201);
    let r = app
        .post_json(
            "/api/auth/register",
            &json!({"username": "jane3", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key(RETRY_AFTER));
    assert_eq!(app.raw_rows("users").await.len(), 2);
}

#[tokio::test]
async fn session_tickets_are_rate_limited_per_address() {
    let app = spawn_with(Backend::Sqlite, |c| c.auth.tickets_per_minute = 2).await;
    let token = sign_up(&app, "tia").await;
    let id = app.create_session(&token, "T").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ticket = || {
        app.client
            .post(app.url(&format!("/api/sessions/{id}/ticket")))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(ticket().await.unwrap().status(), 200);
    assert_eq!(ticket().await.unwrap().status(), 200);
    let r = ticket().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key(RETRY_AFTER));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // The refused request stored nothing.
    assert_eq!(app.raw_rows("tickets").await.len(), 2);
}

#[tokio::test]
async fn cors_allows_a_listed_origin_and_refuses_another() {
    let app = spawn_with(Backend::Sqlite, |c| {
        c.allowed_origins = vec!["https://class.example".into()]
    })
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/auth/login"))
            .header(ORIGIN, origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let ok = preflight("https://class.example").await.unwrap();
    assert!(ok.status().is_success());
    assert_eq!(
        ok.headers()[ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://class.example"
    );
    assert_eq!(ok.headers()[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");

    let evil = preflight("https://evil.example").await.unwrap();
    assert!(
        evil.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none(),
        "{:?}",
        evil.headers()
    );

    let r = app
        .client
        .post(app.url("/api/auth/login"))
        .header(ORIGIN, "https://evil.example")
        .json(&json!({"username": "x_y_z", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
}

#[tokio::test]
async fn a_store_outage_is_503_store_unavailable() {
    let nx = crate::helpers::Nx::start();
    let app = spawn_with(Backend::Sqlite, |c| c.mongodb_uri = Some(nx.uri("outage"))).await;
    crate::helpers::eventually(std::time::Duration::from_secs(10), || async {
        app.get("/readyz").await.status() == 200
    })
    .await;
    nx.kill();
    let (status, body) = login(&app, "kate", PASSWORD).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("store_unavailable")),
        "{body}"
    );
    assert!(
        !body.to_string().contains("127.0.0.1"),
        "no internal detail leaks: {body}"
    );
    assert_eq!(
        app.get("/healthz").await.status(),
        200,
        "the server is still up"
    );
}
