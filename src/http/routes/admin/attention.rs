//! `GET /admin/attention`: what the engine cannot finish by itself and a human must look at.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;
use wallyt_pay_actors::Fen;

use super::local_time;
use crate::http::envelope;
use crate::http::extractors::Admin;
use crate::http::openapi::{Envelope, Failure};
use crate::http::ApiError;
use crate::startup::AppState;

/// An order still PENDING this long after its expiry is stuck: the expiry timers retry every
/// sweep (30 s by default), so by then every retry has failed for a while.
const OVERDUE: Duration = Duration::from_secs(10 * 60);

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttentionLine {
    /// REFUND_NOT_DELIVERED (a refund in FAIL or CHANGE), REFUND_RETRIED (PROCESSING after
    /// many attempts), ORDER_PAST_EXPIRY (PENDING long past its expiry), PAYMENT_WITHOUT_ORDER
    /// (money received on a trade whose order is cancelled, not promised back),
    /// BILL_DIFFERENCE (the daily bill disagrees with the database; `status` is the
    /// difference's kind, see `GET /admin/reconciliation/{date}`).
    #[schema(value_type = String)]
    pub kind: &'static str,
    /// The order it is about: `GET /admin/orders/{orderId}` (0: a bill line naming no order
    /// we know).
    pub order_id: i64,
    /// The out_refund_no, out_trade_no or order it names.
    pub subject: String,
    pub status: String,
    /// The refund's amount, the order's total, or the money kept.
    #[schema(value_type = f64, example = 100.00)]
    pub amount: Fen,
    pub attempts: Option<i64>,
    /// Since when, in the console's zone.
    pub since: String,
}

#[utoipa::path(get, path = "/admin/attention", tag = "operations", security(("admin" = [])),
    responses(
        (status = 200, description = "what needs a human, each with its order", body = inline(Envelope<Vec<AttentionLine>>)),
        (status = 401, description = "UNAUTHORIZED", body = Failure)))]
pub async fn attention(
    _admin: Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(attention_lines(&state).await?))
}

/// What needs a human: the API's answer and the console dashboard's list.
pub async fn attention_lines(state: &AppState) -> Result<Vec<AttentionLine>, ApiError> {
    let zone = state.console_tz;
    let items = state.db.attention(state.clock.now(), OVERDUE).await?;
    Ok(items
        .into_iter()
        .map(|item| AttentionLine {
            kind: item.kind,
            order_id: item.order_id,
            subject: item.subject,
            status: item.status,
            amount: item.amount,
            attempts: item.attempts,
            since: local_time(zone, item.since),
        })
        .collect())
}
