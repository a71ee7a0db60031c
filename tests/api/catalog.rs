//! The catalogue: admin-only creation and inspection, public listing, exact yuan amounts.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{expect_error, expect_status, Backend, TestApp, ADMIN_TOKEN};
use crate::on_both_backends;

on_both_backends!(admin_creates_and_everyone_lists, amounts_come_back_exactly);

async fn admin_creates_and_everyone_lists(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let vip = app.create_ticket_type("VIP", "100.00", 50).await;
    assert_eq!(
        vip,
        json!({
            "id": vip["id"], "name": "VIP", "price": 100.0,
            "stock": { "total": 50, "available": 50, "reserved": 0, "sold": 0 }
        })
    );
    let floor = app.create_ticket_type("Floor", "50.5", 0).await;

    let list = expect_status(app.get("/ticket-types").await, StatusCode::OK).await;
    assert_eq!(
        list["data"],
        json!([
            { "id": vip["id"], "name": "VIP", "price": 100.0, "available": 50 },
            { "id": floor["id"], "name": "Floor", "price": 50.5, "available": 0 },
        ])
    );
    let path = format!("/admin/ticket-types/{}", vip["id"]);
    let one = expect_status(app.get_with_token(&path, ADMIN_TOKEN).await, StatusCode::OK).await;
    assert_eq!(one["data"], vip);
}

async fn amounts_come_back_exactly(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.create_ticket_type("Cheap", "0.1", 1).await;
    let raw = app.get("/ticket-types").await.text().await.unwrap();
    assert!(raw.contains(r#""price":0.10"#), "{raw}");
}

#[tokio::test]
async fn admin_endpoints_need_the_admin_token() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let body = json!({ "name": "VIP", "price": 1, "stock": 1 });
    let response = app.post_json("/admin/ticket-types", None, &body).await;
    expect_error(response, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    let response = app
        .post_json("/admin/ticket-types", Some("wrong"), &body)
        .await;
    expect_error(response, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    // A user's JWT is not an admin token.
    let (user_token, _, _) = app.login("oNotAdmin").await;
    let response = app
        .post_json("/admin/ticket-types", Some(&user_token), &body)
        .await;
    expect_error(response, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    let response = app.get("/admin/ticket-types/1").await;
    expect_error(response, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    let list = expect_status(app.get("/ticket-types").await, StatusCode::OK).await;
    assert_eq!(list["data"], json!([]));
}

#[tokio::test]
async fn invalid_ticket_types_are_400_and_create_nothing() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let bad_bodies = [
        r#"{"name": "VIP", "price": 100.001, "stock": 1}"#,
        r#"{"name": "VIP", "price": 0, "stock": 1}"#,
        r#"{"name": "VIP", "price": -1, "stock": 1}"#,
        r#"{"name": "VIP", "price": "100.00", "stock": 1}"#,
        r#"{"name": "VIP", "price": null, "stock": 1}"#,
        r#"{"name": "VIP", "price": 1, "stock": -1}"#,
        r#"{"name": "VIP", "price": 1, "stock": 1.5}"#,
        r#"{"name": "VIP", "price": 1}"#,
        r#"{"name": "", "price": 1, "stock": 1}"#,
        r#"{"price": 1, "stock": 1}"#,
        r#"[1, 2]"#,
    ];
    for body in bad_bodies {
        let response = app
            .client
            .post(app.url("/admin/ticket-types"))
            .bearer_auth(ADMIN_TOKEN)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        expect_error(response, status, "VALIDATION_ERROR").await;
    }
    let list = expect_status(app.get("/ticket-types").await, StatusCode::OK).await;
    assert_eq!(list["data"], json!([]));
}

#[tokio::test]
async fn unknown_ticket_type_is_404() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let response = app
        .get_with_token("/admin/ticket-types/999", ADMIN_TOKEN)
        .await;
    expect_error(response, StatusCode::NOT_FOUND, "NOT_FOUND").await;
}
