//! The notify retry schedule and every fault mode of the sandbox.

use serde_json::{json, Value};
use std::time::Duration;
use wallyt_pay::gateway::wallyt::notify::NotifyError;
use wallyt_pay::gateway::wallyt::refund::{RefundQueryBy, RefundRequest, RefundStatus};
use wallyt_pay::gateway::wallyt::{ClientPolicy, GatewayError};
use wallyt_pay_actors::Fen;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::sandbox_harness::{Harness, SCALE};

fn attempts(trade: &Value) -> Vec<Value> {
    trade["notify_attempts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Paid, with a notify receiver that answers each attempt in turn.
async fn paid_with_answers(h: &Harness, otn: &str, answers: &[&str]) {
    for (i, answer) in answers.iter().enumerate() {
        Mock::given(method("POST"))
            .and(path("/notify"))
            .respond_with(ResponseTemplate::new(200).set_body_string(*answer))
            .up_to_n_times(1)
            .with_priority(i as u8 + 1)
            .mount(&h.receiver)
            .await;
    }
    h.prepay(otn, 100).await.unwrap();
    assert!(h.pay(otn, None).await.status().is_success());
}

#[tokio::test]
async fn notifies_retry_on_the_schedule_until_exactly_success() {
    let h = Harness::start().await;
    let otn = "MP10_1717214712000";
    paid_with_answers(&h, otn, &["SUCCESS", "success\n", "fail", "success"]).await;
    let trade = h.wait_for_attempts(otn, 4, Duration::from_secs(5)).await;
    let seen = attempts(&trade);
    assert_eq!(seen.len(), 4, "{trade}");
    let acknowledged: Vec<bool> = seen
        .iter()
        .map(|a| a["acknowledged"] == json!(true))
        .collect();
    assert_eq!(acknowledged, [false, false, false, true]);
    // Gaps follow 15, 15, 30 seconds, scaled.
    let sent: Vec<i64> = seen
        .iter()
        .map(|a| a["sent_at"].as_i64().unwrap())
        .collect();
    for (gap, secs) in sent.windows(2).map(|w| w[1] - w[0]).zip([15.0, 15.0, 30.0]) {
        let expected = (secs * 1000.0 * SCALE) as i64;
        assert!(
            gap >= expected - 5,
            "gap {gap} ms, expected about {expected} ms"
        );
    }
    // Nothing more comes after `success`.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(h.receiver.received_requests().await.unwrap().len(), 4);
}

#[tokio::test]
async fn a_merchant_that_times_out_is_retried() {
    let h = Harness::start().await;
    let otn = "MP11_1717214712000";
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string("success")
                .set_delay(Duration::from_millis(800)),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&h.receiver)
        .await;
    h.receiver_answers("success").await;
    h.prepay(otn, 100).await.unwrap();
    h.pay(otn, None).await;
    let trade = h.wait_for_attempts(otn, 2, Duration::from_secs(5)).await;
    let seen = attempts(&trade);
    assert_eq!(seen[0]["error"], json!("timeout"));
    assert_eq!(seen[1]["acknowledged"], json!(true));
}

#[tokio::test]
async fn duplicated_notifies_arrive_as_concurrent_copies() {
    let h = Harness::start().await;
    h.receiver_answers("success").await;
    let otn = "MP12_1717214712000";
    h.set_faults(Some(otn), json!({ "notify_copies": 5 })).await;
    h.prepay(otn, 100).await.unwrap();
    h.pay(otn, None).await;
    let trade = h.wait_for_attempts(otn, 5, Duration::from_secs(3)).await;
    assert_eq!(attempts(&trade).len(), 5);
    let bodies = h.receiver.received_requests().await.unwrap();
    assert_eq!(bodies.len(), 5);
    for request in bodies {
        assert!(h.client.verify_notify(&request.body).unwrap().0.paid);
    }
}

#[tokio::test]
async fn dropped_notifies_never_arrive_but_the_trade_is_paid() {
    let h = Harness::start().await;
    h.receiver_answers("success").await;
    let otn = "MP13_1717214712000";
    h.set_faults(None, json!({ "notify_drop": true })).await;
    h.prepay(otn, 100).await.unwrap();
    h.pay(otn, None).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(h.receiver.received_requests().await.unwrap().is_empty());
    let trade = h.client.query(otn).await.unwrap();
    assert!(trade.trade_state.is_paid());
}

#[tokio::test]
async fn delayed_notifies_wait_before_the_first_attempt() {
    let h = Harness::start().await;
    h.receiver_answers("success").await;
    let otn = "MP14_1717214712000";
    h.set_faults(Some(otn), json!({ "notify_delay_ms": 400 }))
        .await;
    h.prepay(otn, 100).await.unwrap();
    let paid_at = wallyt_pay_actors::Clock::now(&wallyt_pay_actors::SystemClock).0;
    h.pay(otn, None).await;
    let trade = h.wait_for_attempts(otn, 1, Duration::from_secs(3)).await;
    let sent = attempts(&trade)[0]["sent_at"].as_i64().unwrap();
    assert!(
        sent - paid_at >= 390,
        "sent {} ms after paying",
        sent - paid_at
    );
}

#[tokio::test]
async fn tampered_notifies_do_not_verify_or_carry_a_wrong_amount() {
    let h = Harness::start().await;
    h.receiver_answers("fail").await;
    let cases = [
        ("MP15_1717214712000", "bad_sign"),
        ("MP16_1717214712000", "field_changed"),
        ("MP17_1717214712000", "wrong_amount"),
    ];
    for (otn, tamper) in cases {
        h.set_faults(Some(otn), json!({ "notify_tamper": tamper }))
            .await;
        h.prepay(otn, 100).await.unwrap();
        h.pay(otn, None).await;
        h.wait_for_attempts(otn, 1, Duration::from_secs(3)).await;
    }
    let requests = h.receiver.received_requests().await.unwrap();
    let first_for = |otn: &str| {
        requests
            .iter()
            .find(|r| String::from_utf8_lossy(&r.body).contains(otn))
            .unwrap()
            .body
            .clone()
    };
    for otn in ["MP15_1717214712000", "MP16_1717214712000"] {
        let verdict = h.client.verify_notify(&first_for(otn));
        assert_eq!(verdict.unwrap_err(), NotifyError::InvalidSignature, "{otn}");
    }
    let (notify, _) = h
        .client
        .verify_notify(&first_for("MP17_1717214712000"))
        .unwrap();
    assert_eq!(
        notify.total_fee,
        Some(Fen::new(101)),
        "signed, but not the trade's amount"
    );
}

async fn paid_trade(h: &Harness, otn: &'static str) {
    h.receiver_answers("success").await;
    h.prepay(otn, 1_000).await.unwrap();
    h.pay(otn, None).await;
}

fn refund(otn: &'static str, no: &'static str, fee: i64) -> RefundRequest<'static> {
    RefundRequest {
        out_trade_no: otn,
        out_refund_no: no,
        total_fee: Fen::new(1_000),
        refund_fee: Fen::new(fee),
    }
}

