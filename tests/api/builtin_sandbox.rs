//! Development without credentials runs against the built-in sandbox; production never does.

use reqwest::StatusCode;
use serde_json::json;
use wallyt_pay::config::AppEnv;

use crate::helpers::{expect_error, expect_status, Backend, TestApp, JWT_SECRET};

fn without_credentials(vars: &mut std::collections::HashMap<String, String>) {
    vars.remove("WECHAT_MINI_APPID");
    vars.remove("WECHAT_MINI_SECRET");
    vars.remove("WECHAT_API_BASE");
}

#[tokio::test]
async fn development_logs_in_through_the_mounted_sandbox() {
    let app = TestApp::spawn_in(AppEnv::Development, Backend::Sqlite, without_credentials)
        .await
        .unwrap();
    let response = app
        .post_json("/auth/wechat/login", None, &json!({ "code": "any-code" }))
        .await;
    let first = expect_status(response, StatusCode::OK).await;
    let response = app
        .post_json("/auth/wechat/login", None, &json!({ "code": "any-code" }))
        .await;
    let again = expect_status(response, StatusCode::OK).await;
    assert_eq!(
        first["openid"], again["openid"],
        "a code maps to a stable openid"
    );
    assert!(first["openid"].as_str().unwrap().starts_with("oSbx"));
    let response = app
        .post_json(
            "/auth/wechat/login",
            None,
            &json!({ "code": "invalid-code" }),
        )
        .await;
    expect_error(response, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    let trades = expect_status(app.get("/sandbox/trades").await, StatusCode::OK).await;
    assert_eq!(trades, json!([]));
}

#[tokio::test]
async fn production_never_mounts_the_sandbox() {
    let app = TestApp::spawn_in(AppEnv::Production, Backend::Sqlite, |vars| {
        without_credentials(vars);
        vars.insert("JWT_SECRET".into(), JWT_SECRET.into());
    })
    .await
    .unwrap();
    expect_error(
        app.get("/sandbox/trades").await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    let response = app
        .post_json("/auth/wechat/login", None, &json!({ "code": "any-code" }))
        .await;
    expect_error(response, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE").await;
}
