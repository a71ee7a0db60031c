//! Retries are safe (issue 9, defects 2, 3 and 5): a refund is bound to the request that made
//! it, "refund the rest" means what is still refundable, and a refund a node left PROCESSING is
//! finished by another node that was already running.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

use crate::helpers::{expect_error, expect_status, Backend, TestApp};
use crate::shop::{paid_purchase, sandbox_refunds, Gateway};

async fn refunds_of(app: &TestApp, token: &str, order: &Value) -> Vec<Value> {
    app.order(token, order).await["refunds"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Defect 2: the first request timed out although the gateway took the refund, the refund was
/// finished in the background, and the client retries with the same key. Before the fix the
/// key was released on the 504 and the retry made a second refund under a new number.
#[tokio::test]
async fn a_retry_with_the_same_key_never_makes_a_second_refund() {
    let app = TestApp::spawn_with_sandbox(Backend::Sqlite, |vars| {
        vars.insert("HTTP_TIMEOUT".into(), "400ms".into());
        vars.insert("REFUND_POLL_INTERVAL".into(), "100ms".into());
    })
    .await
    .unwrap();
    let (p, otn) = paid_purchase(&app, 10, 2).await;
    app.sandbox_faults(Some(&otn), json!({ "gateway_slow_ms": 1000 }))
        .await;
    let body = json!({ "orderId": p.order, "refundAmount": 50.00 });
    expect_error(
        app.refund(&p.token, body.clone(), Some("key-1")).await,
        StatusCode::GATEWAY_TIMEOUT,
        "GATEWAY_TIMEOUT",
    )
    .await;
    app.sandbox_faults(Some(&otn), json!({})).await;
    // The background poll finishes the refund before the client comes back.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let refunds = refunds_of(&app, &p.token, &p.order).await;
        if refunds.first().map(|r| r["status"].clone()) == Some(json!("SUCCESS")) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{refunds:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let retried = expect_status(
        app.refund(&p.token, body, Some("key-1")).await,
        StatusCode::OK,
    )
    .await["data"]
        .clone();
    assert_eq!(retried["status"], json!("SUCCESS"));
    let refunds = refunds_of(&app, &p.token, &p.order).await;
    assert_eq!(refunds.len(), 1, "one logical refund: {refunds:?}");
    assert_eq!(retried["outRefundNo"], refunds[0]["outRefundNo"]);
    let at_gateway = sandbox_refunds(&app, &otn).await;
    assert_eq!(at_gateway.len(), 1, "one refund at the gateway");
    let order = app.order(&p.token, &p.order).await;
    assert_eq!(order["refundedAmount"], json!(50.0));
}

/// Defect 3: with a partial refund still PROCESSING, a refund with no amount refunds what is
/// left — before the fix it answered (and resent) the partial refund instead.
#[tokio::test]
async fn refund_the_rest_takes_what_a_processing_refund_leaves() {
    let app = TestApp::spawn_with_sandbox(Backend::Sqlite, |vars| {
        vars.insert("REFUND_POLL_INTERVAL".into(), "1h".into());
    })
    .await
    .unwrap();
    let (p, otn) = paid_purchase(&app, 10, 2).await;
    app.sandbox_faults(Some(&otn), json!({ "refund_processing_queries": 1000 }))
        .await;
    let partial = expect_status(
        app.refund(
            &p.token,
            json!({ "orderId": p.order, "refundAmount": 50.00 }),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await["data"]
        .clone();
    assert_eq!(partial["status"], json!("PROCESSING"));
    let rest = expect_status(
        app.refund(&p.token, json!({ "orderId": p.order }), None)
            .await,
        StatusCode::OK,
    )
    .await["data"]
        .clone();
    assert_eq!(rest["refundAmount"], json!(50.0), "{rest}");
    assert_ne!(rest["outRefundNo"], partial["outRefundNo"]);
    // Nothing is left now: a third request is refused, not answered with an old refund.
    expect_error(
        app.refund(&p.token, json!({ "orderId": p.order }), None)
            .await,
        StatusCode::BAD_REQUEST,
        "REFUND_AMOUNT_EXCEEDED",
    )
    .await;
    let at_gateway = sandbox_refunds(&app, &otn).await;
    let fees: Vec<&Value> = at_gateway.iter().map(|r| &r["refund_fee"]).collect();
    assert_eq!(fees.len(), 2, "{at_gateway:?}");
}

/// Defect 5: a node begins a refund, the gateway keeps it PROCESSING, and the node dies. The
/// other node was started before the refund existed; it finishes it without a restart.
#[tokio::test]
async fn a_refund_left_processing_by_a_dead_node_is_finished_by_a_live_one() {
    let Some((database_url, _dir)) = crate::helpers::fresh_database_url(Backend::Postgres).await
    else {
        return;
    };
    let gateway = Gateway::start();
    let sandbox = gateway.sandbox.clone();
    let wallyt = gateway.vars();
    let node = move |poll: &'static str, sweep: &'static str| {
        let (wallyt, database_url) = (wallyt.clone(), database_url.clone());
        move |vars: &mut std::collections::HashMap<String, String>| {
            wallyt(vars);
            vars.insert("DATABASE_URL".into(), database_url.clone());
            vars.insert("REFUND_POLL_INTERVAL".into(), poll.into());
            vars.insert("EXPIRY_SWEEP_INTERVAL".into(), sweep.into());
        }
    };
    let survivor = TestApp::spawn_with(Backend::Postgres, node("100ms", "300ms"))
        .await
        .unwrap();
    let doomed = TestApp::spawn_with(Backend::Postgres, node("1h", "1h"))
        .await
        .unwrap();
    let p = crate::shop::purchase(&doomed, 5, 1).await;
    let prepay = expect_status(
        doomed.prepay(&p.token, &p.order, &p.openid).await,
        StatusCode::OK,
    )
    .await;
    let otn = prepay["data"]["outTradeNo"].as_str().unwrap().to_owned();
    sandbox.with_state(|s| {
        s.global_faults.notify_drop = Some(true);
        s.global_faults.refund_processing_queries = Some(5);
    });
    gateway.pay(&otn, false).await;
    assert_eq!(
        doomed.status(&p.token, &p.order).await["status"],
        json!("CONFIRMED")
    );
    let answer = expect_status(
        doomed
            .refund(&p.token, json!({ "orderId": p.order }), None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(answer["data"]["status"], json!("PROCESSING"));
    doomed.handle.stop().await;

    let order = survivor
        .wait_for_order(&p.token, &p.order, "CANCELLED")
        .await;
    assert_eq!(order["cancelReason"], json!("REFUNDED"));
    assert_eq!(order["refunds"][0]["status"], json!("SUCCESS"));
    assert_eq!(sandbox.with_state(|s| s.trades[&otn].refunds.len()), 1);
}

/// A full refund whose answer was lost cancelled the order meanwhile; the retry under the same
/// key answers that refund — before, the order's new status answered 400 INVALID_ORDER_STATUS
/// and the client never learnt its money was back.
#[tokio::test]
async fn a_retry_after_the_refund_cancelled_the_order_answers_the_refund() {
    let app = TestApp::spawn_with_sandbox(Backend::Sqlite, |vars| {
        vars.insert("HTTP_TIMEOUT".into(), "400ms".into());
        vars.insert("REFUND_POLL_INTERVAL".into(), "100ms".into());
    })
    .await
    .unwrap();
    let (p, otn) = paid_purchase(&app, 10, 2).await;
    app.sandbox_faults(Some(&otn), json!({ "gateway_slow_ms": 1000 }))
        .await;
    let body = json!({ "orderId": p.order });
    expect_error(
        app.refund(&p.token, body.clone(), Some("all-of-it")).await,
        StatusCode::GATEWAY_TIMEOUT,
        "GATEWAY_TIMEOUT",
    )
    .await;
    app.sandbox_faults(Some(&otn), json!({})).await;
    let order = app.wait_for_order(&p.token, &p.order, "CANCELLED").await;
    assert_eq!(order["status"], json!("CANCELLED"), "{order}");
    let retried = expect_status(
        app.refund(&p.token, body, Some("all-of-it")).await,
        StatusCode::OK,
    )
    .await["data"]
        .clone();
    assert_eq!(retried["status"], json!("SUCCESS"));
    assert_eq!(retried["refundAmount"], json!(100.0));
    assert_eq!(sandbox_refunds(&app, &otn).await.len(), 1);
}
