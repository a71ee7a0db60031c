//! The refund half of `OrderStore` on SQL. What a payment has promised back lives in
//! `payments.refund_committed_fen`, raised by one guarded UPDATE per refund (`… AND
//! refund_committed_fen + $n <= amount_fen`): two refunds racing — on one node or two — cannot
//! both fit when only one does, because the row lock makes the second re-check the sum. The
//! tickets a refund gives back move in `tickets.rs`.

use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};
use wallyt_pay_actors::policy;
use wallyt_pay_actors::ports::{BeginRefundError, Fence, FinishOutcome, NewRefund, RefundResult};
use wallyt_pay_actors::{
    CancelReason, Fen, OrderStatus, PaymentStatus, Refund, RefundKind, RefundStatus, StoreError,
    TicketStatus, UnixMillis,
};

use super::orders::rows;
use super::{column, store_error, Database};
use super::{fence, tickets};

mod read;

pub use read::{by_id, by_request_key, of_order, processing};
use read::{refund_from_row, select, Filter, REFUND_COLUMNS};

pub async fn begin(
    db: &Database,
    new: &NewRefund,
    fence: Fence,
    now: UnixMillis,
) -> Result<Refund, BeginRefundError> {
    let mut tx = db.begin_write().await?;
    let existing = sqlx::query(&format!(
        "SELECT {REFUND_COLUMNS} FROM refunds WHERE out_refund_no = $1 \
         OR (request_key IS NOT NULL AND request_key = $2)"
    ))
    .bind(&new.out_refund_no)
    .bind(new.request_key.as_deref())
    .fetch_optional(&mut *tx)
    .await
    .map_err(store_error)?;
    if let Some(row) = existing {
        let id: i64 = column(&row, "id")?;
        let found = select(&mut tx, Filter::Id(id)).await?.pop();
        let found = found.ok_or_else(|| StoreError::Other("refund vanished".into()))?;
        return Err(BeginRefundError::Exists(Box::new(found)));
    }
    if !fence::check(&mut tx, new.order_id, fence).await? {
        return Err(BeginRefundError::NotConfirmed);
    }
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
        .bind(new.order_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_error)?;
    // A buyer refunds a confirmed order; the engine's own refunds return money whatever
    // the order's state.
    let confirmed = status.as_deref().and_then(OrderStatus::parse) == Some(OrderStatus::Confirmed);
    if new.kind == RefundKind::Requested && !confirmed {
        return Err(BeginRefundError::NotConfirmed);
    }
    let Some(refund) = insert_committed(&mut tx, new, now).await? else {
        let left: Option<i64> = sqlx::query_scalar(
            "SELECT amount_fen - refund_committed_fen FROM payments WHERE id = $1",
        )
        .bind(new.payment_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_error)?;
        return Err(BeginRefundError::Exceeded {
            refundable: Fen::new(left.unwrap_or(0).max(0)),
        });
    };
    if !tickets::hold(&mut tx, &refund).await? {
        // Dropping the transaction undoes the commitment and the refund row.
        return Err(BeginRefundError::TicketsNotRefundable);
    }
    tx.commit().await.map_err(store_error)?;
    Ok(refund)
}

/// Commits the refund's amount against its payment — one guarded UPDATE that cannot take the
/// payment past what was paid — and records the refund PROCESSING. `None` when it does not fit
/// (nothing written).
pub(super) async fn insert_committed(
    tx: &mut Transaction<'_, Any>,
    new: &NewRefund,
    now: UnixMillis,
) -> Result<Option<Refund>, StoreError> {
    let commit = sqlx::query(
        "UPDATE payments SET refund_committed_fen = refund_committed_fen + $1, updated_at = $2 \
         WHERE id = $3 AND order_id = $4 AND status IN ($5, $6) \
           AND refund_committed_fen + $7 <= amount_fen",
    )
    .bind(new.amount.get())
    .bind(now.0)
    .bind(new.payment_id)
    .bind(new.order_id)
    .bind(PaymentStatus::Paid.as_str())
    .bind(PaymentStatus::PartiallyRefunded.as_str())
    .bind(new.amount.get());
    if rows(tx, commit).await? == 0 {
        return Ok(None);
    }
    let row = sqlx::query(&format!(
        "INSERT INTO refunds (order_id, payment_id, out_refund_no, amount_fen, reason, status, \
           kind, attempts, created_at, updated_at, request_key, operator) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9, $10, $11) RETURNING {REFUND_COLUMNS}"
    ))
    .bind(new.order_id)
    .bind(new.payment_id)
    .bind(&new.out_refund_no)
    .bind(new.amount.get())
    .bind(new.reason.as_deref())
    .bind(RefundStatus::Processing.as_str())
    .bind(new.kind.as_str())
    .bind(now.0)
    .bind(now.0)
    .bind(new.request_key.as_deref())
    .bind(new.operator.as_deref())
    .fetch_one(&mut **tx)
    .await
    .map_err(store_error)?;
    let mut refund = refund_from_row(&row)?;
    refund.ticket_ids = new.ticket_ids.clone();
    Ok(Some(refund))
}

