//! Payments on SQL: recording a prepay, closing it, and applying a payment — payment PAID and
//! what the late-payment policy makes of it (confirm, revive, or plan a full refund), in one
//! transaction, idempotent by out_trade_no. Statuses are the domain's, bound as parameters.

use rand::Rng;
use sqlx::{Any, Transaction};
use wallyt_pay_actors::policy::{self, PaymentEffect};
use wallyt_pay_actors::ports::{
    ApplyOutcome, Fence, NewPrepay, NewRefund, PaymentApplication, PaymentAudit, PaymentRules,
};
use wallyt_pay_actors::{
    CancelReason, Order, OrderItem, OrderStatus, Payment, PaymentStatus, RefundKind, StoreError,
    TicketStatus, UnixMillis,
};

use super::batcher::Outcome;
use super::orders::{payment_from_row, rows, PAYMENT_COLUMNS};
use super::stock::{self, Counter, OwedMove};
use super::{fence, notify_audit};
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
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(order_id)
            .bind(item.ticket_type_id)
            .bind(ticket_code())
            .bind(TicketStatus::Valid.as_str())
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
    fence: Fence,
    now: UnixMillis,
) -> Result<Payment, StoreError> {
    let mut tx = db.begin_write().await?;
    fence::check(&mut tx, prepay.order_id, fence).await?;
    // Guarded on the order still being PENDING, in the same statement.
    let row = sqlx::query(&format!(
        "INSERT INTO payments (order_id, out_trade_no, status, amount_fen, openid, pay_params, \
           prepay_expires_at, created_at, updated_at) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 \
         WHERE EXISTS (SELECT 1 FROM orders WHERE id = $10 AND status = $11) \
         RETURNING {PAYMENT_COLUMNS}"
    ))
    .bind(prepay.order_id)
    .bind(&prepay.out_trade_no)
    .bind(PaymentStatus::NotPay.as_str())
    .bind(prepay.amount.get())
    .bind(&prepay.openid)
    .bind(&prepay.pay_params)
    .bind(prepay.prepay_expires_at.0)
    .bind(now.0)
    .bind(now.0)
    .bind(prepay.order_id)
    .bind(OrderStatus::Pending.as_str())
    .fetch_optional(&mut *tx)
    .await
    .map_err(store_error)?;
    let Some(row) = row else {
        return Err(StoreError::Conflict(
            "the order is no longer pending".into(),
        ));
    };
    let payment = payment_from_row(&row)?;
    tx.commit().await.map_err(store_error)?;
    Ok(payment)
}

pub async fn close_payment(
    db: &Database,
    payment_id: i64,
    fence: Fence,
    now: UnixMillis,
) -> Result<bool, StoreError> {
    let mut tx = db.begin_write().await?;
    let order_id: Option<i64> = sqlx::query_scalar("SELECT order_id FROM payments WHERE id = $1")
        .bind(payment_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_error)?;
    let Some(order_id) = order_id else {
        return Ok(false);
    };
    fence::check(&mut tx, order_id, fence).await?;
    let closed = sqlx::query(
        "UPDATE payments SET status = $1, closed_at = $2, updated_at = $3 \
         WHERE id = $4 AND status = $5",
    )
    .bind(PaymentStatus::NotPay.close().map_err(refusal)?.as_str())
    .bind(now.0)
    .bind(now.0)
    .bind(payment_id)
    .bind(PaymentStatus::NotPay.as_str());
    let closed = rows(&mut tx, closed).await? == 1;
    tx.commit().await.map_err(store_error)?;
    Ok(closed)
}

/// A transition the domain refuses where the store expected it to pass: a bug, not a race.
fn refusal(error: impl std::fmt::Display) -> StoreError {
    StoreError::Other(format!("refused transition: {error}"))
}

