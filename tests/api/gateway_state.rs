//! The gateway's own state: a trade it closed already (on its own, by time, or by a close whose
//! answer was lost) answers a second close with ORDERCLOSED, and that is success — the payment
//! is CLOSED and the order expires and gives its stock back instead of waiting forever.

use reqwest::StatusCode;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

use crate::expiry::{eventually, prepay, short_ttls};
use crate::helpers::{expect_status, Backend, TestApp};
use crate::on_both_backends;
use crate::shop::purchase;

on_both_backends!(
    a_trade_the_gateway_closed_first_still_expires_the_order,
    a_close_answered_too_late_is_finished_by_its_retry
);

/// Short TTLs, and sweeps often enough that "a few sweeps" fit in a test.
fn ttls(vars: &mut HashMap<String, String>) {
    short_ttls(vars);
    vars.insert("EXPIRY_SWEEP_INTERVAL".into(), "500ms".into());
}

async fn a_trade_the_gateway_closed_first_still_expires_the_order(backend: Backend) {
    let Some(app) = TestApp::spawn_with_sandbox(backend, ttls).await else {
        return;
    };
    let p = purchase(&app, 10, 3).await;
    let otn = prepay(&app, &p).await;
    let closed = expect_status(app.sandbox_close(&otn).await, StatusCode::OK).await;
    assert_eq!(closed["state"], json!("CLOSED"));

    // The engine's own close at prepay expiry hears ORDERCLOSED, and counts it as closed.
    let trade = eventually(Duration::from_secs(5), || async {
        let trade = app.sandbox_trade(&otn).await;
        (trade["close_calls"].as_u64() >= Some(1), trade)
    })
    .await;
    assert_eq!(trade["close_calls"], json!(1), "{trade}");
    let payment = eventually(Duration::from_secs(3), || async {
        let order = app.order(&p.token, &p.order).await;
        (order["payment"]["status"] == json!("CLOSED"), order)
    })
    .await;
    assert_eq!(payment["payment"]["status"], json!("CLOSED"), "{payment}");

    let order = app.wait_for_order(&p.token, &p.order, "CANCELLED").await;
    assert_eq!(order["status"], json!("CANCELLED"), "{order}");
    assert_eq!(order["cancelReason"], json!("EXPIRED"));
    assert_eq!(
        app.stock(&p.ticket_type).await,
        json!({ "total": 10, "available": 10, "reserved": 0, "sold": 0 })
    );
    assert_eq!(
        app.sandbox_trade(&otn).await["close_calls"],
        json!(1),
        "ORDERCLOSED is final: the close is not retried"
    );
}

async fn a_close_answered_too_late_is_finished_by_its_retry(backend: Backend) {
    let Some(app) = TestApp::spawn_with_sandbox(backend, |vars| {
        ttls(vars);
        vars.insert("HTTP_TIMEOUT".into(), "400ms".into());
    })
    .await
    else {
        return;
    };
    let p = purchase(&app, 10, 2).await;
    let otn = prepay(&app, &p).await;
    // The first close is performed but answered after the engine stopped waiting; the
    // client's retry then finds the trade closed.
    let late = json!({ "delay_ms": 1200, "count": 1, "service": "unified.trade.close" });
    app.sandbox_faults(Some(&otn), json!({ "late_answer": late }))
        .await;

    let order = app.wait_for_order(&p.token, &p.order, "CANCELLED").await;
    assert_eq!(order["status"], json!("CANCELLED"), "{order}");
    assert_eq!(order["cancelReason"], json!("EXPIRED"));
    assert_eq!(order["payment"]["status"], json!("CLOSED"));
    assert_eq!(app.stock(&p.ticket_type).await["available"], json!(10));
    let trade = app.sandbox_trade(&otn).await;
    assert_eq!(trade["state"], json!("CLOSED"));
    assert!(trade["close_calls"].as_u64() >= Some(2), "{trade}");
}

mod sandbox {
    //! The sandbox keeps the gateway's state as the gateway would, and lets a test change it.

    use serde_json::json;
    use std::time::Duration;
    use wallyt_pay::gateway::wallyt::refund::RefundRequest;
    use wallyt_pay::gateway::wallyt::trade::TradeState;
    use wallyt_pay::gateway::wallyt::{ClientPolicy, GatewayError};
    use wallyt_pay_actors::Fen;

    use crate::sandbox_harness::Harness;

    fn code(error: GatewayError) -> String {
        match error {
            GatewayError::Business { code, .. } => code,
            other => panic!("expected a business error, got {other:?}"),
        }
    }

    /// One attempt per call, so that a late answer reaches the test as a timeout.
    async fn impatient() -> Harness {
        Harness::start_with(ClientPolicy {
            max_attempts: 1,
            backoff: Duration::from_millis(10),
            ..ClientPolicy::default()
        })
        .await
    }

