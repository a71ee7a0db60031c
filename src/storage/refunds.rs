//! The refund half of `OrderStore` on SQL. What a payment has promised back lives in
//! `payments.refund_committed_fen`, raised by one guarded UPDATE per refund (`… AND
//! refund_committed_fen + $n <= amount_fen`): two refunds racing — on one node or two — cannot
//! both fit when only one does, because the row lock makes the second re-check the sum.

use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};
use wallyt_pay_actors::ports::{BeginRefundError, FinishOutcome, NewRefund, RefundResult};
use wallyt_pay_actors::{Fen, Refund, RefundKind, RefundStatus, StoreError, UnixMillis};

use super::orders::{items_in, rows};
use super::stock::{self, Counter};
use super::{column, store_error, Database};

const REFUND_COLUMNS: &str = "id, order_id, payment_id, out_refund_no, refund_id, amount_fen, \
                              reason, status, kind, attempts, created_at, finished_at";

fn refund_from_row(row: &AnyRow) -> Result<Refund, StoreError> {
    let status: String = column(row, "status")?;
    let kind: String = column(row, "kind")?;
    Ok(Refund {
        id: column(row, "id")?,
        order_id: column(row, "order_id")?,
        payment_id: column(row, "payment_id")?,
        out_refund_no: column(row, "out_refund_no")?,
        refund_id: column(row, "refund_id")?,
        amount: Fen::new(column(row, "amount_fen")?),
        reason: column(row, "reason")?,
        status: RefundStatus::parse(&status)
            .ok_or_else(|| StoreError::Other(format!("unknown refund status {status}")))?,
        kind: RefundKind::parse(&kind)
            .ok_or_else(|| StoreError::Other(format!("unknown refund kind {kind}")))?,
        attempts: column(row, "attempts")?,
        created_at: UnixMillis(column(row, "created_at")?),
        finished_at: column::<Option<i64>>(row, "finished_at")?.map(UnixMillis),
    })
}

async fn select(db: &Database, filter: &str, value: i64) -> Result<Vec<Refund>, StoreError> {
    sqlx::query(&format!(
        "SELECT {REFUND_COLUMNS} FROM refunds WHERE {filter} ORDER BY id"
    ))
    .bind(value)
    .fetch_all(db.pool())
    .await
    .map_err(store_error)?
    .iter()
    .map(refund_from_row)
    .collect()
}

pub async fn of_order(db: &Database, order_id: i64) -> Result<Vec<Refund>, StoreError> {
    select(db, "order_id = $1", order_id).await
}

pub async fn by_id(db: &Database, refund_id: i64) -> Result<Option<Refund>, StoreError> {
    Ok(select(db, "id = $1", refund_id).await?.pop())
}

pub async fn processing(db: &Database) -> Result<Vec<Refund>, StoreError> {
    sqlx::query(&format!(
        "SELECT {REFUND_COLUMNS} FROM refunds WHERE status = 'PROCESSING' ORDER BY id"
    ))
    .fetch_all(db.pool())
    .await
    .map_err(store_error)?
    .iter()
    .map(refund_from_row)
    .collect()
}

