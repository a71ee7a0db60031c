//! Money that arrives for an order no longer waiting for it: honoured if the stock is still
//! there, otherwise returned in full; and no trade left open once another one paid.

use serde_json::json;
use std::time::Duration;

use crate::expiry::{eventually, prepay, short_ttls};
use crate::helpers::{Backend, TestApp};
use crate::shop::{force_pay, purchase, Purchase};

/// Lets the first prepay expire and be closed, then opens a second one; answers both trades.
async fn first_closed_then_second(app: &TestApp, p: &Purchase) -> (String, String) {
    let first = prepay(app, p).await;
    eventually(Duration::from_secs(5), || async {
        let trade = app.sandbox_trade(&first).await;
        (trade["close_calls"] == json!(1), trade)
    })
    .await;
    let second = prepay(app, p).await;
    assert_ne!(first, second);
    (first, second)
}

fn long_order(vars: &mut std::collections::HashMap<String, String>) {
    short_ttls(vars);
    vars.insert("ORDER_TTL".into(), "1m".into());
}

/// Lets the order expire (trade closed, stock released), then has the customer pay anyway.
async fn pay_after_expiry(app: &TestApp, p: &Purchase, otn: &str) {
    let order = app.wait_for_order(&p.token, &p.order, "CANCELLED").await;
    assert_eq!(order["cancelReason"], json!("EXPIRED"));
    force_pay(app, otn).await;
}

#[tokio::test]
async fn a_late_payment_with_stock_left_confirms_the_order() {
    let app = TestApp::spawn_with_sandbox(Backend::Sqlite, short_ttls)
        .await
        .unwrap();
    let p = purchase(&app, 5, 2).await;
    let otn = prepay(&app, &p).await;
    pay_after_expiry(&app, &p, &otn).await;
    let order = app.wait_for_order(&p.token, &p.order, "CONFIRMED").await;
    assert_eq!(order["status"], json!("CONFIRMED"));
    assert_eq!(order["cancelReason"], json!(null));
    assert_eq!(order["tickets"].as_array().unwrap().len(), 2);
    assert_eq!(
        app.stock(&p.ticket_type).await,
        json!({ "total": 5, "available": 3, "reserved": 0, "sold": 2 })
    );
    let status = app.status(&p.token, &p.order).await;
    assert_eq!(status["paymentStatus"], json!("PAID"));
}

#[tokio::test]
async fn a_late_payment_without_stock_is_refunded_in_full() {
    let app = TestApp::spawn_with_sandbox(Backend::Sqlite, short_ttls)
        .await
        .unwrap();
    let p = purchase(&app, 1, 1).await;
    let otn = prepay(&app, &p).await;
    let order = app.wait_for_order(&p.token, &p.order, "CANCELLED").await;
    assert_eq!(order["status"], json!("CANCELLED"));
    // Someone else buys the released ticket before the late money arrives.
    let (other, _, _) = app.login("oFaster").await;
    app.order_of(&other, &p.ticket_type, 1).await;
    pay_after_expiry(&app, &p, &otn).await;

    let order = eventually(Duration::from_secs(5), || async {
        let order = app.order(&p.token, &p.order).await;
        (
            order["cancelReason"] == json!("LATE_PAYMENT_REFUNDED"),
            order,
        )
    })
    .await;
    assert_eq!(order["status"], json!("CANCELLED"));
    assert_eq!(order["cancelReason"], json!("LATE_PAYMENT_REFUNDED"));
    assert_eq!(order["refundedAmount"], json!(50.0));
    assert_eq!(order["tickets"], json!([]));
    let status = app.status(&p.token, &p.order).await;
    assert_eq!(
        (
            status["paymentStatus"].clone(),
            status["refundedAmount"].clone()
        ),
        (json!("REFUNDED"), json!(50.0))
    );
    let refunds = app.sandbox_trade(&otn).await["refunds"].clone();
    assert_eq!(refunds.as_array().unwrap().len(), 1);
    assert_eq!(refunds[0]["refund_fee"], json!(5_000));
    assert_eq!(
        refunds[0]["out_refund_no"].as_str().unwrap(),
        format!("RF{}_P{}", p.order, order["payment"]["id"])
    );
    // The other buyer's reservation is untouched.
    assert_eq!(
        app.stock(&p.ticket_type).await,
        json!({ "total": 1, "available": 0, "reserved": 1, "sold": 0 })
    );
}

#[tokio::test]
async fn a_second_trade_paid_for_a_confirmed_order_is_refunded_in_full() {
    let app = TestApp::spawn_with_sandbox(Backend::Sqlite, long_order)
        .await
        .unwrap();
    let p = purchase(&app, 5, 1).await;
    let (first, second) = first_closed_then_second(&app, &p).await;
    app.sandbox_pay(&second).await;
    app.wait_for_order(&p.token, &p.order, "CONFIRMED").await;
    // Then the first, closed trade is paid after all.
    force_pay(&app, &first).await;
    let refunds = eventually(Duration::from_secs(5), || async {
        let refunds = app.sandbox_trade(&first).await["refunds"].clone();
        (refunds.as_array().is_some_and(|r| !r.is_empty()), refunds)
    })
    .await;
    assert_eq!(refunds[0]["refund_fee"], json!(5_000));
    let order = app.order(&p.token, &p.order).await;
    assert_eq!(
        order["status"],
        json!("CONFIRMED"),
        "the order keeps its own payment"
    );
    assert_eq!(order["refundedAmount"], json!(0.0));
    assert_eq!(order["tickets"].as_array().unwrap().len(), 1);
    assert_eq!(order["payment"]["outTradeNo"], json!(second));
    assert_eq!(order["refunds"][0]["status"], json!("SUCCESS"));
    assert_eq!(
        app.stock(&p.ticket_type).await,
        json!({ "total": 5, "available": 4, "reserved": 0, "sold": 1 })
    );
}

#[tokio::test]
async fn an_open_trade_is_closed_even_after_another_trade_confirmed_the_order() {
    let app = TestApp::spawn_with_sandbox(Backend::Sqlite, long_order)
        .await
        .unwrap();
    let p = purchase(&app, 5, 1).await;
    let (first, second) = first_closed_then_second(&app, &p).await;
    // The closed first trade is paid after all: it confirms the order.
    force_pay(&app, &first).await;
    app.wait_for_order(&p.token, &p.order, "CONFIRMED").await;
    // The second trade must not stay open: at its expiry it is closed like any other.
    let trade = eventually(Duration::from_secs(6), || async {
        let trade = app.sandbox_trade(&second).await;
        (trade["close_calls"] == json!(1), trade)
    })
    .await;
    assert_eq!(trade["close_calls"], json!(1));
    let open = "SELECT COUNT(*) FROM payments WHERE status = 'NOTPAY'";
    assert_eq!(app.count(open).await, 0);
    assert_eq!(
        app.order(&p.token, &p.order).await["status"],
        json!("CONFIRMED")
    );
}
