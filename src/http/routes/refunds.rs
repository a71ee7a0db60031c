//! Refunds through the order's actor, once per Idempotency-Key: a buyer's
//! (`POST /payments/refund`, by whole tickets) and an operator's
//! (`POST /admin/orders/{id}/refunds`, any amount up to what is refundable).

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use wallyt_pay_actors::engine::{Refund, RefundAsk};
use wallyt_pay_actors::ports::OrderStore;
use wallyt_pay_actors::ticket_refund::BuyerAsk;
use wallyt_pay_actors::{Fen, Order, OrderStatus, Refund as RefundRecord};

use super::admin;
use super::orders::own_order;
use crate::http::extractors::{Admin, AuthUser};
use crate::http::idempotency;
use crate::http::openapi::{Envelope, Failure};
use crate::http::ratelimit::Caller;
use crate::http::request_id::RequestId;
use crate::http::ApiError;
use crate::startup::AppState;

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundBody {
    order_id: i64,
    /// Valid tickets of the order to give back; the refund is their price.
    #[serde(default)]
    ticket_ids: Option<Vec<i64>>,
    /// Alone: an amount made of whole tickets. With `ticketIds`: must be their price.
    #[serde(default)]
    #[schema(value_type = Option<f64>, example = 50.00)]
    refund_amount: Option<Fen>,
    #[serde(default)]
    reason: Option<String>,
}

/// An operator's refund: any amount up to what is still refundable.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperatorRefundBody {
    #[serde(default)]
    #[schema(value_type = Option<f64>, example = 10.00)]
    pub amount: Option<Fen>,
    pub reason: String,
    #[serde(default)]
    pub ticket_ids: Option<Vec<i64>>,
    #[serde(default)]
    pub payment_id: Option<i64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundAnswer {
    order_id: i64,
    out_refund_no: String,
    refund_id: Option<String>,
    #[schema(value_type = f64, example = 100.00)]
    refund_amount: Fen,
    #[schema(value_type = String)]
    status: &'static str,
    ticket_ids: Vec<i64>,
}

impl RefundAnswer {
    fn of(order_id: i64, refund: RefundRecord) -> RefundAnswer {
        RefundAnswer {
            order_id,
            out_refund_no: refund.out_refund_no,
            refund_id: refund.refund_id,
            refund_amount: refund.amount,
            status: refund.status.as_str(),
            ticket_ids: refund.ticket_ids,
        }
    }
}

const MAX_REASON_CHARS: usize = 256;
const MAX_TICKETS: usize = 400;

fn reason(text: Option<&str>) -> Result<Option<String>, ApiError> {
    let reason = text.map(str::trim).filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > MAX_REASON_CHARS) {
        return Err(ApiError::validation(format!(
            "reason is at most {MAX_REASON_CHARS} characters"
        )));
    }
    Ok(reason.map(str::to_owned))
}

fn ticket_list(ids: &Option<Vec<i64>>) -> Result<(), ApiError> {
    if ids.as_ref().is_some_and(|ids| ids.len() > MAX_TICKETS) {
        return Err(ApiError::validation(format!(
            "ticketIds lists at most {MAX_TICKETS} tickets"
        )));
    }
    Ok(())
}

/// The Idempotency-Key also binds the refund it creates: a retry finds that refund in the
/// engine even when the first answer was lost (timeout, 5xx, disconnect, crash).
fn request_key(req: &HttpRequest, scope: &str) -> Option<String> {
    req.headers()
        .get("Idempotency-Key")
        .and_then(|v| v.to_str().ok())
        .map(|key| format!("{scope}:{}", key.trim()))
}

