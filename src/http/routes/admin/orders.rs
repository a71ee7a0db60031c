//! `GET /admin/orders` (the search, a page at a time) and `GET /admin/orders/{id}` (one order
//! with everything it holds and its timeline).

use actix_web::{web, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::FixedOffset;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use wallyt_pay_actors::ports::OrderStore;
use wallyt_pay_actors::{Fen, OrderStatus, UnixMillis};

use super::timeline::{timeline, Sources, TimelineEntry};
use super::{local_time, start_of_day};
use crate::http::envelope;
use crate::http::extractors::Admin;
use crate::http::openapi::{Envelope, Failure};
use crate::http::ApiError;
use crate::startup::AppState;
use crate::storage::admin::{OrderFilter, OrderSummary};

/// The most orders one page holds.
pub const MAX_PAGE: i64 = 100;
const DEFAULT_PAGE: i64 = 20;

/// The search. Dates are days of the console's zone (`CONSOLE_TZ`) on the order's creation.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct OrderQuery {
    /// PENDING, CONFIRMED or CANCELLED.
    status: Option<String>,
    /// The buyer's openid.
    openid: Option<String>,
    out_trade_no: Option<String>,
    transaction_id: Option<String>,
    out_refund_no: Option<String>,
    /// First day (YYYY-MM-DD), included.
    from: Option<String>,
    /// Last day (YYYY-MM-DD), included.
    to: Option<String>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
    /// Orders per page, 1 to 100 (default 20).
    limit: Option<i64>,
}

fn text(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn encode_cursor(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("o:{id}"))
}

fn decode_cursor(cursor: &str) -> Result<i64, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix("o:")?.parse().ok())
        .ok_or_else(|| ApiError::validation("cursor is not one this API gave out"))
}

impl OrderQuery {
    /// The filter, with its dates turned into instants of the console's zone.
    pub fn filter(&self, zone: FixedOffset) -> Result<OrderFilter, ApiError> {
        let status = text(&self.status).map(|s| s.to_ascii_uppercase());
        if let Some(status) = &status {
            if OrderStatus::parse(status).is_none() {
                return Err(ApiError::validation(
                    "status must be PENDING, CONFIRMED or CANCELLED",
                ));
            }
        }
        let from = text(&self.from)
            .map(|d| start_of_day(zone, "from", &d))
            .transpose()?;
        // `to` names the last day: everything before the start of the next one.
        let before = text(&self.to)
            .map(|d| start_of_day(zone, "to", &d))
            .transpose()?
            .map(|start| UnixMillis(start.0 + 86_400_000));
        if let (Some(from), Some(before)) = (from, before) {
            if from >= before {
                return Err(ApiError::validation("from must not be after to"));
            }
        }
        Ok(OrderFilter {
            status,
            openid: text(&self.openid),
            out_trade_no: text(&self.out_trade_no),
            transaction_id: text(&self.transaction_id),
            out_refund_no: text(&self.out_refund_no),
            created_from: from,
            created_before: before,
            before_id: text(&self.cursor).map(|c| decode_cursor(&c)).transpose()?,
        })
    }

    fn limit(&self) -> Result<i64, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_PAGE),
            Some(limit) if (1..=MAX_PAGE).contains(&limit) => Ok(limit),
            Some(_) => Err(ApiError::validation(format!(
                "limit must be 1 to {MAX_PAGE}"
            ))),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    pub id: i64,
    #[schema(value_type = String)]
    pub status: String,
    pub cancel_reason: Option<String>,
    #[schema(value_type = f64, example = 100.00)]
    pub total_amount: Fen,
    #[schema(value_type = f64, example = 0.00)]
    pub refunded_amount: Fen,
    pub openid: String,
    /// The trade that received the money, else the newest.
    pub out_trade_no: Option<String>,
    pub transaction_id: Option<String>,
    pub created_at: String,
    pub paid_at: Option<String>,
}

