//! Idempotency keys whose first request never finished: in flight (409) until
//! IDEMPOTENCY_INFLIGHT_TIMEOUT, then a retry takes the key over and runs — exactly one retry,
//! and the abandoned request can no longer overwrite what the retry stored.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use wallyt_pay::storage::idempotency::{Claim, KeyRef};
use wallyt_pay_actors::{Clock, SystemClock};

use crate::expiry::short_ttls;
use crate::helpers::{expect_error, expect_status, Backend, TestApp};
use crate::on_both_backends;
use crate::shop::purchase;

on_both_backends!(
    a_claim_that_never_finished_is_taken_over_once_after_the_timeout,
    a_prepay_dropped_on_a_disconnect_runs_again_after_the_timeout
);

const TIMEOUT: Duration = Duration::from_secs(1);

fn one_second(vars: &mut HashMap<String, String>) {
    vars.insert("IDEMPOTENCY_INFLIGHT_TIMEOUT".into(), "1s".into());
}

/// The store on its own: a crashed request is a claim nobody completes.
async fn a_claim_that_never_finished_is_taken_over_once_after_the_timeout(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, one_second).await else {
        return;
    };
    let (_, _, user_id) = app.login("oCrashedClient").await;
    let key = KeyRef {
        user_id,
        endpoint: "refund",
        key: "k-1",
    };
    let t0 = SystemClock.now();
    let at = |ms: u64| t0.plus(Duration::from_millis(ms));
    let claim = |ms: u64, hash: &'static str| {
        let (db, key) = (&app.db, &key);
        async move { db.claim_idempotency_key(key, hash, at(ms), TIMEOUT).await }
    };

    let Claim::Fresh(crashed) = claim(0, "h").await.unwrap() else {
        panic!("the first claim is fresh");
    };
    assert!(
        matches!(claim(999, "h").await.unwrap(), Claim::Conflict(m) if m.contains("in flight"))
    );
    // Past the timeout another request still may not use the key.
    assert!(
        matches!(claim(1500, "other").await.unwrap(), Claim::Conflict(m) if m.contains("different"))
    );

    // Two retries at once: one takes the claim over, the other sees it in flight.
    let (a, b) = tokio::join!(claim(1500, "h"), claim(1500, "h"));
    let (a, b) = (a.unwrap(), b.unwrap());
    let retry = match (a, b) {
        (Claim::Fresh(token), Claim::Conflict(_)) | (Claim::Conflict(_), Claim::Fresh(token)) => {
            token
        }
        other => panic!("exactly one retry takes over: {other:?}"),
    };
    assert_ne!(retry, crashed);

    // The abandoned request comes back late: it can neither store nor forget the key.
    assert!(!app
        .db
        .complete_idempotency_key(&key, &crashed, 200, "old")
        .await
        .unwrap());
    assert!(!app
        .db
        .release_idempotency_key(&key, &crashed)
        .await
        .unwrap());
    assert!(app
        .db
        .complete_idempotency_key(&key, &retry, 200, "new")
        .await
        .unwrap());
    assert_eq!(
        claim(99_000, "h").await.unwrap(),
        Claim::Replay {
            status: 200,
            body: "new".into()
        },
        "a finished key is replayed, never taken over"
    );
}

/// The client gives up while the gateway is slow; actix drops the handler, so nothing
/// completes the key.
async fn a_prepay_dropped_on_a_disconnect_runs_again_after_the_timeout(backend: Backend) {
    let Some(app) = TestApp::spawn_with_sandbox(backend, |vars| {
        short_ttls(vars);
        vars.insert("PREPAY_TTL".into(), "30s".into());
        vars.insert("ORDER_TTL".into(), "60s".into());
        one_second(vars);
    })
    .await
    else {
        return;
    };
    let p = purchase(&app, 5, 1).await;
    let late = json!({ "delay_ms": 2000, "count": 1, "service": "pay.weixin.jspay" });
    app.sandbox_faults(None, json!({ "late_answer": late }))
        .await;
    let body = json!({ "orderId": p.order, "openid": p.openid });
    let prepay = |timeout: Duration| {
        app.client
            .post(app.url("/payments/wechat/prepay"))
            .bearer_auth(&p.token)
            .header("Idempotency-Key", "prepay-1")
            .json(&body)
            .timeout(timeout)
            .send()
    };

    let started = Instant::now();
    let gave_up = prepay(Duration::from_millis(300)).await.unwrap_err();
    assert!(gave_up.is_timeout(), "{gave_up}");
    let busy = prepay(Duration::from_secs(10)).await.unwrap();
    expect_error(busy, StatusCode::CONFLICT, "CONFLICT").await;

    let past_timeout = started + TIMEOUT + Duration::from_millis(200);
    tokio::time::sleep(past_timeout.saturating_duration_since(Instant::now())).await;
    let retried = prepay(Duration::from_secs(10)).await.unwrap();
    let retried = expect_status(retried, StatusCode::OK).await;
    let otn = retried["data"]["outTradeNo"].as_str().unwrap().to_owned();
    let replayed = expect_status(
        prepay(Duration::from_secs(10)).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(replayed, retried, "the retry's answer is the one kept");

    // The retry resumed the first request's work: one trade at the gateway.
    let trades: Value = app.get("/sandbox/trades").await.json().await.unwrap();
    let trades = trades.as_array().unwrap();
    assert_eq!(trades.len(), 1, "{trades:?}");
    assert_eq!(trades[0]["out_trade_no"], json!(otn));
}
