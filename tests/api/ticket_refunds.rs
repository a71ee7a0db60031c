//! Refunds by whole tickets (issue 10, item 1): a buyer gives back whole tickets — never money
//! without tickets — and the tickets of a successful refund are cancelled with their units back
//! on sale; an operator refunds any amount through the admin API.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{expect_error, expect_status, Backend, TestApp, ADMIN_TOKEN};
use crate::on_both_backends;
use crate::shop::sandbox_refunds;

on_both_backends!(a_partial_refund_gives_back_its_ticket_and_its_unit);

struct Paid {
    token: String,
    order: Value,
    ticket_type: Value,
    otn: String,
}

/// A confirmed order of `quantity` tickets at 100.00 each.
async fn paid(app: &TestApp, quantity: i64) -> Paid {
    let (token, openid, _) = app
        .login(&format!("oTickets{}", uuid::Uuid::new_v4().simple()))
        .await;
    let ticket_type = app.create_ticket_type("VIP", "100.00", 10).await["id"].clone();
    let order = app.order_of(&token, &ticket_type, quantity).await["id"].clone();
    let prepay = expect_status(app.prepay(&token, &order, &openid).await, StatusCode::OK).await;
    let otn = prepay["data"]["outTradeNo"].as_str().unwrap().to_owned();
    assert!(app.sandbox_pay(&otn).await.status().is_success());
    app.wait_for_order(&token, &order, "CONFIRMED").await;
    Paid {
        token,
        order,
        ticket_type,
        otn,
    }
}

