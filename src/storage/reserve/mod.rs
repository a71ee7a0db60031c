//! Reserving stock for new orders (`POST /orders`): every line available → reserved and the
//! PENDING order with its items, all or nothing, with the pending-order limits checked in the
//! same transaction.
//!
//! Reservations are made a set at a time. With group commit on, the set is what arrived
//! while the last batch was committing; without it, a set of one. Either way the set costs
//! the same few statements: lock the buyers' rows (when limits are on) and the ticket types'
//! rows, decide every request in memory in arrival order ([`decide`]), move each ticket
//! type's stock once by the sum admitted, and insert every admitted order and its items in
//! one statement. On a hot ticket type that is the difference that matters: one order per
//! round trip on the stock row became one batch per round trip (docs/benchmarks.md).

mod decide;
mod insert;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sqlx::{Any, Row, Transaction};
use wallyt_pay_actors::ports::{CreateOrderError, PendingLimits};
use wallyt_pay_actors::{Fen, Order, OrderLine, OrderStatus, StoreError, UnixMillis};

pub use decide::Reservation;
use decide::{Held, StockRow};

use super::batcher::Outcome;
use super::stock::{self, Counter};
use super::{store_error, Backend, Database};

pub async fn create_order(
    db: &Database,
    user_id: i64,
    lines: &[OrderLine],
    limits: PendingLimits,
    expires_at: UnixMillis,
    now: UnixMillis,
) -> Result<Order, CreateOrderError> {
    let request = Reservation {
        user_id,
        lines: lines.to_vec(),
        limits,
        expires_at,
        now,
    };
    if let Some(batcher) = db.batcher() {
        match batcher.reserve(request.clone()).await {
            Outcome::Done(result) => return result,
            Outcome::Retry(error) => {
                tracing::warn!(event = "store.batch.retried_alone", transition = "reservation", %error)
            }
        }
    }
    let mut tx = db.begin_write().await?;
    let mut answers = reserve_all(&mut tx, db.backend(), std::slice::from_ref(&request)).await?;
    let order = answers.pop().expect("one answer per request")?;
    tx.commit().await.map_err(store_error)?;
    Ok(order)
}

/// Reserves what it can of `requests` in the caller's transaction and answers each, in
/// order. An `Err` of the whole means a statement failed: the caller rolls back everything
/// this wrote (the transaction, or its savepoint). Refusals write nothing.
pub async fn reserve_all(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    requests: &[Reservation],
) -> Result<Vec<Result<Order, CreateOrderError>>, StoreError> {
    // Buyers' rows before ticket types', as every other writer takes them: no lock cycle.
    let limited: BTreeSet<i64> = requests
        .iter()
        .filter(|r| r.limits != PendingLimits::OFF)
        .map(|r| r.user_id)
        .collect();
    let mut held = held_by(tx, backend, &limited).await?;
    let types: BTreeSet<i64> = requests
        .iter()
        .flat_map(|r| r.lines.iter().map(|l| l.ticket_type_id))
        .collect();
    let mut rows = lock_stock(tx, backend, &types).await?;
    let before = rows.clone();
    let decided = decide::decide(requests, &mut rows, &mut held);

    let admitted: Vec<(&Reservation, &decide::Admitted)> = requests
        .iter()
        .zip(&decided)
        .filter_map(|(request, result)| Some((request, result.as_ref().ok()?)))
        .collect();
    if let Some(now) = admitted.iter().map(|(r, _)| r.now).max() {
        for (id, row) in &rows {
            let taken = before[id].available - row.available;
            if taken > 0
                && !stock::shift(tx, *id, taken, Counter::Available, Counter::Reserved, now).await?
            {
                return Err(StoreError::Other(format!(
                    "ticket type {id} lost stock under its lock"
                )));
            }
        }
    }
    let mut ids = insert::orders(tx, backend, &admitted).await?.into_iter();
    Ok(requests
        .iter()
        .zip(decided)
        .map(|(request, result)| {
            let admitted = result?;
            let id = ids.next().expect("one id per admitted order");
            Ok(Order {
                id,
                user_id: request.user_id,
                status: OrderStatus::Pending,
                total: admitted.total,
                refunded: Fen::ZERO,
                cancel_reason: None,
                expires_at: request.expires_at,
                created_at: request.now,
                paid_at: None,
                cancelled_at: None,
                items: admitted.items,
            })
        })
        .collect())
}

