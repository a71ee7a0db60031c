//! `POST /payments/wallyt/notify`: exactly once under duplicates, and every invalid notify
//! answered `fail` with nothing changed.

use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use wallyt_pay::gateway::wallyt::sign::{sign, KeyedHash};
use wallyt_pay::gateway::wallyt::xml::encode;
use wallyt_pay::gateway::wallyt::Fields;

use crate::helpers::{expect_status, Backend, TestApp};
use crate::on_both_backends;
use crate::shop::{purchase, Purchase};

on_both_backends!(
    ten_concurrent_copies_confirm_once,
    invalid_notifies_change_nothing
);

/// A purchase with an open prepay; answers its out_trade_no.
pub(crate) async fn prepaid(app: &TestApp, quantity: i64) -> (Purchase, String) {
    let p = purchase(app, 10, quantity).await;
    let response = app.prepay(&p.token, &p.order, &p.openid).await;
    let otn = expect_status(response, StatusCode::OK).await["data"]["outTradeNo"]
        .as_str()
        .unwrap()
        .to_owned();
    (p, otn)
}

async fn ten_concurrent_copies_confirm_once(backend: Backend) {
    let Some(app) = TestApp::spawn_with_sandbox(backend, |_| {}).await else {
        return;
    };
    let (p, otn) = prepaid(&app, 3).await;
    app.sandbox_faults(Some(&otn), json!({ "notify_copies": 10 }))
        .await;
    app.sandbox_pay(&otn).await;
    app.wait_for_order(&p.token, &p.order, "CONFIRMED").await;
    // Let every copy land before counting.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let attempts = loop {
        let trade = app.sandbox_trade(&otn).await;
        let attempts = trade["notify_attempts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if attempts.len() >= 10 || std::time::Instant::now() > deadline {
            break attempts;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    };
    assert_eq!(attempts.len(), 10);
    assert!(
        attempts.iter().all(|a| a["answer"] == json!("success")),
        "{attempts:?}"
    );
    let order = app.order(&p.token, &p.order).await;
    assert_eq!(order["tickets"].as_array().unwrap().len(), 3);
    assert_eq!(
        app.stock(&p.ticket_type).await,
        json!({ "total": 10, "available": 7, "reserved": 0, "sold": 3 })
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM tickets").await, 3);
    // One whole body; every copy has its verdict event, with the body's digest.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM payment_events WHERE kind = 'notify'")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM payment_events WHERE kind = 'notify.verdict' AND body_sha256 IS NOT NULL")
            .await,
        10
    );
    let confirmed = "SELECT COUNT(*) FROM payment_events WHERE kind = 'notify.verdict' AND verdict = 'confirmed'";
    assert_eq!(app.count(confirmed).await, 1);
}

