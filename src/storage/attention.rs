//! What needs a human (`GET /admin/attention`, the console's dashboard): refunds the gateway
//! refused or could not deliver, refunds that keep failing, orders stuck past their expiry,
//! and money kept on trades whose order was cancelled.

use wallyt_pay_actors::{Fen, OrderStatus, RefundStatus, StoreError, UnixMillis};

use super::{column, store_error, Database};

/// How many attempts make a PROCESSING refund a human's problem: the poller backs off, so by
/// then it has been failing for a while.
pub const MANY_ATTEMPTS: i64 = 5;

/// Something that needs a human, with the order it is about.
#[derive(Debug, Clone)]
pub struct AttentionItem {
    pub kind: &'static str,
    pub order_id: i64,
    pub subject: String,
    pub status: String,
    pub amount: Fen,
    pub attempts: Option<i64>,
    pub since: UnixMillis,
}

impl Database {
    /// What needs a human at `now`: refunds the gateway refused or could not deliver (FAIL,
    /// CHANGE), refunds still PROCESSING after [`MANY_ATTEMPTS`], orders still PENDING
    /// `overdue` past their expiry, and money kept on trades whose order was cancelled
    /// without a refund holding it. Newest first within each kind.
    pub async fn attention(
        &self,
        now: UnixMillis,
        overdue: std::time::Duration,
    ) -> Result<Vec<AttentionItem>, StoreError> {
        let mut items = Vec::new();
        let refunds = sqlx::query(
            "SELECT order_id, out_refund_no, status, amount_fen, attempts, updated_at \
             FROM refunds WHERE status IN ($2, $3) \
             OR (status = $4 AND attempts >= $1) ORDER BY id DESC LIMIT 200",
        )
        .bind(MANY_ATTEMPTS)
        .bind(RefundStatus::Fail.as_str())
        .bind(RefundStatus::Change.as_str())
        .bind(RefundStatus::Processing.as_str())
        .fetch_all(self.pool())
        .await
        .map_err(store_error)?;
        for row in &refunds {
            let status: String = column(row, "status")?;
            items.push(AttentionItem {
                kind: if RefundStatus::parse(&status) == Some(RefundStatus::Processing) {
                    "REFUND_RETRIED"
                } else {
                    "REFUND_NOT_DELIVERED"
                },
                order_id: column(row, "order_id")?,
                subject: column(row, "out_refund_no")?,
                status,
                amount: Fen::new(column(row, "amount_fen")?),
                attempts: Some(column(row, "attempts")?),
                since: UnixMillis(column(row, "updated_at")?),
            });
        }
        let overdue_ms = i64::try_from(overdue.as_millis()).unwrap_or(i64::MAX);
        let stuck = sqlx::query(
            "SELECT id, status, total_fen, expires_at FROM orders \
             WHERE expires_at < $1 AND status = $2 ORDER BY id DESC LIMIT 200",
        )
        .bind(now.0.saturating_sub(overdue_ms))
        .bind(OrderStatus::Pending.as_str())
        .fetch_all(self.pool())
        .await
        .map_err(store_error)?;
        for row in &stuck {
            let id: i64 = column(row, "id")?;
            items.push(AttentionItem {
                kind: "ORDER_PAST_EXPIRY",
                order_id: id,
                subject: format!("order {id}"),
                status: column(row, "status")?,
                amount: Fen::new(column(row, "total_fen")?),
                attempts: None,
                since: UnixMillis(column(row, "expires_at")?),
            });
        }
        // Money received (a transaction) and not all of it promised back, on a cancelled order.
        let kept = sqlx::query(
            "SELECT p.order_id, p.out_trade_no, p.status, p.amount_fen, p.refund_committed_fen, \
             p.paid_at FROM payments p JOIN orders o ON o.id = p.order_id \
             WHERE o.status = $1 AND p.transaction_id IS NOT NULL \
             AND p.refund_committed_fen < p.amount_fen ORDER BY p.id DESC LIMIT 200",
        )
        .bind(OrderStatus::Cancelled.as_str())
        .fetch_all(self.pool())
        .await
        .map_err(store_error)?;
        for row in &kept {
            let amount: i64 = column(row, "amount_fen")?;
            let committed: i64 = column(row, "refund_committed_fen")?;
            items.push(AttentionItem {
                kind: "PAYMENT_WITHOUT_ORDER",
                order_id: column(row, "order_id")?,
                subject: column(row, "out_trade_no")?,
                status: column(row, "status")?,
                amount: Fen::new(amount - committed),
                attempts: None,
                since: UnixMillis(column::<Option<i64>>(row, "paid_at")?.unwrap_or_default()),
            });
        }
        // What the daily bill and the database disagree on, and nobody has acted on.
        for d in self.open_differences(200).await? {
            let subject = d
                .out_refund_no
                .or(d.out_trade_no)
                .unwrap_or_else(|| format!("bill {}", d.bill_date));
            items.push(AttentionItem {
                kind: "BILL_DIFFERENCE",
                // 0 when the bill names a trade or refund we have no order for.
                order_id: d.order_id.unwrap_or(0),
                subject,
                status: d.kind,
                amount: d.amount,
                attempts: None,
                since: d.created_at,
            });
        }
        Ok(items)
    }
}
