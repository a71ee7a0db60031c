//! `OrderStore` on SQL: orders with their stock reservation, payments, tickets and the
//! payment event log. Every state change is one transaction of guarded updates (`… WHERE
//! status = …`, `… AND available >= …`) checked by rows affected, so the database itself
//! refuses an oversell or a second confirmation, whatever the callers do.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};
use wallyt_pay_actors::ports::{
    ApplyOutcome, BeginRefundError, CreateOrderError, Fence, FinishOutcome, NewPaymentEvent,
    NewPrepay, NewRefund, OrderStore, PaymentApplication, PaymentAudit, PaymentRules,
    PendingLimits, RefundResult,
};
use wallyt_pay_actors::{
    CancelReason, Fen, Order, OrderItem, OrderLine, OrderStatus, Payment, PaymentStatus, Refund,
    StoreError, Ticket, UnixMillis,
};

use super::{column, expiry, payments, refunds, reserve, store_error, Database};

pub(super) const PAYMENT_COLUMNS: &str =
    "id, order_id, out_trade_no, transaction_id, status, amount_fen, \
                               refunded_fen, refund_committed_fen, openid, pay_params, \
                               prepay_expires_at, created_at, paid_at";

pub(super) fn order_from_row(row: &AnyRow, items: Vec<OrderItem>) -> Result<Order, StoreError> {
    let status: String = column(row, "status")?;
    let reason: Option<String> = column(row, "cancel_reason")?;
    Ok(Order {
        id: column(row, "id")?,
        user_id: column(row, "user_id")?,
        status: OrderStatus::parse(&status)
            .ok_or_else(|| StoreError::Other(format!("unknown order status {status}")))?,
        total: Fen::new(column(row, "total_fen")?),
        refunded: Fen::new(column(row, "refunded_fen")?),
        cancel_reason: reason.as_deref().and_then(CancelReason::parse),
        expires_at: UnixMillis(column(row, "expires_at")?),
        created_at: UnixMillis(column(row, "created_at")?),
        paid_at: column::<Option<i64>>(row, "paid_at")?.map(UnixMillis),
        cancelled_at: column::<Option<i64>>(row, "cancelled_at")?.map(UnixMillis),
        items,
    })
}

pub(super) fn payment_from_row(row: &AnyRow) -> Result<Payment, StoreError> {
    let status: String = column(row, "status")?;
    Ok(Payment {
        id: column(row, "id")?,
        order_id: column(row, "order_id")?,
        out_trade_no: column(row, "out_trade_no")?,
        transaction_id: column(row, "transaction_id")?,
        status: PaymentStatus::parse(&status)
            .ok_or_else(|| StoreError::Other(format!("unknown payment status {status}")))?,
        amount: Fen::new(column(row, "amount_fen")?),
        refunded: Fen::new(column(row, "refunded_fen")?),
        refund_committed: Fen::new(column(row, "refund_committed_fen")?),
        openid: column(row, "openid")?,
        pay_params: column(row, "pay_params")?,
        prepay_expires_at: UnixMillis(column(row, "prepay_expires_at")?),
        created_at: UnixMillis(column(row, "created_at")?),
        paid_at: column::<Option<i64>>(row, "paid_at")?.map(UnixMillis),
    })
}

pub(super) async fn items_in(
    tx: &mut Transaction<'_, Any>,
    order_id: i64,
) -> Result<Vec<OrderItem>, StoreError> {
    sqlx::query(
        "SELECT ticket_type_id, quantity, unit_price_fen FROM order_items \
         WHERE order_id = $1 ORDER BY ticket_type_id",
    )
    .bind(order_id)
    .fetch_all(&mut **tx)
    .await
    .map_err(store_error)?
    .iter()
    .map(|row| {
        Ok(OrderItem {
            ticket_type_id: column(row, "ticket_type_id")?,
            quantity: column(row, "quantity")?,
            unit_price: Fen::new(column(row, "unit_price_fen")?),
        })
    })
    .collect()
}

