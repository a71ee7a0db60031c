//! The expiry half of `OrderStore` on SQL: deadlines rebuilt from the rows, expiring an order,
//! and taking an expired order back when its money arrives late.

use wallyt_pay_actors::expiry::{Deadline, DeadlineKey, DeadlineKind};
use wallyt_pay_actors::{StoreError, UnixMillis};

use super::orders::items_in;
use super::payments::issue_tickets;
use super::stock::{self, Counter};
use super::{store_error, Database};

pub async fn open_deadlines(db: &Database, until: UnixMillis) -> Result<Vec<Deadline>, StoreError> {
    let deadline = |order_id: i64, kind, at: i64| Deadline {
        key: DeadlineKey { order_id, kind },
        at: UnixMillis(at),
        attempt: 0,
    };
    // Both served by the partial indexes on PENDING orders and NOTPAY payments.
    let orders: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT id, expires_at FROM orders WHERE status = 'PENDING' AND expires_at <= $1",
    )
    .bind(until.0)
    .fetch_all(db.pool())
    .await
    .map_err(store_error)?;
    let payments: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT id, order_id, prepay_expires_at FROM payments \
         WHERE status = 'NOTPAY' AND prepay_expires_at <= $1",
    )
    .bind(until.0)
    .fetch_all(db.pool())
    .await
    .map_err(store_error)?;
    Ok(orders
        .into_iter()
        .map(|(id, at)| deadline(id, DeadlineKind::OrderExpiry, at))
        .chain(payments.into_iter().map(|(payment_id, order_id, at)| {
            deadline(order_id, DeadlineKind::PrepayExpiry { payment_id }, at)
        }))
        .collect())
}

pub async fn expire_order(
    db: &Database,
    order_id: i64,
    now: UnixMillis,
) -> Result<bool, StoreError> {
    let mut tx = db.begin_write().await?;
    // Guarded twice: still PENDING, and no trade left that could still be paid.
    let cancelled = sqlx::query(
        "UPDATE orders SET status = 'CANCELLED', cancel_reason = 'EXPIRED', cancelled_at = $1, \
         updated_at = $2 WHERE id = $3 AND status = 'PENDING' \
           AND NOT EXISTS (SELECT 1 FROM payments WHERE order_id = $4 AND status = 'NOTPAY')",
    )
    .bind(now.0)
    .bind(now.0)
    .bind(order_id)
    .bind(order_id)
    .execute(&mut *tx)
    .await
    .map_err(store_error)?;
    if cancelled.rows_affected() == 0 {
        return Ok(false);
    }
    let items = items_in(&mut tx, order_id).await?;
    stock::shift_owned(
        &mut tx,
        order_id,
        &items,
        Counter::Reserved,
        Counter::Available,
        now,
    )
    .await?;
    tx.commit().await.map_err(store_error)?;
    Ok(true)
}

pub async fn revive_order(
    db: &Database,
    order_id: i64,
    now: UnixMillis,
) -> Result<bool, StoreError> {
    let mut tx = db.begin_write().await?;
    let paid_at: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(paid_at) FROM payments WHERE order_id = $1 AND paid_at IS NOT NULL",
    )
    .bind(order_id)
    .fetch_one(&mut *tx)
    .await
    .map_err(store_error)?;
    let revived = sqlx::query(
        "UPDATE orders SET status = 'CONFIRMED', cancel_reason = NULL, cancelled_at = NULL, \
         paid_at = $1, updated_at = $2 WHERE id = $3 AND status = 'CANCELLED' AND cancel_reason = 'EXPIRED'",
    )
    .bind(paid_at.unwrap_or(now.0))
    .bind(now.0)
    .bind(order_id)
    .execute(&mut *tx)
    .await
    .map_err(store_error)?;
    if revived.rows_affected() == 0 {
        return Ok(false);
    }
    let items = items_in(&mut tx, order_id).await?;
    // Straight from available to sold: the order is paid. Sold out meanwhile: the
    // transaction is dropped and the money goes back instead.
    if !stock::shift_items(&mut tx, &items, Counter::Available, Counter::Sold, now).await? {
        return Ok(false);
    }
    issue_tickets(&mut tx, order_id, &items, now).await?;
    tx.commit().await.map_err(store_error)?;
    Ok(true)
}
