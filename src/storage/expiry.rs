//! The expiry half of `OrderStore` on SQL: deadlines rebuilt from the rows (PENDING orders and
//! NOTPAY payments are themselves the durable record of what is due), and expiring an order.

use wallyt_pay_actors::expiry::{Deadline, DeadlineKey, DeadlineKind};
use wallyt_pay_actors::ports::Fence;
use wallyt_pay_actors::{CancelReason, OrderStatus, PaymentStatus, StoreError, UnixMillis};

use super::fence;
use super::orders::items_in;
use super::stock::{self, Counter};
use super::{store_error, Database};

pub async fn open_deadlines(db: &Database, until: UnixMillis) -> Result<Vec<Deadline>, StoreError> {
    let deadline = |order_id: i64, kind, at: i64| Deadline {
        key: DeadlineKey { order_id, kind },
        at: UnixMillis(at),
        attempt: 0,
    };
    // Both served by the partial indexes on PENDING orders and NOTPAY payments.
    let orders: Vec<(i64, i64)> =
        sqlx::query_as("SELECT id, expires_at FROM orders WHERE status = $1 AND expires_at <= $2")
            .bind(OrderStatus::Pending.as_str())
            .bind(until.0)
            .fetch_all(db.pool())
            .await
            .map_err(store_error)?;
    let payments: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT id, order_id, prepay_expires_at FROM payments \
         WHERE status = $1 AND prepay_expires_at <= $2",
    )
    .bind(PaymentStatus::NotPay.as_str())
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
    fence: Fence,
    now: UnixMillis,
) -> Result<bool, StoreError> {
    let mut tx = db.begin_write().await?;
    if !fence::check(&mut tx, order_id, fence).await? {
        return Ok(false);
    }
    let to = OrderStatus::Pending
        .expire()
        .map_err(|e| StoreError::Other(e.to_string()))?;
    // Guarded twice: still PENDING, and no trade left that could still be paid.
    let cancelled = sqlx::query(
        "UPDATE orders SET status = $1, cancel_reason = $2, cancelled_at = $3, \
         updated_at = $4 WHERE id = $5 AND status = $6 \
           AND NOT EXISTS (SELECT 1 FROM payments WHERE order_id = $7 AND status = $8)",
    )
    .bind(to.as_str())
    .bind(CancelReason::Expired.as_str())
    .bind(now.0)
    .bind(now.0)
    .bind(order_id)
    .bind(OrderStatus::Pending.as_str())
    .bind(order_id)
    .bind(PaymentStatus::NotPay.as_str())
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
