//! The tickets a refund gives back: held REFUNDING while the gateway has not finished it,
//! CANCELLED with their unit back on sale when it succeeds, VALID again when it fails. Each
//! move is a guarded UPDATE inside the refund's own transaction.

use sqlx::{Any, Transaction};
use wallyt_pay_actors::{Refund, StoreError, TicketStatus, UnixMillis};

use super::orders::rows;
use super::stock::{self, Counter};
use super::store_error;

/// The refund's tickets VALID → REFUNDING, each guarded on being a VALID ticket of the order.
/// Answers false when one is not (the caller drops the transaction).
pub(super) async fn hold(
    tx: &mut Transaction<'_, Any>,
    refund: &Refund,
) -> Result<bool, StoreError> {
    let to = TicketStatus::Valid
        .hold()
        .map_err(|e| StoreError::Other(e.to_string()))?;
    for ticket_id in &refund.ticket_ids {
        let held = sqlx::query(
            "UPDATE tickets SET status = $1 WHERE id = $2 AND order_id = $3 AND status = $4",
        )
        .bind(to.as_str())
        .bind(*ticket_id)
        .bind(refund.order_id)
        .bind(TicketStatus::Valid.as_str());
        if rows(tx, held).await? != 1 {
            return Ok(false);
        }
        let listed =
            sqlx::query("INSERT INTO refund_tickets (refund_id, ticket_id) VALUES ($1, $2)")
                .bind(refund.id)
                .bind(*ticket_id);
        rows(tx, listed).await?;
    }
    Ok(true)
}

/// The refund failed: its tickets admit their holders again.
pub(super) async fn release(
    tx: &mut Transaction<'_, Any>,
    refund: &Refund,
) -> Result<(), StoreError> {
    let to = TicketStatus::Refunding
        .release()
        .map_err(|e| StoreError::Other(e.to_string()))?;
    for ticket_id in &refund.ticket_ids {
        let released = sqlx::query("UPDATE tickets SET status = $1 WHERE id = $2 AND status = $3")
            .bind(to.as_str())
            .bind(*ticket_id)
            .bind(TicketStatus::Refunding.as_str());
        rows(tx, released).await?;
    }
    Ok(())
}

/// Cancels one ticket that is in `from` and puts its unit back on sale (sold → available).
/// Answers whether it was in `from`.
pub(super) async fn cancel(
    tx: &mut Transaction<'_, Any>,
    ticket_id: i64,
    from: TicketStatus,
    now: UnixMillis,
) -> Result<bool, StoreError> {
    let to = from
        .cancel()
        .map_err(|e| StoreError::Other(e.to_string()))?;
    let ticket_type: Option<i64> = sqlx::query_scalar(
        "UPDATE tickets SET status = $1, cancelled_at = $2 WHERE id = $3 AND status = $4 \
         RETURNING ticket_type_id",
    )
    .bind(to.as_str())
    .bind(now.0)
    .bind(ticket_id)
    .bind(from.as_str())
    .fetch_optional(&mut **tx)
    .await
    .map_err(store_error)?;
    let Some(ticket_type) = ticket_type else {
        return Ok(false);
    };
    if !stock::shift(tx, ticket_type, 1, Counter::Sold, Counter::Available, now).await? {
        return Err(StoreError::Other(format!(
            "ticket {ticket_id} was not counted as sold"
        )));
    }
    Ok(true)
}
