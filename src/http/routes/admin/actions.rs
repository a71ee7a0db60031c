//! The operator's actions besides refunds: `POST /admin/orders/{id}/sync` (ask the gateway
//! about every trade and refund of the order now, through the order's actor) and
//! `POST /admin/events/{id}/replay` (run a stored, verified notify again). Both need
//! `X-Operator`, are audited, and answer a double click with the first click's answer
//! (`Idempotency-Key`).

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;
use wallyt_pay_actors::engine::SyncAll;
use wallyt_pay_actors::ports::OrderStore;

use super::{audit, operator_account, Acting, Action};
use crate::http::extractors::Admin;
use crate::http::idempotency;
use crate::http::openapi::{Envelope, Failure};
use crate::http::request_id::RequestId;
use crate::http::routes::notify;
use crate::http::ApiError;
use crate::startup::AppState;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TradeSync {
    out_trade_no: String,
    /// What the gateway says: PAID, OPEN, CLOSED, UNKNOWN, or ERROR.
    #[schema(value_type = String)]
    gateway_status: &'static str,
    /// A payment the gateway reported was applied by this sync.
    applied: bool,
    /// The gateway's own error text, when the query failed.
    error: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundSync {
    out_refund_no: String,
    /// The refund's status after the sync.
    #[schema(value_type = String)]
    status: &'static str,
    /// Asked of the gateway now (refunds already final are not).
    checked: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncAnswer {
    order_id: i64,
    /// The order's status after the sync.
    #[schema(value_type = String)]
    order_status: &'static str,
    trades: Vec<TradeSync>,
    refunds: Vec<RefundSync>,
}

/// Runs an action once per Idempotency-Key and audits it. Without `X-Operator` nothing runs.
pub(super) async fn act<T, F, Fut>(
    state: &AppState,
    req: &HttpRequest,
    acting: Acting,
    name: &str,
    order_id: Option<i64>,
    target: Option<String>,
    work: F,
) -> HttpResponse
where
    T: Serialize,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    let account = match operator_account(state).await {
        Ok(account) => account,
        Err(error) => return error.error_response(),
    };
    let endpoint = format!("admin-{name}:{}", target.as_deref().unwrap_or_default());
    let key = acting.idempotency_key.as_deref();
    let response = idempotency::once_json_keyed(state, key, account, &endpoint, &(), work).await;
    let action = Action {
        operator: &acting.operator,
        name,
        order_id,
        target,
        idempotency_key: key,
    };
    audit(state, req, &action, &response).await;
    response
}

#[utoipa::path(post, path = "/admin/orders/{id}/sync", tag = "operations", security(("admin" = [])),
    params(("id" = i64, Path, description = "order id"),
        ("X-Operator" = String, Header, description = "who acts (audited)"),
        ("Idempotency-Key" = Option<String>, Header, description = "replays the first answer")),
    responses(
        (status = 200, description = "what the gateway said of each trade and refund, and what was applied", body = inline(Envelope<SyncAnswer>)),
        (status = 400, description = "VALIDATION_ERROR (X-Operator missing)", body = Failure),
        (status = 401, description = "UNAUTHORIZED", body = Failure),
        (status = 404, description = "ORDER_NOT_FOUND", body = Failure),
        (status = 409, description = "CONFLICT (Idempotency-Key in use)", body = Failure),
        (status = 503, description = "WALLYT_NOT_CONFIGURED or UNAVAILABLE", body = Failure)))]