async fn status_of(h: &Harness, no: &str) -> RefundStatus {
    h.client
        .refund_query(RefundQueryBy::OutRefundNo(no))
        .await
        .unwrap()[0]
        .status
}

#[tokio::test]
async fn refunds_can_stay_processing_for_n_queries() {
    let h = Harness::start().await;
    let otn = "MP20_1717214712000";
    paid_trade(&h, otn).await;
    h.set_faults(Some(otn), json!({ "refund_processing_queries": 2 }))
        .await;
    h.client
        .refund(&refund(otn, "RF20_000000001", 1_000))
        .await
        .unwrap();
    assert_eq!(
        status_of(&h, "RF20_000000001").await,
        RefundStatus::Processing
    );
    assert_eq!(
        status_of(&h, "RF20_000000001").await,
        RefundStatus::Processing
    );
    assert_eq!(status_of(&h, "RF20_000000001").await, RefundStatus::Success);
    assert_eq!(status_of(&h, "RF20_000000001").await, RefundStatus::Success);
}

#[tokio::test]
async fn failed_refunds_release_their_amount() {
    let h = Harness::start().await;
    let otn = "MP21_1717214712000";
    paid_trade(&h, otn).await;
    h.set_faults(Some(otn), json!({ "refund_outcome": "FAIL" }))
        .await;
    h.client
        .refund(&refund(otn, "RF21_000000001", 1_000))
        .await
        .unwrap();
    assert_eq!(status_of(&h, "RF21_000000001").await, RefundStatus::Fail);
    h.set_faults(Some(otn), json!({})).await;
    h.client
        .refund(&refund(otn, "RF21_000000002", 1_000))
        .await
        .unwrap();
    assert_eq!(status_of(&h, "RF21_000000002").await, RefundStatus::Success);
}

