//! `POST /payments/refund`: full or partial, through the order's actor, once per
//! Idempotency-Key.

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use wallyt_pay_actors::engine::Refund;
use wallyt_pay_actors::{Fen, OrderStatus};

use super::orders::own_order;
use crate::http::extractors::AuthUser;
use crate::http::idempotency;
use crate::http::openapi::{Envelope, Failure};
use crate::http::ratelimit::Caller;
use crate::http::ApiError;
use crate::startup::AppState;

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundBody {
    order_id: i64,
    #[serde(default)]
    #[schema(value_type = Option<f64>, example = 50.00)]
    refund_amount: Option<Fen>,
    #[serde(default)]
    reason: Option<String>,
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
}

const MAX_REASON_CHARS: usize = 256;

#[utoipa::path(post, path = "/payments/refund", tag = "payments", request_body = RefundBody,
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "replays the first answer")),
    responses(
        (status = 200, description = "status SUCCESS or PROCESSING", body = inline(Envelope<RefundAnswer>)),
        (status = 400, description = "VALIDATION_ERROR, INVALID_ORDER_STATUS, REFUND_AMOUNT_EXCEEDED", body = Failure),
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
    // The key also binds the refund it creates: a retry finds that refund in the engine even
    // when the first answer was lost (timeout, 5xx, disconnect, crash).
    let request_key = req
        .headers()
        .get("Idempotency-Key")
        .and_then(|v| v.to_str().ok())
        .map(|key| format!("{}:refund:{}", user.id, key.trim()));
    idempotency::once_json(&state, &req, user.id, "refund", &*body, || {
        request_refund(&user, &state, &body, request_key)
    })
    .await
}

async fn request_refund(
    user: &AuthUser,
    state: &AppState,
    body: &RefundBody,
    request_key: Option<String>,
) -> Result<RefundAnswer, ApiError> {
    if body.refund_amount.is_some_and(|a| !a.is_positive()) {
        return Err(ApiError::validation("refundAmount must be more than 0"));
    }
    let reason = body
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > MAX_REASON_CHARS) {
        return Err(ApiError::validation(format!(
            "reason is at most {MAX_REASON_CHARS} characters"
        )));
    }
    let order = own_order(state, user, body.order_id).await?;
    if order.status != OrderStatus::Confirmed {
        return Err(ApiError::InvalidOrderStatus(format!(
            "order is {}; only CONFIRMED orders can be refunded",
            order.status.as_str()
        )));
    }
    if state.wallyt.is_none() {
        return Err(ApiError::WallytNotConfigured);
    }
    let message = Refund {
        amount: body.refund_amount,
        reason: reason.map(str::to_owned),
        request_key,
    };
    let refund = state.engine.send(order.id, message).await?;
    Ok(RefundAnswer {
        order_id: order.id,
        out_refund_no: refund.out_refund_no,
        refund_id: refund.refund_id,
        refund_amount: refund.amount,
        status: refund.status.as_str(),
    })
}