pub async fn sync(
    _admin: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> HttpResponse {
    match Acting::from_headers(&req) {
        Ok(acting) => sync_as(&state, &req, acting, id.into_inner()).await,
        Err(error) => error.error_response(),
    }
}

/// The sync as `acting`: the API's handler and the console's button both come here.
pub async fn sync_as(
    state: &AppState,
    req: &HttpRequest,
    acting: Acting,
    order_id: i64,
) -> HttpResponse {
    let target = Some(format!("order {order_id}"));
    act(state, req, acting, "sync", Some(order_id), target, || {
        sync_order(state, order_id)
    })
    .await
}

async fn sync_order(state: &AppState, order_id: i64) -> Result<SyncAnswer, ApiError> {
    state
        .db
        .order(order_id)
        .await?
        .ok_or(ApiError::OrderNotFound)?;
    if state.wallyt.is_none() {
        return Err(ApiError::WallytNotConfigured);
    }
    // Through the order's actor, under its lease: serialized with notifies, timers and refunds.
    let report = state.engine.send(order_id, SyncAll).await?;
    let order = state
        .db
        .order(order_id)
        .await?
        .ok_or(ApiError::OrderNotFound)?;
    Ok(SyncAnswer {
        order_id,
        order_status: order.status.as_str(),
        trades: report
            .trades
            .into_iter()
            .map(|t| TradeSync {
                out_trade_no: t.out_trade_no,
                gateway_status: t.gateway_status,
                applied: t.applied,
                error: t.error,
            })
            .collect(),
        refunds: report
            .refunds
            .into_iter()
            .map(|r| RefundSync {
                out_refund_no: r.out_refund_no,
                status: r.status,
                checked: r.checked,
            })
            .collect(),
    })
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplayAnswer {
    event_id: i64,
    /// The notify path's verdict: `duplicate` when the payment was already applied,
    /// `confirmed`, `late_payment_reconfirmed`, `paid_order_not_pending`, `not_paid`, or why
    /// it was refused (`invalid_signature`, `amount_mismatch`, …).
    #[schema(value_type = String)]
    verdict: &'static str,
    order_id: Option<i64>,
}

#[utoipa::path(post, path = "/admin/events/{id}/replay", tag = "operations", security(("admin" = [])),
    params(("id" = i64, Path, description = "a stored notify's event id (`eventId` of a notify.received timeline entry)"),
        ("X-Operator" = String, Header, description = "who acts (audited)"),
        ("Idempotency-Key" = Option<String>, Header, description = "replays the first answer")),
    responses(
        (status = 200, description = "the verdict of the notify path this time", body = inline(Envelope<ReplayAnswer>)),
        (status = 400, description = "VALIDATION_ERROR (X-Operator missing, not a stored notify)", body = Failure),
        (status = 401, description = "UNAUTHORIZED", body = Failure),
        (status = 404, description = "NOT_FOUND", body = Failure),
        (status = 409, description = "CONFLICT (Idempotency-Key in use)", body = Failure)))]
pub async fn replay(
    _admin: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> HttpResponse {
    match Acting::from_headers(&req) {
        Ok(acting) => replay_as(&state, &req, acting, id.into_inner()).await,
        Err(error) => error.error_response(),
    }
}

/// The replay as `acting`: the API's handler and the console's button both come here.
pub async fn replay_as(
    state: &AppState,
    req: &HttpRequest,
    acting: Acting,
    event_id: i64,
) -> HttpResponse {
    // The order is known once the event is read; the audit row names the event either way.
    let order_id = match state.db.payment_event(event_id).await {
        Ok(Some(event)) => match event.out_trade_no {
            Some(otn) => state
                .db
                .payment_by_out_trade_no(&otn)
                .await
                .ok()
                .flatten()
                .map(|p| p.order_id),
            None => None,
        },
        _ => None,
    };
    let target = Some(format!("event {event_id}"));
    let request_id = RequestId::of(req);
    act(state, req, acting, "replay", order_id, target, || {
        replay_event(state, event_id, request_id.as_str())
    })
    .await
}

async fn replay_event(
    state: &AppState,
    event_id: i64,
    request_id: &str,
) -> Result<ReplayAnswer, ApiError> {
    let event = state
        .db
        .payment_event(event_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("event not found".into()))?;
    // Only `notify` rows hold a whole verified body; the others are verdicts and results.
    if event.kind != "notify" {
        return Err(ApiError::validation(
            "only a stored notify (kind notify) can be replayed",
        ));
    }
    let (verdict, order_id) = notify::replay(state, event.raw.as_bytes(), request_id).await;
    Ok(ReplayAnswer {
        event_id,
        verdict,
        order_id,
    })
}
