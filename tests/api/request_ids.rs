//! Request ids over HTTP: echoed when given and sane, generated otherwise (error answers
//! included), and stored with what a request causes — the prepay, the notify's audit rows,
//! refunds, the operator's audit row — so that the order's timeline (API and console) names
//! the request behind each event. That a log line of a request carries its id is checked at
//! the subscriber itself (`src/telemetry.rs`).

use reqwest::StatusCode;
use serde_json::{json, Value};
use wallyt_pay::sandbox::notify::notify_message;

use crate::console::Console;
use crate::helpers::{expect_status, Backend, TestApp, ADMIN_TOKEN};
use crate::on_both_backends;
use crate::shop::purchase;

on_both_backends!(ids_are_stored_with_what_requests_cause);

fn generated(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn id_of(response: &reqwest::Response) -> String {
    response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn ids_are_echoed_generated_or_replaced() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let request = |id: Option<&str>, path: &str| {
        let mut request = app.client.get(app.url(path));
        if let Some(id) = id {
            request = request.header("X-Request-Id", id);
        }
        request.send()
    };
    let given = request(Some("abc-123_x.y"), "/healthz").await.unwrap();
    assert_eq!(id_of(&given), "abc-123_x.y");

    let first = id_of(&request(None, "/healthz").await.unwrap());
    let second = id_of(&request(None, "/healthz").await.unwrap());
    assert!(generated(&first) && generated(&second), "{first} {second}");
    assert_ne!(first, second);

    let too_long = "a".repeat(65);
    for insane in [
        "two words",
        "<script>",
        "a;b",
        "\"quoted\"",
        too_long.as_str(),
    ] {
        let replaced = id_of(&request(Some(insane), "/healthz").await.unwrap());
        assert!(generated(&replaced), "{insane:?} became {replaced}");
    }

    // Error answers carry it too: an unknown route and a refused admin call.
    let missing = request(Some("r-404"), "/no/such/route").await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(id_of(&missing), "r-404");
    let refused = request(Some("r-401"), "/admin/orders").await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(id_of(&refused), "r-401");

    // A refused notify's summary row names the request that brought it.
    let forged = app
        .client
        .post(app.url("/payments/wallyt/notify"))
        .header("X-Request-Id", "req-forged-1")
        .body("<xml><sign>forged</sign></xml>")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.text().await.unwrap(), "fail");
    let stored: Option<String> = sqlx::query_scalar("SELECT request_id FROM notify_rejections")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some("req-forged-1"));
}

async fn ids_are_stored_with_what_requests_cause(backend: Backend) {
    let Some(app) = TestApp::spawn_with_sandbox(backend, |_| {}).await else {
        return;
    };
    let sandbox = app.sandbox.clone().unwrap();
    let p = purchase(&app, 10, 2).await;
    let response = app
        .client
        .post(app.url("/payments/wechat/prepay"))
        .bearer_auth(&p.token)
        .header("X-Request-Id", "req-prepay-1")
        .json(&json!({ "orderId": p.order, "openid": p.openid }))
        .send()
        .await
        .unwrap();
    let prepay = expect_status(response, StatusCode::OK).await;
    let otn = prepay["data"]["outTradeNo"].as_str().unwrap().to_owned();

    // The buyer pays; the sandbox's own delivery is dropped and the test delivers the signed
    // notify itself, under an id of its own.
    app.sandbox_faults(Some(&otn), json!({ "notify_drop": true }))
        .await;
    assert!(app.sandbox_pay(&otn).await.status().is_success());
    let (_, body) = notify_message(&sandbox, &otn, None).expect("the trade is paid");
    let response = app
        .client
        .post(app.url("/payments/wallyt/notify"))
        .header("Content-Type", "text/xml")
        .header("X-Request-Id", "req-notify-1")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(id_of(&response), "req-notify-1");
    assert_eq!(response.text().await.unwrap(), "success");

    // A buyer's refund under a given id; an operator's without one (a generated id, the same
    // in the answer, the refund row and the audit row).
    let response = app
        .client
        .post(app.url("/payments/refund"))
        .bearer_auth(&p.token)
        .header("X-Request-Id", "req-refund-1")
        .json(&json!({ "orderId": p.order, "refundAmount": 50.00, "reason": "cannot come" }))
        .send()
        .await
        .unwrap();
    expect_status(response, StatusCode::OK).await;
    let response = app
        .client
        .post(app.url(&format!("/admin/orders/{}/refunds", p.order)))
        .bearer_auth(ADMIN_TOKEN)
        .header("X-Operator", "Li Lei")
        .json(&json!({ "amount": 1.00, "reason": "goodwill" }))
        .send()
        .await
        .unwrap();
    let operator_request = id_of(&response);
    assert!(generated(&operator_request), "{operator_request}");
    expect_status(response, StatusCode::OK).await;
    let audited: Option<String> =
        sqlx::query_scalar("SELECT request_id FROM admin_audit WHERE action = 'refund'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert_eq!(audited.as_deref(), Some(operator_request.as_str()));

    let path = format!("/admin/orders/{}", p.order);
    let order = expect_status(app.get_with_token(&path, ADMIN_TOKEN).await, StatusCode::OK).await;
    let timeline = order["data"]["timeline"].as_array().unwrap();
    let ids_of = |kind: &str| -> Vec<Value> {
        timeline
            .iter()
            .filter(|e| e["kind"] == kind)
            .map(|e| e["requestId"].clone())
            .collect()
    };
    assert_eq!(ids_of("payment.created"), [json!("req-prepay-1")]);
    assert_eq!(ids_of("notify.received"), [json!("req-notify-1")]);
    assert_eq!(ids_of("notify.verdict"), [json!("req-notify-1")]);
    assert_eq!(
        ids_of("refund.requested"),
        [json!("req-refund-1"), json!(operator_request)]
    );
    // The operator's action itself, from the audit, under the same id.
    assert_eq!(ids_of("admin.refund"), [json!(operator_request)]);

    // The console's order page shows them beside the events.
    let console = Console::sign_in(&app, "甲").await;
    let (status, page) = console.get(&format!("/console/orders/{}", p.order)).await;
    assert_eq!(status, StatusCode::OK);
    for id in [
        "req-prepay-1",
        "req-notify-1",
        "req-refund-1",
        &operator_request,
    ] {
        assert!(
            page.contains(&format!("<td class=\"request-id\">{id}</td>")),
            "{id} not on the page"
        );
    }
}
