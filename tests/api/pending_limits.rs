//! Holding stock for free (issue 10, item 2): one user holds at most `MAX_PENDING_ORDERS`
//! unpaid orders and `MAX_PENDING_UNITS` reserved units, also under concurrent requests; an
//! order larger than the unit limit by itself is a 400 (retrying cannot help).

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{expect_error, expect_status, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(concurrent_orders_of_one_user_stop_at_the_limit);

fn items(ticket_type: &serde_json::Value, quantity: i64) -> serde_json::Value {
    json!([{ "ticketTypeId": ticket_type, "quantity": quantity }])
}

#[tokio::test]
async fn the_shipped_defaults_stop_the_fourth_unpaid_order() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let (token, _, _) = app.login("oHoarder").await;
    let (other, _, _) = app.login("oNeighbour").await;
    let vip = app.create_ticket_type("VIP", "10.00", 100).await["id"].clone();
    for _ in 0..3 {
        expect_status(
            app.create_order(&token, items(&vip, 1)).await,
            StatusCode::CREATED,
        )
        .await;
    }
    let refused = expect_error(
        app.create_order(&token, items(&vip, 1)).await,
        StatusCode::TOO_MANY_REQUESTS,
        "TOO_MANY_PENDING_ORDERS",
    )
    .await;
    assert!(refused["error"]["message"].as_str().unwrap().contains('3'));
    assert_eq!(
        app.stock(&vip).await["reserved"],
        json!(3),
        "the refused order reserved nothing"
    );
    // The limit is per user.
    expect_status(
        app.create_order(&other, items(&vip, 1)).await,
        StatusCode::CREATED,
    )
    .await;
}

#[tokio::test]
async fn reserved_units_are_limited_and_an_oversized_order_is_a_400() {
    let app = TestApp::spawn_with(Backend::Sqlite, |vars| {
        vars.insert("MAX_PENDING_UNITS".into(), "5".into());
        vars.insert("MAX_PENDING_ORDERS".into(), "0".into());
    })
    .await
    .unwrap();
    let (token, _, _) = app.login("oBulk").await;
    let vip = app.create_ticket_type("VIP", "10.00", 100).await["id"].clone();
    expect_error(
        app.create_order(&token, items(&vip, 6)).await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
    )
    .await;
    expect_status(
        app.create_order(&token, items(&vip, 4)).await,
        StatusCode::CREATED,
    )
    .await;
    expect_error(
        app.create_order(&token, items(&vip, 2)).await,
        StatusCode::TOO_MANY_REQUESTS,
        "TOO_MANY_PENDING_ORDERS",
    )
    .await;
    expect_status(
        app.create_order(&token, items(&vip, 1)).await,
        StatusCode::CREATED,
    )
    .await;
    // With the order limit off, many small orders pass while units allow.
    assert_eq!(app.stock(&vip).await["reserved"], json!(5));
}

#[tokio::test]
async fn zero_turns_the_limits_off() {
    let app = TestApp::spawn_with(Backend::Sqlite, |vars| {
        vars.insert("MAX_PENDING_UNITS".into(), "0".into());
        vars.insert("MAX_PENDING_ORDERS".into(), "0".into());
    })
    .await
    .unwrap();
    let (token, _, _) = app.login("oUnlimited").await;
    let vip = app.create_ticket_type("VIP", "10.00", 1000).await["id"].clone();
    for _ in 0..8 {
        expect_status(
            app.create_order(&token, items(&vip, 20)).await,
            StatusCode::CREATED,
        )
        .await;
    }
}

async fn concurrent_orders_of_one_user_stop_at_the_limit(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |vars| {
        vars.insert("MAX_PENDING_ORDERS".into(), "3".into());
    })
    .await
    else {
        return;
    };
    let (token, _, _) = app.login("oRacer").await;
    let vip = app.create_ticket_type("VIP", "10.00", 100).await["id"].clone();
    let attempts = (0..12).map(|_| {
        let (app, token, body) = (&app, token.clone(), items(&vip, 1));
        async move { app.create_order(&token, body).await.status() }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((created, refused), (3, 9), "{statuses:?}");
    assert_eq!(app.stock(&vip).await["reserved"], json!(3));
}
