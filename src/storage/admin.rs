//! What the admin API reads and writes beside the engine's ports: the order search (keyset on
//! id, newest first), the payment events of an order, and the audit of operators' actions
//! (what needs a human is in `attention`). Read-only except the audit: operators act through the engine.

use sqlx::any::AnyRow;
use wallyt_pay_actors::{Fen, StoreError, UnixMillis};

use super::{column, store_error, Database};

pub use super::attention::{AttentionItem, MANY_ATTEMPTS};

/// The search of `GET /admin/orders` (and its CSV). Every field narrows; `None` does not.
#[derive(Debug, Default, Clone)]
pub struct OrderFilter {
    pub status: Option<String>,
    pub openid: Option<String>,
    pub out_trade_no: Option<String>,
    pub transaction_id: Option<String>,
    pub out_refund_no: Option<String>,
    /// Created at or after this instant.
    pub created_from: Option<UnixMillis>,
    /// Created before this instant.
    pub created_before: Option<UnixMillis>,
    /// Keyset cursor: only orders with a smaller id (the page after the one that ended there).
    pub before_id: Option<i64>,
}

/// One line of the search: the order, its buyer, and the trade that speaks for it.
#[derive(Debug, Clone)]
pub struct OrderSummary {
    pub id: i64,
    pub status: String,
    pub cancel_reason: Option<String>,
    pub total: Fen,
    pub refunded: Fen,
    pub openid: String,
    pub out_trade_no: Option<String>,
    pub transaction_id: Option<String>,
    pub created_at: UnixMillis,
    pub paid_at: Option<UnixMillis>,
}

/// A line of an order, with the ticket type's name (the CSV's, and the console's).
#[derive(Debug, Clone)]
pub struct NamedItem {
    pub order_id: i64,
    pub name: String,
    pub quantity: i64,
    pub unit_price: Fen,
}

/// A stored payment event (`payment_events`).
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub id: i64,
    pub kind: String,
    pub out_trade_no: Option<String>,
    pub verdict: String,
    pub raw: String,
    pub created_at: UnixMillis,
    /// The HTTP request that caused it, when one did (migration 0010).
    pub request_id: Option<String>,
}

/// One operator action, as audited.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    pub operator: &'a str,
    pub action: &'a str,
    pub order_id: Option<i64>,
    pub target: Option<&'a str>,
    pub client_ip: &'a str,
    pub request_id: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
    pub status: u16,
    pub outcome: &'a str,
}

/// The trade that speaks for an order: one with a transaction (money arrived), else the newest.
/// `(x IS NULL)` sorts false before true on both backends.
const TRADE_OF_ORDER: &str = "FROM payments p WHERE p.order_id = o.id \
                              ORDER BY (p.transaction_id IS NULL), p.id DESC LIMIT 1";

fn summary_from_row(row: &AnyRow) -> Result<OrderSummary, StoreError> {
    Ok(OrderSummary {
        id: column(row, "id")?,
        status: column(row, "status")?,
        cancel_reason: column(row, "cancel_reason")?,
        total: Fen::new(column(row, "total_fen")?),
        refunded: Fen::new(column(row, "refunded_fen")?),
        openid: column(row, "openid")?,
        out_trade_no: column(row, "out_trade_no")?,
        transaction_id: column(row, "transaction_id")?,
        created_at: UnixMillis(column(row, "created_at")?),
        paid_at: column::<Option<i64>>(row, "paid_at")?.map(UnixMillis),
    })
}

/// A value to bind, in the order the placeholders were written.
enum Arg {
    Text(String),
    Int(i64),
}

impl Database {
    /// The orders matching `filter`, newest first, at most `limit`.
    pub async fn admin_orders(
        &self,
        filter: &OrderFilter,
        limit: i64,
    ) -> Result<Vec<OrderSummary>, StoreError> {
        let mut conditions = Vec::new();
        let mut args = Vec::new();
        // Placeholders are numbered as they are pushed: `$n` is `args[n - 1]`.
        let mut push = |condition: &str, arg: Arg| {
            args.push(arg);
            conditions.push(condition.replace("$?", &format!("${}", args.len())));
        };
        if let Some(status) = &filter.status {
            push("o.status = $?", Arg::Text(status.clone()));
        }
        if let Some(openid) = &filter.openid {
            push("u.openid = $?", Arg::Text(openid.clone()));
        }
        if let Some(otn) = &filter.out_trade_no {
            push(
                "EXISTS (SELECT 1 FROM payments f WHERE f.order_id = o.id AND f.out_trade_no = $?)",
                Arg::Text(otn.clone()),
            );
        }
        if let Some(txn) = &filter.transaction_id {
            push(
                "EXISTS (SELECT 1 FROM payments f WHERE f.order_id = o.id AND f.transaction_id = $?)",
                Arg::Text(txn.clone()),
            );
        }
        if let Some(orn) = &filter.out_refund_no {
            push(
                "EXISTS (SELECT 1 FROM refunds r WHERE r.order_id = o.id AND r.out_refund_no = $?)",
                Arg::Text(orn.clone()),
            );
        }
        if let Some(from) = filter.created_from {
            push("o.created_at >= $?", Arg::Int(from.0));
        }
        if let Some(before) = filter.created_before {
            push("o.created_at < $?", Arg::Int(before.0));
        }
        if let Some(id) = filter.before_id {
            push("o.id < $?", Arg::Int(id));
        }
        let mut sql = format!(
            "SELECT o.id, o.status, o.cancel_reason, o.total_fen, o.refunded_fen, o.created_at, \
             o.paid_at, u.openid, (SELECT p.out_trade_no {TRADE_OF_ORDER}) AS out_trade_no, \
             (SELECT p.transaction_id {TRADE_OF_ORDER}) AS transaction_id \
             FROM orders o JOIN users u ON u.id = o.user_id"
        );
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        sql.push_str(&format!(" ORDER BY o.id DESC LIMIT {}", limit.max(1)));
        let mut query = sqlx::query(&sql);
        for arg in args {
            query = match arg {
                Arg::Text(text) => query.bind(text),
                Arg::Int(int) => query.bind(int),
            };
        }
        query
            .fetch_all(self.pool())
            .await
            .map_err(store_error)?
            .iter()
            .map(summary_from_row)
            .collect()
    }

