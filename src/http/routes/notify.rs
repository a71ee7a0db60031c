//! `POST /payments/wallyt/notify`: Wallyt's signed XML callback. It is verified first —
//! our sign type, the signature over every field, our merchant — because what is stored
//! depends on it (see `storage::notify_audit`): a notify refused before it verifies is kept
//! only as digest, length, first bytes and verdict, for a limited time; a verified one is
//! stored whole once, and its copies and retries are recorded as verdict events carrying the
//! body's SHA-256. Then the trade, the order it names and the amount are checked (one read,
//! which also answers a retry of a payment already applied), and the payment is handed to the
//! order's actor, which applies it in one transaction, exactly once, with the notify's body
//! and verdict: one commit per accepted notify (shared with other notifies when group commit
//! is on). The answer is plain `success` (applied, or already applied) or `fail` (the gateway
//! will retry).

use actix_web::web::{Bytes, Data};
use actix_web::HttpResponse;
use wallyt_pay_actors::engine::{ApplyNotified, ApplyPaid};
use wallyt_pay_actors::ports::{NotifyBody, OrderStore, PaymentApplication};

use crate::gateway::wallyt::notify::{NotifyError, PaymentNotify};
use crate::gateway::wallyt::sign::string_to_sign;
use crate::gateway::wallyt::xml::XmlError;
use crate::gateway::wallyt::Fields;
use crate::http::request_id::RequestId;
use crate::startup::AppState;
use crate::storage::notify_audit::{sha256_hex, NotifyVerdict, VerifiedNotify};

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
    /// Its body and verdict were written in the transaction that applied it.
    recorded: bool,
}

fn refuse(name: &'static str, order_id: Option<i64>, out_trade_no: Option<String>) -> Verdict {
    Verdict {
        accepted: false,
        name,
        order_id,
        out_trade_no,
        recorded: false,
    }
}

fn accept(name: &'static str, order_id: i64, out_trade_no: String) -> Verdict {
    Verdict {
        accepted: true,
        name,
        order_id: Some(order_id),
        out_trade_no: Some(out_trade_no),
        recorded: false,
    }
}

#[utoipa::path(post, path = "/payments/wallyt/notify", tag = "payments",
    request_body(content = String, content_type = "text/xml", description = "the gateway's signed XML"),
    responses((status = 200, content_type = "text/plain", body = String,
        description = "`success` (applied, or already applied) or `fail` (the gateway retries)")))]
pub async fn notify(state: Data<AppState>, request_id: RequestId, body: Bytes) -> HttpResponse {
    let now = state.clock.now();
    let rid = request_id.as_str();
    let count = |name: &str| state.metrics.notifies.with_label_values(&[name]).inc();
    let verified = match authenticate(&state, &body) {
        Ok(verified) => verified,
        Err(name) => {
            count(name);
            if let Err(error) = state
                .db
                .record_notify_rejection(&body, name, rid, now)
                .await
            {
                tracing::error!(event = "wallyt.notify.not_stored", %error);
            }
            return answer(false);
        }
    };
    let digest = sha256_hex(&body);
    let usable = verified.as_ref().ok();
    let key = usable.map(|(notify, fields)| notify_key(&notify.out_trade_no, fields));
    let out_trade_no = usable.map(|(notify, _)| notify.out_trade_no.clone());
    let verdict = match verified {
        Ok((notify, _)) => {
            // Applied, its body and verdict commit with the payment (one commit).
            let audit = NotifyBody {
                body: String::from_utf8_lossy(&body).into_owned(),
                body_sha256: digest.clone(),
                notify_key: key.clone(),
                request_id: Some(rid.to_owned()),
            };
            judge(&state, notify, Some(audit)).await
        }
        Err(name) => refuse(name, None, None),
    };
    count(verdict.name);
    if verdict.recorded {
        return answer(verdict.accepted);
    }
    // Not applied (refused, not paid, a duplicate, a failure): body (once per key) and
    // verdict in one statement. A verified notify that cannot be stored is answered `fail`,
    // so the gateway sends it again.
    let stored = VerifiedNotify {
        body: &body,
        body_sha256: &digest,
        out_trade_no: out_trade_no.as_deref(),
        notify_key: key.as_deref(),
        request_id: rid,
    };
    let event = NotifyVerdict {
        order_id: verdict.order_id,
        out_trade_no: verdict.out_trade_no.as_deref(),
        verdict: verdict.name,
        body_sha256: &digest,
        request_id: rid,
    };
    match state
        .db
        .record_notify(&stored, &event, state.clock.now())
        .await
    {
        Ok(()) => answer(verdict.accepted),
        Err(error) => {
            tracing::error!(event = "wallyt.notify.not_stored", %error);
            answer(false)
        }
    }
}