#[utoipa::path(post, path = "/payments/refund", tag = "payments", request_body = RefundBody,
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "replays the first answer")),
    responses(
        (status = 200, description = "status SUCCESS or PROCESSING", body = inline(Envelope<RefundAnswer>)),
        (status = 400, description = "VALIDATION_ERROR (not whole tickets), INVALID_ORDER_STATUS, REFUND_AMOUNT_EXCEEDED", body = Failure),
        (status = 401, description = "UNAUTHORIZED", body = Failure),
        (status = 404, description = "ORDER_NOT_FOUND", body = Failure),
        (status = 409, description = "CONFLICT (Idempotency-Key)", body = Failure),
        (status = 429, description = "RATE_LIMITED (Retry-After)", body = Failure),
        (status = 502, description = "GATEWAY_ERROR (refund FAIL or CHANGE)", body = Failure),
        (status = 503, description = "WALLYT_NOT_CONFIGURED or UNAVAILABLE", body = Failure),
        (status = 504, description = "GATEWAY_TIMEOUT (kept PROCESSING; retried under the same out_refund_no)", body = Failure)))]
#[tracing::instrument(name = "payment.refund", skip_all, fields(user_id = user.id, order_id = body.order_id))]
pub async fn refund(
    user: AuthUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<RefundBody>,
) -> HttpResponse {
    // Before the idempotency store: a replay costs a request like any other.
    if let Err(limited) = state.limits.per_caller(Caller::User(user.id)) {
        return limited.error_response();
    }
    let key = request_key(&req, &format!("{}:refund", user.id));
    let request_id = RequestId::of(&req);
    idempotency::once_json(&state, &req, user.id, "refund", &*body, || {
        buyer_refund(&user, &state, &body, key, &request_id)
    })
    .await
}

async fn buyer_refund(
    user: &AuthUser,
    state: &AppState,
    body: &RefundBody,
    request_key: Option<String>,
    request_id: &RequestId,
) -> Result<RefundAnswer, ApiError> {
    if body.refund_amount.is_some_and(|a| !a.is_positive()) {
        return Err(ApiError::validation("refundAmount must be more than 0"));
    }
    ticket_list(&body.ticket_ids)?;
    let reason = reason(body.reason.as_deref())?;
    let order = own_order(state, user, body.order_id).await?;
    let ask = match (&body.ticket_ids, body.refund_amount) {
        (Some(ids), amount) => BuyerAsk::Tickets {
            ids: ids.clone(),
            amount,
        },
        (None, Some(amount)) => BuyerAsk::Amount(amount),
        (None, None) => BuyerAsk::Rest,
    };
    let ask = RefundAsk::Buyer(ask);
    send_refund(state, order, ask, reason, request_key, request_id).await
}

async fn send_refund(
    state: &AppState,
    order: Order,
    ask: RefundAsk,
    reason: Option<String>,
    request_key: Option<String>,
    request_id: &RequestId,
) -> Result<RefundAnswer, ApiError> {
    // A retry under a key goes to the engine whatever the order's state: the refund it made may
    // have cancelled the order, and the retry must answer that refund, not "not CONFIRMED".
    if request_key.is_none() && order.status != OrderStatus::Confirmed {
        return Err(ApiError::InvalidOrderStatus(format!(
            "order is {}; only CONFIRMED orders can be refunded",
            order.status.as_str()
        )));
    }
    if state.wallyt.is_none() {
        return Err(ApiError::WallytNotConfigured);
    }
    let key = request_key.clone();
    let message = Refund {
        ask,
        reason,
        request_key,
    };
    let sent = state.engine.send(order.id, message).await;
    // Which request made the refund, for the timeline and the refunds page (a retry answered
    // with the first request's refund keeps that request's id). A refund that failed or timed
    // out may exist all the same: under a key it can be found and tagged too.
    let made = match (&sent, &key) {
        (Ok(refund), _) => Some(refund.id),
        (Err(_), Some(key)) => state
            .db
            .refund_for_request(key)
            .await
            .ok()
            .flatten()
            .map(|r| r.id),
        (Err(_), None) => None,
    };
    if let Some(refund_id) = made {
        if let Err(error) = state.db.tag_refund(refund_id, request_id.as_str()).await {
            tracing::warn!(event = "request_id.not_stored", %error);
        }
    }
    let refund = sent?;
    Ok(RefundAnswer::of(order.id, refund))
}

/// Operators' Idempotency-Keys and refund request keys are scoped to this account.
const OPERATOR: &str = admin::OPERATOR_ACCOUNT;

