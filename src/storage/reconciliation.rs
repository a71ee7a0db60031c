//! What the daily reconciliation reads and writes: the claim row of a bill date (one node
//! runs a date), our side of the day (payments paid, refunds that succeeded), and the
//! differences found. Instants of the day are `[start, end)` in unix milliseconds.

use sqlx::any::AnyRow;
use std::time::Duration;
use wallyt_pay_actors::{Fen, PaymentStatus, RefundStatus, StoreError, UnixMillis};

use super::{column, store_error, Database};

/// A payment of ours that received money.
#[derive(Debug, Clone)]
pub struct OurPayment {
    pub order_id: i64,
    pub out_trade_no: String,
    pub amount: Fen,
}

/// A refund of ours, with the trade it belongs to.
#[derive(Debug, Clone)]
pub struct OurRefund {
    pub order_id: i64,
    pub out_trade_no: String,
    pub out_refund_no: String,
    pub amount: Fen,
    pub status: String,
}

/// One difference to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDifference {
    pub kind: &'static str,
    pub order_id: Option<i64>,
    pub out_trade_no: Option<String>,
    pub out_refund_no: Option<String>,
    /// What the bill says (an amount, a state), or nothing when the bill has no line.
    pub bill_value: Option<String>,
    /// What we hold, or nothing when we have no record.
    pub our_value: Option<String>,
    /// The money at stake: the bill's amount, or ours when the bill has no line.
    pub amount: Fen,
    /// What the reconciler did about it; `None`: a person must look.
    pub action: Option<String>,
}

#[derive(Debug, Clone)]
pub struct StoredDifference {
    pub id: i64,
    pub bill_date: String,
    pub kind: String,
    pub order_id: Option<i64>,
    pub out_trade_no: Option<String>,
    pub out_refund_no: Option<String>,
    pub bill_value: Option<String>,
    pub our_value: Option<String>,
    pub amount: Fen,
    pub action: Option<String>,
    pub created_at: UnixMillis,
}

#[derive(Debug, Clone)]
pub struct RunRecord {
    pub bill_date: String,
    pub status: String,
    pub trigger_by: String,
    pub started_at: UnixMillis,
    pub finished_at: Option<UnixMillis>,
    pub bill_lines: Option<i64>,
    pub differences: Option<i64>,
    pub error: Option<String>,
}

/// A run that has said nothing for this long died with its node: another may take it over.
pub const STALE_RUN: Duration = Duration::from_secs(30 * 60);

impl Database {
    /// Claims a bill date for this node. The automatic run only creates the row (a date
    /// already claimed, done or not, is skipped); an operator's run (`take_over`) also takes a
    /// finished or stale one, never one in progress.
    pub async fn claim_reconciliation(
        &self,
        bill_date: &str,
        trigger_by: &str,
        take_over: bool,
        now: UnixMillis,
    ) -> Result<bool, StoreError> {
        let created = sqlx::query(
            "INSERT INTO reconciliation_runs (bill_date, status, trigger_by, started_at) \
             VALUES ($1, 'RUNNING', $2, $3) ON CONFLICT (bill_date) DO NOTHING",
        )
        .bind(bill_date)
        .bind(trigger_by)
        .bind(now.0)
        .execute(self.pool())
        .await
        .map_err(store_error)?;
        if created.rows_affected() == 1 || !take_over {
            return Ok(created.rows_affected() == 1);
        }
        let stale = now.0 - STALE_RUN.as_millis() as i64;
        let taken = sqlx::query(
            "UPDATE reconciliation_runs SET status = 'RUNNING', trigger_by = $2, \
             started_at = $3, finished_at = NULL, bill_lines = NULL, differences = NULL, \
             error = NULL WHERE bill_date = $1 AND (status <> 'RUNNING' OR started_at < $4)",
        )
        .bind(bill_date)
        .bind(trigger_by)
        .bind(now.0)
        .bind(stale)
        .execute(self.pool())
        .await
        .map_err(store_error)?;
        Ok(taken.rows_affected() == 1)
    }

    /// Ends a run: DONE with its counts, or FAILED with why (the gateway's own words).
    pub async fn finish_reconciliation(
        &self,
        bill_date: &str,
        outcome: Result<(usize, usize), &str>,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let (status, lines, differences, error) = match outcome {
            Ok((lines, differences)) => {
                ("DONE", Some(lines as i64), Some(differences as i64), None)
            }
            Err(error) => ("FAILED", None, None, Some(error)),
        };
        sqlx::query(
            "UPDATE reconciliation_runs SET status = $2, finished_at = $3, bill_lines = $4, \
             differences = $5, error = $6 WHERE bill_date = $1",
        )
        .bind(bill_date)
        .bind(status)
        .bind(now.0)
        .bind(lines)
        .bind(differences)
        .bind(error)
        .execute(self.pool())
        .await
        .map(drop)
        .map_err(store_error)
    }

    /// Replaces the date's open differences with this run's. Differences the reconciler acted
    /// on (a payment applied) stay: a second run no longer sees them, and the record of what
    /// was done must not vanish with it.
    pub async fn store_differences(
        &self,
        bill_date: &str,
        differences: &[NewDifference],
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "DELETE FROM reconciliation_differences WHERE bill_date = $1 AND action IS NULL",
        )
        .bind(bill_date)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        for d in differences {
            sqlx::query(
                "INSERT INTO reconciliation_differences (bill_date, kind, order_id, \
                 out_trade_no, out_refund_no, bill_value, our_value, amount_fen, action, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(bill_date)
            .bind(d.kind)
            .bind(d.order_id)
            .bind(d.out_trade_no.as_deref())
            .bind(d.out_refund_no.as_deref())
            .bind(d.bill_value.as_deref())
            .bind(d.our_value.as_deref())
            .bind(d.amount.get())
            .bind(d.action.as_deref())
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)
    }