pub async fn note_attempt(
    db: &Database,
    refund_id: i64,
    gateway_refund_id: Option<&str>,
    now: UnixMillis,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE refunds SET attempts = attempts + 1, refund_id = COALESCE($1, refund_id), \
         updated_at = $2 WHERE id = $3",
    )
    .bind(gateway_refund_id)
    .bind(now.0)
    .bind(refund_id)
    .execute(db.pool())
    .await
    .map_err(store_error)?;
    Ok(())
}

pub async fn finish(
    db: &Database,
    refund_id: i64,
    result: &RefundResult,
    fence: Fence,
    now: UnixMillis,
) -> Result<FinishOutcome, StoreError> {
    let mut tx = db.begin_write().await?;
    let refund = select(&mut tx, Filter::Id(refund_id))
        .await?
        .pop()
        .ok_or_else(|| StoreError::Other(format!("no refund {refund_id}")))?;
    fence::check(&mut tx, refund.order_id, fence).await?;
    let (outcome, gateway_id) = match result {
        RefundResult::Success { refund_id, .. } => (RefundStatus::Success, refund_id.as_deref()),
        RefundResult::Fail => (RefundStatus::Fail, None),
        RefundResult::Change => (RefundStatus::Change, None),
    };
    let Ok(to) = RefundStatus::Processing.finish(outcome) else {
        return Err(StoreError::Other(format!(
            "{outcome:?} is not a final refund status"
        )));
    };
    // Our own clock for finished_at: the gateway's refund_time has whole seconds only.
    let end = sqlx::query(
        "UPDATE refunds SET status = $1, refund_id = COALESCE($2, refund_id), finished_at = $3, \
         updated_at = $4 WHERE id = $5 AND status = $6",
    )
    .bind(to.as_str())
    .bind(gateway_id)
    .bind(now.0)
    .bind(now.0)
    .bind(refund_id)
    .bind(RefundStatus::Processing.as_str());
    if rows(&mut tx, end).await? == 0 {
        return Ok(FinishOutcome::AlreadyFinal(refund.status));
    }
    let order_cancelled = match to {
        RefundStatus::Success => record_success(&mut tx, &refund, now).await?,
        RefundStatus::Fail => {
            // The amount is no longer promised: it can be refunded again.
            let free = sqlx::query(
                "UPDATE payments SET refund_committed_fen = refund_committed_fen - $1, \
                 updated_at = $2 WHERE id = $3 AND refund_committed_fen >= $4",
            )
            .bind(refund.amount.get())
            .bind(now.0)
            .bind(refund.payment_id)
            .bind(refund.amount.get());
            if rows(&mut tx, free).await? != 1 {
                return Err(StoreError::Other(format!(
                    "payment {} does not hold refund {}",
                    refund.payment_id, refund.out_refund_no
                )));
            }
            tickets::release(&mut tx, &refund).await?;
            false
        }
        RefundStatus::Change | RefundStatus::Processing => false,
    };
    tx.commit().await.map_err(store_error)?;
    Ok(FinishOutcome::Finished { order_cancelled })
}

