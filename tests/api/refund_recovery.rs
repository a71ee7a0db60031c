//! Refunds whose outcome is not known at once: finished in the background, resumed after a
//! restart, and retried under the same out_refund_no after a timeout.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

use crate::helpers::{expect_error, expect_status, Backend, TestApp};
use crate::shop::{paid_purchase, purchase, sandbox_refunds, Gateway};

async fn wait_for_cancelled(app: &TestApp, token: &str, order: &Value) -> Value {
    app.wait_for_order(token, order, "CANCELLED").await
}

#[tokio::test]
async fn a_processing_refund_is_finished_in_the_background() {
    let app = TestApp::spawn_with_sandbox(Backend::Sqlite, |vars| {
        vars.insert("REFUND_POLL_INTERVAL".into(), "100ms".into());
    })
    .await
    .unwrap();
    let (p, otn) = paid_purchase(&app, 10, 1).await;
    app.sandbox_faults(Some(&otn), json!({ "refund_processing_queries": 6 }))
        .await;
    let answer = expect_status(
        app.refund(&p.token, json!({ "orderId": p.order }), None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(answer["data"]["status"], json!("PROCESSING"));
    assert_eq!(
        app.order(&p.token, &p.order).await["status"],
        json!("CONFIRMED"),
        "nothing changes before SUCCESS"
    );
    let order = wait_for_cancelled(&app, &p.token, &p.order).await;
    assert_eq!(
        order["status"],
        json!("CANCELLED"),
        "no further request needed"
    );
    assert_eq!(order["refunds"][0]["status"], json!("SUCCESS"));
}

#[tokio::test]
async fn processing_refunds_survive_a_restart() {
    // One gateway outlives both app instances; the first never polls by itself.
    let gateway = Gateway::start();
    let sandbox = gateway.sandbox.clone();
    let wallyt = gateway.vars();
    let node = move |poll: &'static str| {
        let wallyt = wallyt.clone();
        move |vars: &mut std::collections::HashMap<String, String>| {
            wallyt(vars);
            vars.insert("REFUND_POLL_INTERVAL".into(), poll.into());
        }
    };
    let first = TestApp::spawn_with(Backend::Sqlite, node("1h"))
        .await
        .unwrap();
    let p = purchase(&first, 5, 1).await;
    let prepay = expect_status(
        first.prepay(&p.token, &p.order, &p.openid).await,
        StatusCode::OK,
    )
    .await;
    let otn = prepay["data"]["outTradeNo"].as_str().unwrap().to_owned();
    sandbox.with_state(|s| {
        s.global_faults.notify_drop = Some(true);
        s.global_faults.refund_processing_queries = Some(5);
    });
    gateway.pay(&otn, false).await;
    // The status query finds the payment (the notify was dropped).
    assert_eq!(
        first.status(&p.token, &p.order).await["status"],
        json!("CONFIRMED")
    );
    let answer = expect_status(
        first
            .refund(&p.token, json!({ "orderId": p.order }), None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(answer["data"]["status"], json!("PROCESSING"));
    first.handle.stop().await;

    let database_url = first.database_url.clone();
    let second = TestApp::spawn_with(Backend::Sqlite, move |vars| {
        node("100ms")(vars);
        vars.insert("DATABASE_URL".into(), database_url);
    })
    .await
    .unwrap();
    let order = wait_for_cancelled(&second, &p.token, &p.order).await;
    assert_eq!(order["status"], json!("CANCELLED"));
    assert_eq!(order["cancelReason"], json!("REFUNDED"));
    assert_eq!(sandbox.with_state(|s| s.trades[&otn].refunds.len()), 1);
}

#[tokio::test]
async fn a_timed_out_refund_is_retried_under_the_same_number() {
    let app = TestApp::spawn_with_sandbox(Backend::Sqlite, |vars| {
        vars.insert("HTTP_TIMEOUT".into(), "400ms".into());
        vars.insert("REFUND_POLL_INTERVAL".into(), "1h".into());
    })
    .await
    .unwrap();
    let (p, otn) = paid_purchase(&app, 10, 2).await;
    app.sandbox_faults(Some(&otn), json!({ "gateway_slow_ms": 1000 }))
        .await;
    let body = json!({ "orderId": p.order, "refundAmount": 50.00 });
    expect_error(
        app.refund(&p.token, body.clone(), Some("retry-me")).await,
        StatusCode::GATEWAY_TIMEOUT,
        "GATEWAY_TIMEOUT",
    )
    .await;
    let order = app.order(&p.token, &p.order).await;
    assert_eq!(
        order["refunds"][0]["status"],
        json!("PROCESSING"),
        "kept, not forgotten"
    );
    let first_no = order["refunds"][0]["outRefundNo"].clone();
    tokio::time::sleep(Duration::from_millis(800)).await;
    app.sandbox_faults(Some(&otn), json!({})).await;
    // The client tries again with the same key: the same refund is resent, not a new one.
    let retried = expect_status(
        app.refund(&p.token, body, Some("retry-me")).await,
        StatusCode::OK,
    )
    .await["data"]
        .clone();
    assert_eq!(retried["outRefundNo"], first_no);
    assert_eq!(retried["status"], json!("SUCCESS"));
    let at_gateway = sandbox_refunds(&app, &otn).await;
    assert_eq!(
        at_gateway.len(),
        1,
        "exactly one refund at the gateway: {at_gateway:?}"
    );
    // The gateway did the work of the timed-out call: the retry asked before resending.
    assert_eq!(at_gateway[0]["requests"], json!(1));
    assert_eq!(
        app.order(&p.token, &p.order).await["refunds"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
