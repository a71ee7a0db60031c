//! Notify delivery the way the gateway does it: signed XML POSTed to the trade's notify_url
//! after 0, 15, 15, 30, 180, 1800, 1800, 1800, 1800 and 3600 seconds (times the configured
//! scale), until the merchant answers exactly `success`. Faults can duplicate, delay, drop or
//! tamper with it.

use futures_util::future::join_all;
use std::time::Duration;

use super::faults::Tamper;
use super::state::NotifyAttempt;
use super::Sandbox;
use crate::gateway::wallyt::fields::Fields;
use crate::gateway::wallyt::xml::encode;

pub const SCHEDULE_SECS: [u64; 10] = [0, 15, 15, 30, 180, 1800, 1800, 1800, 1800, 3600];

pub fn spawn_delivery(sandbox: Sandbox, out_trade_no: String) {
    tokio::spawn(async move { deliver(sandbox, out_trade_no).await });
}

async fn deliver(sandbox: Sandbox, out_trade_no: String) {
    let faults = sandbox.with_state(|s| s.faults_for(Some(&out_trade_no)));
    if faults.notify_drop == Some(true) {
        tracing::info!(event = "sandbox.notify.dropped", out_trade_no = %out_trade_no);
        return;
    }
    if let Some(delay) = faults.notify_delay_ms {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let scale = sandbox.config().notify_time_scale;
    for (index, secs) in SCHEDULE_SECS.iter().enumerate() {
        tokio::time::sleep(Duration::from_secs_f64(*secs as f64 * scale)).await;
        let Some((url, body)) = notify_message(&sandbox, &out_trade_no, faults.notify_tamper)
        else {
            return;
        };
        let copies = faults.notify_copies.unwrap_or(1).clamp(1, 100);
        let sends = (0..copies).map(|_| send(&sandbox, &url, body.clone()));
        let outcomes = join_all(sends).await;
        let acknowledged = outcomes.iter().any(|o| o.acknowledged);
        let attempt = index as u32 + 1;
        sandbox.with_state(|s| {
            if let Some(trade) = s.trades.get_mut(&out_trade_no) {
                for (copy, outcome) in outcomes.into_iter().enumerate() {
                    trade.notify_attempts.push(NotifyAttempt {
                        attempt,
                        copy: copy as u32 + 1,
                        ..outcome
                    });
                }
            }
        });
        if acknowledged {
            return;
        }
    }
    tracing::warn!(event = "sandbox.notify.gave_up", out_trade_no = %out_trade_no);
}

/// The signed notify of a paid trade, with the fault applied.
pub fn notify_message(
    sandbox: &Sandbox,
    out_trade_no: &str,
    tamper: Option<Tamper>,
) -> Option<(String, String)> {
    let config = sandbox.config();
    let keys = sandbox.notify_keys();
    let (url, mut fields) = sandbox.with_state(|s| {
        let trade = s.trades.get(out_trade_no).filter(|t| t.is_paid())?;
        let fields = Fields::new()
            .with("version", "2.0")
            .with("charset", "UTF-8")
            .with("sign_type", keys.sign_type().as_str())
            .with("status", "0")
            .with("result_code", "0")
            .with("mch_id", config.mch_id.as_str())
            .with("nonce_str", sandbox.now().0.to_string())
            .with("openid", trade.sub_openid.as_str())
            .with("trade_type", "pay.weixin.jspay")
            .with("is_subscribe", "N")
            .with("pay_result", "0")
            .with(
                "transaction_id",
                trade.transaction_id.clone().unwrap_or_default(),
            )
            .with(
                "out_transaction_id",
                trade.out_transaction_id.clone().unwrap_or_default(),
            )
            .with("sub_is_subscribe", "N")
            .with("sub_appid", trade.sub_appid.as_str())
            .with("sub_openid", trade.sub_openid.as_str())
            .with("out_trade_no", trade.out_trade_no.as_str())
            .with("total_fee", trade.total_fee.to_string())
            .with("cash_fee", trade.total_fee.to_string())
            .with("fee_type", "CNY")
            .with("attach", trade.attach.clone().unwrap_or_default())
            .with("bank_type", "CFT")
            .with("time_end", trade.time_end.clone().unwrap_or_default());
        Some((trade.notify_url.clone(), fields))
    })?;
    let bump = |fields: &mut Fields| {
        let fee: i64 = fields
            .get("total_fee")
            .and_then(|f| f.parse().ok())
            .unwrap_or(0);
        fields.set("total_fee", (fee + 1).to_string());
    };
    if tamper == Some(Tamper::WrongAmount) {
        bump(&mut fields);
    }
    let mut signature = keys.sign(&fields);
    if tamper == Some(Tamper::BadSign) {
        signature = signature.chars().rev().collect();
    }
    fields.set("sign", signature);
    if tamper == Some(Tamper::FieldChanged) {
        bump(&mut fields);
    }
    Some((url, encode(&fields)))
}

async fn send(sandbox: &Sandbox, url: &str, body: String) -> NotifyAttempt {
    let sent_at = sandbox.now().0;
    let result = sandbox
        .http()
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=UTF-8")
        .body(body)
        .send()
        .await;
    let mut attempt = NotifyAttempt {
        attempt: 0,
        copy: 0,
        sent_at,
        http_status: None,
        answer: None,
        acknowledged: false,
        error: None,
    };
    match result {
        Ok(response) => {
            attempt.http_status = Some(response.status().as_u16());
            match response.text().await {
                Ok(text) => {
                    // Exactly `success` stops the retries; anything else does not.
                    attempt.acknowledged = text == "success";
                    attempt.answer = Some(text.chars().take(64).collect());
                }
                Err(error) => attempt.error = Some(error.without_url().to_string()),
            }
        }
        Err(error) if error.is_timeout() => attempt.error = Some("timeout".into()),
        Err(error) => attempt.error = Some(error.without_url().to_string()),
    }
    attempt
}
