//! The admitted orders and their items, written in one statement whatever their number. The
//! rows travel as one JSON document per table (sqlx's `Any` driver binds no arrays), which
//! PostgreSQL unpacks with `json_to_recordset` and SQLite with `json_each`; the statement's
//! text is the same for every batch size, so it stays prepared.

use serde_json::json;
use sqlx::{Any, Row, Transaction};
use wallyt_pay_actors::{OrderStatus, StoreError};

use super::super::{store_error, Backend};
use super::decide::{Admitted, Reservation};

/// PostgreSQL: ids from the orders' own sequence, both tables in one statement (the items'
/// foreign keys are checked at its end, when the orders are in). Answers `(k, id)`.
const POSTGRES_SQL: &str = "WITH new AS ( \
       SELECT x.k, nextval(pg_get_serial_sequence('orders', 'id')) AS id, x.u, x.t, x.e, x.c \
       FROM json_to_recordset($1::json) AS x(k BIGINT, u BIGINT, t BIGINT, e BIGINT, c BIGINT) \
     ), placed AS ( \
       INSERT INTO orders (id, user_id, status, total_fen, expires_at, created_at, updated_at) \
       SELECT id, u, $3, t, e, c, c FROM new \
     ), lines AS ( \
       INSERT INTO order_items (order_id, ticket_type_id, quantity, unit_price_fen) \
       SELECT new.id, i.t, i.q, i.p \
       FROM json_to_recordset($2::json) AS i(k BIGINT, t BIGINT, q BIGINT, p BIGINT) \
       JOIN new ON new.k = i.k \
     ) \
     SELECT k, id FROM new";

/// SQLite: the writer holds the database, so the next ids are known. AUTOINCREMENT keeps the
/// highest ever given in `sqlite_sequence` (and moves it past the ones written here); the
/// table's own highest id counts too, as SQLite itself counts it, should that row be missing
/// (a restore that skipped it).
const SQLITE_NEXT_ID: &str = "SELECT MAX( \
       COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'orders'), 0), \
       COALESCE((SELECT MAX(id) FROM orders), 0)) + 1";
const SQLITE_ORDERS: &str =
    "INSERT INTO orders (id, user_id, status, total_fen, expires_at, created_at, updated_at) \
     SELECT json_extract(value, '$.id'), json_extract(value, '$.u'), $2, \
            json_extract(value, '$.t'), json_extract(value, '$.e'), \
            json_extract(value, '$.c'), json_extract(value, '$.c') \
     FROM json_each($1)";
const SQLITE_ITEMS: &str =
    "INSERT INTO order_items (order_id, ticket_type_id, quantity, unit_price_fen) \
     SELECT json_extract(value, '$.id'), json_extract(value, '$.t'), \
            json_extract(value, '$.q'), json_extract(value, '$.p') \
     FROM json_each($1)";

/// Inserts the admitted orders (PENDING) with their items; answers their ids in order.
pub async fn orders(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    admitted: &[(&Reservation, &Admitted)],
) -> Result<Vec<i64>, StoreError> {
    if admitted.is_empty() {
        return Ok(Vec::new());
    }
    match backend {
        Backend::Postgres => postgres(tx, admitted).await,
        Backend::Sqlite => sqlite(tx, admitted).await,
    }
}

async fn postgres(
    tx: &mut Transaction<'_, Any>,
    admitted: &[(&Reservation, &Admitted)],
) -> Result<Vec<i64>, StoreError> {
    let (orders, items) = documents(admitted, |k| k as i64);
    let rows = sqlx::query(POSTGRES_SQL)
        .bind(orders)
        .bind(items)
        .bind(OrderStatus::Pending.as_str())
        .fetch_all(&mut **tx)
        .await
        .map_err(store_error)?;
    let mut ids = vec![None; admitted.len()];
    for row in rows {
        let k: i64 = row.try_get("k").map_err(store_error)?;
        let id: i64 = row.try_get("id").map_err(store_error)?;
        if let Some(slot) = usize::try_from(k).ok().and_then(|k| ids.get_mut(k)) {
            *slot = Some(id);
        }
    }
    ids.into_iter()
        .map(|id| id.ok_or_else(|| StoreError::Other("an admitted order got no id".into())))
        .collect()
}

async fn sqlite(
    tx: &mut Transaction<'_, Any>,
    admitted: &[(&Reservation, &Admitted)],
) -> Result<Vec<i64>, StoreError> {
    let first: i64 = sqlx::query_scalar(SQLITE_NEXT_ID)
        .fetch_one(&mut **tx)
        .await
        .map_err(store_error)?;
    let (orders, items) = documents(admitted, |k| first + k as i64);
    sqlx::query(SQLITE_ORDERS)
        .bind(orders)
        .bind(OrderStatus::Pending.as_str())
        .execute(&mut **tx)
        .await
        .map_err(store_error)?;
    sqlx::query(SQLITE_ITEMS)
        .bind(items)
        .execute(&mut **tx)
        .await
        .map_err(store_error)?;
    Ok((0..admitted.len()).map(|k| first + k as i64).collect())
}

/// The orders and items as JSON arrays; `key(k)` is what ties the k-th order's items to it
/// (its position on PostgreSQL, its id on SQLite).
fn documents(
    admitted: &[(&Reservation, &Admitted)],
    key: impl Fn(usize) -> i64,
) -> (String, String) {
    let mut orders = Vec::with_capacity(admitted.len());
    let mut items = Vec::new();
    for (k, (request, order)) in admitted.iter().enumerate() {
        let key = key(k);
        orders.push(json!({
            "k": k, "id": key, "u": request.user_id, "t": order.total.get(),
            "e": request.expires_at.0, "c": request.now.0,
        }));
        for item in &order.items {
            items.push(json!({
                "k": k, "id": key, "t": item.ticket_type_id, "q": item.quantity,
                "p": item.unit_price.get(),
            }));
        }
    }
    (
        serde_json::Value::Array(orders).to_string(),
        serde_json::Value::Array(items).to_string(),
    )
}
