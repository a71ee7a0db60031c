//! What a scenario did, read back from the database after it ran: a fast answer that left the
//! data wrong must fail the run, not count as throughput. Every scenario sells its own ticket
//! type, so each check looks at the orders of one ticket type.

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};

pub struct Checker {
    pool: AnyPool,
}

/// One order of a ticket type as it stands, with what hangs off it.
#[derive(Debug)]
pub struct OrderFacts {
    pub id: i64,
    pub status: String,
    pub cancel_reason: Option<String>,
    pub units: i64,
    pub valid_tickets: i64,
    pub cancelled_tickets: i64,
    pub paid_payments: i64,
    pub refunded_payments: i64,
    pub successful_refunds: i64,
    pub other_refunds: i64,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Stock {
    pub total: i64,
    pub available: i64,
    pub reserved: i64,
    pub sold: i64,
}

impl Checker {
    pub async fn connect(url: &str) -> Checker {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(2)
            .connect(url)
            .await
            .expect("the checker reaches the database");
        Checker { pool }
    }

    /// The ticket type's counters; panics unless they add up and none is negative.
    pub async fn stock(&self, ticket_type: i64) -> Stock {
        let row =
            sqlx::query("SELECT total, available, reserved, sold FROM ticket_types WHERE id = $1")
                .bind(ticket_type)
                .fetch_one(&self.pool)
                .await
                .expect("stock row");
        let stock = Stock {
            total: row.get("total"),
            available: row.get("available"),
            reserved: row.get("reserved"),
            sold: row.get("sold"),
        };
        assert!(
            stock.available >= 0 && stock.reserved >= 0 && stock.sold >= 0,
            "ticket type {ticket_type}: a negative counter {stock:?}"
        );
        assert_eq!(
            stock.available + stock.reserved + stock.sold,
            stock.total,
            "ticket type {ticket_type}: stock does not add up {stock:?}"
        );
        stock
    }

    /// Every order holding a line of the ticket type, with its tickets, payments and refunds.
    pub async fn orders_of(&self, ticket_type: i64) -> Vec<OrderFacts> {
        sqlx::query(
            "SELECT o.id, o.status, o.cancel_reason, i.quantity, \
               (SELECT COUNT(*) FROM tickets t WHERE t.order_id = o.id AND t.status = 'VALID') \
                 AS valid_tickets, \
               (SELECT COUNT(*) FROM tickets t WHERE t.order_id = o.id AND t.status = 'CANCELLED') \
                 AS cancelled_tickets, \
               (SELECT COUNT(*) FROM payments p WHERE p.order_id = o.id AND p.status = 'PAID') \
                 AS paid_payments, \
               (SELECT COUNT(*) FROM payments p WHERE p.order_id = o.id AND p.status = 'REFUNDED') \
                 AS refunded_payments, \
               (SELECT COUNT(*) FROM refunds r WHERE r.order_id = o.id AND r.status = 'SUCCESS') \
                 AS successful_refunds, \
               (SELECT COUNT(*) FROM refunds r WHERE r.order_id = o.id AND r.status <> 'SUCCESS') \
                 AS other_refunds \
             FROM orders o JOIN order_items i ON i.order_id = o.id \
             WHERE i.ticket_type_id = $1 ORDER BY o.id",
        )
        .bind(ticket_type)
        .fetch_all(&self.pool)
        .await
        .expect("orders of the ticket type")
        .iter()
        .map(|row| OrderFacts {
            id: row.get("id"),
            status: row.get("status"),
            cancel_reason: row.get("cancel_reason"),
            units: row.get("quantity"),
            valid_tickets: row.get("valid_tickets"),
            cancelled_tickets: row.get("cancelled_tickets"),
            paid_payments: row.get("paid_payments"),
            refunded_payments: row.get("refunded_payments"),
            successful_refunds: row.get("successful_refunds"),
            other_refunds: row.get("other_refunds"),
        })
        .collect()
    }

    /// Each of `expected` orders confirmed exactly once: CONFIRMED, one PAID payment, one
    /// valid ticket per unit; the ticket type sold exactly their units, nothing left reserved
    /// by them. Answers the stock.
    pub async fn all_confirmed_once(&self, ticket_type: i64, expected: usize) -> Stock {
        let orders = self.orders_of(ticket_type).await;
        assert_eq!(
            orders.len(),
            expected,
            "orders of ticket type {ticket_type}"
        );
        for o in &orders {
            assert!(
                o.status == "CONFIRMED"
                    && o.paid_payments == 1
                    && o.valid_tickets == o.units
                    && o.cancelled_tickets == 0,
                "order {} is not confirmed exactly once: {o:?}",
                o.id
            );
        }
        let units: i64 = orders.iter().map(|o| o.units).sum();
        let stock = self.stock(ticket_type).await;
        assert_eq!(stock.sold, units, "sold units of ticket type {ticket_type}");
        assert_eq!(stock.reserved, 0, "units still reserved: {stock:?}");
        stock
    }

    /// Each of `expected` orders paid and then refunded in full: CANCELLED (REFUNDED), its
    /// payment REFUNDED by exactly one SUCCESS refund and nothing else, its tickets cancelled;
    /// every unit back on sale.
    pub async fn all_refunded(&self, ticket_type: i64, expected: usize) -> Stock {
        let orders = self.orders_of(ticket_type).await;
        assert_eq!(
            orders.len(),
            expected,
            "orders of ticket type {ticket_type}"
        );
        for o in &orders {
            assert!(
                o.status == "CANCELLED"
                    && o.cancel_reason.as_deref() == Some("REFUNDED")
                    && o.refunded_payments == 1
                    && o.successful_refunds == 1
                    && o.other_refunds == 0
                    && o.valid_tickets == 0
                    && o.cancelled_tickets == o.units,
                "order {} is not refunded exactly once: {o:?}",
                o.id
            );
        }
        let stock = self.stock(ticket_type).await;
        assert_eq!(
            (stock.available, stock.reserved, stock.sold),
            (stock.total, 0, 0),
            "every refunded unit is back on sale"
        );
        stock
    }

    pub async fn close(self) {
        self.pool.close().await;
    }
}