    pub async fn reconciliation_run(
        &self,
        bill_date: &str,
    ) -> Result<Option<RunRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT bill_date, status, trigger_by, started_at, finished_at, bill_lines, \
             differences, error FROM reconciliation_runs WHERE bill_date = $1",
        )
        .bind(bill_date)
        .fetch_optional(self.pool())
        .await
        .map_err(store_error)?;
        row.map(|row| {
            Ok(RunRecord {
                bill_date: column(&row, "bill_date")?,
                status: column(&row, "status")?,
                trigger_by: column(&row, "trigger_by")?,
                started_at: UnixMillis(column(&row, "started_at")?),
                finished_at: column::<Option<i64>>(&row, "finished_at")?.map(UnixMillis),
                bill_lines: column(&row, "bill_lines")?,
                differences: column(&row, "differences")?,
                error: column(&row, "error")?,
            })
        })
        .transpose()
    }

    /// The differences of a date, in the order found.
    pub async fn reconciliation_differences(
        &self,
        bill_date: &str,
    ) -> Result<Vec<StoredDifference>, StoreError> {
        let rows = sqlx::query(&format!(
            "{DIFFERENCE_COLUMNS} WHERE bill_date = $1 ORDER BY id"
        ))
        .bind(bill_date)
        .fetch_all(self.pool())
        .await
        .map_err(store_error)?;
        rows.iter().map(difference_from_row).collect()
    }

    /// Differences nobody has acted on, newest first (the attention list's section).
    pub async fn open_differences(&self, limit: i64) -> Result<Vec<StoredDifference>, StoreError> {
        let rows = sqlx::query(&format!(
            "{DIFFERENCE_COLUMNS} WHERE action IS NULL ORDER BY id DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(store_error)?;
        rows.iter().map(difference_from_row).collect()
    }

    /// Our payments that received money during `[start, end)` (paid_at is the gateway's
    /// time_end, the same instant the bill lists).
    pub async fn payments_paid_between(
        &self,
        start: UnixMillis,
        end: UnixMillis,
    ) -> Result<Vec<OurPayment>, StoreError> {
        let rows = sqlx::query(
            "SELECT order_id, out_trade_no, amount_fen FROM payments \
             WHERE paid_at >= $1 AND paid_at < $2 AND status IN ($3, $4, $5)",
        )
        .bind(start.0)
        .bind(end.0)
        .bind(PaymentStatus::Paid.as_str())
        .bind(PaymentStatus::PartiallyRefunded.as_str())
        .bind(PaymentStatus::Refunded.as_str())
        .fetch_all(self.pool())
        .await
        .map_err(store_error)?;
        rows.iter()
            .map(|row| {
                Ok(OurPayment {
                    order_id: column(row, "order_id")?,
                    out_trade_no: column(row, "out_trade_no")?,
                    amount: Fen::new(column(row, "amount_fen")?),
                })
            })
            .collect()
    }

    /// Our refunds that succeeded during `[start, end)`.
    pub async fn refunds_succeeded_between(
        &self,
        start: UnixMillis,
        end: UnixMillis,
    ) -> Result<Vec<OurRefund>, StoreError> {
        let rows = sqlx::query(&format!(
            "{REFUND_COLUMNS} WHERE r.finished_at >= $1 AND r.finished_at < $2 \
             AND r.status = $3"
        ))
        .bind(start.0)
        .bind(end.0)
        .bind(RefundStatus::Success.as_str())
        .fetch_all(self.pool())
        .await
        .map_err(store_error)?;
        rows.iter().map(refund_from_row).collect()
    }

    pub async fn refund_by_out_refund_no(
        &self,
        out_refund_no: &str,
    ) -> Result<Option<OurRefund>, StoreError> {
        let row = sqlx::query(&format!("{REFUND_COLUMNS} WHERE r.out_refund_no = $1"))
            .bind(out_refund_no)
            .fetch_optional(self.pool())
            .await
            .map_err(store_error)?;
        row.as_ref().map(refund_from_row).transpose()
    }
}

const DIFFERENCE_COLUMNS: &str = "SELECT id, bill_date, kind, order_id, out_trade_no, \
     out_refund_no, bill_value, our_value, amount_fen, action, created_at \
     FROM reconciliation_differences";

const REFUND_COLUMNS: &str = "SELECT r.order_id, p.out_trade_no, r.out_refund_no, \
     r.amount_fen, r.status FROM refunds r JOIN payments p ON p.id = r.payment_id";

fn refund_from_row(row: &AnyRow) -> Result<OurRefund, StoreError> {
    Ok(OurRefund {
        order_id: column(row, "order_id")?,
        out_trade_no: column(row, "out_trade_no")?,
        out_refund_no: column(row, "out_refund_no")?,
        amount: Fen::new(column(row, "amount_fen")?),
        status: column(row, "status")?,
    })
}

fn difference_from_row(row: &AnyRow) -> Result<StoredDifference, StoreError> {
    Ok(StoredDifference {
        id: column(row, "id")?,
        bill_date: column(row, "bill_date")?,
        kind: column(row, "kind")?,
        order_id: column(row, "order_id")?,
        out_trade_no: column(row, "out_trade_no")?,
        out_refund_no: column(row, "out_refund_no")?,
        bill_value: column(row, "bill_value")?,
        our_value: column(row, "our_value")?,
        amount: Fen::new(column(row, "amount_fen")?),
        action: column(row, "action")?,
        created_at: UnixMillis(column(row, "created_at")?),
    })
}