fn tickets(order: &Value) -> Vec<(i64, String)> {
    order["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_i64().unwrap(),
                t["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn operator_refund(
    app: &TestApp,
    order: &Value,
    body: Value,
    key: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(&format!("/admin/orders/{order}/refunds")))
        .bearer_auth(ADMIN_TOKEN)
        .header("X-Operator", "ops-tester")
        .json(&body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn money_without_tickets_is_refused_to_a_buyer() {
    let app = TestApp::spawn_with_sandbox(Backend::Sqlite, |_| {})
        .await
        .unwrap();
    let p = paid(&app, 2).await;
    // The old hole: 199.00 back and both tickets kept.
    let refused = expect_error(
        app.refund(
            &p.token,
            json!({ "orderId": p.order, "refundAmount": 199.00 }),
            None,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
    )
    .await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("100.00"),
        "the message lists the unit prices that can be refunded: {refused}"
    );
    // Above what is refundable: the amount rule comes first.
    expect_error(
        app.refund(
            &p.token,
            json!({ "orderId": p.order, "refundAmount": 300.00 }),
            None,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "REFUND_AMOUNT_EXCEEDED",
    )
    .await;
    let order = app.order(&p.token, &p.order).await;
    assert!(tickets(&order).iter().all(|(_, s)| s == "VALID"));
    assert!(sandbox_refunds(&app, &p.otn).await.is_empty());
}

async fn a_partial_refund_gives_back_its_ticket_and_its_unit(backend: Backend) {
    let Some(app) = TestApp::spawn_with_sandbox(backend, |_| {}).await else {
        return;
    };
    let p = paid(&app, 2).await;
    assert_eq!(app.stock(&p.ticket_type).await["sold"], json!(2));
    let one = expect_status(
        app.refund(
            &p.token,
            json!({ "orderId": p.order, "refundAmount": 100.00 }),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await["data"]
        .clone();
    assert_eq!(one["status"], json!("SUCCESS"));
    let taken = one["ticketIds"].as_array().unwrap().clone();
    assert_eq!(taken.len(), 1);
    let order = app.order(&p.token, &p.order).await;
    assert_eq!(order["status"], json!("CONFIRMED"));
    let states = tickets(&order);
    for (id, status) in &states {
        let expected = if json!(id) == taken[0] {
            "CANCELLED"
        } else {
            "VALID"
        };
        assert_eq!(status, expected, "{states:?}");
    }
    assert_eq!(
        app.stock(&p.ticket_type).await,
        json!({ "total": 10, "available": 9, "reserved": 0, "sold": 1 }),
        "the refunded ticket's unit is on sale again"
    );
    // The rest: the last ticket, and with it the order.
    let rest = expect_status(
        app.refund(&p.token, json!({ "orderId": p.order }), None)
            .await,
        StatusCode::OK,
    )
    .await["data"]
        .clone();
    assert_eq!(rest["refundAmount"], json!(100.0));
    let order = app.order(&p.token, &p.order).await;
    assert_eq!(order["status"], json!("CANCELLED"));
    assert_eq!(order["cancelReason"], json!("REFUNDED"));
    assert_eq!(app.stock(&p.ticket_type).await["available"], json!(10));
}

#[tokio::test]
async fn named_tickets_must_be_valid_tickets_of_the_order() {
    let app = TestApp::spawn_with_sandbox(Backend::Sqlite, |_| {})
        .await
        .unwrap();
    let p = paid(&app, 2).await;
    let q = paid(&app, 1).await;
    let mine = tickets(&app.order(&p.token, &p.order).await);
    let theirs = tickets(&app.order(&q.token, &q.order).await);
    let ask = |ids: Value, amount: Option<f64>| {
        let mut body = json!({ "orderId": p.order, "ticketIds": ids });
        if let Some(amount) = amount {
            body["refundAmount"] = json!(amount);
        }
        body
    };
    let foreign = expect_error(
        app.refund(&p.token, ask(json!([theirs[0].0]), None), None)
            .await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
    )
    .await;
    let unknown = expect_error(
        app.refund(&p.token, ask(json!([987_654]), None), None)
            .await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(
        foreign["error"]["message"], unknown["error"]["message"],
        "never tells whether a ticket exists in another order"
    );
    for bad in [
        ask(json!([mine[0].0, mine[0].0]), None),
        ask(json!([mine[0].0]), Some(50.0)),
    ] {
        expect_error(
            app.refund(&p.token, bad, None).await,
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
        )
        .await;
    }
    let named = expect_status(
        app.refund(&p.token, ask(json!([mine[1].0]), Some(100.0)), None)
            .await,
        StatusCode::OK,
    )
    .await["data"]
        .clone();
    assert_eq!(named["ticketIds"], json!([mine[1].0]));
    // Refunded already: not VALID, so not refundable again.
    expect_error(
        app.refund(&p.token, ask(json!([mine[1].0]), None), None)
            .await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
    )
    .await;
}

#[tokio::test]
async fn tickets_are_refunding_while_processing_and_valid_again_after_a_fail() {
    let app = TestApp::spawn_with_sandbox(Backend::Sqlite, |vars| {
        vars.insert("REFUND_POLL_INTERVAL".into(), "100ms".into());
    })
    .await
    .unwrap();
    let p = paid(&app, 2).await;
    app.sandbox_faults(
        Some(&p.otn),
        json!({ "refund_processing_queries": 5, "refund_outcome": "FAIL" }),
    )
    .await;
    let answer = expect_status(
        app.refund(
            &p.token,
            json!({ "orderId": p.order, "refundAmount": 100.00 }),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await["data"]
        .clone();
    assert_eq!(answer["status"], json!("PROCESSING"));
    let held = answer["ticketIds"][0].as_i64().unwrap();
    let order = app.order(&p.token, &p.order).await;
    assert!(tickets(&order).contains(&(held, "REFUNDING".into())));
    // Not refundable twice: only the other ticket is left for "the rest".
    app.sandbox_faults(Some(&p.otn), json!({ "refund_processing_queries": 1000 }))
        .await;
    let rest = expect_status(
        app.refund(&p.token, json!({ "orderId": p.order }), None)
            .await,
        StatusCode::OK,
    )
    .await["data"]
        .clone();
    assert_eq!(rest["ticketIds"].as_array().unwrap().len(), 1);
    assert_ne!(rest["ticketIds"][0], json!(held));
    // The first refund FAILs at the gateway: its ticket admits its holder again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let order = app.order(&p.token, &p.order).await;
        if tickets(&order).contains(&(held, "VALID".into())) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{order}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn operators_refund_any_amount_and_a_full_one_cancels_the_order() {
    let app = TestApp::spawn_with_sandbox(Backend::Sqlite, |_| {})
        .await
        .unwrap();
    let p = paid(&app, 2).await;
    let unauthenticated = app
        .client
        .post(app.url(&format!("/admin/orders/{}/refunds", p.order)))
        .json(&json!({ "amount": 10.00, "reason": "goodwill" }))
        .send()
        .await
        .unwrap();
    expect_error(unauthenticated, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    expect_error(
        operator_refund(
            &app,
            &p.order,
            json!({ "amount": 10.00, "reason": " " }),
            None,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
    )
    .await;
    let goodwill = json!({ "amount": 10.00, "reason": "late doors" });
    let first = expect_status(
        operator_refund(&app, &p.order, goodwill.clone(), Some("op-1")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(first["data"]["status"], json!("SUCCESS"));
    assert_eq!(first["data"]["ticketIds"], json!([]));
    let replay = expect_status(
        operator_refund(&app, &p.order, goodwill, Some("op-1")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(first, replay, "the same key answers the first refund");
    let order = app.order(&p.token, &p.order).await;
    assert_eq!(order["status"], json!("CONFIRMED"));
    assert!(tickets(&order).iter().all(|(_, s)| s == "VALID"));

    // A buyer's ticket refund is capped at what is left (190.00 of 200.00).
    let buyer = expect_status(
        app.refund(&p.token, json!({ "orderId": p.order }), None)
            .await,
        StatusCode::OK,
    )
    .await["data"]
        .clone();
    assert_eq!(buyer["refundAmount"], json!(190.0));
    let order = app.order(&p.token, &p.order).await;
    assert_eq!(order["status"], json!("CANCELLED"));
    assert_eq!(order["refundedAmount"], json!(200.0));
    assert_eq!(app.stock(&p.ticket_type).await["available"], json!(10));
    let at_gateway: i64 = sandbox_refunds(&app, &p.otn)
        .await
        .iter()
        .map(|r| r["refund_fee"].as_i64().unwrap())
        .sum();
    assert_eq!(at_gateway, 20_000);

    // Everything refundable, no tickets named: the order and its tickets go.
    let q = paid(&app, 2).await;
    let all = expect_status(
        operator_refund(&app, &q.order, json!({ "reason": "event cancelled" }), None).await,
        StatusCode::OK,
    )
    .await["data"]
        .clone();
    assert_eq!(all["refundAmount"], json!(200.0));
    let order = app.order(&q.token, &q.order).await;
    assert_eq!(order["status"], json!("CANCELLED"));
    assert_eq!(order["cancelReason"], json!("REFUNDED"));
    assert!(tickets(&order).iter().all(|(_, s)| s == "CANCELLED"));
    assert_eq!(app.stock(&q.ticket_type).await["available"], json!(10));
}
