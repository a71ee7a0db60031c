//! Fencing on SQL: each transition of an order first raises `orders.fence` to its lease's token
//! (`… WHERE fence <= $token`). A writer holding an older token than one that already wrote
//! the order is refused before it changes anything; on PostgreSQL the same UPDATE takes the
//! order's row lock, so the rest of the transaction sees the order as it stands.

use sqlx::{Any, Transaction};
use wallyt_pay_actors::ports::Fence;
use wallyt_pay_actors::StoreError;

use super::orders::rows;
use super::store_error;

/// Raises the order's fence to `fence`. Answers whether the order exists; `Fenced` when a newer
/// lease has written it.
pub async fn check(
    tx: &mut Transaction<'_, Any>,
    order_id: i64,
    fence: Fence,
) -> Result<bool, StoreError> {
    let raise = sqlx::query("UPDATE orders SET fence = $1 WHERE id = $2 AND fence <= $3")
        .bind(fence.0)
        .bind(order_id)
        .bind(fence.0);
    if rows(tx, raise).await? == 1 {
        return Ok(true);
    }
    let current: Option<i64> = sqlx::query_scalar("SELECT fence FROM orders WHERE id = $1")
        .bind(order_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(store_error)?;
    match current {
        None => Ok(false),
        Some(newer) => Err(StoreError::Fenced(newer)),
    }
}
