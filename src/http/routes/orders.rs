//! `POST /orders` (reserve stock, create a PENDING order) and `GET /orders/{id}`.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use wallyt_pay_actors::order::validate_lines;
use wallyt_pay_actors::ports::{CreateOrderError, OrderStore};
use wallyt_pay_actors::{Order, OrderLine};

use crate::http::extractors::AuthUser;
use crate::http::openapi::{Envelope, Failure};
use crate::http::ratelimit::Caller;
use crate::http::views::{new_order_view, order_view};
use crate::http::views::{NewOrderView, OrderView};
use crate::http::{envelope, ApiError};
use crate::startup::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewOrder {
    items: Vec<NewOrderItem>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewOrderItem {
    ticket_type_id: i64,
    quantity: i64,
}

#[utoipa::path(post, path = "/orders", tag = "orders", request_body = NewOrder,
    security(("bearer" = [])),
    responses(
        (status = 201, body = inline(Envelope<NewOrderView>)),
        (status = 400, description = "VALIDATION_ERROR", body = Failure),
        (status = 401, description = "UNAUTHORIZED", body = Failure),
        (status = 409, description = "INSUFFICIENT_STOCK", body = Failure),
        (status = 429, description = "RATE_LIMITED (Retry-After), TOO_MANY_PENDING_ORDERS", body = Failure)))]
#[tracing::instrument(name = "order.create", skip_all, fields(user_id = user.id))]
pub async fn create(
    user: AuthUser,
    state: web::Data<AppState>,
    body: web::Json<NewOrder>,
) -> Result<HttpResponse, ApiError> {
    let lines: Vec<OrderLine> = body
        .items
        .iter()
        .map(|i| OrderLine {
            ticket_type_id: i.ticket_type_id,
            quantity: i.quantity,
        })
        .collect();
    let lines = validate_lines(&lines).map_err(|e| ApiError::validation(e.to_string()))?;
    let limits = state.pending_limits;
    let units: i64 = lines.iter().map(|l| l.quantity).sum();
    // An order that alone exceeds the limit could never pass: a 400, not a 429 to retry.
    if limits.max_units > 0 && units > i64::from(limits.max_units) {
        return Err(ApiError::validation(format!(
            "an order may reserve at most {} units",
            limits.max_units
        )));
    }
    // The contract's order: 401, 400 body, then 429 rate (a malformed body costs nothing),
    // then the pending-order limits and stock inside the reserving transaction.
    state.limits.per_caller(Caller::User(user.id))?;
    let now = state.clock.now();
    let expires_at = now.plus(state.order_ttl);
    let order = state
        .db
        .create_order(user.id, &lines, limits, expires_at, now)
        .await
        .map_err(|e| match e {
            CreateOrderError::UnknownTicketType(id) => {
                ApiError::validation(format!("unknown ticketTypeId {id}"))
            }
            CreateOrderError::TooManyPending { orders, units } => {
                ApiError::TooManyPendingOrders(format!(
                    "you already hold {orders} unpaid orders ({units} tickets); pay or let \
                     them expire first"
                ))
            }
            CreateOrderError::InsufficientStock(id) => {
                ApiError::InsufficientStock(format!("not enough tickets of type {id} left"))
            }
            CreateOrderError::Store(e) => e.into(),
        })?;
    state.engine.watch_order(order.id, order.expires_at);
    tracing::info!(
        event = "order.created",
        order_id = order.id,
        total = order.total.get()
    );
    Ok(envelope::created(new_order_view(&order)))
}

/// The caller's own order; anyone else's is "not found", never "forbidden".
pub async fn own_order(
    state: &AppState,
    user: &AuthUser,
    order_id: i64,
) -> Result<Order, ApiError> {
    match state.db.order(order_id).await? {
        Some(order) if order.user_id == user.id => Ok(order),
        _ => Err(ApiError::OrderNotFound),
    }
}

#[utoipa::path(get, path = "/orders/{id}", tag = "orders", security(("bearer" = [])),
    params(("id" = i64, Path, description = "order id")),
    responses(
        (status = 200, body = inline(Envelope<OrderView>)),
        (status = 401, body = Failure),
        (status = 404, description = "ORDER_NOT_FOUND", body = Failure)))]
pub async fn get(
    user: AuthUser,
    state: web::Data<AppState>,
    order_id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let order = own_order(&state, &user, order_id.into_inner()).await?;
    let payments = state.db.payments(order.id).await?;
    let tickets = state.db.tickets(order.id).await?;
    let refunds = state.db.refunds(order.id).await?;
    Ok(envelope::ok(order_view(
        &order, &payments, &tickets, &refunds,
    )))
}
