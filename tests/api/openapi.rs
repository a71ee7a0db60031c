//! `GET /openapi.json`: every endpoint documented, and the copy in `docs/` up to date
//! (regenerate it with `UPDATE_OPENAPI=1 cargo test --test api openapi`).

use reqwest::StatusCode;

use crate::helpers::{Backend, TestApp};

#[tokio::test]
async fn the_served_document_covers_every_endpoint_and_matches_docs() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let served = response.text().await.unwrap();
    let document: serde_json::Value = serde_json::from_str(&served).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let paths = document["paths"].as_object().unwrap();
    for (path, method) in [
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/auth/wechat/login", "post"),
        ("/auth/me", "get"),
        ("/ticket-types", "get"),
        ("/admin/ticket-types", "post"),
        ("/admin/ticket-types/{id}", "get"),
        ("/orders", "post"),
        ("/orders/{id}", "get"),
        ("/payments/wechat/prepay", "post"),
        ("/payments/status/{orderId}", "get"),
        ("/payments/refund", "post"),
        ("/payments/wallyt/notify", "post"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} undocumented"
        );
    }
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
    if std::env::var("UPDATE_OPENAPI").is_ok() {
        std::fs::write(file, &served).unwrap();
    }
    let kept = std::fs::read_to_string(file).unwrap_or_default();
    assert!(
        kept == served,
        "docs/openapi.json is stale: run UPDATE_OPENAPI=1 cargo test --test api openapi"
    );
}
