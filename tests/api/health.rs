use reqwest::StatusCode;
use serde_json::json;
use sqlx::{Connection, Executor};

use crate::helpers::{expect_error, expect_status, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(health_and_readiness_answer_in_the_envelope);

async fn health_and_readiness_answer_in_the_envelope(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let body = expect_status(app.get("/healthz").await, StatusCode::OK).await;
    assert_eq!(body, json!({ "success": true, "data": { "status": "ok" } }));
    let body = expect_status(app.get("/readyz").await, StatusCode::OK).await;
    assert_eq!(body["data"]["database"], json!("ok"));
}

/// Dropping the database under a running app makes readiness fail with 503 UNAVAILABLE while
/// liveness stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_reports_a_lost_postgres_database() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    app.db.close().await;
    let url = url::Url::parse(&app.database_url).unwrap();
    let name = url.path().trim_start_matches('/').to_owned();
    let mut conn = sqlx::PgConnection::connect(&std::env::var("TEST_DATABASE_URL").unwrap())
        .await
        .unwrap();
    conn.execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
        .await
        .unwrap();
    expect_error(
        app.get("/readyz").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "UNAVAILABLE",
    )
    .await;
    expect_status(app.get("/healthz").await, StatusCode::OK).await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    expect_status(app.get("/healthz").await, StatusCode::OK).await;
    app.get("/no/such/path/12345").await;
    app.get("/admin/ticket-types/42").await;
    let response = app.get("/metrics").await;
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().await.unwrap();
    for line in [
        r#"http_requests_total{method="GET",route="/healthz",status="200"} 1"#,
        r#"http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
        r#"http_requests_total{method="GET",route="/admin/ticket-types/{id}",status="401"} 1"#,
        "live_order_actors 0",
        "expiry_pending_deadlines 0",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    assert!(!text.contains("12345"), "raw paths never become labels");
}

/// `METRICS_TOKEN` set: `/metrics` wants it as a bearer token; unset, it stays open.
#[tokio::test]
async fn metrics_may_be_guarded_by_a_token() {
    const TOKEN: &str = "metrics-token-0123456789abcdef0123";
    let app = TestApp::spawn_with(Backend::Sqlite, |vars| {
        vars.insert("METRICS_TOKEN".into(), TOKEN.into());
    })
    .await
    .unwrap();
    expect_error(
        app.get("/metrics").await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    expect_error(
        app.get_with_token("/metrics", "metrics-token-0123456789abcdef0124")
            .await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    let response = app.get_with_token("/metrics", TOKEN).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("http_request_duration_seconds"));

    let open = TestApp::spawn(Backend::Sqlite).await.unwrap();
    assert_eq!(open.get("/metrics").await.status(), StatusCode::OK);
}