#[utoipa::path(post, path = "/admin/orders/{id}/refunds", tag = "operations",
    request_body = OperatorRefundBody, security(("admin" = [])),
    params(("id" = i64, Path, description = "order id"),
        ("X-Operator" = String, Header, description = "who acts (recorded with the refund, audited)"),
        ("Idempotency-Key" = Option<String>, Header, description = "replays the first answer")),
    responses(
        (status = 200, description = "status SUCCESS or PROCESSING", body = inline(Envelope<RefundAnswer>)),
        (status = 400, description = "VALIDATION_ERROR (also X-Operator missing), INVALID_ORDER_STATUS, REFUND_AMOUNT_EXCEEDED", body = Failure),
        (status = 401, description = "UNAUTHORIZED", body = Failure),
        (status = 404, description = "ORDER_NOT_FOUND", body = Failure),
        (status = 409, description = "CONFLICT (Idempotency-Key)", body = Failure),
        (status = 502, description = "GATEWAY_ERROR", body = Failure),
        (status = 504, description = "GATEWAY_TIMEOUT (kept PROCESSING)", body = Failure)))]
#[tracing::instrument(name = "operator.refund", skip_all, fields(order_id = %id))]
pub async fn operator_refund(
    _admin: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Json<OperatorRefundBody>,
) -> HttpResponse {
    if let Err(limited) = state.limits.per_caller(Caller::Operator) {
        return limited.error_response();
    }
    // Who acts is recorded with the refund and in the audit: no name, no refund.
    match admin::Acting::from_headers(&req) {
        Ok(acting) => operator_refund_as(&state, &req, acting, id.into_inner(), &body).await,
        Err(error) => error.error_response(),
    }
}

/// The operator's refund as `acting`: the API's handler and the console's form both come
/// here (the console checks the per-operator rate limit itself, as the handler does).
pub async fn operator_refund_as(
    state: &AppState,
    req: &HttpRequest,
    acting: admin::Acting,
    order_id: i64,
    body: &OperatorRefundBody,
) -> HttpResponse {
    let account = match admin::operator_account(state).await {
        Ok(account) => account,
        Err(error) => return error.error_response(),
    };
    let given = acting.idempotency_key.as_deref();
    // The key also binds the refund it creates (see `request_key`).
    let key = given.map(|k| format!("{OPERATOR}:{order_id}:refund:{}", k.trim()));
    let endpoint = format!("admin-refund:{order_id}");
    let who = &acting.operator;
    let request_id = RequestId::of(req);
    let response = idempotency::once_json_keyed(state, given, account, &endpoint, body, || {
        operator_refund_of(state, order_id, who, body, key, &request_id)
    })
    .await;
    let action = admin::Action {
        operator: who,
        name: "refund",
        order_id: Some(order_id),
        target: Some(format!("order {order_id}")),
        idempotency_key: given,
    };
    admin::audit(state, req, &action, &response).await;
    response
}

async fn operator_refund_of(
    state: &AppState,
    order_id: i64,
    operator: &str,
    body: &OperatorRefundBody,
    request_key: Option<String>,
    request_id: &RequestId,
) -> Result<RefundAnswer, ApiError> {
    if body.amount.is_some_and(|a| !a.is_positive()) {
        return Err(ApiError::validation("amount must be more than 0"));
    }
    ticket_list(&body.ticket_ids)?;
    let reason = reason(Some(&body.reason))?
        .ok_or_else(|| ApiError::validation("an operator's refund needs a reason"))?;
    let order = state
        .db
        .order(order_id)
        .await?
        .ok_or(ApiError::OrderNotFound)?;
    let ask = RefundAsk::Operator {
        operator: operator.to_owned(),
        amount: body.amount,
        ticket_ids: body.ticket_ids.clone().unwrap_or_default(),
        payment_id: body.payment_id,
    };
    tracing::info!(event = "operator.refund.requested", order_id, operator, reason = %reason);
    send_refund(state, order, ask, Some(reason), request_key, request_id).await
}
