//! Payments on SQL: recording a prepay, closing it, and applying a payment — payment PAID,
//! order CONFIRMED, stock reserved → sold and one ticket per unit, in one transaction,
//! idempotent by out_trade_no.

use rand::Rng;
use sqlx::{Any, Transaction};
use wallyt_pay_actors::ports::{ApplyOutcome, NewPrepay, PaymentApplication};
use wallyt_pay_actors::{OrderItem, OrderStatus, Payment, StoreError, UnixMillis};

use super::orders::{items_in, payment_from_row, rows, PAYMENT_COLUMNS};
use super::stock::{self, Counter};
use super::{store_error, Database};

/// An unguessable ticket code: 20 symbols of a 32-letter alphabet without look-alikes
/// (100 bits), unique by key in the database.
fn ticket_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// One ticket per unit bought, each with its own code.
pub(super) async fn issue_tickets(
    tx: &mut Transaction<'_, Any>,
    order_id: i64,
    items: &[OrderItem],
    now: UnixMillis,
) -> Result<usize, StoreError> {
    let mut issued = 0;
    for item in items {
        for _ in 0..item.quantity {
            sqlx::query(
                "INSERT INTO tickets (order_id, ticket_type_id, code, status, created_at) \
                 VALUES ($1, $2, $3, 'VALID', $4)",
            )
            .bind(order_id)
            .bind(item.ticket_type_id)
            .bind(ticket_code())
            .bind(now.0)
            .execute(&mut **tx)
            .await
            .map_err(store_error)?;
            issued += 1;
        }
    }
    Ok(issued)
}

pub async fn insert_prepay(
    db: &Database,
    prepay: &NewPrepay,
    now: UnixMillis,
) -> Result<Payment, StoreError> {
    // Guarded on the order still being PENDING, in the same statement.
    let row = sqlx::query(&format!(
        "INSERT INTO payments (order_id, out_trade_no, status, amount_fen, openid, pay_params, \
           prepay_expires_at, created_at, updated_at) \
         SELECT $1, $2, 'NOTPAY', $3, $4, $5, $6, $7, $8 \
         WHERE EXISTS (SELECT 1 FROM orders WHERE id = $9 AND status = 'PENDING') \
         RETURNING {PAYMENT_COLUMNS}"
    ))
    .bind(prepay.order_id)
    .bind(&prepay.out_trade_no)
    .bind(prepay.amount.get())
    .bind(&prepay.openid)
    .bind(&prepay.pay_params)
    .bind(prepay.prepay_expires_at.0)
    .bind(now.0)
    .bind(now.0)
    .bind(prepay.order_id)
    .fetch_optional(db.pool())
    .await
    .map_err(store_error)?;
    match row {
        Some(row) => payment_from_row(&row),
        None => Err(StoreError::Conflict(
            "the order is no longer pending".into(),
        )),
    }
}

pub async fn close_payment(
    db: &Database,
    payment_id: i64,
    now: UnixMillis,
) -> Result<bool, StoreError> {
    let closed = sqlx::query(
        "UPDATE payments SET status = 'CLOSED', closed_at = $1, updated_at = $2 \
         WHERE id = $3 AND status = 'NOTPAY'",
    )
    .bind(now.0)
    .bind(now.0)
    .bind(payment_id)
    .execute(db.pool())
    .await
    .map_err(store_error)?;
    Ok(closed.rows_affected() == 1)
}

pub async fn apply_payment(
    db: &Database,
    paid: &PaymentApplication,
    now: UnixMillis,
) -> Result<ApplyOutcome, StoreError> {
    let mut tx = db.begin_write().await?;
    let row = sqlx::query(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE out_trade_no = $1"
    ))
    .bind(&paid.out_trade_no)
    .fetch_optional(&mut *tx)
    .await
    .map_err(store_error)?;
    let Some(payment) = row.as_ref().map(payment_from_row).transpose()? else {
        return Ok(ApplyOutcome::UnknownTrade);
    };
    if payment.amount != paid.amount {
        return Ok(ApplyOutcome::AmountMismatch {
            expected: payment.amount,
        });
    }
    let marked = sqlx::query(
        "UPDATE payments SET status = 'PAID', transaction_id = $1, paid_at = $2, updated_at = $3 \
         WHERE id = $4 AND status IN ('NOTPAY', 'CLOSED')",
    )
    .bind(&paid.transaction_id)
    .bind(paid.paid_at.0)
    .bind(now.0)
    .bind(payment.id);
    if rows(&mut tx, marked).await? == 0 {
        // Someone applied it first (a duplicate, or a concurrent copy that won).
        return Ok(ApplyOutcome::AlreadyApplied);
    }
    let confirmed = sqlx::query(
        "UPDATE orders SET status = 'CONFIRMED', paid_at = $1, updated_at = $2 \
         WHERE id = $3 AND status = 'PENDING'",
    )
    .bind(paid.paid_at.0)
    .bind(now.0)
    .bind(payment.order_id);
    if rows(&mut tx, confirmed).await? == 0 {
        let status: String = sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
            .bind(payment.order_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        let order_status = OrderStatus::parse(&status)
            .ok_or_else(|| StoreError::Other(format!("unknown order status {status}")))?;
        return Ok(ApplyOutcome::PaidButOrderNot { order_status });
    }
    let items = items_in(&mut tx, payment.order_id).await?;
    let order_id = payment.order_id;
    stock::shift_owned(
        &mut tx,
        order_id,
        &items,
        Counter::Reserved,
        Counter::Sold,
        now,
    )
    .await?;
    let tickets = issue_tickets(&mut tx, payment.order_id, &items, now).await?;
    tx.commit().await.map_err(store_error)?;
    Ok(ApplyOutcome::Confirmed { tickets })
}