/// Applies a payment with its audit lines: as a member of the next group-committed batch
/// when payments are group-committed (`STORE_GROUP_COMMIT` `on` or `auto`), else — or when
/// that batch failed before its commit — in a transaction of its own. Either way the
/// transition and its audit lines commit together, and the answer comes after the commit.
pub async fn apply_payment(
    db: &Database,
    paid: &PaymentApplication,
    rules: PaymentRules,
    fence: Fence,
    now: UnixMillis,
    audit: Option<&PaymentAudit>,
) -> Result<ApplyOutcome, StoreError> {
    if let Some(batcher) = db.payment_batcher() {
        let (paid, audit) = (paid.clone(), audit.cloned());
        // The batch settles what its members owe once, after the last of them.
        let batched = batcher
            .run(move |mut tx| async move {
                let applied = apply_audited(&mut tx, &paid, rules, fence, now, audit.as_ref());
                let result = applied.await;
                (tx, result)
            })
            .await;
        match batched {
            Outcome::Done(result) => return result,
            Outcome::Retry(error) => {
                tracing::warn!(event = "store.batch.retried_alone", transition = "payment", %error)
            }
        }
    }
    let mut tx = db.begin_write().await?;
    let (outcome, owed) = apply_audited(&mut tx, paid, rules, fence, now, audit).await?;
    if let Some(owed) = owed {
        stock::settle(&mut tx, &[owed]).await?;
    }
    // An outcome that changed nothing is not worth a commit, unless it has lines to record.
    if audit.is_some() || wrote(&outcome) {
        tx.commit().await.map_err(store_error)?;
    }
    Ok(outcome)
}

fn wrote(outcome: &ApplyOutcome) -> bool {
    matches!(
        outcome,
        ApplyOutcome::Confirmed { .. }
            | ApplyOutcome::Revived { .. }
            | ApplyOutcome::RefundPlanned { .. }
    )
}

/// The transition, then its audit lines, in the caller's transaction; answers the stock move
/// it owes, for the caller to make last (`stock::settle`) before it commits.
async fn apply_audited(
    tx: &mut Transaction<'_, Any>,
    paid: &PaymentApplication,
    rules: PaymentRules,
    fence: Fence,
    now: UnixMillis,
    audit: Option<&PaymentAudit>,
) -> Result<(ApplyOutcome, Option<OwedMove>), StoreError> {
    let (outcome, owed) = apply_in(tx, paid, rules, fence, now).await?;
    if let Some(audit) = audit {
        notify_audit::record_application(tx, audit, paid, &outcome, now).await?;
    }
    Ok((outcome, owed))
}

/// Payment PAID and what the policy makes of it, with the stock move a confirmation owes.
/// An outcome that changed nothing leaves at most the order's fence raised to the caller's
/// own (current) lease.
async fn apply_in(
    tx: &mut Transaction<'_, Any>,
    paid: &PaymentApplication,
    rules: PaymentRules,
    fence: Fence,
    now: UnixMillis,
) -> Result<(ApplyOutcome, Option<OwedMove>), StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE out_trade_no = $1"
    ))
    .bind(&paid.out_trade_no)
    .fetch_optional(&mut **tx)
    .await
    .map_err(store_error)?;
    let Some(payment) = row.as_ref().map(payment_from_row).transpose()? else {
        return Ok((ApplyOutcome::UnknownTrade, None));
    };
    if payment.amount != paid.amount {
        let expected = payment.amount;
        return Ok((ApplyOutcome::AmountMismatch { expected }, None));
    }
    fence::check(tx, payment.order_id, fence).await?;
    // NOTPAY or CLOSED → PAID, once (the statuses `PaymentStatus::pay` accepts).
    let marked = sqlx::query(
        "UPDATE payments SET status = $1, transaction_id = $2, paid_at = $3, updated_at = $4 \
         WHERE id = $5 AND status IN ($6, $7)",
    )
    .bind(PaymentStatus::Paid.as_str())
    .bind(&paid.transaction_id)
    .bind(paid.paid_at.0)
    .bind(now.0)
    .bind(payment.id)
    .bind(PaymentStatus::NotPay.as_str())
    .bind(PaymentStatus::Closed.as_str());
    if rows(tx, marked).await? == 0 {
        // Someone applied it first (a duplicate, or a concurrent copy that won).
        return Ok((ApplyOutcome::AlreadyApplied, None));
    }
    let order = super::orders::order_in(tx, payment.order_id)
        .await?
        .ok_or_else(|| StoreError::Other(format!("payment {} has no order", payment.id)))?;
    let effect = policy::on_payment(
        order.status,
        order.cancel_reason,
        order.expires_at,
        now,
        rules.revive_within,
    );
    let outcome = match effect {
        PaymentEffect::Confirm => {
            let owed = confirm(tx, &order, paid, now).await?;
            let tickets = issue_tickets(tx, order.id, &order.items, now).await?;
            return Ok((ApplyOutcome::Confirmed { tickets }, Some(owed)));
        }
        PaymentEffect::Revive => match revive(tx, &order, paid, now).await? {
            true => {
                let tickets = issue_tickets(tx, order.id, &order.items, now).await?;
                ApplyOutcome::Revived { tickets }
            }
            // Sold out meanwhile: the money goes back instead.
            false => plan_refund(tx, &payment, RefundKind::LatePayment, now).await?,
        },
        PaymentEffect::Refund(kind) => plan_refund(tx, &payment, kind, now).await?,
    };
    Ok((outcome, None))
}