    /// The lines of the orders with ids in `lowest..=highest`, with their ticket types' names.
    pub async fn named_items(
        &self,
        lowest: i64,
        highest: i64,
    ) -> Result<Vec<NamedItem>, StoreError> {
        sqlx::query(
            "SELECT i.order_id, t.name, i.quantity, i.unit_price_fen FROM order_items i \
             JOIN ticket_types t ON t.id = i.ticket_type_id \
             WHERE i.order_id >= $1 AND i.order_id <= $2 ORDER BY i.order_id, i.ticket_type_id",
        )
        .bind(lowest)
        .bind(highest)
        .fetch_all(self.pool())
        .await
        .map_err(store_error)?
        .iter()
        .map(|row| {
            Ok(NamedItem {
                order_id: column(row, "order_id")?,
                name: column(row, "name")?,
                quantity: column(row, "quantity")?,
                unit_price: Fen::new(column(row, "unit_price_fen")?),
            })
        })
        .collect()
    }

    /// The buyer's openid.
    pub async fn openid_of_user(&self, user_id: i64) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT openid FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(self.pool())
            .await
            .map_err(store_error)
    }

    /// Every payment event of the order: those recorded with it, and those of its trades that
    /// were stored before the order was known (a notify's body is stored before it is judged).
    pub async fn events_of_order(&self, order_id: i64) -> Result<Vec<StoredEvent>, StoreError> {
        sqlx::query(
            "SELECT id, kind, out_trade_no, verdict, raw, created_at, request_id FROM payment_events \
             WHERE order_id = $1 OR out_trade_no IN \
             (SELECT out_trade_no FROM payments WHERE order_id = $1) ORDER BY id",
        )
        .bind(order_id)
        .fetch_all(self.pool())
        .await
        .map_err(store_error)?
        .iter()
        .map(event_from_row)
        .collect()
    }

    /// When each closed trade of the order was closed (the payment row does not carry it).
    pub async fn closures_of_order(
        &self,
        order_id: i64,
    ) -> Result<Vec<(String, UnixMillis)>, StoreError> {
        sqlx::query(
            "SELECT out_trade_no, closed_at FROM payments \
             WHERE order_id = $1 AND closed_at IS NOT NULL ORDER BY id",
        )
        .bind(order_id)
        .fetch_all(self.pool())
        .await
        .map_err(store_error)?
        .iter()
        .map(|row| {
            Ok((
                column(row, "out_trade_no")?,
                UnixMillis(column(row, "closed_at")?),
            ))
        })
        .collect()
    }

    /// A stored event by id.
    pub async fn payment_event(&self, id: i64) -> Result<Option<StoredEvent>, StoreError> {
        sqlx::query(
            "SELECT id, kind, out_trade_no, verdict, raw, created_at, request_id FROM payment_events \
             WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await
        .map_err(store_error)?
        .as_ref()
        .map(event_from_row)
        .transpose()
    }

    /// Appends one operator action to `admin_audit`.
    pub async fn audit(&self, entry: &AuditEntry<'_>, now: UnixMillis) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO admin_audit (operator, action, order_id, target, client_ip, request_id, \
             idempotency_key, status, outcome, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(entry.operator)
        .bind(entry.action)
        .bind(entry.order_id)
        .bind(entry.target)
        .bind(entry.client_ip)
        .bind(entry.request_id)
        .bind(entry.idempotency_key)
        .bind(i64::from(entry.status))
        .bind(entry.outcome)
        .bind(now.0)
        .execute(self.pool())
        .await
        .map(drop)
        .map_err(store_error)
    }
}

fn event_from_row(row: &AnyRow) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        id: column(row, "id")?,
        kind: column(row, "kind")?,
        out_trade_no: column(row, "out_trade_no")?,
        verdict: column(row, "verdict")?,
        raw: column(row, "raw")?,
        created_at: UnixMillis(column(row, "created_at")?),
        request_id: column(row, "request_id")?,
    })
}
