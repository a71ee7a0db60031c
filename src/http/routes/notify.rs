//! `POST /payments/wallyt/notify`: Wallyt's signed XML callback. The raw body is stored first
//! (the audit log is append-only), then verified — signature over every field, our merchant,
//! the trade, the order it names, the amount — and only then handed to the order's actor,
//! which applies it in one transaction, exactly once. The answer is plain `success` (applied,
//! or already applied) or `fail` (the gateway will retry).

use actix_web::web::{Bytes, Data};
use actix_web::HttpResponse;
use wallyt_pay_actors::engine::ApplyPaid;
use wallyt_pay_actors::ports::{ApplyOutcome, NewPaymentEvent, OrderStore, PaymentApplication};

use crate::gateway::wallyt::notify::NotifyError;
use crate::startup::AppState;

fn answer(accepted: bool) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(if accepted { "success" } else { "fail" })
}

/// The verdict of one notify, for the log, the audit trail and the metrics.
struct Verdict {
    accepted: bool,
    name: &'static str,
    order_id: Option<i64>,
    out_trade_no: Option<String>,
}

fn refuse(name: &'static str, order_id: Option<i64>, out_trade_no: Option<String>) -> Verdict {
    Verdict {
        accepted: false,
        name,
        order_id,
        out_trade_no,
    }
}

#[utoipa::path(post, path = "/payments/wallyt/notify", tag = "payments",
    request_body(content = String, content_type = "text/xml", description = "the gateway's signed XML"),
    responses((status = 200, content_type = "text/plain", body = String,
        description = "`success` (applied, or already applied) or `fail` (the gateway retries)")))]
pub async fn notify(state: Data<AppState>, body: Bytes) -> HttpResponse {
    let now = state.clock.now();
    let received = NewPaymentEvent {
        kind: "notify".into(),
        order_id: None,
        out_trade_no: None,
        verdict: "received".into(),
        raw: String::from_utf8_lossy(&body).into_owned(),
    };
    if let Err(error) = state.db.append_event(&received, now).await {
        tracing::error!(event = "wallyt.notify.not_stored", %error);
        return answer(false);
    }
    let verdict = judge(&state, &body).await;
    state
        .metrics
        .notifies
        .with_label_values(&[verdict.name])
        .inc();
    let event = NewPaymentEvent {
        kind: "notify.verdict".into(),
        order_id: verdict.order_id,
        out_trade_no: verdict.out_trade_no.clone(),
        verdict: verdict.name.into(),
        raw: String::new(),
    };
    if let Err(error) = state.db.append_event(&event, state.clock.now()).await {
        tracing::error!(event = "wallyt.notify.not_stored", %error);
    }
    answer(verdict.accepted)
}

async fn judge(state: &AppState, body: &[u8]) -> Verdict {
    let Some(wallyt) = &state.wallyt else {
        tracing::error!(event = "wallyt.notify.not_configured");
        return refuse("not_configured", None, None);
    };
    let notify = match wallyt.client.verify_notify(body) {
        Ok((notify, _)) => notify,
        Err(error) => {
            let name = match error {
                NotifyError::InvalidSignature => "invalid_signature",
                NotifyError::Malformed(_) => "malformed",
                NotifyError::ForeignMerchant => "foreign_merchant",
                NotifyError::MissingOutTradeNo => "missing_order_id",
                NotifyError::IncompletePayment => "incomplete",
            };
            match name {
                "invalid_signature" => {
                    tracing::warn!(event = "wallyt.notify.invalid_signature", %error)
                }
                "missing_order_id" => {
                    tracing::warn!(event = "wallyt.notify.missing_order_id", %error)
                }
                _ => tracing::warn!(event = "wallyt.notify.rejected", verdict = name, %error),
            }
            return refuse(name, None, None);
        }
    };
    let otn = notify.out_trade_no.clone();
    let payment = match state.db.payment_by_out_trade_no(&otn).await {
        Ok(Some(payment)) => payment,
        Ok(None) => {
            tracing::warn!(event = "wallyt.notify.missing_order_id", out_trade_no = %otn);
            return refuse("missing_order_id", None, Some(otn));
        }
        Err(error) => {
            tracing::error!(event = "wallyt.notify.store_error", %error);
            return refuse("store_error", None, Some(otn));
        }
    };
    let order_id = payment.order_id;
    if let Some(attach) = &notify.attach {
        let named = serde_json::from_str::<serde_json::Value>(attach)
            .ok()
            .and_then(|v| v.get("orderId").and_then(|id| id.as_i64()));
        if named != Some(order_id) {
            tracing::warn!(event = "wallyt.notify.order_mismatch", order_id, out_trade_no = %otn, attach = %attach);
            return refuse("order_mismatch", Some(order_id), Some(otn));
        }
    }
    if !notify.paid {
        tracing::info!(event = "wallyt.notify.not_paid", order_id, out_trade_no = %otn);
        return Verdict {
            accepted: true,
            name: "not_paid",
            order_id: Some(order_id),
            out_trade_no: Some(otn),
        };
    }
    // verify_notify guarantees these three for a paid notify.
    let (Some(transaction_id), Some(amount), Some(paid_at)) =
        (notify.transaction_id, notify.total_fee, notify.time_end)
    else {
        return refuse("incomplete", Some(order_id), Some(otn));
    };
    if amount != payment.amount {
        tracing::error!(
            event = "wallyt.notify.amount_mismatch",
            order_id,
            out_trade_no = %otn,
            expected = payment.amount.get(),
            got = amount.get(),
        );
        return refuse("amount_mismatch", Some(order_id), Some(otn));
    }
    let application = PaymentApplication {
        out_trade_no: otn.clone(),
        transaction_id,
        amount,
        paid_at,
    };
    match state.engine.send(order_id, ApplyPaid(application)).await {
        Ok(ApplyOutcome::Confirmed { .. }) => Verdict {
            accepted: true,
            name: "confirmed",
            order_id: Some(order_id),
            out_trade_no: Some(otn),
        },
        Ok(ApplyOutcome::AlreadyApplied) => Verdict {
            accepted: true,
            name: "duplicate",
            order_id: Some(order_id),
            out_trade_no: Some(otn),
        },
        Ok(ApplyOutcome::Revived { .. }) => Verdict {
            accepted: true,
            name: "late_payment_reconfirmed",
            order_id: Some(order_id),
            out_trade_no: Some(otn),
        },
        // The refund is recorded with the payment: accepting the notify loses nothing.
        Ok(ApplyOutcome::RefundPlanned { .. }) => Verdict {
            accepted: true,
            name: "paid_order_not_pending",
            order_id: Some(order_id),
            out_trade_no: Some(otn),
        },
        Ok(ApplyOutcome::AmountMismatch { .. }) => {
            refuse("amount_mismatch", Some(order_id), Some(otn))
        }
        Ok(ApplyOutcome::UnknownTrade) => refuse("missing_order_id", Some(order_id), Some(otn)),
        Err(error) => {
            tracing::error!(event = "wallyt.notify.apply_failed", order_id, out_trade_no = %otn, %error);
            refuse("apply_failed", Some(order_id), Some(otn))
        }
    }
}
