//! The expiry half of `OrderStore` on SQL: deadlines rebuilt from the rows, expiring an order,
//! and taking an expired order back when its money arrives late.

use wallyt_pay_actors::expiry::{Deadline, DeadlineKey, DeadlineKind};
use wallyt_pay_actors::{StoreError, UnixMillis};

use super::orders::{issue_tickets, items_in};
use super::{store_error, Database};

pub async fn open_deadlines(db: &Database) -> Result<Vec<Deadline>, StoreError> {
    let deadline = |order_id: i64, kind, at: i64| Deadline {
        key: DeadlineKey { order_id, kind },
        at: UnixMillis(at),
        attempt: 0,
    };
    let orders: Vec<(i64, i64)> =
        sqlx::query_as("SELECT id, expires_at FROM orders WHERE status = 'PENDING'")
            .fetch_all(db.pool())
            .await
            .map_err(store_error)?;
    let payments: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT id, order_id, prepay_expires_at FROM payments WHERE status = 'NOTPAY'",
    )
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
    for item in items_in(&mut tx, order_id).await? {
        let released = sqlx::query(
            "UPDATE ticket_types SET reserved = reserved - $1, available = available + $2, \
             updated_at = $3 WHERE id = $4 AND reserved >= $5",
        )
        .bind(item.quantity)
        .bind(item.quantity)
        .bind(now.0)
        .bind(item.ticket_type_id)
        .bind(item.quantity)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        if released.rows_affected() != 1 {
            return Err(StoreError::Other(format!(
                "ticket type {} has no reservation for order {order_id}",
                item.ticket_type_id
            )));
        }
    }
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
    for item in &items {
        // Straight from available to sold: the order is paid.
        let taken = sqlx::query(
            "UPDATE ticket_types SET available = available - $1, sold = sold + $2, updated_at = $3 \
             WHERE id = $4 AND available >= $5",
        )
        .bind(item.quantity)
        .bind(item.quantity)
        .bind(now.0)
        .bind(item.ticket_type_id)
        .bind(item.quantity)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        if taken.rows_affected() != 1 {
            // Sold out meanwhile: roll everything back; the money goes back instead.
            return Ok(false);
        }
    }
    issue_tickets(&mut tx, order_id, &items, now).await?;
    tx.commit().await.map_err(store_error)?;
    Ok(true)
}