#[tokio::test]
async fn notsure_refunds_settle_when_resent_with_the_same_number() {
    let h = Harness::start().await;
    let otn = "MP22_1717214712000";
    paid_trade(&h, otn).await;
    h.set_faults(Some(otn), json!({ "refund_outcome": "NOTSURE" }))
        .await;
    h.client
        .refund(&refund(otn, "RF22_000000001", 300))
        .await
        .unwrap();
    assert_eq!(status_of(&h, "RF22_000000001").await, RefundStatus::NotSure);
    h.client
        .refund(&refund(otn, "RF22_000000001", 300))
        .await
        .unwrap();
    assert_eq!(status_of(&h, "RF22_000000001").await, RefundStatus::Success);
    let trade = h.trade(otn).await;
    assert_eq!(
        trade["refunds"].as_array().unwrap().len(),
        1,
        "one refund, sent twice"
    );
}

#[tokio::test]
async fn change_refunds_stay_change_and_count_against_the_payment() {
    let h = Harness::start().await;
    let otn = "MP23_1717214712000";
    paid_trade(&h, otn).await;
    h.set_faults(Some(otn), json!({ "refund_outcome": "CHANGE" }))
        .await;
    h.client
        .refund(&refund(otn, "RF23_000000001", 1_000))
        .await
        .unwrap();
    assert_eq!(status_of(&h, "RF23_000000001").await, RefundStatus::Change);
    let more = h
        .client
        .refund(&refund(otn, "RF23_000000002", 1))
        .await
        .unwrap_err();
    assert!(matches!(more, GatewayError::Business { ref code, .. } if code == "NOTENOUGH"));
}

#[tokio::test]
async fn gateway_faults_reach_the_client_as_typed_errors() {
    let h = Harness::start_with(ClientPolicy {
        max_attempts: 2,
        backoff: Duration::from_millis(10),
        breaker_threshold: 100,
        ..ClientPolicy::default()
    })
    .await;
    let otn = "MP24_1717214712000";
    h.prepay(otn, 100).await.unwrap();

    // One 5xx: the query is retried and succeeds; the jspay is not retried.
    h.set_faults(None, json!({ "gateway_5xx": 1 })).await;
    assert!(h.client.query(otn).await.is_ok());
    h.set_faults(None, json!({ "gateway_5xx": 1 })).await;
    let jspay = h.prepay("MP25_1717214712000", 100).await.unwrap_err();
    assert!(matches!(jspay, GatewayError::Transport(_)), "{jspay:?}");
    assert_eq!(
        h.trade("MP25_1717214712000").await["error"],
        json!("no such trade")
    );

    h.set_faults(None, json!({ "gateway_garbage": 5 })).await;
    assert!(matches!(
        h.client.query(otn).await,
        Err(GatewayError::Garbage(_))
    ));
    h.set_faults(None, json!({ "gateway_slow_ms": 800 })).await;
    assert_eq!(
        h.client.close(otn).await.unwrap_err(),
        GatewayError::Timeout
    );
    h.set_faults(None, json!({})).await;
    assert!(h.client.query(otn).await.is_ok());
}
