//! Money that arrives for an order no longer waiting for it, end to end: paid after expiry
//! with its stock gone, it is returned in full. The other late and double payment cases run
//! on paused time against the engine itself (actors/tests/timers.rs).

use serde_json::json;
use std::time::Duration;

use crate::expiry::{eventually, prepay, short_ttls};
use crate::helpers::{Backend, TestApp};
use crate::shop::{force_pay, purchase, Purchase};

/// Lets the order expire (trade closed, stock released), then has the customer pay anyway.
async fn pay_after_expiry(app: &TestApp, p: &Purchase, otn: &str) {
    let order = app.wait_for_order(&p.token, &p.order, "CANCELLED").await;
    assert_eq!(order["cancelReason"], json!("EXPIRED"));
    force_pay(app, otn).await;
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
