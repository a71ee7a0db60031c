//! actix-web's own refusals leave in the envelope with the right status.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{expect_error, Backend, TestApp, ADMIN_TOKEN};

async fn app() -> TestApp {
    TestApp::spawn(Backend::Sqlite).await.unwrap()
}

#[tokio::test]
async fn unknown_route_is_404_in_the_envelope() {
    let app = app().await;
    let body = expect_error(
        app.get("/no/such/route").await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("/no/such/route"));
}

#[tokio::test]
async fn wrong_method_is_405_in_the_envelope() {
    let app = app().await;
    let response = app
        .client
        .delete(app.url("/ticket-types"))
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::METHOD_NOT_ALLOWED, "VALIDATION_ERROR").await;
    let response = app.post_json("/healthz", None, &json!({})).await;
    expect_error(response, StatusCode::METHOD_NOT_ALLOWED, "VALIDATION_ERROR").await;
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = app().await;
    for body in [
        "{",
        "not json",
        r#"{"name": "VIP", "price": 1, "stock": 1"#,
        "",
    ] {
        let response = app
            .client
            .post(app.url("/admin/ticket-types"))
            .bearer_auth(ADMIN_TOKEN)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        expect_error(response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
    }
}

#[tokio::test]
async fn oversized_body_is_413() {
    let app = app().await;
    let name = "x".repeat(70 * 1024);
    let response = app
        .post_json(
            "/admin/ticket-types",
            Some(ADMIN_TOKEN),
            &json!({ "name": name, "price": 1, "stock": 1 }),
        )
        .await;
    expect_error(response, StatusCode::PAYLOAD_TOO_LARGE, "VALIDATION_ERROR").await;
    // Nothing was created.
    let list = crate::helpers::expect_status(app.get("/ticket-types").await, StatusCode::OK).await;
    assert_eq!(list["data"], json!([]));
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let app = app().await;
    let response = app
        .client
        .post(app.url("/auth/wechat/login"))
        .header("Content-Type", "text/plain")
        .body(r#"{"code": "abc"}"#)
        .send()
        .await
        .unwrap();
    expect_error(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "VALIDATION_ERROR",
    )
    .await;
}

#[tokio::test]
async fn bad_path_parameter_is_400() {
    let app = app().await;
    let response = app
        .get_with_token("/admin/ticket-types/abc", ADMIN_TOKEN)
        .await;
    expect_error(response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
}
