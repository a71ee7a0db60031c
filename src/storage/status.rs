//! The read behind `GET /payments/status/{id}`: the order and its payments in ONE statement,
//! outside any transaction. It used to take five round trips (BEGIN, the order, its items,
//! COMMIT, then its payments); the status endpoint is the one buyers poll, so it is the one
//! read worth a query of its own. One statement also reads one snapshot (PostgreSQL takes a
//! snapshot per statement), so the order and the payment it shows are always of the same
//! commit — no cache, so nothing can be staler than the last committed transition.

use futures_util::FutureExt;
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
        let query = || sqlx::query(STATUS_SQL).bind(order_id);
        let rows = match self.reads() {
            Some(reads) => {
                reads
                    .read(|connection| query().fetch_all(connection).boxed())
                    .await?
            }
            None => query().fetch_all(self.pool()).await.map_err(store_error)?,
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DatabaseSettings, GroupCommit, SecretUrl};

    async fn database(dir: &std::path::Path) -> Database {
        Database::connect(&DatabaseSettings {
            url: SecretUrl::new(format!("sqlite://{}/pay.db", dir.display())),
            max_connections: 2,
            read_connections: 0,
            acquire_timeout: std::time::Duration::from_secs(5),
            group_commit: GroupCommit::Off,
            group_commit_lanes: 1,
        })
        .await
        .unwrap()
    }

    async fn exec(db: &Database, sql: &str) {
        sqlx::query(sql).execute(db.pool()).await.unwrap();
    }

    #[tokio::test]
    async fn one_statement_reads_the_order_and_every_payment() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(dir.path()).await;
        exec(
            &db,
            "INSERT INTO users (id, openid, created_at, last_login_at) VALUES (7, 'o', 0, 0)",
        )
        .await;
        for (id, status) in [(1, "PENDING"), (2, "CONFIRMED")] {
            exec(
                &db,
                &format!(
                    "INSERT INTO orders (id, user_id, status, total_fen, refunded_fen, expires_at, \
                     created_at, paid_at, updated_at) VALUES ({id}, 7, '{status}', 8800, 0, 9, 0, \
                     {paid}, 0)",
                    paid = if id == 2 { "5" } else { "NULL" }
                ),
            )
            .await;
        }
        // Order 2: a closed prepay, then the trade that paid, then a later closed one.
        for (id, status, txn) in [
            (1, "CLOSED", "NULL"),
            (2, "PAID", "'W2'"),
            (3, "CLOSED", "NULL"),
        ] {
            exec(
                &db,
                &format!(
                    "INSERT INTO payments (id, order_id, out_trade_no, transaction_id, status, \
                     amount_fen, openid, prepay_expires_at, created_at, updated_at) \
                     VALUES ({id}, 2, 'MP{id}', {txn}, '{status}', 8800, 'o', 3, 0, 0)"
                ),
            )
            .await;
        }

        let pending = db.order_status(1).await.unwrap().unwrap();
        assert_eq!((pending.user_id, pending.status), (7, OrderStatus::Pending));
        assert!(pending.payments.is_empty() && pending.current_payment().is_none());
        assert_eq!(pending.paid_at, None);

        let paid = db.order_status(2).await.unwrap().unwrap();
        assert_eq!(paid.status, OrderStatus::Confirmed);
        assert_eq!(
            (paid.total, paid.paid_at),
            (Fen::new(8800), Some(UnixMillis(5)))
        );
        let trades: Vec<&str> = paid
            .payments
            .iter()
            .map(|p| p.out_trade_no.as_str())
            .collect();
        assert_eq!(trades, ["MP1", "MP2", "MP3"], "oldest first");
        let shown = paid.current_payment().unwrap();
        assert_eq!(
            (shown.out_trade_no.as_str(), shown.transaction_id.as_deref()),
            ("MP2", Some("W2"))
        );
        assert!(
            !paid.payments[2].reusable(UnixMillis(1)),
            "a closed prepay is not reusable"
        );

        assert_eq!(db.order_status(99).await.unwrap(), None);
    }
}
