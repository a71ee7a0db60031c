//! Orders: atomic reservation, the contract's limits, owner-only access, and no oversell
//! under a crowd.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{expect_error, expect_status, Backend, TestApp};
use crate::on_both_backends;
use crate::shop::purchase;

on_both_backends!(
    an_order_reserves_its_stock,
    two_hundred_buyers_fifty_tickets
);

async fn an_order_reserves_its_stock(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let p = purchase(&app, 10, 2).await;
    assert_eq!(
        app.stock(&p.ticket_type).await,
        json!({ "total": 10, "available": 8, "reserved": 2, "sold": 0 })
    );
    let order = app.order(&p.token, &p.order).await;
    assert_eq!(order["status"], json!("PENDING"));
    assert_eq!(order["totalAmount"], json!(100.0));
    assert_eq!(
        order["items"],
        json!([{ "ticketTypeId": p.ticket_type, "quantity": 2, "unitPrice": 50.0 }])
    );
    assert_eq!(order["payment"], json!(null));
    assert_eq!(order["tickets"], json!([]));
    assert_eq!(order["refundedAmount"], json!(0.0));
    let created =
        chrono::DateTime::parse_from_rfc3339(order["createdAt"].as_str().unwrap()).unwrap();
    let expires =
        chrono::DateTime::parse_from_rfc3339(order["expiresAt"].as_str().unwrap()).unwrap();
    assert_eq!(
        (expires - created).num_seconds(),
        15 * 60,
        "ORDER_TTL defaults to 15 minutes"
    );

    // Someone else's order does not exist for them.
    let (other, _, _) = app.login("oSomeoneElse").await;
    let response = app
        .get_with_token(&format!("/orders/{}", p.order), &other)
        .await;
    expect_error(response, StatusCode::NOT_FOUND, "ORDER_NOT_FOUND").await;
    let response = app.get_with_token("/orders/999999", &p.token).await;
    expect_error(response, StatusCode::NOT_FOUND, "ORDER_NOT_FOUND").await;
    let response = app.get("/orders/1").await;
    expect_error(response, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn bad_orders_are_refused_and_reserve_nothing() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let (token, _, _) = app.login("oBad").await;
    let a = app.create_ticket_type("A", "10.00", 5).await["id"].clone();
    let b = app.create_ticket_type("B", "20.00", 1).await["id"].clone();
    let too_many_lines: Vec<_> = (0..21)
        .map(|i| json!({ "ticketTypeId": i + 1000, "quantity": 1 }))
        .collect();
    let invalid = [
        json!([]),
        json!([{ "ticketTypeId": a, "quantity": 0 }]),
        json!([{ "ticketTypeId": a, "quantity": 21 }]),
        json!([{ "ticketTypeId": a, "quantity": 1.5 }]),
        json!([{ "ticketTypeId": a, "quantity": 1 }, { "ticketTypeId": a, "quantity": 1 }]),
        json!([{ "ticketTypeId": 424242, "quantity": 1 }]),
        json!(too_many_lines),
        json!("not a list"),
    ];
    for items in invalid {
        let response = app.create_order(&token, items.clone()).await;
        expect_error(response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
    }
    // The second line is short: the first line's reservation is rolled back too.
    let items = json!([{ "ticketTypeId": a, "quantity": 2 }, { "ticketTypeId": b, "quantity": 2 }]);
    expect_error(
        app.create_order(&token, items).await,
        StatusCode::CONFLICT,
        "INSUFFICIENT_STOCK",
    )
    .await;
    assert_eq!(app.stock(&a).await["available"], json!(5));
    assert_eq!(app.stock(&b).await["available"], json!(1));
    let items = json!([{ "ticketTypeId": a, "quantity": 2 }, { "ticketTypeId": b, "quantity": 1 }]);
    let order = expect_status(app.create_order(&token, items).await, StatusCode::CREATED).await;
    assert_eq!(order["data"]["totalAmount"], json!(40.0));
    assert_eq!(
        app.stock(&b).await,
        json!({ "total": 1, "available": 0, "reserved": 1, "sold": 0 })
    );
}

async fn two_hundred_buyers_fifty_tickets(backend: Backend) {
    // Ten buyers with twenty tries each: more than a buyer may hold unpaid, so the per-user
    // limits are off for this run (tests/api/pending_limits.rs tests them).
    let Some(app) = TestApp::spawn_with(backend, |vars| {
        vars.insert("MAX_PENDING_ORDERS".into(), "0".into());
        vars.insert("MAX_PENDING_UNITS".into(), "0".into());
    })
    .await
    else {
        return;
    };
    let ticket_type = app.create_ticket_type("Hot", "88.00", 50).await["id"].clone();
    let mut tokens = Vec::new();
    for i in 0..10 {
        tokens.push(app.login(&format!("oCrowd{i}")).await.0);
    }
    let app = std::sync::Arc::new(app);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Watch the invariant while the crowd pushes.
    let watcher = {
        let (app, stop, ticket_type) = (app.clone(), stop.clone(), ticket_type.clone());
        tokio::spawn(async move {
            let mut looks = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let s = app.stock(&ticket_type).await;
                let sum = s["available"].as_i64().unwrap()
                    + s["reserved"].as_i64().unwrap()
                    + s["sold"].as_i64().unwrap();
                assert_eq!(sum, 50, "{s}");
                looks += 1;
            }
            looks
        })
    };
    let buyers = (0..200).map(|i| {
        let (app, token, ticket_type) = (app.clone(), tokens[i % 10].clone(), ticket_type.clone());
        tokio::spawn(async move {
            let items = json!([{ "ticketTypeId": ticket_type, "quantity": 1 }]);
            app.create_order(&token, items).await.status()
        })
    });
    let mut statuses = Vec::new();
    for buyer in buyers {
        statuses.push(buyer.await.unwrap());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(watcher.await.unwrap() > 0);
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, refused), (50, 150), "{statuses:?}");
    assert_eq!(
        app.stock(&ticket_type).await,
        json!({ "total": 50, "available": 0, "reserved": 50, "sold": 0 })
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 50);
}
