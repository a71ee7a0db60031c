//! The server binary killed with SIGKILL while it holds deadlines and a PROCESSING refund:
//! the next process finishes both from the database alone.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use crate::helpers::{expect_status, ADMIN_TOKEN};
use crate::nodes::start;
use crate::shop::Gateway;

async fn call(method: reqwest::Method, url: String, token: &str, body: Option<Value>) -> Value {
    let mut request = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    expect_status(request.send().await.unwrap(), StatusCode::OK).await["data"].clone()
}

/// Creates an order and its prepay; answers the order id and the trade's out_trade_no.
async fn order_and_prepay(base: &str, token: &str, openid: &str, order: &Value) -> (Value, String) {
    let created = reqwest::Client::new()
        .post(format!("{base}/orders"))
        .bearer_auth(token)
        .json(order)
        .send()
        .await
        .unwrap();
    let order_id = expect_status(created, StatusCode::CREATED).await["data"]["id"].clone();
    let body = json!({ "orderId": order_id, "openid": openid });
    let prepay = call(
        reqwest::Method::POST,
        format!("{base}/payments/wechat/prepay"),
        token,
        Some(body),
    )
    .await;
    (order_id, prepay["outTradeNo"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_deadline_and_no_refund() {
    let gateway = Gateway::start();
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}/pay.db", dir.path().display());
    let mut first = start(
        &gateway,
        &database_url,
        &[("REFUND_POLL_INTERVAL", "1h".into())],
        None,
    )
    .await;
    let http = reqwest::Client::new();

    let login = http
        .post(format!("{}/auth/wechat/login", first.base))
        .json(&json!({ "code": "crash-test" }))
        .send()
        .await
        .unwrap();
    let login = expect_status(login, StatusCode::OK).await;
    let (token, openid) = (
        login["token"].as_str().unwrap().to_owned(),
        login["openid"].as_str().unwrap().to_owned(),
    );
    let created = http
        .post(format!("{}/admin/ticket-types", first.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "name": "VIP", "price": 50.00, "stock": 10 }))
        .send()
        .await
        .unwrap();
    let ticket_type = expect_status(created, StatusCode::CREATED).await["data"]["id"].clone();
    let post = reqwest::Method::POST;
    let order_body = json!({ "items": [{ "ticketTypeId": ticket_type, "quantity": 1 }] });
    let (expiring, expiring_trade) =
        order_and_prepay(&first.base, &token, &openid, &order_body).await;

    // A second order, paid, with a refund the gateway keeps PROCESSING for a while.
    let (paid, paid_trade) = order_and_prepay(&first.base, &token, &openid, &order_body).await;
    gateway
        .sandbox
        .with_state(|s| s.global_faults.notify_drop = Some(true));
    gateway.pay(&paid_trade, false).await;
    let status = call(
        reqwest::Method::GET,
        format!("{}/payments/status/{paid}", first.base),
        &token,
        None,
    )
    .await;
    assert_eq!(status["status"], json!("CONFIRMED"));
    gateway
        .sandbox
        .with_state(|s| s.global_faults.refund_processing_queries = Some(5));
    let refund = call(
        post,
        format!("{}/payments/refund", first.base),
        &token,
        Some(json!({ "orderId": paid })),
    )
    .await;
    assert_eq!(refund["status"], json!("PROCESSING"));

    first.kill(); // SIGKILL: no shutdown code runs

    let mut second = start(
        &gateway,
        &database_url,
        &[("REFUND_POLL_INTERVAL", "100ms".into())],
        None,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let (mut expired, mut refunded) = (Value::Null, Value::Null);
    while Instant::now() < deadline {
        expired = call(
            reqwest::Method::GET,
            format!("{}/orders/{expiring}", second.base),
            &token,
            None,
        )
        .await;
        refunded = call(
            reqwest::Method::GET,
            format!("{}/orders/{paid}", second.base),
            &token,
            None,
        )
        .await;
        if expired["status"] == json!("CANCELLED") && refunded["status"] == json!("CANCELLED") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    second.kill();
    assert_eq!(
        (expired["status"].clone(), expired["cancelReason"].clone()),
        (json!("CANCELLED"), json!("EXPIRED"))
    );
    assert_eq!(
        (refunded["status"].clone(), refunded["cancelReason"].clone()),
        (json!("CANCELLED"), json!("REFUNDED"))
    );
    assert_eq!(refunded["refunds"][0]["status"], json!("SUCCESS"));
    assert_eq!(gateway.trade(&expiring_trade).close_calls, 1);
    assert_eq!(gateway.trade(&paid_trade).refunds.len(), 1);
}
