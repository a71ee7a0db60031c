//! The sandbox gateway over real HTTP, driven by our own client (the round trip) and by
//! hand-made messages (the strictness).

use secrecy::SecretString;
use serde_json::json;
use wallyt_pay::config::WechatSettings;
use wallyt_pay::gateway::wallyt::refund::{RefundQueryBy, RefundRequest, RefundStatus};
use wallyt_pay::gateway::wallyt::sign::verify;
use wallyt_pay::gateway::wallyt::sign::KeyedHash;
use wallyt_pay::gateway::wallyt::trade::TradeState;
use wallyt_pay::gateway::wallyt::GatewayError;
use wallyt_pay::gateway::wechat::{WechatClient, WechatError};
use wallyt_pay::sandbox::wechat::openid_for;
use wallyt_pay_actors::Fen;

use crate::sandbox_harness::{common, key, Harness, KEY};

fn business(error: GatewayError) -> String {
    match error {
        GatewayError::Business { code, .. } => code,
        other => panic!("expected a business error, got {other:?}"),
    }
}

#[tokio::test]
async fn round_trip_of_all_five_services_and_a_notify() {
    let h = Harness::start().await;
    h.receiver_answers("success").await;
    let otn = "MP1_1717214712000";

    let prepay = h.prepay(otn, 10_000).await.unwrap();
    let params = &prepay.pay_params;
    assert_eq!(params.app_id, "wxsandbox00000001");
    assert_eq!(params.time_stamp, params.nonce_str);
    assert!(params.package.starts_with("prepay_id=wx"));
    assert!(prepay.pay_info.contains(&params.pay_sign));

    let unpaid = h.client.query(otn).await.unwrap();
    assert_eq!(unpaid.trade_state, TradeState::NotPay);
    assert_eq!(unpaid.transaction_id, None);

    assert!(h.pay(otn, None).await.status().is_success());
    let trade = h
        .wait_for_attempts(otn, 1, std::time::Duration::from_secs(3))
        .await;
    let requests = h.receiver.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let (notify, fields) = h.client.verify_notify(&requests[0].body).unwrap();
    assert!(notify.paid);
    assert_eq!(notify.total_fee, Some(Fen::new(10_000)));
    assert_eq!(
        notify.attach.as_deref(),
        Some(r#"{"orderId":1,"userId":1}"#)
    );
    assert_eq!(
        fields.get("transaction_id"),
        trade["transaction_id"].as_str()
    );
    assert_eq!(trade["notify_attempts"][0]["acknowledged"], json!(true));

    let paid = h.client.query(otn).await.unwrap();
    assert_eq!(paid.trade_state, TradeState::Success);
    assert_eq!(paid.total_fee, Some(Fen::new(10_000)));
    assert_eq!(paid.time_end, notify.time_end);

    let refund = h
        .client
        .refund(&RefundRequest {
            out_trade_no: otn,
            out_refund_no: "RF1_1717214800000",
            total_fee: Fen::new(10_000),
            refund_fee: Fen::new(5_000),
        })
        .await
        .unwrap();
    assert_eq!(refund.refund_fee, Some(Fen::new(5_000)));
    let items = h
        .client
        .refund_query(RefundQueryBy::OutRefundNo("RF1_1717214800000"))
        .await
        .unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].status, RefundStatus::Success);
    assert_eq!(items[0].refund_id, refund.refund_id);
    assert!(items[0].refund_time.is_some());
    assert_eq!(
        h.client.query(otn).await.unwrap().trade_state,
        TradeState::Refund
    );

    // A paid trade cannot be closed; an unpaid one can, and then queries CLOSED.
    assert_eq!(
        business(h.client.close(otn).await.unwrap_err()),
        "ORDERPAID"
    );
    h.prepay("MP2_1717214712000", 100).await.unwrap();
    h.client.close("MP2_1717214712000").await.unwrap();
    let closed = h.client.query("MP2_1717214712000").await.unwrap();
    assert_eq!(closed.trade_state, TradeState::Closed);
}

