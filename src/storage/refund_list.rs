//! The console's refunds page: every refund, newest first, optionally of one status, a page
//! at a time (keyset on the id, like the order search: refunds made while an operator pages
//! do not shift the pages).

use wallyt_pay_actors::{Fen, RefundStatus, StoreError, UnixMillis};

use super::{column, store_error, Database};

/// One refund as the list shows it.
#[derive(Debug, Clone)]
pub struct RefundLine {
    pub id: i64,
    pub order_id: i64,
    pub out_refund_no: String,
    pub amount: Fen,
    pub status: String,
    pub kind: String,
    pub reason: Option<String>,
    pub operator: Option<String>,
    pub attempts: i64,
    pub created_at: UnixMillis,
    pub finished_at: Option<UnixMillis>,
    pub request_id: Option<String>,
}

impl Database {
    /// At most `limit` refunds with an id below `before_id` (when given), of `status` (when
    /// given), newest first.
    pub async fn refund_lines(
        &self,
        status: Option<RefundStatus>,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<RefundLine>, StoreError> {
        // Placeholders in the order the binds below are made; the SQL is one of four literals.
        let condition = match (status.is_some(), before_id.is_some()) {
            (true, true) => "WHERE status = $1 AND id < $2",
            (true, false) => "WHERE status = $1",
            (false, true) => "WHERE id < $1",
            (false, false) => "",
        };
        let limit_at = 1 + usize::from(status.is_some()) + usize::from(before_id.is_some());
        let sql = format!(
            "SELECT id, order_id, out_refund_no, amount_fen, status, kind, reason, operator, \
             attempts, created_at, finished_at, request_id FROM refunds {condition} \
             ORDER BY id DESC LIMIT ${limit_at}"
        );
        let mut query = sqlx::query(&sql);
        if let Some(status) = status {
            query = query.bind(status.as_str());
        }
        if let Some(before_id) = before_id {
            query = query.bind(before_id);
        }
        let rows = query
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .map_err(store_error)?;
        rows.iter()
            .map(|row| {
                Ok(RefundLine {
                    id: column(row, "id")?,
                    order_id: column(row, "order_id")?,
                    out_refund_no: column(row, "out_refund_no")?,
                    amount: Fen::new(column(row, "amount_fen")?),
                    status: column(row, "status")?,
                    kind: column(row, "kind")?,
                    reason: column(row, "reason")?,
                    operator: column(row, "operator")?,
                    attempts: column(row, "attempts")?,
                    created_at: UnixMillis(column(row, "created_at")?),
                    finished_at: column::<Option<i64>>(row, "finished_at")?.map(UnixMillis),
                    request_id: column(row, "request_id")?,
                })
            })
            .collect()
    }
}
