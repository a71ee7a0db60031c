//! `POST /payments/refund` over real HTTP against the sandbox: partial and full refunds, races,
//! uncertain outcomes resent under the same number, every final status, and Idempotency-Key.

use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

use crate::helpers::{expect_error, expect_status, Backend, TestApp};
use crate::on_both_backends;
use crate::shop::{paid_purchase, purchase, sandbox_refunds};

on_both_backends!(
    runbook_partial_then_full_refund,
    concurrent_refunds_never_exceed_the_payment
);

async fn runbook_partial_then_full_refund(backend: Backend) {
    let Some(app) = TestApp::spawn_with_sandbox(backend, |_| {}).await else {
        return;
    };
    let (p, otn) = paid_purchase(&app, 10, 2).await;

    let body = json!({ "orderId": p.order, "refundAmount": 50.00, "reason": "部分退款" });
    let first =
        expect_status(app.refund(&p.token, body, None).await, StatusCode::OK).await["data"].clone();
    assert_eq!(first["status"], json!("SUCCESS"));
    assert_eq!(first["refundAmount"], json!(50.0));
    assert!(first["outRefundNo"]
        .as_str()
        .unwrap()
        .starts_with(&format!("RF{}_", p.order)));
    assert!(first["refundId"].is_string());
    let status = app.status(&p.token, &p.order).await;
    assert_eq!(status["status"], json!("CONFIRMED"));
    assert_eq!(status["paymentStatus"], json!("PARTIALLY_REFUNDED"));
    assert_eq!(status["refundedAmount"], json!(50.0));

    let too_much = json!({ "orderId": p.order, "refundAmount": 60.00 });
    expect_error(
        app.refund(&p.token, too_much, None).await,
        StatusCode::BAD_REQUEST,
        "REFUND_AMOUNT_EXCEEDED",
    )
    .await;

    let rest = json!({ "orderId": p.order, "reason": "用户申请退款" });
    let second =
        expect_status(app.refund(&p.token, rest, None).await, StatusCode::OK).await["data"].clone();
    assert_eq!(
        (second["status"].clone(), second["refundAmount"].clone()),
        (json!("SUCCESS"), json!(50.0))
    );
    let status = app.status(&p.token, &p.order).await;
    assert_eq!(status["paymentStatus"], json!("REFUNDED"));
    assert_eq!(status["refundedAmount"], json!(100.0));
    let order = app.order(&p.token, &p.order).await;
    assert_eq!(order["status"], json!("CANCELLED"));
    assert_eq!(order["cancelReason"], json!("REFUNDED"));
    assert!(order["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["status"] == json!("CANCELLED")));
    assert_eq!(order["refunds"].as_array().unwrap().len(), 2);
    assert_eq!(
        app.stock(&p.ticket_type).await,
        json!({ "total": 10, "available": 10, "reserved": 0, "sold": 0 })
    );

    let again = json!({ "orderId": p.order });
    expect_error(
        app.refund(&p.token, again, None).await,
        StatusCode::BAD_REQUEST,
        "INVALID_ORDER_STATUS",
    )
    .await;
    let at_gateway: i64 = sandbox_refunds(&app, &otn)
        .await
        .iter()
        .map(|r| r["refund_fee"].as_i64().unwrap())
        .sum();
    assert_eq!(at_gateway, 10_000);
}

async fn concurrent_refunds_never_exceed_the_payment(backend: Backend) {
    let Some(app) = TestApp::spawn_with_sandbox(backend, |_| {}).await else {
        return;
    };
    // Five 50.00 tickets; each racer asks for two of them: two requests fit.
    let (p, otn) = paid_purchase(&app, 10, 5).await;
    let app = std::sync::Arc::new(app);
    let racers = (0..8).map(|_| {
        let (app, token, order) = (app.clone(), p.token.clone(), p.order.clone());
        tokio::spawn(async move {
            let body = json!({ "orderId": order, "refundAmount": 100.00 });
            app.refund(&token, body, None).await.status()
        })
    });
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::BAD_REQUEST)
        .count();
    assert_eq!((ok, refused), (2, 6), "{statuses:?}");
    let at_gateway: i64 = sandbox_refunds(&app, &otn)
        .await
        .iter()
        .map(|r| r["refund_fee"].as_i64().unwrap())
        .sum();
    assert_eq!(at_gateway, 20_000);
    let status = app.status(&p.token, &p.order).await;
    assert_eq!(
        (
            status["refundedAmount"].clone(),
            status["paymentStatus"].clone()
        ),
        (json!(200.0), json!("PARTIALLY_REFUNDED"))
    );
    let order = app.order(&p.token, &p.order).await;
    let valid = order["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == json!("VALID"))
        .count();
    assert_eq!(valid, 1, "four tickets went back: {order}");
    assert_eq!(app.stock(&p.ticket_type).await["available"], json!(9));
}

#[tokio::test]
async fn notsure_fail_and_change_each_end_where_they_should() {
    let app = TestApp::spawn_with_sandbox(Backend::Sqlite, |_| {})
        .await
        .unwrap();

    // NOTSURE: resent under the same number, then it succeeds.
    let (p, otn) = paid_purchase(&app, 10, 1).await;
    app.sandbox_faults(Some(&otn), json!({ "refund_outcome": "NOTSURE" }))
        .await;
    let answer = expect_status(
        app.refund(&p.token, json!({ "orderId": p.order }), None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(answer["data"]["status"], json!("SUCCESS"));
    let at_gateway = sandbox_refunds(&app, &otn).await;
    assert_eq!(
        (at_gateway.len(), at_gateway[0]["requests"].clone()),
        (1, json!(2))
    );

    // FAIL: 502, recorded FAIL, and the amount can be refunded again.
    let (p, otn) = paid_purchase(&app, 10, 1).await;
    app.sandbox_faults(Some(&otn), json!({ "refund_outcome": "FAIL" }))
        .await;
    expect_error(
        app.refund(&p.token, json!({ "orderId": p.order }), None)
            .await,
        StatusCode::BAD_GATEWAY,
        "GATEWAY_ERROR",
    )
    .await;
    let order = app.order(&p.token, &p.order).await;
    assert_eq!(
        (
            order["status"].clone(),
            order["refunds"][0]["status"].clone()
        ),
        (json!("CONFIRMED"), json!("FAIL"))
    );
    assert_eq!(
        app.status(&p.token, &p.order).await["paymentStatus"],
        json!("PAID")
    );
    app.sandbox_faults(Some(&otn), json!({})).await;
    let answer = expect_status(
        app.refund(&p.token, json!({ "orderId": p.order }), None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(answer["data"]["status"], json!("SUCCESS"));
    assert_eq!(
        app.order(&p.token, &p.order).await["status"],
        json!("CANCELLED")
    );

    // CHANGE: visible for a person, and its amount stays held.
    let (p, otn) = paid_purchase(&app, 10, 1).await;
    app.sandbox_faults(Some(&otn), json!({ "refund_outcome": "CHANGE" }))
        .await;
    expect_error(
        app.refund(&p.token, json!({ "orderId": p.order }), None)
            .await,
        StatusCode::BAD_GATEWAY,
        "GATEWAY_ERROR",
    )
    .await;
    let order = app.order(&p.token, &p.order).await;
    assert_eq!(order["refunds"][0]["status"], json!("CHANGE"));
    let more = json!({ "orderId": p.order, "refundAmount": 0.01 });
    expect_error(
        app.refund(&p.token, more, None).await,
        StatusCode::BAD_REQUEST,
        "REFUND_AMOUNT_EXCEEDED",
    )
    .await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    for outcome in ["succeeded", "failed", "change"] {
        assert!(
            metrics.contains(&format!("wallyt_refunds_total{{outcome=\"{outcome}\"}}")),
            "{outcome}: {metrics}"
        );
    }
}

#[tokio::test]
async fn idempotency_keys_replay_refuse_and_guard_in_flight_requests() {
    let app = TestApp::spawn_with_sandbox(Backend::Sqlite, |_| {})
        .await
        .unwrap();
    let (p, otn) = paid_purchase(&app, 10, 2).await;
    let body = json!({ "orderId": p.order, "refundAmount": 50.00 });
    let first = app.refund(&p.token, body.clone(), Some("key-1")).await;
    let first = expect_status(first, StatusCode::OK).await;
    let replay = expect_status(
        app.refund(&p.token, body.clone(), Some("key-1")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(first, replay);
    assert_eq!(
        sandbox_refunds(&app, &otn).await.len(),
        1,
        "no second gateway call"
    );
    let other = json!({ "orderId": p.order, "refundAmount": 100.00 });
    expect_error(
        app.refund(&p.token, other, Some("key-1")).await,
        StatusCode::CONFLICT,
        "CONFLICT",
    )
    .await;

    // While the first request with a key is still running, the same key is refused.
    app.sandbox_faults(Some(&otn), json!({ "gateway_slow_ms": 1500 }))
        .await;
    let slow = {
        let (url, token, body) = (
            app.url("/payments/refund"),
            p.token.clone(),
            json!({ "orderId": p.order, "refundAmount": 50.00 }),
        );
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", "key-2")
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let started = Instant::now();
    let body = json!({ "orderId": p.order, "refundAmount": 50.00 });
    expect_error(
        app.refund(&p.token, body, Some("key-2")).await,
        StatusCode::CONFLICT,
        "CONFLICT",
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "refused at once, not queued"
    );
    assert_eq!(slow.await.unwrap(), StatusCode::OK);

    // Prepay takes keys too; a replay of a refusal is the same refusal.
    let q = purchase(&app, 5, 1).await;
    let prepay = |key| {
        app.client
            .post(app.url("/payments/wechat/prepay"))
            .bearer_auth(&q.token)
            .header("Idempotency-Key", key)
            .json(&json!({ "orderId": q.order, "openid": q.openid }))
    };
    let a = expect_status(prepay("p-1").send().await.unwrap(), StatusCode::OK).await;
    let b = expect_status(prepay("p-1").send().await.unwrap(), StatusCode::OK).await;
    assert_eq!(a, b);
}

#[tokio::test]
async fn refund_refusals() {
    let app = TestApp::spawn_with_sandbox(Backend::Sqlite, |_| {})
        .await
        .unwrap();
    let pending = purchase(&app, 5, 1).await;
    let (p, _) = paid_purchase(&app, 5, 1).await;
    for body in [
        json!({ "orderId": p.order, "refundAmount": 0 }),
        json!({ "orderId": p.order, "refundAmount": 1.001 }),
        json!({ "orderId": p.order, "refundAmount": "10.00" }),
        json!({ "orderId": p.order, "refundAmount": -1 }),
        json!({ "refundAmount": 1 }),
    ] {
        expect_error(
            app.refund(&p.token, body, None).await,
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
        )
        .await;
    }
    let body = json!({ "orderId": pending.order });
    expect_error(
        app.refund(&pending.token, body, None).await,
        StatusCode::BAD_REQUEST,
        "INVALID_ORDER_STATUS",
    )
    .await;
    let body = json!({ "orderId": p.order });
    expect_error(
        app.refund(&pending.token, body, None).await,
        StatusCode::NOT_FOUND,
        "ORDER_NOT_FOUND",
    )
    .await;
    let response = app
        .post_json("/payments/refund", None, &json!({ "orderId": p.order }))
        .await;
    expect_error(response, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    assert_eq!(app.order(&p.token, &p.order).await["refunds"], json!([]));
}

/// The gateway's refusal text (codes, field names, its Chinese messages) is the operator's:
/// the buyer's answer carries none of it.
#[tokio::test]
async fn a_gateway_refusal_is_not_quoted_to_the_buyer() {
    let app = TestApp::spawn_with_sandbox(Backend::Sqlite, |_| {})
        .await
        .unwrap();
    let (p, otn) = paid_purchase(&app, 5, 1).await;
    // The sandbox's record of the trade disagrees with ours, so it refuses the refund with
    // PARAM_ERROR "total_fee differs from the order".
    app.sandbox
        .as_ref()
        .unwrap()
        .with_state(|s| s.trades.get_mut(&otn).unwrap().total_fee += 1);
    let response = app
        .refund(&p.token, json!({ "orderId": p.order }), None)
        .await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let text = response.text().await.unwrap();
    assert!(text.contains("GATEWAY_ERROR"), "{text}");
    for gateway_words in ["PARAM_ERROR", "total_fee", "differs", "refused the refund"] {
        assert!(!text.contains(gateway_words), "{gateway_words} in {text}");
    }
}