    #[tokio::test]
    async fn closing_a_closed_trade_answers_orderclosed() {
        let h = Harness::start().await;
        let otn = "MP30_1717214712000";
        h.prepay(otn, 100).await.unwrap();
        h.client.close(otn).await.unwrap();
        assert_eq!(code(h.client.close(otn).await.unwrap_err()), "ORDERCLOSED");
        let trade = h.trade(otn).await;
        assert_eq!(trade["state"], json!("CLOSED"));
        assert_eq!(trade["close_calls"], json!(2));
        // A paid trade still answers ORDERPAID.
        let paid = "MP31_1717214712000";
        h.prepay(paid, 100).await.unwrap();
        assert!(h.pay(paid, None).await.status().is_success());
        assert_eq!(code(h.client.close(paid).await.unwrap_err()), "ORDERPAID");
    }

    #[tokio::test]
    async fn the_close_control_closes_a_trade_on_the_gateways_side() {
        let h = Harness::start().await;
        let otn = "MP32_1717214712000";
        h.prepay(otn, 100).await.unwrap();
        let close = |no: &str| {
            h.http
                .post(format!("{}/sandbox/trades/{no}/close", h.base))
                .send()
        };
        let closed = close(otn).await.unwrap();
        assert_eq!(closed.status(), 200);
        let closed: serde_json::Value = closed.json().await.unwrap();
        assert_eq!(closed["state"], json!("CLOSED"));
        assert_eq!(close(otn).await.unwrap().status(), 409, "already closed");
        assert_eq!(close("MP404_1717214712000").await.unwrap().status(), 404);

        // The merchant learns of it by query, and its own close hears ORDERCLOSED.
        let reply = h.client.query(otn).await.unwrap();
        assert_eq!(reply.trade_state, TradeState::Closed);
        assert_eq!(code(h.client.close(otn).await.unwrap_err()), "ORDERCLOSED");
        assert_eq!(
            h.trade(otn).await["close_calls"],
            json!(1),
            "the control is no call"
        );
        // A closed trade cannot be paid (without force) and a paid one cannot be closed.
        assert_eq!(h.pay(otn, None).await.status(), 409);
        let paid = "MP33_1717214712000";
        h.prepay(paid, 100).await.unwrap();
        assert!(h.pay(paid, None).await.status().is_success());
        assert_eq!(close(paid).await.unwrap().status(), 409);
    }

    #[tokio::test]
    async fn a_late_answer_times_out_the_caller_but_the_work_is_done() {
        let h = impatient().await;
        h.receiver_answers("success").await;
        let otn = "MP34_1717214712000";
        h.prepay(otn, 1_000).await.unwrap();
        assert!(h.pay(otn, None).await.status().is_success());
        // The harness's client waits 500 ms; the refund is answered after 1.2 s.
        let late = json!({ "delay_ms": 1200, "count": 1, "service": "unified.trade.refund" });
        h.set_faults(Some(otn), json!({ "late_answer": late }))
            .await;

        // Another service of the same trade is answered at once.
        assert!(h.client.query(otn).await.is_ok());
        let request = RefundRequest {
            out_trade_no: otn,
            out_refund_no: "RF34_1717214800000",
            total_fee: Fen::new(1_000),
            refund_fee: Fen::new(400),
        };
        assert_eq!(
            h.client.refund(&request).await.unwrap_err(),
            GatewayError::Timeout
        );
        let trade = h.trade(otn).await;
        let refunds = trade["refunds"].as_array().unwrap();
        assert_eq!(
            refunds.len(),
            1,
            "the refund exists although the caller gave up"
        );
        assert_eq!(refunds[0]["out_refund_no"], json!("RF34_1717214800000"));
        assert_eq!(refunds[0]["refund_fee"], json!(400));

        // The fault is used up: resending the same number answers that same refund.
        let again = h.client.refund(&request).await.unwrap();
        assert_eq!(again.refund_id.as_deref(), refunds[0]["refund_id"].as_str());
        let trade = h.trade(otn).await;
        assert_eq!(trade["refunds"].as_array().unwrap().len(), 1);
        assert_eq!(trade["refunds"][0]["requests"], json!(2));
    }

    #[tokio::test]
    async fn a_late_prepay_and_a_late_close_are_done_too() {
        let h = impatient().await;
        let otn = "MP35_1717214712000";
        let late = json!({ "delay_ms": 1200, "count": 2 });
        h.set_faults(Some(otn), json!({ "late_answer": late }))
            .await;
        assert_eq!(h.prepay(otn, 100).await.unwrap_err(), GatewayError::Timeout);
        assert_eq!(h.trade(otn).await["state"], json!("NOTPAY"));
        assert_eq!(
            h.client.close(otn).await.unwrap_err(),
            GatewayError::Timeout
        );
        assert_eq!(h.trade(otn).await["state"], json!("CLOSED"));
        // Two late answers were asked for; the third call is answered at once.
        assert_eq!(code(h.client.close(otn).await.unwrap_err()), "ORDERCLOSED");
    }
}
