//! The console dashboard's figures for one day of the console's zone: what was paid, refunded
//! and expired in it, what is pending now, and how many gateway calls failed in it. Counts and
//! sums in SQL (one row each), so a busy day costs five small queries rather than loading its
//! orders.

use wallyt_pay_actors::{CancelReason, Fen, OrderStatus, RefundStatus, StoreError, UnixMillis};

use super::{column, store_error, Database};

/// A count of rows and the sum of their amounts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub count: i64,
    pub amount: Fen,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct DayFigures {
    /// Trades paid during the day (their money received).
    pub paid: Tally,
    /// Refunds finished as SUCCESS during the day.
    pub refunded: Tally,
    /// Orders PENDING now, whatever their day.
    pub pending: Tally,
    /// Orders cancelled as EXPIRED during the day.
    pub expired: Tally,
    /// Gateway calls that failed during the day (see `storage::gateway_errors`).
    pub gateway_errors: i64,
}

impl Database {
    /// The figures of the day `[from, before)`.
    pub async fn day_figures(
        &self,
        from: UnixMillis,
        before: UnixMillis,
    ) -> Result<DayFigures, StoreError> {
        // CAST: PostgreSQL sums BIGINT as NUMERIC, which the Any driver cannot read as i64.
        let paid = self
            .tally(
                "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) AS fen \
                 FROM payments WHERE paid_at >= $1 AND paid_at < $2",
                Some((from, before)),
                None,
            )
            .await?;
        let refunded = self
            .tally(
                "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) AS fen \
                 FROM refunds WHERE finished_at >= $1 AND finished_at < $2 AND status = $3",
                Some((from, before)),
                Some(RefundStatus::Success.as_str()),
            )
            .await?;
        let pending = self
            .tally(
                "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(total_fen), 0) AS BIGINT) AS fen \
                 FROM orders WHERE status = $1",
                None,
                Some(OrderStatus::Pending.as_str()),
            )
            .await?;
        let expired = self
            .tally(
                "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(total_fen), 0) AS BIGINT) AS fen \
                 FROM orders WHERE cancelled_at >= $1 AND cancelled_at < $2 \
                 AND cancel_reason = $3",
                Some((from, before)),
                Some(CancelReason::Expired.as_str()),
            )
            .await?;
        let gateway_errors = self.gateway_errors_between(from, before).await?;
        Ok(DayFigures {
            paid,
            refunded,
            pending,
            expired,
            gateway_errors,
        })
    }

    async fn tally(
        &self,
        sql: &str,
        range: Option<(UnixMillis, UnixMillis)>,
        state: Option<&str>,
    ) -> Result<Tally, StoreError> {
        let mut query = sqlx::query(sql);
        if let Some((from, before)) = range {
            query = query.bind(from.0).bind(before.0);
        }
        if let Some(state) = state {
            query = query.bind(state);
        }
        let row = query.fetch_one(self.pool()).await.map_err(store_error)?;
        Ok(Tally {
            count: column(&row, "n")?,
            amount: Fen::new(column(&row, "fen")?),
        })
    }
}