/// `id IN (…)` over the ids bound as `$n`, one JSON array: one statement text whatever the
/// batch holds, so it stays prepared (a list of placeholders would be a new statement for
/// every batch size).
fn in_ids(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Postgres => {
            format!("IN (SELECT CAST(value AS BIGINT) FROM json_array_elements_text(CAST(${n} AS json)))")
        }
        Backend::Sqlite => format!("IN (SELECT value FROM json_each(${n}))"),
    }
}

fn json_ids(ids: &BTreeSet<i64>) -> String {
    serde_json::Value::from(ids.iter().copied().collect::<Vec<i64>>()).to_string()
}

/// Locks the ticket types' rows (in id order) and reads their price and what is on sale.
/// A type that does not exist is simply absent. SQLite's writer holds the database already.
async fn lock_stock(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    types: &BTreeSet<i64>,
) -> Result<BTreeMap<i64, StockRow>, StoreError> {
    if types.is_empty() {
        return Ok(BTreeMap::new());
    }
    // NO KEY UPDATE is the lock the stock UPDATE takes anyway; FOR UPDATE would also wait
    // for every transaction issuing a ticket of the type (its foreign key's KEY SHARE).
    let lock = match backend {
        Backend::Postgres => " FOR NO KEY UPDATE",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "SELECT id, price_fen, available FROM ticket_types WHERE id {} ORDER BY id{lock}",
        in_ids(backend, 1)
    );
    let query = sqlx::query(&sql).bind(json_ids(types));
    let mut rows = BTreeMap::new();
    for row in query.fetch_all(&mut **tx).await.map_err(store_error)? {
        let id: i64 = row.try_get("id").map_err(store_error)?;
        let stock = StockRow {
            price: Fen::new(row.try_get("price_fen").map_err(store_error)?),
            available: row.try_get("available").map_err(store_error)?,
        };
        rows.insert(id, stock);
    }
    Ok(rows)
}

/// What each of `users` holds unpaid. On PostgreSQL their rows are locked first, so two
/// orders of one user in different transactions are counted one after the other.
async fn held_by(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    users: &BTreeSet<i64>,
) -> Result<HashMap<i64, Held>, StoreError> {
    if users.is_empty() {
        return Ok(HashMap::new());
    }
    let ids = json_ids(users);
    if backend == Backend::Postgres {
        let sql = format!(
            "SELECT id FROM users WHERE id {} ORDER BY id FOR UPDATE",
            in_ids(backend, 1)
        );
        let query = sqlx::query(&sql).bind(&ids);
        query.execute(&mut **tx).await.map_err(store_error)?;
    }
    let sql = format!(
        "SELECT o.user_id, COUNT(DISTINCT o.id) AS orders, \
         CAST(COALESCE(SUM(i.quantity), 0) AS BIGINT) AS units \
         FROM orders o LEFT JOIN order_items i ON i.order_id = o.id \
         WHERE o.user_id {} AND o.status = $2 GROUP BY o.user_id",
        in_ids(backend, 1)
    );
    let query = sqlx::query(&sql)
        .bind(&ids)
        .bind(OrderStatus::Pending.as_str());
    let mut held: HashMap<i64, Held> = users.iter().map(|&id| (id, Held::default())).collect();
    for row in query.fetch_all(&mut **tx).await.map_err(store_error)? {
        let user: i64 = row.try_get("user_id").map_err(store_error)?;
        let counted = Held {
            orders: row.try_get("orders").map_err(store_error)?,
            units: row.try_get("units").map_err(store_error)?,
        };
        held.insert(user, counted);
    }
    Ok(held)
}