pub async fn begin(
    db: &Database,
    new: &NewRefund,
    now: UnixMillis,
) -> Result<Refund, BeginRefundError> {
    let mut tx = db.begin_write().await?;
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
        .bind(new.order_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_error)?;
    // A buyer refunds a confirmed order; the engine's own refunds return money whatever
    // the order's state.
    if new.kind == RefundKind::Requested && status.as_deref() != Some("CONFIRMED") {
        return Err(BeginRefundError::NotConfirmed);
    }
    let existing: Option<i64> =
        sqlx::query_scalar("SELECT id FROM refunds WHERE out_refund_no = $1")
            .bind(&new.out_refund_no)
            .fetch_optional(&mut *tx)
            .await
            .map_err(store_error)?;
    if existing.is_some() {
        return Err(BeginRefundError::Exists(new.out_refund_no.clone()));
    }
    let commit = sqlx::query(
        "UPDATE payments SET refund_committed_fen = refund_committed_fen + $1, updated_at = $2 \
         WHERE id = $3 AND order_id = $4 AND status IN ('PAID', 'PARTIALLY_REFUNDED') \
           AND refund_committed_fen + $5 <= amount_fen",
    )
    .bind(new.amount.get())
    .bind(now.0)
    .bind(new.payment_id)
    .bind(new.order_id)
    .bind(new.amount.get());
    if rows(&mut tx, commit).await? == 0 {
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
    }
    let row = sqlx::query(&format!(
        "INSERT INTO refunds (order_id, payment_id, out_refund_no, amount_fen, reason, status, \
           kind, attempts, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'PROCESSING', $6, 0, $7, $8) RETURNING {REFUND_COLUMNS}"
    ))
    .bind(new.order_id)
    .bind(new.payment_id)
    .bind(&new.out_refund_no)
    .bind(new.amount.get())
    .bind(new.reason.as_deref())
    .bind(new.kind.as_str())
    .bind(now.0)
    .bind(now.0)
    .fetch_one(&mut *tx)
    .await
    .map_err(store_error)?;
    let refund = refund_from_row(&row)?;
    tx.commit().await.map_err(store_error)?;
    Ok(refund)
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
    now: UnixMillis,
) -> Result<FinishOutcome, StoreError> {
    let mut tx = db.begin_write().await?;
    let row = sqlx::query(&format!(
        "SELECT {REFUND_COLUMNS} FROM refunds WHERE id = $1"
    ))
    .bind(refund_id)
    .fetch_one(&mut *tx)
    .await
    .map_err(store_error)?;
    let refund = refund_from_row(&row)?;
    let (status, gateway_id, finished_at) = match result {
        // Our own clock: the gateway's refund_time has whole seconds only.
        RefundResult::Success { refund_id, .. } => ("SUCCESS", refund_id.as_deref(), now),
        RefundResult::Fail => ("FAIL", None, now),
        RefundResult::Change => ("CHANGE", None, now),
    };
    let end = sqlx::query(
        "UPDATE refunds SET status = $1, refund_id = COALESCE($2, refund_id), finished_at = $3, \
         updated_at = $4 WHERE id = $5 AND status = 'PROCESSING'",
    )
    .bind(status)
    .bind(gateway_id)
    .bind(finished_at.0)
    .bind(now.0)
    .bind(refund_id);
    if rows(&mut tx, end).await? == 0 {
        return Ok(FinishOutcome::AlreadyFinal(refund.status));
    }
    let order_cancelled = match result {
        RefundResult::Success { .. } => record_success(&mut tx, &refund, now).await?,
        RefundResult::Fail => {
            // The amount is no longer promised: it can be refunded again.
            let free = sqlx::query(
                "UPDATE payments SET refund_committed_fen = refund_committed_fen - $1, \
                 updated_at = $2 WHERE id = $3",
            )
            .bind(refund.amount.get())
            .bind(now.0)
            .bind(refund.payment_id);
            rows(&mut tx, free).await?;
            false
        }
        RefundResult::Change => false,
    };
    tx.commit().await.map_err(store_error)?;
    Ok(FinishOutcome::Finished { order_cancelled })
}

/// Money went back: payment and order amounts, and on a full refund the order, its tickets
/// and their stock. Answers whether the order was cancelled.
async fn record_success(
    tx: &mut Transaction<'static, Any>,
    refund: &Refund,
    now: UnixMillis,
) -> Result<bool, StoreError> {
    let amount = refund.amount.get();
    let payment = sqlx::query(
        "UPDATE payments SET refunded_fen = refunded_fen + $1, \
           status = CASE WHEN refunded_fen + $2 >= amount_fen THEN 'REFUNDED' ELSE 'PARTIALLY_REFUNDED' END, \
           updated_at = $3 WHERE id = $4",
    )
    .bind(amount)
    .bind(amount)
    .bind(now.0)
    .bind(refund.payment_id);
    rows(tx, payment).await?;
    match refund.kind {
        // A second trade's money is not the order's: the order does not change.
        RefundKind::DoublePayment => return Ok(false),
        RefundKind::LatePayment => {
            let late = sqlx::query(
                "UPDATE orders SET refunded_fen = refunded_fen + $1, \
                 cancel_reason = 'LATE_PAYMENT_REFUNDED', updated_at = $2 \
                 WHERE id = $3 AND status = 'CANCELLED'",
            )
            .bind(amount)
            .bind(now.0)
            .bind(refund.order_id);
            rows(tx, late).await?;
            return Ok(false);
        }
        RefundKind::Requested => {}
    }
    let order = sqlx::query(
        "UPDATE orders SET refunded_fen = refunded_fen + $1, updated_at = $2 WHERE id = $3",
    )
    .bind(amount)
    .bind(now.0)
    .bind(refund.order_id);
    rows(tx, order).await?;
    let status: String = sqlx::query_scalar("SELECT status FROM payments WHERE id = $1")
        .bind(refund.payment_id)
        .fetch_one(&mut **tx)
        .await
        .map_err(store_error)?;
    if status != "REFUNDED" {
        return Ok(false);
    }
    let cancel = sqlx::query(
        "UPDATE orders SET status = 'CANCELLED', cancel_reason = 'REFUNDED', cancelled_at = $1, \
         updated_at = $2 WHERE id = $3 AND status = 'CONFIRMED'",
    )
    .bind(now.0)
    .bind(now.0)
    .bind(refund.order_id);
    if rows(tx, cancel).await? == 0 {
        return Ok(false);
    }
    let tickets = sqlx::query(
        "UPDATE tickets SET status = 'CANCELLED', cancelled_at = $1 WHERE order_id = $2 AND status = 'VALID'",
    )
    .bind(now.0)
    .bind(refund.order_id);
    rows(tx, tickets).await?;
    let items = items_in(tx, refund.order_id).await?;
    stock::shift_owned(
        tx,
        refund.order_id,
        &items,
        Counter::Sold,
        Counter::Available,
        now,
    )
    .await?;
    Ok(true)
}
