//! Reading refunds (with the tickets each gives back) for the store port.

use super::*;

pub(super) const REFUND_COLUMNS: &str =
    "id, order_id, payment_id, out_refund_no, refund_id, amount_fen, \
                              reason, status, kind, attempts, created_at, finished_at, operator";

/// A refund row; its tickets are attached by [`attach_tickets`].
pub(super) fn refund_from_row(row: &AnyRow) -> Result<Refund, StoreError> {
    let status: String = column(row, "status")?;
    let kind: String = column(row, "kind")?;
    Ok(Refund {
        id: column(row, "id")?,
        order_id: column(row, "order_id")?,
        payment_id: column(row, "payment_id")?,
        out_refund_no: column(row, "out_refund_no")?,
        refund_id: column(row, "refund_id")?,
        amount: Fen::new(column(row, "amount_fen")?),
        reason: column(row, "reason")?,
        status: RefundStatus::parse(&status)
            .ok_or_else(|| StoreError::Other(format!("unknown refund status {status}")))?,
        kind: RefundKind::parse(&kind)
            .ok_or_else(|| StoreError::Other(format!("unknown refund kind {kind}")))?,
        attempts: column(row, "attempts")?,
        created_at: UnixMillis(column(row, "created_at")?),
        finished_at: column::<Option<i64>>(row, "finished_at")?.map(UnixMillis),
        ticket_ids: Vec::new(),
        operator: column(row, "operator")?,
    })
}

/// Which refunds to read: a column compared with one value.
pub(super) enum Filter<'a> {
    Order(i64),
    Id(i64),
    RequestKey(&'a str),
    Status(RefundStatus),
}

impl Filter<'_> {
    fn sql(&self) -> &'static str {
        match self {
            Filter::Order(_) => "order_id = $1",
            Filter::Id(_) => "id = $1",
            Filter::RequestKey(_) => "request_key = $1",
            Filter::Status(_) => "status = $1",
        }
    }

    fn bind<'q>(
        &'q self,
        query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
        match self {
            Filter::Order(v) | Filter::Id(v) => query.bind(*v),
            Filter::RequestKey(v) => query.bind(*v),
            Filter::Status(v) => query.bind(v.as_str()),
        }
    }
}

pub(super) async fn select(
    conn: &mut sqlx::AnyConnection,
    filter: Filter<'_>,
) -> Result<Vec<Refund>, StoreError> {
    let sql = format!(
        "SELECT {REFUND_COLUMNS} FROM refunds WHERE {} ORDER BY id",
        filter.sql()
    );
    let mut refunds = filter
        .bind(sqlx::query(&sql))
        .fetch_all(&mut *conn)
        .await
        .map_err(store_error)?
        .iter()
        .map(refund_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let sql = format!(
        "SELECT refund_id, ticket_id FROM refund_tickets WHERE refund_id IN \
         (SELECT id FROM refunds WHERE {}) ORDER BY ticket_id",
        filter.sql()
    );
    let pairs: Vec<(i64, i64)> = filter
        .bind(sqlx::query(&sql))
        .fetch_all(&mut *conn)
        .await
        .map_err(store_error)?
        .iter()
        .map(|row| Ok((column(row, "refund_id")?, column(row, "ticket_id")?)))
        .collect::<Result<_, StoreError>>()?;
    attach_tickets(&mut refunds, &pairs);
    Ok(refunds)
}

fn attach_tickets(refunds: &mut [Refund], pairs: &[(i64, i64)]) {
    for refund in refunds {
        refund.ticket_ids = pairs
            .iter()
            .filter(|(r, _)| *r == refund.id)
            .map(|(_, t)| *t)
            .collect();
    }
}

async fn pooled(db: &Database) -> Result<sqlx::pool::PoolConnection<Any>, StoreError> {
    db.pool().acquire().await.map_err(store_error)
}

pub async fn of_order(db: &Database, order_id: i64) -> Result<Vec<Refund>, StoreError> {
    select(&mut *pooled(db).await?, Filter::Order(order_id)).await
}

pub async fn by_id(db: &Database, refund_id: i64) -> Result<Option<Refund>, StoreError> {
    Ok(select(&mut *pooled(db).await?, Filter::Id(refund_id))
        .await?
        .pop())
}

pub async fn by_request_key(db: &Database, key: &str) -> Result<Option<Refund>, StoreError> {
    Ok(select(&mut *pooled(db).await?, Filter::RequestKey(key))
        .await?
        .pop())
}

pub async fn processing(db: &Database) -> Result<Vec<Refund>, StoreError> {
    select(
        &mut *pooled(db).await?,
        Filter::Status(RefundStatus::Processing),
    )
    .await
}
