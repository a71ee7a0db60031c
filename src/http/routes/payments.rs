//! `POST /payments/wechat/prepay` and `GET /payments/status/{orderId}`.

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;
use wallyt_pay_actors::engine::{Prepay, SyncWithGateway};
use wallyt_pay_actors::{Fen, OrderStatus};

use super::orders::own_order;
use crate::gateway::wallyt::jspay::PayParams;
use crate::http::extractors::AuthUser;
use crate::http::idempotency;
use crate::http::openapi::{Envelope, Failure};
use crate::http::ratelimit::Caller;
use crate::http::request_id::RequestId;
use crate::http::time::rfc3339;
use crate::http::views::pay_params;
use crate::http::{envelope, ApiError};
use crate::startup::AppState;
use crate::storage::OrderStatusRow;

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrepayBody {
    order_id: i64,
    openid: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrepayView {
    order_id: i64,
    out_trade_no: String,
    payment_id: i64,
    /// The six `wx.requestPayment` fields, exactly as the gateway's `pay_info` has them.
    #[schema(value_type = PayParams)]
    pay_params: Option<Box<RawValue>>,
    expires_at: String,
}

#[utoipa::path(post, path = "/payments/wechat/prepay", tag = "payments", request_body = PrepayBody,
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "replays the first answer")),
    responses(
        (status = 200, body = inline(Envelope<PrepayView>)),
        (status = 400, description = "VALIDATION_ERROR, INVALID_ORDER_STATUS, OPENID_MISMATCH", body = Failure),
        (status = 401, description = "UNAUTHORIZED", body = Failure),
        (status = 404, description = "ORDER_NOT_FOUND", body = Failure),
        (status = 409, description = "CONFLICT (Idempotency-Key)", body = Failure),
        (status = 429, description = "RATE_LIMITED (Retry-After)", body = Failure),
        (status = 502, description = "GATEWAY_ERROR", body = Failure),
        (status = 503, description = "WALLYT_NOT_CONFIGURED or UNAVAILABLE", body = Failure),
        (status = 504, description = "GATEWAY_TIMEOUT", body = Failure)))]
#[tracing::instrument(name = "payment.prepay", skip_all, fields(user_id = user.id, order_id = body.order_id))]
pub async fn prepay(
    user: AuthUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<PrepayBody>,
) -> HttpResponse {
    // Before the idempotency store: a replay costs a request like any other.
    if let Err(limited) = state.limits.per_caller(Caller::User(user.id)) {
        return limited.error_response();
    }
    idempotency::once_json(&state, &req, user.id, "prepay", &*body, || {
        create_prepay(&user, &req, &state, &body)
    })
    .await
}

async fn create_prepay(
    user: &AuthUser,
    req: &HttpRequest,
    state: &AppState,
    body: &PrepayBody,
) -> Result<PrepayView, ApiError> {
    let order = own_order(state, user, body.order_id).await?;
    if !order.status.payable(order.expires_at, state.clock.now()) {
        return Err(ApiError::InvalidOrderStatus(format!(
            "order is {} and cannot be paid",
            if order.status == OrderStatus::Pending {
                "expired"
            } else {
                order.status.as_str()
            }
        )));
    }
    if body.openid != user.openid {
        return Err(ApiError::OpenidMismatch);
    }
    if state.wallyt.is_none() {
        return Err(ApiError::WallytNotConfigured);
    }
    let message = Prepay {
        openid: user.openid.clone(),
        // The buyer's address (WeChat's risk checks use it); a spoofed X-Forwarded-For from
        // an untrusted peer does not change it.
        client_ip: state.client_ip(req).to_string(),
    };
    let answer = state.engine.send(order.id, message).await?;
    let payment = answer.payment;
    // Which request made the prepay, for the timeline (the open prepay answered again keeps
    // the first request's id); a failed tag loses only that.
    let request_id = RequestId::of(req);
    if let Err(error) = state.db.tag_payment(payment.id, request_id.as_str()).await {
        tracing::warn!(event = "request_id.not_stored", %error);
    }
    Ok(PrepayView {
        order_id: order.id,
        payment_id: payment.id,
        pay_params: pay_params(&payment),
        expires_at: rfc3339(payment.prepay_expires_at),
        out_trade_no: payment.out_trade_no,
    })
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    #[schema(value_type = String)]
    status: &'static str,
    paid_at: Option<String>,
    transaction_id: Option<String>,
    out_trade_no: Option<String>,
    #[schema(value_type = f64, example = 100.00)]
    total_amount: Fen,
    #[schema(value_type = f64, example = 100.00)]
    refunded_amount: Fen,
    #[schema(value_type = Option<String>)]
    payment_status: Option<&'static str>,
}

#[utoipa::path(get, path = "/payments/status/{orderId}", tag = "payments", security(("bearer" = [])),
    params(("orderId" = i64, Path, description = "order id")),
    responses(
        (status = 200, body = inline(Envelope<StatusView>)),
        (status = 401, body = Failure),
        (status = 404, description = "ORDER_NOT_FOUND", body = Failure)))]
pub async fn status(
    user: AuthUser,
    state: web::Data<AppState>,
    order_id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let order_id = order_id.into_inner();
    // One statement, no actor, no write (see storage::status); the actor is asked only when
    // a notify may have been lost, as before.
    let mut order = own_status(&state, &user, order_id).await?;
    let now = state.clock.now();
    let waiting = order.status == OrderStatus::Pending
        && order.payments.last().is_some_and(|p| p.reusable(now));
    if waiting && state.wallyt.is_some() {
        // A lost or late notify: ask the gateway (throttled by the actor). If that fails,
        // the answer still comes from the database.
        match state.engine.send(order_id, SyncWithGateway).await {
            Ok(()) => order = own_status(&state, &user, order_id).await?,
            Err(error) => {
                tracing::warn!(event = "payment.status.sync_failed", order_id, %error)
            }
        }
    }
    let payment = order.current_payment();
    Ok(envelope::ok(StatusView {
        status: order.status.as_str(),
        paid_at: order.paid_at.map(rfc3339),
        transaction_id: payment.and_then(|p| p.transaction_id.clone()),
        out_trade_no: payment.map(|p| p.out_trade_no.clone()),
        total_amount: order.total,
        refunded_amount: order.refunded,
        payment_status: payment.map(|p| p.status.as_str()),
    }))
}

/// The caller's own order's status; anyone else's is "not found", never "forbidden".
async fn own_status(
    state: &AppState,
    user: &AuthUser,
    order_id: i64,
) -> Result<OrderStatusRow, ApiError> {
    match state.db.order_status(order_id).await? {
        Some(order) if order.user_id == user.id => Ok(order),
        _ => Err(ApiError::OrderNotFound),
    }
}