/// PENDING → CONFIRMED; answers the move of its reservation to sold, which it owes.
async fn confirm(
    tx: &mut Transaction<'_, Any>,
    order: &Order,
    paid: &PaymentApplication,
    now: UnixMillis,
) -> Result<OwedMove, StoreError> {
    let to = order.status.confirm().map_err(refusal)?;
    let confirmed = sqlx::query(
        "UPDATE orders SET status = $1, paid_at = $2, updated_at = $3 WHERE id = $4 AND status = $5",
    )
    .bind(to.as_str())
    .bind(paid.paid_at.0)
    .bind(now.0)
    .bind(order.id)
    .bind(order.status.as_str());
    if rows(tx, confirmed).await? != 1 {
        return Err(StoreError::Conflict(format!("order {} changed", order.id)));
    }
    Ok(OwedMove {
        order_id: order.id,
        items: order.items.clone(),
        from: Counter::Reserved,
        to: Counter::Sold,
        now,
    })
}

/// CANCELLED (EXPIRED) → CONFIRMED with its stock taken again (available → sold), all lines or
/// none. Answers false, having changed nothing, when a line is sold out.
async fn revive(
    tx: &mut Transaction<'_, Any>,
    order: &Order,
    paid: &PaymentApplication,
    now: UnixMillis,
) -> Result<bool, StoreError> {
    let to = order.status.revive(order.cancel_reason).map_err(refusal)?;
    if !stock::shift_all_or_none(tx, &order.items, Counter::Available, Counter::Sold, now).await? {
        return Ok(false);
    }
    let revived = sqlx::query(
        "UPDATE orders SET status = $1, cancel_reason = NULL, cancelled_at = NULL, paid_at = $2, \
         updated_at = $3 WHERE id = $4 AND status = $5 AND cancel_reason = $6",
    )
    .bind(to.as_str())
    .bind(paid.paid_at.0)
    .bind(now.0)
    .bind(order.id)
    .bind(order.status.as_str())
    .bind(CancelReason::Expired.as_str());
    if rows(tx, revived).await? != 1 {
        return Err(StoreError::Conflict(format!("order {} changed", order.id)));
    }
    Ok(true)
}

/// A PROCESSING refund of the whole payment, committed against it, in the transaction that
/// recorded the payment: the follow-up exists as soon as the money does.
async fn plan_refund(
    tx: &mut Transaction<'_, Any>,
    payment: &Payment,
    kind: RefundKind,
    now: UnixMillis,
) -> Result<ApplyOutcome, StoreError> {
    let new = NewRefund {
        order_id: payment.order_id,
        payment_id: payment.id,
        out_refund_no: policy::automatic_refund_no(payment.order_id, payment.id),
        amount: payment.amount,
        reason: Some(kind.as_str().to_owned()),
        kind,
        request_key: None,
        ticket_ids: Vec::new(),
        operator: None,
    };
    let refund = super::refunds::insert_committed(tx, &new, now)
        .await?
        .ok_or_else(|| StoreError::Other(format!("payment {} is already refunded", payment.id)))?;
    Ok(ApplyOutcome::RefundPlanned { refund })
}