/// Money went back: its tickets are cancelled (units back on sale), then the payment's
/// refunded amount and status, and what the policy says the refund does to the order (its
/// refunded amount; when the payment is complete or no ticket is left, the order and the rest
/// of its tickets). Answers whether the order was cancelled.
async fn record_success(
    tx: &mut Transaction<'static, Any>,
    refund: &Refund,
    now: UnixMillis,
) -> Result<bool, StoreError> {
    // In ticket type order, as every writer locks stock rows: a refund of two types must not
    // hold one while a batch of reservations holding the other waits for it.
    let types: Vec<(i64, i64)> =
        sqlx::query_as("SELECT id, ticket_type_id FROM tickets WHERE order_id = $1")
            .bind(refund.order_id)
            .fetch_all(&mut **tx)
            .await
            .map_err(store_error)?;
    let type_of = |id: i64| {
        types
            .iter()
            .find(|(t, _)| *t == id)
            .map_or(i64::MAX, |t| t.1)
    };
    let mut named = refund.ticket_ids.clone();
    named.sort_by_key(|id| (type_of(*id), *id));
    for ticket_id in named {
        tickets::cancel(tx, ticket_id, TicketStatus::Refunding, now).await?;
    }
    let (amount_fen, refunded_fen): (i64, i64) =
        sqlx::query_as("SELECT amount_fen, refunded_fen FROM payments WHERE id = $1")
            .bind(refund.payment_id)
            .fetch_one(&mut **tx)
            .await
            .map_err(store_error)?;
    let live: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM tickets WHERE order_id = $1 AND status IN ($2, $3)",
    )
    .bind(refund.order_id)
    .bind(TicketStatus::Valid.as_str())
    .bind(TicketStatus::Refunding.as_str())
    .fetch_one(&mut **tx)
    .await
    .map_err(store_error)?;
    let refunded = Fen::new(refunded_fen)
        .checked_add(refund.amount)
        .ok_or_else(|| StoreError::Other("refunded amount overflows".into()))?;
    let effect = policy::on_refund_success(
        refund.kind,
        refunded,
        Fen::new(amount_fen),
        usize::try_from(live).unwrap_or(0),
    );
    // The cap again, in the statement: a payment never records more refunded than paid.
    let payment = sqlx::query(
        "UPDATE payments SET refunded_fen = refunded_fen + $1, status = $2, updated_at = $3 \
         WHERE id = $4 AND refunded_fen + $5 <= amount_fen",
    )
    .bind(refund.amount.get())
    .bind(effect.payment_status.as_str())
    .bind(now.0)
    .bind(refund.payment_id)
    .bind(refund.amount.get());
    if rows(tx, payment).await? != 1 {
        return Err(StoreError::Other(format!(
            "refund {} would take payment {} past what was paid",
            refund.out_refund_no, refund.payment_id
        )));
    }
    if effect.counts_for_order {
        let order = sqlx::query(
            "UPDATE orders SET refunded_fen = refunded_fen + $1, updated_at = $2 WHERE id = $3",
        )
        .bind(refund.amount.get())
        .bind(now.0)
        .bind(refund.order_id);
        rows(tx, order).await?;
    }
    if effect.marks_late_refund {
        let late = sqlx::query(
            "UPDATE orders SET cancel_reason = $1, updated_at = $2 WHERE id = $3 AND status = $4",
        )
        .bind(CancelReason::LatePaymentRefunded.as_str())
        .bind(now.0)
        .bind(refund.order_id)
        .bind(OrderStatus::Cancelled.as_str());
        rows(tx, late).await?;
    }
    if !effect.cancels_order {
        return Ok(false);
    }
    let to = OrderStatus::Confirmed
        .refund_fully()
        .map_err(|e| StoreError::Other(e.to_string()))?;
    let cancel = sqlx::query(
        "UPDATE orders SET status = $1, cancel_reason = $2, cancelled_at = $3, \
         updated_at = $4 WHERE id = $5 AND status = $6",
    )
    .bind(to.as_str())
    .bind(CancelReason::Refunded.as_str())
    .bind(now.0)
    .bind(now.0)
    .bind(refund.order_id)
    .bind(OrderStatus::Confirmed.as_str());
    if rows(tx, cancel).await? == 0 {
        return Ok(false);
    }
    // The order is gone: so are the tickets no refund named (an operator's full refund).
    let valid: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM tickets WHERE order_id = $1 AND status = $2 \
             ORDER BY ticket_type_id, id",
    )
    .bind(refund.order_id)
    .bind(TicketStatus::Valid.as_str())
    .fetch_all(&mut **tx)
    .await
    .map_err(store_error)?;
    for ticket_id in valid {
        tickets::cancel(tx, ticket_id, TicketStatus::Valid, now).await?;
    }
    Ok(true)
}
