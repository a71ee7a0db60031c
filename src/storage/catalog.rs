//! `CatalogStore` on SQL: ticket types and their stock counters.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use wallyt_pay_actors::{
    CatalogStore, Fen, NewTicketType, Stock, StoreError, TicketType, UnixMillis,
};

use super::{column, store_error, Database};

const COLUMNS: &str = "id, name, price_fen, total, available, reserved, sold";

fn ticket_type_from_row(row: &AnyRow) -> Result<TicketType, StoreError> {
    Ok(TicketType {
        id: column(row, "id")?,
        name: column(row, "name")?,
        price: Fen::new(column(row, "price_fen")?),
        stock: Stock {
            total: column(row, "total")?,
            available: column(row, "available")?,
            reserved: column(row, "reserved")?,
            sold: column(row, "sold")?,
        },
    })
}

#[async_trait]
impl CatalogStore for Database {
    async fn create_ticket_type(
        &self,
        new: &NewTicketType,
        now: UnixMillis,
    ) -> Result<TicketType, StoreError> {
        let row = sqlx::query(&format!(
            "INSERT INTO ticket_types \
               (name, price_fen, total, available, reserved, sold, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 0, 0, $5, $6) RETURNING {COLUMNS}"
        ))
        .bind(&new.name)
        .bind(new.price.get())
        .bind(new.total)
        .bind(new.total)
        .bind(now.0)
        .bind(now.0)
        .fetch_one(self.pool())
        .await
        .map_err(store_error)?;
        ticket_type_from_row(&row)
    }

    async fn ticket_type(&self, id: i64) -> Result<Option<TicketType>, StoreError> {
        sqlx::query(&format!("SELECT {COLUMNS} FROM ticket_types WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(store_error)?
            .as_ref()
            .map(ticket_type_from_row)
            .transpose()
    }

    async fn ticket_types(&self) -> Result<Vec<TicketType>, StoreError> {
        sqlx::query(&format!("SELECT {COLUMNS} FROM ticket_types ORDER BY id"))
            .fetch_all(self.pool())
            .await
            .map_err(store_error)?
            .iter()
            .map(ticket_type_from_row)
            .collect()
    }
}
