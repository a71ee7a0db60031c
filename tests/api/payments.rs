//! The runbook's payment flow over real HTTP against the mounted sandbox: prepay, the user
//! pays, the notify confirms, the status tells — and prepay's refusals.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{expect_error, expect_status, Backend, TestApp};
use crate::on_both_backends;
use crate::shop::purchase;

on_both_backends!(
    the_runbook_flow,
    a_dropped_notify_is_found_by_the_status_query,
    gateway_trouble_leaves_the_order_untouched
);

async fn the_runbook_flow(backend: Backend) {
    let Some(app) = TestApp::spawn_with_sandbox(backend, |_| {}).await else {
        return;
    };
    let p = purchase(&app, 10, 2).await;

    let prepay = expect_status(
        app.prepay(&p.token, &p.order, &p.openid).await,
        StatusCode::OK,
    )
    .await["data"]
        .clone();
    let otn = prepay["outTradeNo"].as_str().unwrap().to_owned();
    assert!(otn.starts_with(&format!("MP{}_", p.order)), "{otn}");
    assert_eq!(prepay["orderId"], p.order);
    // The six wx.requestPayment fields, all strings, exactly as the gateway's pay_info has them.
    let trade = app.sandbox_trade(&otn).await;
    let pay_info: Value = serde_json::from_str(trade["pay_info"].as_str().unwrap()).unwrap();
    let params = prepay["payParams"].as_object().unwrap();
    assert_eq!(params.len(), 6);
    for name in [
        "appId",
        "timeStamp",
        "nonceStr",
        "package",
        "signType",
        "paySign",
    ] {
        assert!(params[name].is_string(), "{name}");
        assert_eq!(params[name], pay_info[name], "{name}");
    }
    assert_eq!(trade["total_fee"], json!(10_000));
    assert_eq!(trade["sub_openid"], json!(p.openid));
    let attach = format!(
        r#"{{"orderId":{},"userId":{}}}"#,
        p.order,
        user_id(&p.token)
    );
    assert_eq!(trade["attach"], json!(attach));
    let expires: chrono::DateTime<chrono::FixedOffset> =
        chrono::DateTime::parse_from_rfc3339(prepay["expiresAt"].as_str().unwrap()).unwrap();
    let lifetime = expires.timestamp() - chrono::Utc::now().timestamp();
    assert!(
        (290..=300).contains(&lifetime),
        "PREPAY_TTL is 5 minutes, got {lifetime}s"
    );

    // Asking again while it is open answers the same prepay, without a second trade.
    let again = expect_status(
        app.prepay(&p.token, &p.order, &p.openid).await,
        StatusCode::OK,
    )
    .await["data"]
        .clone();
    assert_eq!(again, prepay);
    let trades: Value = app.get("/sandbox/trades").await.json().await.unwrap();
    assert_eq!(trades.as_array().unwrap().len(), 1);

    assert!(app.sandbox_pay(&otn).await.status().is_success());
    let order = app.wait_for_order(&p.token, &p.order, "CONFIRMED").await;
    assert_eq!(order["status"], json!("CONFIRMED"));
    let tickets = order["tickets"].as_array().unwrap();
    assert_eq!(tickets.len(), 2);
    assert_ne!(tickets[0]["code"], tickets[1]["code"]);
    assert!(tickets
        .iter()
        .all(|t| t["status"] == json!("VALID") && t["code"].as_str().unwrap().len() >= 16));

    let status = app.status(&p.token, &p.order).await;
    let trade = app.sandbox_trade_notified(&otn).await;
    assert_eq!(status["status"], json!("CONFIRMED"));
    assert_eq!(status["paymentStatus"], json!("PAID"));
    assert_eq!(status["transactionId"], trade["transaction_id"]);
    assert_eq!(status["outTradeNo"], json!(otn));
    assert_eq!(status["totalAmount"], json!(100.0));
    assert!(status["paidAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        app.stock(&p.ticket_type).await,
        json!({ "total": 10, "available": 8, "reserved": 0, "sold": 2 })
    );
    assert_eq!(trade["notify_attempts"][0]["acknowledged"], json!(true));

    // A confirmed order is not paid twice.
    let response = app.prepay(&p.token, &p.order, &p.openid).await;
    expect_error(response, StatusCode::BAD_REQUEST, "INVALID_ORDER_STATUS").await;
}

/// The user id the login token carries.
fn user_id(token: &str) -> i64 {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["uid"].as_i64().unwrap()
}

async fn a_dropped_notify_is_found_by_the_status_query(backend: Backend) {
    let Some(app) = TestApp::spawn_with_sandbox(backend, |_| {}).await else {
        return;
    };
    let p = purchase(&app, 5, 1).await;
    app.sandbox_faults(None, json!({ "notify_drop": true }))
        .await;
    let prepay = expect_status(
        app.prepay(&p.token, &p.order, &p.openid).await,
        StatusCode::OK,
    )
    .await;
    let otn = prepay["data"]["outTradeNo"].as_str().unwrap().to_owned();
    app.sandbox_pay(&otn).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        app.order(&p.token, &p.order).await["status"],
        json!("PENDING"),
        "no notify came"
    );
    let status = app.status(&p.token, &p.order).await;
    assert_eq!(status["status"], json!("CONFIRMED"));
    assert_eq!(status["paymentStatus"], json!("PAID"));
    assert_eq!(
        app.order(&p.token, &p.order).await["tickets"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(app.sandbox_trade(&otn).await["query_calls"], json!(1));
    // Further status calls do not query again: the order is no longer waiting.
    app.status(&p.token, &p.order).await;
    assert_eq!(app.sandbox_trade(&otn).await["query_calls"], json!(1));
}

async fn gateway_trouble_leaves_the_order_untouched(backend: Backend) {
    let Some(app) = TestApp::spawn_with_sandbox(backend, |vars| {
        vars.insert("HTTP_TIMEOUT".into(), "400ms".into());
    })
    .await
    else {
        return;
    };
    let p = purchase(&app, 5, 1).await;
    app.sandbox_faults(None, json!({ "gateway_5xx": 1 })).await;
    expect_error(
        app.prepay(&p.token, &p.order, &p.openid).await,
        StatusCode::BAD_GATEWAY,
        "GATEWAY_ERROR",
    )
    .await;
    app.sandbox_faults(None, json!({ "gateway_garbage": 1 }))
        .await;
    expect_error(
        app.prepay(&p.token, &p.order, &p.openid).await,
        StatusCode::BAD_GATEWAY,
        "GATEWAY_ERROR",
    )
    .await;
    app.sandbox_faults(None, json!({ "gateway_slow_ms": 1500 }))
        .await;
    expect_error(
        app.prepay(&p.token, &p.order, &p.openid).await,
        StatusCode::GATEWAY_TIMEOUT,
        "GATEWAY_TIMEOUT",
    )
    .await;
    let order = app.order(&p.token, &p.order).await;
    assert_eq!(order["status"], json!("PENDING"));
    assert_eq!(order["payment"], json!(null));
    assert_eq!(app.count("SELECT COUNT(*) FROM payments").await, 0);
    app.sandbox_faults(None, json!({})).await;
    expect_status(
        app.prepay(&p.token, &p.order, &p.openid).await,
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn prepay_refusals_come_in_the_contract_order() {
    let app = TestApp::spawn_with_sandbox(Backend::Sqlite, |_| {})
        .await
        .unwrap();
    let p = purchase(&app, 5, 1).await;
    let (other, other_openid, _) = app.login("oIntruder").await;
    // 401 before anything else.
    let response = app
        .post_json("/payments/wechat/prepay", None, &json!({}))
        .await;
    expect_error(response, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    // 400 body before 404 order.
    let response = app
        .post_json(
            "/payments/wechat/prepay",
            Some(&p.token),
            &json!({ "orderId": "x" }),
        )
        .await;
    expect_error(response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
    // Someone else's order is not found, whatever the openid.
    expect_error(
        app.prepay(&other, &p.order, &other_openid).await,
        StatusCode::NOT_FOUND,
        "ORDER_NOT_FOUND",
    )
    .await;
    expect_error(
        app.prepay(&p.token, &json!(987654), &p.openid).await,
        StatusCode::NOT_FOUND,
        "ORDER_NOT_FOUND",
    )
    .await;
    // The openid must be the caller's.
    expect_error(
        app.prepay(&p.token, &p.order, &other_openid).await,
        StatusCode::BAD_REQUEST,
        "OPENID_MISMATCH",
    )
    .await;
    assert_eq!(app.count("SELECT COUNT(*) FROM payments").await, 0);
}

#[tokio::test]
async fn without_wallyt_prepay_is_503_and_status_still_answers() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let p = purchase(&app, 5, 1).await;
    let response = app.prepay(&p.token, &p.order, &p.openid).await;
    expect_error(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "WALLYT_NOT_CONFIGURED",
    )
    .await;
    let status = app.status(&p.token, &p.order).await;
    assert_eq!(status["status"], json!("PENDING"));
    assert_eq!(status["paymentStatus"], json!(null));
    let (code, body) = app.notify_raw("<xml></xml>").await;
    assert_eq!((code, body.as_str()), (StatusCode::OK, "fail"));
}