pub fn order_line(zone: FixedOffset, order: OrderSummary) -> OrderLine {
    OrderLine {
        id: order.id,
        status: order.status,
        cancel_reason: order.cancel_reason,
        total_amount: order.total,
        refunded_amount: order.refunded,
        openid: order.openid,
        out_trade_no: order.out_trade_no,
        transaction_id: order.transaction_id,
        created_at: local_time(zone, order.created_at),
        paid_at: order.paid_at.map(|t| local_time(zone, t)),
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderPage {
    pub orders: Vec<OrderLine>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/admin/orders", tag = "operations", security(("admin" = [])),
    params(OrderQuery),
    responses(
        (status = 200, description = "a page of orders, newest first", body = inline(Envelope<OrderPage>)),
        (status = 400, description = "VALIDATION_ERROR (status, dates, cursor, limit)", body = Failure),
        (status = 401, description = "UNAUTHORIZED", body = Failure)))]
pub async fn list(
    _admin: Admin,
    state: web::Data<AppState>,
    query: web::Query<OrderQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(search(&state, &query).await?))
}

/// A page of the search: the API's answer and the console's orders page.
pub async fn search(state: &AppState, query: &OrderQuery) -> Result<OrderPage, ApiError> {
    let filter = query.filter(state.console_tz)?;
    let limit = query.limit()?;
    // One more than the page: whether a next page exists without a COUNT.
    let mut orders = state.db.admin_orders(&filter, limit + 1).await?;
    let more = orders.len() as i64 > limit;
    orders.truncate(limit as usize);
    let next_cursor = more
        .then(|| orders.last().map(|o| encode_cursor(o.id)))
        .flatten();
    let zone = state.console_tz;
    Ok(OrderPage {
        orders: orders.into_iter().map(|o| order_line(zone, o)).collect(),
        next_cursor,
    })
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminItem {
    pub ticket_type_id: i64,
    pub quantity: i64,
    #[schema(value_type = f64, example = 100.00)]
    pub unit_price: Fen,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminTicket {
    pub id: i64,
    pub code: String,
    pub ticket_type_id: i64,
    pub status: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminPayment {
    pub id: i64,
    pub out_trade_no: String,
    #[schema(value_type = String)]
    pub status: &'static str,
    #[schema(value_type = f64, example = 100.00)]
    pub amount: Fen,
    #[schema(value_type = f64, example = 0.00)]
    pub refunded_amount: Fen,
    pub transaction_id: Option<String>,
    pub openid: String,
    pub created_at: String,
    pub paid_at: Option<String>,
    pub prepay_expires_at: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminRefund {
    pub id: i64,
    pub payment_id: i64,
    pub out_refund_no: String,
    pub refund_id: Option<String>,
    #[schema(value_type = f64, example = 100.00)]
    pub amount: Fen,
    #[schema(value_type = String)]
    pub status: &'static str,
    /// REQUESTED, LATE_PAYMENT or DOUBLE_PAYMENT.
    #[schema(value_type = String)]
    pub kind: &'static str,
    pub reason: Option<String>,
    /// The operator who asked; absent for the buyer's and the engine's own refunds.
    pub operator: Option<String>,
    pub attempts: i64,
    pub ticket_ids: Vec<i64>,
    pub created_at: String,
    pub finished_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminOrder {
    pub id: i64,
    #[schema(value_type = String)]
    pub status: &'static str,
    #[schema(value_type = Option<String>)]
    pub cancel_reason: Option<&'static str>,
    #[schema(value_type = f64, example = 100.00)]
    pub total_amount: Fen,
    #[schema(value_type = f64, example = 0.00)]
    pub refunded_amount: Fen,
    pub user_id: i64,
    pub openid: Option<String>,
    pub items: Vec<AdminItem>,
    pub tickets: Vec<AdminTicket>,
    pub payments: Vec<AdminPayment>,
    pub refunds: Vec<AdminRefund>,
    pub created_at: String,
    pub expires_at: String,
    pub paid_at: Option<String>,
    pub cancelled_at: Option<String>,
    /// Everything that happened to the order's money, oldest first.
    pub timeline: Vec<TimelineEntry>,
}

#[utoipa::path(get, path = "/admin/orders/{id}", tag = "operations", security(("admin" = [])),
    params(("id" = i64, Path, description = "order id")),
    responses(
        (status = 200, description = "the order, its payments, refunds, tickets and timeline", body = inline(Envelope<AdminOrder>)),
        (status = 401, description = "UNAUTHORIZED", body = Failure),
        (status = 404, description = "ORDER_NOT_FOUND", body = Failure)))]
pub async fn detail(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(order_story(&state, id.into_inner()).await?))
}

/// One order with everything it holds and its timeline: the API's answer and the console's
/// order page.
pub async fn order_story(state: &AppState, id: i64) -> Result<AdminOrder, ApiError> {
    let db = &state.db;
    let order = db.order(id).await?.ok_or(ApiError::OrderNotFound)?;
    let payments = db.payments(id).await?;
    let refunds = db.refunds(id).await?;
    let tickets = db.tickets(id).await?;
    let events = db.events_of_order(id).await?;
    let closures = db.closures_of_order(id).await?;
    let request_ids = db.request_ids_of_order(id).await?;
    let openid = db.openid_of_user(order.user_id).await?;
    let zone = state.console_tz;
    let at = |t: UnixMillis| local_time(zone, t);
    let actions = db.actions_of_order(id).await?;
    let sources = Sources {
        order: &order,
        payments: &payments,
        refunds: &refunds,
        closures: &closures,
        events: &events,
        request_ids: &request_ids,
        actions: &actions,
    };
    let timeline = timeline(zone, &sources);
    Ok(AdminOrder {
        id: order.id,
        status: order.status.as_str(),
        cancel_reason: order.cancel_reason.map(|r| r.as_str()),
        total_amount: order.total,
        refunded_amount: order.refunded,
        user_id: order.user_id,
        openid,
        items: order
            .items
            .iter()
            .map(|i| AdminItem {
                ticket_type_id: i.ticket_type_id,
                quantity: i.quantity,
                unit_price: i.unit_price,
            })
            .collect(),
        tickets: tickets
            .into_iter()
            .map(|t| AdminTicket {
                id: t.id,
                code: t.code,
                ticket_type_id: t.ticket_type_id,
                status: t.status,
            })
            .collect(),
        payments: payments
            .iter()
            .map(|p| AdminPayment {
                id: p.id,
                out_trade_no: p.out_trade_no.clone(),
                status: p.status.as_str(),
                amount: p.amount,
                refunded_amount: p.refunded,
                transaction_id: p.transaction_id.clone(),
                openid: p.openid.clone(),
                created_at: at(p.created_at),
                paid_at: p.paid_at.map(at),
                prepay_expires_at: at(p.prepay_expires_at),
            })
            .collect(),
        refunds: refunds
            .into_iter()
            .map(|r| AdminRefund {
                id: r.id,
                payment_id: r.payment_id,
                out_refund_no: r.out_refund_no,
                refund_id: r.refund_id,
                amount: r.amount,
                status: r.status.as_str(),
                kind: r.kind.as_str(),
                reason: r.reason,
                operator: r.operator,
                attempts: r.attempts,
                ticket_ids: r.ticket_ids,
                created_at: at(r.created_at),
                finished_at: r.finished_at.map(at),
            })
            .collect(),
        created_at: at(order.created_at),
        expires_at: at(order.expires_at),
        paid_at: order.paid_at.map(at),
        cancelled_at: order.cancelled_at.map(at),
        timeline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_forgeries() {
        assert_eq!(decode_cursor(&encode_cursor(42)).unwrap(), 42);
        assert!(decode_cursor("42").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("x:1")).is_err());
    }
}
