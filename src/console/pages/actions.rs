//! The console's buttons: each checks the session and its CSRF token, then calls the admin
//! API's own action (`sync_as`, `operator_refund_as`, `replay_as`) as the session's operator
//! under the form's idempotency key — audited, deduplicated and done exactly as the API does —
//! and shows the order page again with what came of it.

use actix_web::body::to_bytes;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::Deserialize;
use serde_json::Value;
use wallyt_pay_actors::Fen;

use super::forbidden;
use super::order::render;
use crate::console::session::Session;
use crate::console::{csrf, state, to_signin, Flash};
use crate::http::ratelimit::Caller;
use crate::http::routes::admin::actions::{replay_as, sync_as};
use crate::http::routes::admin::Acting;
use crate::http::routes::refunds::{operator_refund_as, OperatorRefundBody};
use crate::http::ApiError;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionForm {
    csrf: Option<String>,
    idempotency_key: Option<String>,
    /// Refunds: one ticket, or
    ticket_id: Option<String>,
    /// an amount in yuan.
    amount: Option<String>,
    reason: Option<String>,
    /// Replays: the order page to return to.
    order_id: Option<i64>,
}

/// Why a form was not acted on.
enum Refusal {
    /// No live session: sign in first.
    NoSession,
    /// Not a form of this session (CSRF token missing or wrong).
    Forged(Session),
}

impl Refusal {
    fn answer(self) -> HttpResponse {
        match self {
            Refusal::NoSession => to_signin(),
            Refusal::Forged(session) => forbidden(&session),
        }
    }
}

/// The session, when the form is one of its own.
fn checked(req: &HttpRequest, form: &ActionForm) -> Result<(Session, Acting), Refusal> {
    let Some(session) = state(req).console.of(req) else {
        return Err(Refusal::NoSession);
    };
    if !csrf::valid(&session, form.csrf.as_deref()) {
        tracing::warn!(event = "console.csrf.refused", operator = %session.operator);
        return Err(Refusal::Forged(session));
    }
    let acting = Acting {
        operator: session.operator.clone(),
        idempotency_key: form.idempotency_key.clone(),
    };
    Ok((session, acting))
}

/// What the API's answer says, in a sentence for the flash.
async fn outcome(response: HttpResponse, done: impl FnOnce(&Value) -> String) -> Flash {
    let ok = response.status().is_success();
    let body = to_bytes(response.into_body()).await.unwrap_or_default();
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if ok {
        Flash {
            ok,
            text: done(&json["data"]),
        }
    } else {
        let code = json["error"]["code"].as_str().unwrap_or("ERROR");
        let message = json["error"]["message"]
            .as_str()
            .unwrap_or("the action failed");
        Flash {
            ok,
            text: format!("Not done: {code}: {message}"),
        }
    }
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("?")
}

pub async fn sync(
    req: HttpRequest,
    id: web::Path<i64>,
    form: web::Form<ActionForm>,
) -> HttpResponse {
    let (session, acting) = match checked(&req, &form) {
        Ok(checked) => checked,
        Err(refusal) => return refusal.answer(),
    };
    let order_id = id.into_inner();
    let state = state(&req);
    let response = sync_as(state, &req, acting, order_id).await;
    let flash = outcome(response, |data| {
        let trades: Vec<String> = data["trades"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| format!("{} {}", text(&t["outTradeNo"]), text(&t["gatewayStatus"])))
            .collect();
        format!(
            "Synced: the order is {}; the gateway says {}.",
            text(&data["orderStatus"]),
            if trades.is_empty() {
                "nothing".into()
            } else {
                trades.join(", ")
            }
        )
    })
    .await;
    render(state, &session, order_id, Some(flash)).await
}

/// The form's refund as the API's body: one ticket, or an amount of yuan.
fn refund_body(form: &ActionForm) -> Result<OperatorRefundBody, ApiError> {
    let given = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let ticket_ids = given(&form.ticket_id)
        .map(|id| {
            id.parse::<i64>()
                .map(|id| vec![id])
                .map_err(|_| ApiError::validation("ticketId must be a ticket's id"))
        })
        .transpose()?;
    let amount = given(&form.amount)
        .map(|a| {
            Fen::parse_yuan(&a).map_err(|_| {
                ApiError::validation("amount must be yuan with at most two decimals, e.g. 10.00")
            })
        })
        .transpose()?;
    if ticket_ids.is_none() && amount.is_none() {
        return Err(ApiError::validation("choose a ticket or give an amount"));
    }
    Ok(OperatorRefundBody {
        amount,
        reason: form.reason.clone().unwrap_or_default(),
        ticket_ids,
        payment_id: None,
    })
}

pub async fn refund(
    req: HttpRequest,
    id: web::Path<i64>,
    form: web::Form<ActionForm>,
) -> HttpResponse {
    let (session, acting) = match checked(&req, &form) {
        Ok(checked) => checked,
        Err(refusal) => return refusal.answer(),
    };
    let order_id = id.into_inner();
    let state = state(&req);
    let response = match (
        state.limits.per_caller(Caller::Operator),
        refund_body(&form),
    ) {
        (Err(limited), _) => limited.error_response(),
        (Ok(()), Err(invalid)) => invalid.error_response(),
        (Ok(()), Ok(body)) => operator_refund_as(state, &req, acting, order_id, &body).await,
    };
    let flash = outcome(response, |data| {
        // The envelope's amount read back as f64 (e.g. 50.0): shown again with two decimals.
        let amount = data["refundAmount"].as_f64().unwrap_or_default();
        format!(
            "Refund {} of ¥{amount:.2}: {}.",
            text(&data["outRefundNo"]),
            text(&data["status"])
        )
    })
    .await;
    render(state, &session, order_id, Some(flash)).await
}

pub async fn replay(
    req: HttpRequest,
    id: web::Path<i64>,
    form: web::Form<ActionForm>,
) -> HttpResponse {
    let (session, acting) = match checked(&req, &form) {
        Ok(checked) => checked,
        Err(refusal) => return refusal.answer(),
    };
    let state = state(&req);
    let response = replay_as(state, &req, acting, id.into_inner()).await;
    let mut order_id = form.order_id;
    let flash = outcome(response, |data| {
        order_id = data["orderId"].as_i64().or(order_id);
        format!("Replayed: {}.", text(&data["verdict"]))
    })
    .await;
    match order_id {
        Some(order_id) => render(state, &session, order_id, Some(flash)).await,
        None => super::failed(&session, &ApiError::NotFound(flash.text)),
    }
}