/// Re-runs a stored, verified notify (`POST /admin/events/{id}/replay`) through the path of
/// [`notify`]: verified again with today's keys, judged, handed to the order's actor, its
/// verdict recorded beside the stored body. The body is not stored again — it is the stored
/// one. Answers the verdict and the order it concerned; an applied payment answers
/// `duplicate`, since the actor applies a payment once. The verdict row carries the id of the
/// operator's request (`request_id`), not the original delivery's.
pub async fn replay(
    state: &AppState,
    body: &[u8],
    request_id: &str,
) -> (&'static str, Option<i64>) {
    let verdict = match authenticate(state, body) {
        Ok(Ok((notify, _))) => judge(state, notify, None).await,
        Ok(Err(name)) | Err(name) => refuse(name, None, None),
    };
    let digest = sha256_hex(body);
    let event = NotifyVerdict {
        order_id: verdict.order_id,
        out_trade_no: verdict.out_trade_no.as_deref(),
        verdict: verdict.name,
        body_sha256: &digest,
        request_id,
    };
    if let Err(error) = state
        .db
        .record_notify_verdict(&event, state.clock.now())
        .await
    {
        tracing::error!(event = "wallyt.notify.not_stored", %error);
    }
    (verdict.name, verdict.order_id)
}

/// Names a notify by its trade and every signed fact in it but the nonce: copies (concurrent,
/// or the gateway's retries with a new nonce_str) share the key, so one whole body is kept;
/// a notify saying anything else about the trade (a failed payment, then a paid one; another
/// amount) is a different fact and is stored too.
fn notify_key(out_trade_no: &str, fields: &Fields) -> String {
    let mut facts = fields.clone();
    facts.remove("nonce_str");
    let facts = sha256_hex(string_to_sign(&facts).as_bytes());
    format!("{out_trade_no}|{facts}")
}

/// `Err(verdict)`: refused before the signature verified (untrusted, stored as a summary).
/// `Ok(Err(verdict))`: verified, but unusable. `Ok(Ok(..))`: verified and complete.
type Authenticated = Result<Result<(PaymentNotify, Fields), &'static str>, &'static str>;

fn authenticate(state: &AppState, body: &[u8]) -> Authenticated {
    let Some(wallyt) = &state.wallyt else {
        tracing::error!(event = "wallyt.notify.not_configured");
        return Err("not_configured");
    };
    let error = match wallyt.client.verify_notify(body) {
        Ok(verified) => return Ok(Ok(verified)),
        Err(error) => error,
    };
    let name = match error {
        NotifyError::InvalidSignature => "invalid_signature",
        NotifyError::SignTypeMismatch { .. } => "sign_type_mismatch",
        NotifyError::Malformed(XmlError::TooLarge) => "oversized",
        NotifyError::Malformed(_) => "malformed",
        NotifyError::ForeignMerchant => "foreign_merchant",
        NotifyError::MissingOutTradeNo => "missing_order_id",
        NotifyError::IncompletePayment => "incomplete",
    };
    match name {
        // A declared sign type other than ours is a signature we refuse to check.
        "invalid_signature" | "sign_type_mismatch" => {
            tracing::warn!(event = "wallyt.notify.invalid_signature", verdict = name, %error)
        }
        "missing_order_id" => tracing::warn!(event = "wallyt.notify.missing_order_id", %error),
        _ => tracing::warn!(event = "wallyt.notify.rejected", verdict = name, %error),
    }
    if error.unverified() {
        Err(name)
    } else {
        Ok(Err(name))
    }
}

/// Checks a verified notify against its trade and hands a payment to the order's actor. With
/// `audit`, the notify's body and verdict are written in the transaction that applies it
/// (`recorded`); a notify of a payment already applied is answered from the one read.
async fn judge(state: &AppState, notify: PaymentNotify, audit: Option<NotifyBody>) -> Verdict {
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
        return accept("not_paid", order_id, otn);
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
    // A retry of a payment already applied (committed, with this transaction id): the read
    // says so, and neither the actor nor a transaction is needed.
    let applied = payment.status.pay().is_err();
    if applied && payment.transaction_id.as_deref() == Some(transaction_id.as_str()) {
        return accept("duplicate", order_id, otn);
    }
    let application = PaymentApplication {
        out_trade_no: otn.clone(),
        transaction_id,
        amount,
        paid_at,
    };
    let recorded = audit.is_some();
    let applied = match audit {
        Some(notify) => {
            let msg = ApplyNotified {
                application,
                notify,
            };
            state.engine.send(order_id, msg).await
        }
        None => state.engine.send(order_id, ApplyPaid(application)).await,
    };
    match applied {
        Ok(outcome) => {
            let (name, accepted) = outcome.notify_verdict();
            Verdict {
                accepted,
                name,
                order_id: Some(order_id),
                out_trade_no: Some(otn),
                recorded,
            }
        }
        Err(error) => {
            tracing::error!(event = "wallyt.notify.apply_failed", order_id, out_trade_no = %otn, %error);
            refuse("apply_failed", Some(order_id), Some(otn))
        }
    }
}