/// The notify the sandbox would send for this trade, as fields, before signing.
pub(crate) fn notify_fields(otn: &str, order_id: &Value, total_fee: &str) -> Fields {
    Fields::new()
        .with("version", "2.0")
        .with("charset", "UTF-8")
        .with("sign_type", "MD5")
        .with("status", "0")
        .with("result_code", "0")
        .with("mch_id", "7551000001")
        .with("nonce_str", "1717214700123")
        .with("pay_result", "0")
        .with("transaction_id", "7551000001202406011234567890")
        .with("out_trade_no", otn)
        .with("total_fee", total_fee)
        .with("attach", format!(r#"{{"orderId":{order_id},"userId":1}}"#))
        .with("time_end", "20240601120512")
}

pub(crate) fn signed(app: &TestApp, fields: Fields) -> String {
    let key: SecretString = app.sandbox.as_ref().unwrap().config().key.clone();
    let signature = sign(&fields, KeyedHash::Md5, &key);
    encode(&fields.with("sign", signature))
}

async fn invalid_notifies_change_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn_with_sandbox(backend, |_| {}).await else {
        return;
    };
    let (p, otn) = prepaid(&app, 2).await;
    let other = prepaid(&app, 1).await.0;
    let good = notify_fields(&otn, &p.order, "10000");
    let mut unsigned = good.clone();
    unsigned.remove("sign");
    let bomb = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY a \"{}\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">]><xml><out_trade_no>&b;</out_trade_no></xml>",
        "a".repeat(100)
    );
    let bodies: Vec<(&str, String)> = vec![
        (
            "bad signature",
            encode(
                &good
                    .clone()
                    .with("sign", "0123456789ABCDEF0123456789ABCDEF"),
            ),
        ),
        ("missing sign", encode(&unsigned)),
        (
            "wrong amount, correctly signed",
            signed(&app, good.clone().with("total_fee", "9999")),
        ),
        (
            "foreign mch_id",
            signed(&app, good.clone().with("mch_id", "7551000002")),
        ),
        (
            "unknown out_trade_no",
            signed(&app, good.clone().with("out_trade_no", "MP999999_1")),
        ),
        (
            "attach names another order",
            signed(
                &app,
                good.clone().with(
                    "attach",
                    format!(r#"{{"orderId":{},"userId":1}}"#, other.order),
                ),
            ),
        ),
        (
            "changed after signing",
            signed(&app, good.clone()).replace("10000", "1"),
        ),
        ("malformed XML", "<xml><out_trade_no>".into()),
        ("entity bomb", bomb),
        ("not XML", "{\"out_trade_no\": \"x\"}".into()),
    ];
    for (case, body) in bodies {
        let (status, answer) = app.notify_raw(body).await;
        assert_eq!(
            (status, answer.as_str()),
            (StatusCode::OK, "fail"),
            "{case}"
        );
    }
    // A 2 MB body is refused before it is read.
    let (status, answer) = app.notify_raw(vec![b'x'; 2 * 1024 * 1024]).await;
    assert!(
        status.is_client_error() || answer == "fail",
        "{status} {answer}"
    );
    // A correctly signed notify of a failed payment is acknowledged and changes nothing.
    let (status, answer) = app
        .notify_raw(signed(&app, good.clone().with("pay_result", "1")))
        .await;
    assert_eq!((status, answer.as_str()), (StatusCode::OK, "success"));

    let order = app.order(&p.token, &p.order).await;
    assert_eq!(order["status"], json!("PENDING"));
    assert_eq!(order["payment"]["status"], json!("NOTPAY"));
    assert_eq!(app.stock(&p.ticket_type).await["reserved"], json!(2));
    assert_eq!(app.count("SELECT COUNT(*) FROM tickets").await, 0);
    // The server is still up, and the genuine notify still works afterwards.
    let (status, answer) = app.notify_raw(signed(&app, good)).await;
    assert_eq!((status, answer.as_str()), (StatusCode::OK, "success"));
    assert_eq!(
        app.order(&p.token, &p.order).await["status"],
        json!("CONFIRMED")
    );
    // Refused before verifying: summarised in notify_rejections, never in payment_events.
    let invalid = "SELECT COUNT(*) FROM notify_rejections WHERE verdict = 'invalid_signature'";
    assert_eq!(app.count(invalid).await, 3);
}

#[tokio::test]
async fn tampered_sandbox_notifies_are_refused_until_a_genuine_one_comes() {
    let app = TestApp::spawn_with_sandbox(Backend::Sqlite, |_| {})
        .await
        .unwrap();
    for tamper in ["bad_sign", "wrong_amount", "field_changed"] {
        let (p, otn) = prepaid(&app, 1).await;
        app.sandbox_faults(Some(&otn), json!({ "notify_tamper": tamper }))
            .await;
        app.sandbox_pay(&otn).await;
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        let trade = app.sandbox_trade(&otn).await;
        let attempts = trade["notify_attempts"].as_array().unwrap();
        assert!(!attempts.is_empty(), "{tamper}");
        assert!(
            attempts.iter().all(|a| a["answer"] == json!("fail")),
            "{tamper}: {attempts:?}"
        );
        assert_eq!(
            app.order(&p.token, &p.order).await["status"],
            json!("PENDING"),
            "{tamper}"
        );
        // The sandbox keeps retrying; once it sends the genuine notify the order confirms.
        app.sandbox_faults(Some(&otn), json!({})).await;
        app.client
            .post(app.url(&format!("/sandbox/trades/{otn}/notify")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            app.wait_for_order(&p.token, &p.order, "CONFIRMED").await["status"],
            json!("CONFIRMED")
        );
    }
}