#[tokio::test]
async fn same_out_trade_no_is_one_trade_and_reuse_is_refused() {
    let h = Harness::start().await;
    let first = h.prepay("MP3_1717214712000", 100).await.unwrap();
    let again = h.prepay("MP3_1717214712000", 100).await.unwrap();
    assert_eq!(first, again, "a resend answers the same prepay");
    let reuse = h.prepay("MP3_1717214712000", 200).await.unwrap_err();
    assert_eq!(business(reuse), "INVALID_REQUEST");
    h.client.close("MP3_1717214712000").await.unwrap();
    let after_close = h.prepay("MP3_1717214712000", 100).await.unwrap_err();
    assert_eq!(business(after_close), "ORDERCLOSED");
    let trades: serde_json::Value = h
        .http
        .get(format!("{}/sandbox/trades", h.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(trades.as_array().unwrap().len(), 1);
}

fn jspay_fields() -> wallyt_pay::gateway::wallyt::Fields {
    common("pay.weixin.jspay")
        .with("is_raw", "1")
        .with("is_minipg", "1")
        .with("out_trade_no", "MP4_1717214712000")
        .with("body", "VIP")
        .with("total_fee", "100")
        .with("mch_create_ip", "127.0.0.1")
        .with("sub_appid", "wxsandbox00000001")
        .with("sub_openid", "oUser")
        .with("notify_url", "https://example.com/payments/wallyt/notify")
}

#[tokio::test]
async fn call_level_refusals_are_unsigned() {
    let h = Harness::start().await;
    let refusals = [
        (
            h.raw(jspay_fields(), "another-key").await,
            "Signature error",
        ),
        (
            h.raw(jspay_fields().with("mch_id", "7551000002"), KEY)
                .await,
            "Signature error",
        ),
        (
            h.raw_body(b"<xml><a>\xff</a></xml>".to_vec()).await,
            "Parse xml error,please use UTF-8 encoded",
        ),
    ];
    for (reply, message) in refusals {
        assert_eq!(reply.get("status"), Some("400"), "{reply:?}");
        assert_eq!(reply.get("message"), Some(message));
        assert!(!reply.contains("sign"), "status≠0 replies are unsigned");
        assert!(!reply.contains("result_code"));
    }
    let missing_sign = jspay_fields().with("sign", "x");
    let mut unsigned = missing_sign.clone();
    unsigned.remove("sign");
    let body = wallyt_pay::gateway::wallyt::xml::encode(&unsigned).into_bytes();
    assert_eq!(
        h.raw_body(body).await.get("message"),
        Some("Signature error")
    );
}

#[tokio::test]
async fn business_refusals_are_signed_and_strict() {
    let h = Harness::start().await;
    let mut missing = jspay_fields();
    missing.remove("sub_openid");
    let cases = [
        (missing, "LACK_PARAMS"),
        (jspay_fields().with("out_trade_no", "MP-4"), "PARAM_ERROR"),
        (jspay_fields().with("total_fee", "1.00"), "PARAM_ERROR"),
        (
            jspay_fields().with("notify_url", "https://example.com/n?x=1"),
            "PARAM_ERROR",
        ),
        (
            jspay_fields().with("notify_url", "/relative"),
            "PARAM_ERROR",
        ),
        (jspay_fields().with("is_raw", "0"), "PARAM_ERROR"),
        (
            jspay_fields().with("nonce_str", "x".repeat(33)),
            "PARAM_ERROR",
        ),
        (
            jspay_fields()
                .with("time_start", "20200101000000")
                .with("time_expire", "20200101001500"),
            "PARAM_ERROR",
        ),
        (
            common("unified.trade.query").with("out_trade_no", "MP9_0000000000"),
            "ORDERNOTEXIST",
        ),
    ];
    for (fields, code) in cases {
        let reply = h.raw(fields, KEY).await;
        assert_eq!(reply.get("status"), Some("0"));
        assert_eq!(reply.get("result_code"), Some("1"));
        assert_eq!(reply.get("err_code"), Some(code), "{reply:?}");
        assert!(
            verify(&reply, KeyedHash::Md5, &key()),
            "business errors are signed"
        );
    }
    // One of time_start/time_expire alone is ignored, not refused.
    let reply = h
        .raw(jspay_fields().with("time_start", "20200101000000"), KEY)
        .await;
    assert_eq!(reply.get("result_code"), Some("0"), "{reply:?}");
}

#[tokio::test]
async fn replies_are_sorted_cdata_and_sha256_works_too() {
    let h = Harness::start().await;
    let fields = jspay_fields().with("sign_type", "SHA256");
    let signature = wallyt_pay::gateway::wallyt::sign::sign(&fields, KeyedHash::Sha256, &key());
    let body = wallyt_pay::gateway::wallyt::xml::encode(&fields.with("sign", signature));
    let raw = h
        .http
        .post(format!("{}/pay/gateway", h.base))
        .body(body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The element name stands before each CDATA opening.
    let parts: Vec<&str> = raw.split("><![CDATA[").collect();
    let names: Vec<&str> = parts[..parts.len() - 1]
        .iter()
        .map(|part| part.rsplit('<').next().unwrap())
        .collect();
    assert_eq!(names.len(), 11, "{raw}");
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "{raw}");
    let reply = wallyt_pay::gateway::wallyt::xml::decode(raw.as_bytes()).unwrap();
    assert_eq!(reply.get("sign_type"), Some("SHA256"));
    assert!(verify(&reply, KeyedHash::Sha256, &key()));
}

#[tokio::test]
async fn a_trade_past_time_expire_queries_closed() {
    let h = Harness::start().await;
    let now = wallyt_pay_actors::Clock::now(&wallyt_pay_actors::SystemClock);
    let fields = jspay_fields()
        .with("out_trade_no", "MP5_1717214712000")
        .with(
            "time_start",
            wallyt_pay::gateway::wallyt::time::format_gmt8(now),
        )
        .with(
            "time_expire",
            wallyt_pay::gateway::wallyt::time::format_gmt8(
                now.plus(std::time::Duration::from_secs(1)),
            ),
        );
    assert_eq!(h.raw(fields, KEY).await.get("result_code"), Some("0"));
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let reply = h.client.query("MP5_1717214712000").await.unwrap();
    assert_eq!(reply.trade_state, TradeState::Closed);
    assert_eq!(h.pay("MP5_1717214712000", None).await.status(), 409);
    // A forced (late) payment still goes through, as a real late payment can.
    assert!(h
        .pay("MP5_1717214712000", Some(json!({ "force": true })))
        .await
        .status()
        .is_success());
    assert_eq!(
        h.client
            .query("MP5_1717214712000")
            .await
            .unwrap()
            .trade_state,
        TradeState::Success
    );
}

#[tokio::test]
async fn refunds_are_capped_and_keyed_by_out_refund_no() {
    let h = Harness::start().await;
    h.receiver_answers("success").await;
    let otn = "MP6_1717214712000";
    h.prepay(otn, 1_000).await.unwrap();
    let refund = |no: &'static str, fee: i64, total: i64| RefundRequest {
        out_trade_no: otn,
        out_refund_no: no,
        total_fee: Fen::new(total),
        refund_fee: Fen::new(fee),
    };
    let unpaid = h
        .client
        .refund(&refund("RF6_0000000001", 100, 1_000))
        .await
        .unwrap_err();
    assert_eq!(business(unpaid), "TRADE_STATE_ERROR");
    h.pay(otn, None).await;

    let first = h
        .client
        .refund(&refund("RF6_0000000001", 600, 1_000))
        .await
        .unwrap();
    let again = h
        .client
        .refund(&refund("RF6_0000000001", 600, 1_000))
        .await
        .unwrap();
    assert_eq!(first, again, "same out_refund_no, same refund");
    let changed = h
        .client
        .refund(&refund("RF6_0000000001", 700, 1_000))
        .await
        .unwrap_err();
    assert_eq!(business(changed), "PARAM_ERROR");
    let too_much = h
        .client
        .refund(&refund("RF6_0000000002", 500, 1_000))
        .await
        .unwrap_err();
    assert_eq!(business(too_much), "NOTENOUGH");
    let wrong_total = h
        .client
        .refund(&refund("RF6_0000000003", 100, 999))
        .await
        .unwrap_err();
    assert_eq!(business(wrong_total), "PARAM_ERROR");
    h.client
        .refund(&refund("RF6_0000000004", 400, 1_000))
        .await
        .unwrap();

    let trade = h.trade(otn).await;
    let refunds = trade["refunds"].as_array().unwrap();
    assert_eq!(refunds.len(), 2);
    assert_eq!(refunds[0]["requests"], json!(2));
    let all = h
        .client
        .refund_query(RefundQueryBy::OutTradeNo(otn))
        .await
        .unwrap();
    assert_eq!(all.iter().map(|r| r.refund_fee.get()).sum::<i64>(), 1_000);
}

#[tokio::test]
async fn jscode2session_maps_codes_to_stable_openids() {
    let h = Harness::start().await;
    let client = |secret: &str| {
        WechatClient::new(
            &WechatSettings {
                api_base: h.base.clone(),
                credentials: Some((
                    "wxsandbox00000001".into(),
                    SecretString::from(secret.to_owned()),
                )),
            },
            h.http.clone(),
        )
    };
    let good = client("sandbox-secret");
    let first = good.code_to_session("code-a").await.unwrap();
    assert_eq!(first.openid, openid_for("wxsandbox00000001", "code-a"));
    assert_eq!(
        good.code_to_session("code-a").await.unwrap().openid,
        first.openid
    );
    assert_ne!(
        good.code_to_session("code-b").await.unwrap().openid,
        first.openid
    );
    assert!(matches!(
        good.code_to_session("invalid-code").await,
        Err(WechatError::Rejected { errcode: 40029, .. })
    ));
    assert!(matches!(
        client("wrong").code_to_session("code-a").await,
        Err(WechatError::Rejected { errcode: 40125, .. })
    ));
}
