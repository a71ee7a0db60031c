//! The read behind `GET /payments/status/{id}`: the order and its payments in ONE statement,
//! outside any transaction. It used to take five round trips (BEGIN, the order, its items,
//! COMMIT, then its payments); the status endpoint is the one buyers poll, so it is the one
//! read worth a query of its own. One statement also reads one snapshot (PostgreSQL takes a
//! snapshot per statement), so the order and the payment it shows are always of the same
//! commit — no cache, so nothing can be staler than the last committed transition.

use sqlx::Row;
use wallyt_pay_actors::{Fen, OrderStatus, PaymentStatus, StoreError, UnixMillis};

use super::{store_error, Database};

/// What the status answer is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderStatusRow {
    pub user_id: i64,
    pub status: OrderStatus,
    pub total: Fen,
    pub refunded: Fen,
    pub paid_at: Option<UnixMillis>,
    /// Oldest first, as `OrderStore::payments` answers them.
    pub payments: Vec<PaymentBrief>,
}

/// The columns of a payment that the status answer shows or decides on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentBrief {
    pub status: PaymentStatus,
    pub out_trade_no: String,
    pub transaction_id: Option<String>,
    pub prepay_expires_at: UnixMillis,
}

impl PaymentBrief {
    /// An open prepay the buyer can still pay with (as `Payment::reusable`).
    pub fn reusable(&self, now: UnixMillis) -> bool {
        self.status == PaymentStatus::NotPay && now < self.prepay_expires_at
    }
}

impl OrderStatusRow {
    /// The payment to show: the latest that received money, else the latest (as
    /// `views::current_payment`).
    pub fn current_payment(&self) -> Option<&PaymentBrief> {
        self.payments
            .iter()
            .rev()
            .find(|p| p.status.money_received())
            .or_else(|| self.payments.last())
    }
}

const STATUS_SQL: &str = "SELECT o.user_id, o.status, o.total_fen, o.refunded_fen, o.paid_at, \
     p.status AS payment_status, p.out_trade_no, p.transaction_id, p.prepay_expires_at \
     FROM orders o LEFT JOIN payments p ON p.order_id = o.id WHERE o.id = $1 ORDER BY p.id";

impl Database {
    /// The order with its payments, or `None` when there is no such order.
    pub async fn order_status(&self, order_id: i64) -> Result<Option<OrderStatusRow>, StoreError> {
        let rows = sqlx::query(STATUS_SQL)
            .bind(order_id)
            .fetch_all(self.pool())
            .await
            .map_err(store_error)?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let status: String = first.try_get("status").map_err(store_error)?;
        let mut order = OrderStatusRow {
            user_id: first.try_get("user_id").map_err(store_error)?,
            status: OrderStatus::parse(&status)
                .ok_or_else(|| StoreError::Other(format!("unknown order status {status}")))?,
            total: Fen::new(first.try_get("total_fen").map_err(store_error)?),
            refunded: Fen::new(first.try_get("refunded_fen").map_err(store_error)?),
            paid_at: first
                .try_get::<Option<i64>, _>("paid_at")
                .map_err(store_error)?
                .map(UnixMillis),
            payments: Vec::with_capacity(rows.len()),
        };
        for row in &rows {
            // The LEFT JOIN's one row of an order without payments has NULL payment columns.
            let Some(status) = row
                .try_get::<Option<String>, _>("payment_status")
                .map_err(store_error)?
            else {
                continue;
            };
            order.payments.push(PaymentBrief {
                status: PaymentStatus::parse(&status)
                    .ok_or_else(|| StoreError::Other(format!("unknown payment status {status}")))?,
                out_trade_no: row.try_get("out_trade_no").map_err(store_error)?,
                transaction_id: row.try_get("transaction_id").map_err(store_error)?,
                prepay_expires_at: UnixMillis(
                    row.try_get("prepay_expires_at").map_err(store_error)?,
                ),
            });
        }
        Ok(Some(order))
    }
}
