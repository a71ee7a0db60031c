//! The ticket catalogue: public listing, admin creation and inspection.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use wallyt_pay_actors::{CatalogStore, Fen, NewTicketType, Stock, TicketType};

use crate::http::extractors::Admin;
use crate::http::{envelope, ApiError};
use crate::startup::AppState;

#[derive(Deserialize)]
pub struct CreateTicketType {
    name: String,
    price: Fen,
    stock: i64,
}

#[derive(Serialize)]
struct StockView {
    total: i64,
    available: i64,
    reserved: i64,
    sold: i64,
}

/// What administrators see: all four counters.
#[derive(Serialize)]
struct AdminView {
    id: i64,
    name: String,
    price: Fen,
    stock: StockView,
}

/// What buyers see.
#[derive(Serialize)]
struct PublicView {
    id: i64,
    name: String,
    price: Fen,
    available: i64,
}

impl From<TicketType> for AdminView {
    fn from(t: TicketType) -> AdminView {
        let Stock {
            total,
            available,
            reserved,
            sold,
        } = t.stock;
        AdminView {
            id: t.id,
            name: t.name,
            price: t.price,
            stock: StockView {
                total,
                available,
                reserved,
                sold,
            },
        }
    }
}

pub async fn create(
    _admin: Admin,
    state: web::Data<AppState>,
    body: web::Json<CreateTicketType>,
) -> Result<HttpResponse, ApiError> {
    let new = NewTicketType::new(&body.name, body.price, body.stock)
        .map_err(|e| ApiError::validation(e.to_string()))?;
    let created = state.db.create_ticket_type(&new, state.clock.now()).await?;
    tracing::info!(
        event = "catalog.ticket_type.created",
        id = created.id,
        total = new.total
    );
    Ok(envelope::created(AdminView::from(created)))
}

pub async fn get_admin(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let found = state.db.ticket_type(id.into_inner()).await?;
    let found = found.ok_or_else(|| ApiError::NotFound("ticket type not found".into()))?;
    Ok(envelope::ok(AdminView::from(found)))
}

pub async fn list_public(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let views: Vec<PublicView> = state
        .db
        .ticket_types()
        .await?
        .into_iter()
        .map(|t| PublicView {
            id: t.id,
            name: t.name,
            price: t.price,
            available: t.stock.available,
        })
        .collect();
    Ok(envelope::ok(views))
}
