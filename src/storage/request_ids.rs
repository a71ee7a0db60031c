//! Which HTTP request made a payment (prepay) or a refund (`payments.request_id`,
//! `refunds.request_id`, migration 0010). The engine creates those rows inside the order's
//! actor, which knows nothing of HTTP; the route that asked tags the row afterwards with its
//! request id. Only an untagged row is tagged: a retry (same Idempotency-Key, or a prepay
//! answered from the open one) does not take over the first request's row.

use std::collections::HashMap;
use wallyt_pay_actors::StoreError;

use super::{column, store_error, Database};

/// The request ids of an order's payments and refunds, by row id.
#[derive(Debug, Default, Clone)]
pub struct RequestIds {
    pub payments: HashMap<i64, String>,
    pub refunds: HashMap<i64, String>,
}

impl Database {
    /// Tags a prepay's payment row with the request that created it (unless already tagged).
    pub async fn tag_payment(&self, payment_id: i64, request_id: &str) -> Result<(), StoreError> {
        self.tag("payments", payment_id, request_id).await
    }

    /// Tags a refund row with the request that created it (unless already tagged).
    pub async fn tag_refund(&self, refund_id: i64, request_id: &str) -> Result<(), StoreError> {
        self.tag("refunds", refund_id, request_id).await
    }

    async fn tag(&self, table: &str, id: i64, request_id: &str) -> Result<(), StoreError> {
        // `table` is one of two literals above, never input.
        let sql =
            format!("UPDATE {table} SET request_id = $1 WHERE id = $2 AND request_id IS NULL");
        sqlx::query(&sql)
            .bind(request_id)
            .bind(id)
            .execute(self.pool())
            .await
            .map(drop)
            .map_err(store_error)
    }

    /// The request ids of the order's tagged payments and refunds.
    pub async fn request_ids_of_order(&self, order_id: i64) -> Result<RequestIds, StoreError> {
        let mut ids = RequestIds::default();
        for (table, into) in [
            ("payments", &mut ids.payments),
            ("refunds", &mut ids.refunds),
        ] {
            let sql = format!(
                "SELECT id, request_id FROM {table} \
                 WHERE order_id = $1 AND request_id IS NOT NULL"
            );
            let rows = sqlx::query(&sql)
                .bind(order_id)
                .fetch_all(self.pool())
                .await
                .map_err(store_error)?;
            for row in &rows {
                into.insert(column(row, "id")?, column(row, "request_id")?);
            }
        }
        Ok(ids)
    }
}

/// An operator's action on an order, as `admin_audit` holds it.
#[derive(Debug, Clone)]
pub struct AuditedAction {
    pub action: String,
    pub operator: String,
    pub target: Option<String>,
    pub status: i64,
    pub outcome: String,
    pub request_id: Option<String>,
    pub created_at: wallyt_pay_actors::UnixMillis,
}

impl Database {
    /// The operators' actions on the order, oldest first: the timeline shows them beside
    /// what the engine recorded for them (a sync's queries carry no request id of their own).
    pub async fn actions_of_order(&self, order_id: i64) -> Result<Vec<AuditedAction>, StoreError> {
        sqlx::query(
            "SELECT action, operator, target, status, outcome, request_id, created_at \
             FROM admin_audit WHERE order_id = $1 ORDER BY id",
        )
        .bind(order_id)
        .fetch_all(self.pool())
        .await
        .map_err(store_error)?
        .iter()
        .map(|row| {
            Ok(AuditedAction {
                action: column(row, "action")?,
                operator: column(row, "operator")?,
                target: column(row, "target")?,
                status: column(row, "status")?,
                outcome: column(row, "outcome")?,
                request_id: column(row, "request_id")?,
                created_at: wallyt_pay_actors::UnixMillis(column(row, "created_at")?),
            })
        })
        .collect()
    }
}
