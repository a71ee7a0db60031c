//! RSA_1_256 end to end: the built-in sandbox with `SANDBOX_SIGN_TYPE=RSA_1_256` makes both key
//! pairs under `data/`, and the README's runbook (login, ticket type, order, prepay, pay,
//! notify, status, refund one ticket, then the rest) runs over real HTTP with every request,
//! reply and notify signed SHA256withRSA.

use reqwest::StatusCode;
use serde_json::json;
use wallyt_pay::gateway::wallyt::fields::Fields;
use wallyt_pay::gateway::wallyt::sign::{sign, KeyedHash, SignType};
use wallyt_pay::gateway::wallyt::xml::{decode, encode};
use wallyt_pay::sandbox::notify::notify_message;

use crate::helpers::{expect_status, Backend, TestApp};
use crate::on_both_backends;
use crate::shop::purchase;

on_both_backends!(the_runbook_in_rsa_mode);

async fn spawn_rsa(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with_sandbox(backend, |vars| {
        vars.insert("SANDBOX_SIGN_TYPE".into(), "RSA_1_256".into());
        // The payment must come from the notify, not from the engine's own trade queries.
        vars.insert("QUERY_SCHEDULE".into(), "".into());
    })
    .await
}

async fn the_runbook_in_rsa_mode(backend: Backend) {
    let Some(app) = spawn_rsa(backend).await else {
        return;
    };
    let sandbox = app.sandbox.clone().unwrap();
    assert!(sandbox.config().rsa.is_some(), "the sandbox is in RSA mode");
    assert_eq!(sandbox.notify_keys().sign_type(), SignType::Rsa256);

    // Login, a ticket type of 50.00 and an order of two (the runbook's first steps).
    let p = purchase(&app, 10, 2).await;
    let prepay = expect_status(
        app.prepay(&p.token, &p.order, &p.openid).await,
        StatusCode::OK,
    )
    .await["data"]
        .clone();
    let otn = prepay["outTradeNo"].as_str().unwrap().to_owned();
    assert_eq!(prepay["payParams"].as_object().unwrap().len(), 6);

    assert!(app.sandbox_pay(&otn).await.status().is_success());
    let order = app.wait_for_order(&p.token, &p.order, "CONFIRMED").await;
    assert_eq!(order["status"], json!("CONFIRMED"));
    let trade = app.sandbox_trade_notified(&otn).await;
    assert_eq!(trade["notify_attempts"][0]["acknowledged"], json!(true));
    let status = app.status(&p.token, &p.order).await;
    assert_eq!(status["paymentStatus"], json!("PAID"));
    assert_eq!(status["transactionId"], trade["transaction_id"]);
    assert_eq!(
        app.stock(&p.ticket_type).await,
        json!({ "total": 10, "available": 8, "reserved": 0, "sold": 2 })
    );

    // Refund one whole ticket (signed request, signed reply), then the rest.
    let one = expect_status(
        app.refund(
            &p.token,
            json!({ "orderId": p.order, "refundAmount": 50.00, "reason": "partial" }),
            Some("rsa-refund-1"),
        )
        .await,
        StatusCode::OK,
    )
    .await["data"]
        .clone();
    assert_eq!(one["status"], json!("SUCCESS"), "{one}");
    assert_eq!(one["ticketIds"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.status(&p.token, &p.order).await["paymentStatus"],
        json!("PARTIALLY_REFUNDED")
    );
    let rest = expect_status(
        app.refund(&p.token, json!({ "orderId": p.order }), None)
            .await,
        StatusCode::OK,
    )
    .await["data"]
        .clone();
    assert_eq!(rest["refundAmount"], json!(50.0), "{rest}");
    let order = app.order(&p.token, &p.order).await;
    assert_eq!(order["status"], json!("CANCELLED"));
    assert_eq!(order["cancelReason"], json!("REFUNDED"));
    assert_eq!(
        app.status(&p.token, &p.order).await["paymentStatus"],
        json!("REFUNDED")
    );
    assert_eq!(app.stock(&p.ticket_type).await["available"], json!(10));
    let refunds = app.sandbox_trade(&otn).await["refunds"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(refunds, 2, "both refunds reached the gateway");

    // The sandbox refuses what is not RSA: an MD5 request signed with its (unused) MD5 key.
    let md5_request = Fields::new()
        .with("service", "unified.trade.query")
        .with("version", "2.0")
        .with("charset", "UTF-8")
        .with("sign_type", "MD5")
        .with("mch_id", sandbox.config().mch_id.as_str())
        .with("out_trade_no", otn.as_str())
        .with("nonce_str", "0123456789abcdef");
    let signature = sign(&md5_request, KeyedHash::Md5, &sandbox.config().key);
    let reply = app
        .client
        .post(app.url("/sandbox/pay/gateway"))
        .body(encode(&md5_request.with("sign", signature)))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let reply = decode(&reply).unwrap();
    assert_eq!(reply.get("status"), Some("400"), "{reply:?}");
}

/// With RSA configured, a notify signed with MD5 — even with the sandbox's real MD5 key —
/// is answered `fail` and changes nothing; the same notify signed by the platform's RSA key
/// confirms the order.
#[tokio::test]
async fn an_md5_notify_is_refused_when_rsa_is_configured() {
    let Some(app) = spawn_rsa(Backend::Sqlite).await else {
        return;
    };
    let sandbox = app.sandbox.clone().unwrap();
    let p = purchase(&app, 10, 1).await;
    let prepay = expect_status(
        app.prepay(&p.token, &p.order, &p.openid).await,
        StatusCode::OK,
    )
    .await;
    let otn = prepay["data"]["outTradeNo"].as_str().unwrap().to_owned();
    app.sandbox_faults(Some(&otn), json!({ "notify_drop": true }))
        .await;
    assert!(app.sandbox_pay(&otn).await.status().is_success());

    let (_, genuine) = notify_message(&sandbox, &otn, None).unwrap();
    let mut md5 = decode(genuine.as_bytes()).unwrap();
    assert_eq!(md5.get("sign_type"), Some("RSA_1_256"));
    md5.remove("sign");
    md5.set("sign_type", "MD5");
    let signature = sign(&md5, KeyedHash::Md5, &sandbox.config().key);
    let (_, answer) = app.notify_raw(encode(&md5.with("sign", signature))).await;
    assert_eq!(answer, "fail");
    // The RSA signature under an MD5 label is no better.
    let relabelled = genuine.replace("RSA_1_256", "MD5");
    assert_eq!(app.notify_raw(relabelled).await.1, "fail");
    assert_eq!(
        app.order(&p.token, &p.order).await["status"],
        json!("PENDING")
    );

    assert_eq!(app.notify_raw(genuine).await.1, "success");
    let order = app.wait_for_order(&p.token, &p.order, "CONFIRMED").await;
    assert_eq!(order["status"], json!("CONFIRMED"));
}
