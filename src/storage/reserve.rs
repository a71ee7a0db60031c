//! Reserving an order's stock (`POST /orders`): every line available → reserved and the
//! PENDING order with its items, all or nothing, with the pending-order limits checked in the
//! same transaction. With group commit on, the reservations that arrive together share one
//! transaction: on a hot ticket type each still takes the stock row's lock in turn, but the
//! row is held for a statement's time instead of a commit's flush, and one flush answers
//! them all. A reservation refused (sold out, over a limit) is rolled back to its savepoint
//! alone, so an order stays all-or-nothing across its lines.

use sqlx::{Any, Transaction};
use wallyt_pay_actors::ports::{CreateOrderError, PendingLimits};
use wallyt_pay_actors::{Fen, Order, OrderItem, OrderLine, OrderStatus, StoreError, UnixMillis};

use super::orders::{order_from_row, ORDER_COLUMNS};
use super::stock::{self, Counter};
use super::{column, store_error, Backend, Database};

pub async fn create_order(
    db: &Database,
    user_id: i64,
    lines: &[OrderLine],
    limits: PendingLimits,
    expires_at: UnixMillis,
    now: UnixMillis,
) -> Result<Order, CreateOrderError> {
    let backend = db.backend();
    if let Some(batcher) = db.batcher() {
        let lines = lines.to_vec();
        return batcher
            .run(move |mut tx| async move {
                let reserved =
                    reserve_in(&mut tx, backend, user_id, &lines, limits, expires_at, now);
                let result = reserved.await;
                (tx, result)
            })
            .await;
    }
    let mut tx = db.begin_write().await?;
    let order = reserve_in(&mut tx, backend, user_id, lines, limits, expires_at, now).await?;
    tx.commit().await.map_err(store_error)?;
    Ok(order)
}

/// The reservation in the caller's transaction. On `Err` it may have moved some lines: the
/// caller rolls back (drops the transaction, or its savepoint).
async fn reserve_in(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    user_id: i64,
    lines: &[OrderLine],
    limits: PendingLimits,
    expires_at: UnixMillis,
    now: UnixMillis,
) -> Result<Order, CreateOrderError> {
    let mut items = Vec::with_capacity(lines.len());
    let mut total = Fen::ZERO;
    for line in lines {
        let price: Option<i64> =
            sqlx::query_scalar("SELECT price_fen FROM ticket_types WHERE id = $1")
                .bind(line.ticket_type_id)
                .fetch_optional(&mut **tx)
                .await
                .map_err(store_error)?;
        let Some(price) = price else {
            return Err(CreateOrderError::UnknownTicketType(line.ticket_type_id));
        };
        let unit_price = Fen::new(price);
        total = unit_price
            .checked_mul(line.quantity)
            .and_then(|line_total| total.checked_add(line_total))
            .ok_or_else(|| StoreError::Other("order total overflows".into()))?;
        items.push(OrderItem {
            ticket_type_id: line.ticket_type_id,
            quantity: line.quantity,
            unit_price,
        });
    }
    if limits != PendingLimits::OFF {
        let units: i64 = lines.iter().map(|l| l.quantity).sum();
        let (orders, held) = pending_of(tx, backend, user_id).await?;
        if !limits.allows(orders, held, units) {
            return Err(CreateOrderError::TooManyPending {
                orders,
                units: held,
            });
        }
    }
    // Lines come sorted by ticket type: rows are locked in one order, no deadlock cycles.
    for item in &items {
        let (id, quantity) = (item.ticket_type_id, item.quantity);
        if !stock::shift(tx, id, quantity, Counter::Available, Counter::Reserved, now).await? {
            return Err(CreateOrderError::InsufficientStock(id));
        }
    }
    let row = sqlx::query(&format!(
        "INSERT INTO orders (user_id, status, total_fen, expires_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {ORDER_COLUMNS}"
    ))
    .bind(user_id)
    .bind(OrderStatus::Pending.as_str())
    .bind(total.get())
    .bind(expires_at.0)
    .bind(now.0)
    .bind(now.0)
    .fetch_one(&mut **tx)
    .await
    .map_err(store_error)?;
    let order_id: i64 = column(&row, "id")?;
    for item in &items {
        sqlx::query(
            "INSERT INTO order_items (order_id, ticket_type_id, quantity, unit_price_fen) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(order_id)
        .bind(item.ticket_type_id)
        .bind(item.quantity)
        .bind(item.unit_price.get())
        .execute(&mut **tx)
        .await
        .map_err(store_error)?;
    }
    Ok(order_from_row(&row, items)?)
}

/// The user's PENDING orders and the units they reserve. On PostgreSQL the user's row is locked
/// first, so two orders of one user placed at once are counted one after the other (SQLite
/// writers are serialized by `BEGIN IMMEDIATE` already).
async fn pending_of(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    user_id: i64,
) -> Result<(i64, i64), StoreError> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
            .bind(user_id)
            .execute(&mut **tx)
            .await
            .map_err(store_error)?;
    }
    let orders: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE user_id = $1 AND status = $2")
            .bind(user_id)
            .bind(OrderStatus::Pending.as_str())
            .fetch_one(&mut **tx)
            .await
            .map_err(store_error)?;
    let units: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(SUM(i.quantity) AS BIGINT) FROM order_items i \
         JOIN orders o ON o.id = i.order_id WHERE o.user_id = $1 AND o.status = $2",
    )
    .bind(user_id)
    .bind(OrderStatus::Pending.as_str())
    .fetch_one(&mut **tx)
    .await
    .map_err(store_error)?;
    Ok((orders, units.unwrap_or(0)))
}