/// The order as the transaction sees it.
pub(super) async fn order_in(
    tx: &mut Transaction<'_, Any>,
    order_id: i64,
) -> Result<Option<Order>, StoreError> {
    // The order and its items in one statement (one row per item): a payment's confirmation
    // reads its order on the hot path, so a round trip saved here is one per notify.
    let rows = sqlx::query(ORDER_WITH_ITEMS)
        .bind(order_id)
        .fetch_all(&mut **tx)
        .await
        .map_err(store_error)?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let items = rows
        .iter()
        .filter(|row| matches!(column::<Option<i64>>(row, "ticket_type_id"), Ok(Some(_))))
        .map(|row| {
            Ok(OrderItem {
                ticket_type_id: column(row, "ticket_type_id")?,
                quantity: column(row, "quantity")?,
                unit_price: Fen::new(column(row, "unit_price_fen")?),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    order_from_row(first, items).map(Some)
}

const ORDER_WITH_ITEMS: &str = "SELECT o.id, o.user_id, o.status, o.total_fen, o.refunded_fen, \
     o.cancel_reason, o.expires_at, o.created_at, o.paid_at, o.cancelled_at, \
     i.ticket_type_id, i.quantity, i.unit_price_fen \
     FROM orders o LEFT JOIN order_items i ON i.order_id = o.id \
     WHERE o.id = $1 ORDER BY i.ticket_type_id";

pub(super) async fn rows<'q>(
    tx: &mut Transaction<'_, Any>,
    query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
) -> Result<u64, StoreError> {
    Ok(query
        .execute(&mut **tx)
        .await
        .map_err(store_error)?
        .rows_affected())
}

#[async_trait]
impl OrderStore for Database {
    async fn create_order(
        &self,
        user_id: i64,
        lines: &[OrderLine],
        limits: PendingLimits,
        expires_at: UnixMillis,
        now: UnixMillis,
    ) -> Result<Order, CreateOrderError> {
        reserve::create_order(self, user_id, lines, limits, expires_at, now).await
    }

    async fn order(&self, order_id: i64) -> Result<Option<Order>, StoreError> {
        let mut tx = self.pool().begin().await.map_err(store_error)?;
        let order = order_in(&mut tx, order_id).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(order)
    }

    async fn payments(&self, order_id: i64) -> Result<Vec<Payment>, StoreError> {
        sqlx::query(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE order_id = $1 ORDER BY id"
        ))
        .bind(order_id)
        .fetch_all(self.pool())
        .await
        .map_err(store_error)?
        .iter()
        .map(payment_from_row)
        .collect()
    }

    async fn payment_by_out_trade_no(
        &self,
        out_trade_no: &str,
    ) -> Result<Option<Payment>, StoreError> {
        sqlx::query(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE out_trade_no = $1"
        ))
        .bind(out_trade_no)
        .fetch_optional(self.pool())
        .await
        .map_err(store_error)?
        .as_ref()
        .map(payment_from_row)
        .transpose()
    }

    async fn tickets(&self, order_id: i64) -> Result<Vec<Ticket>, StoreError> {
        sqlx::query(
            "SELECT id, order_id, ticket_type_id, code, status FROM tickets \
             WHERE order_id = $1 ORDER BY id",
        )
        .bind(order_id)
        .fetch_all(self.pool())
        .await
        .map_err(store_error)?
        .iter()
        .map(|row| {
            Ok(Ticket {
                id: column(row, "id")?,
                order_id: column(row, "order_id")?,
                ticket_type_id: column(row, "ticket_type_id")?,
                code: column(row, "code")?,
                status: column(row, "status")?,
            })
        })
        .collect()
    }

    async fn insert_prepay(
        &self,
        prepay: &NewPrepay,
        fence: Fence,
        now: UnixMillis,
    ) -> Result<Payment, StoreError> {
        payments::insert_prepay(self, prepay, fence, now).await
    }

    async fn close_payment(
        &self,
        payment_id: i64,
        fence: Fence,
        now: UnixMillis,
    ) -> Result<bool, StoreError> {
        payments::close_payment(self, payment_id, fence, now).await
    }

    async fn apply_payment(
        &self,
        paid: &PaymentApplication,
        rules: PaymentRules,
        fence: Fence,
        now: UnixMillis,
    ) -> Result<ApplyOutcome, StoreError> {
        payments::apply_payment(self, paid, rules, fence, now, None).await
    }

    async fn apply_payment_audited(
        &self,
        paid: &PaymentApplication,
        rules: PaymentRules,
        fence: Fence,
        now: UnixMillis,
        audit: &PaymentAudit,
    ) -> Result<ApplyOutcome, StoreError> {
        payments::apply_payment(self, paid, rules, fence, now, Some(audit)).await
    }

    async fn append_event(
        &self,
        event: &NewPaymentEvent,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO payment_events (kind, order_id, out_trade_no, verdict, raw, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&event.kind)
        .bind(event.order_id)
        .bind(event.out_trade_no.as_deref())
        .bind(&event.verdict)
        .bind(&event.raw)
        .bind(now.0)
        .execute(self.pool())
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn refunds(&self, order_id: i64) -> Result<Vec<Refund>, StoreError> {
        refunds::of_order(self, order_id).await
    }

    async fn refund(&self, refund_id: i64) -> Result<Option<Refund>, StoreError> {
        refunds::by_id(self, refund_id).await
    }

    async fn refund_for_request(&self, request_key: &str) -> Result<Option<Refund>, StoreError> {
        refunds::by_request_key(self, request_key).await
    }

    async fn processing_refunds(&self) -> Result<Vec<Refund>, StoreError> {
        refunds::processing(self).await
    }

    async fn begin_refund(
        &self,
        refund: &NewRefund,
        fence: Fence,
        now: UnixMillis,
    ) -> Result<Refund, BeginRefundError> {
        refunds::begin(self, refund, fence, now).await
    }

    async fn note_refund_attempt(
        &self,
        refund_id: i64,
        gateway_refund_id: Option<&str>,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        refunds::note_attempt(self, refund_id, gateway_refund_id, now).await
    }

    async fn finish_refund(
        &self,
        refund_id: i64,
        result: &RefundResult,
        fence: Fence,
        now: UnixMillis,
    ) -> Result<FinishOutcome, StoreError> {
        refunds::finish(self, refund_id, result, fence, now).await
    }

    async fn open_deadlines(
        &self,
        until: UnixMillis,
    ) -> Result<Vec<wallyt_pay_actors::expiry::Deadline>, StoreError> {
        expiry::open_deadlines(self, until).await
    }

    async fn expire_order(
        &self,
        order_id: i64,
        fence: Fence,
        now: UnixMillis,
    ) -> Result<bool, StoreError> {
        expiry::expire_order(self, order_id, fence, now).await
    }
}
