//! The ticket catalogue: public listing, admin creation and inspection.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use wallyt_pay_actors::{CatalogStore, Fen, NewTicketType, Stock, TicketType};

use crate::http::extractors::Admin;
use crate::http::openapi::{Envelope, Failure};
use crate::http::{envelope, ApiError};
use crate::startup::AppState;

#[derive(Deserialize, ToSchema)]
pub struct CreateTicketType {
    name: String,
    #[schema(value_type = f64, example = 100.00)]
    price: Fen,
    stock: i64,
}

#[derive(Serialize, ToSchema)]
pub struct StockView {
    total: i64,
    available: i64,
    reserved: i64,
    sold: i64,
}

/// What administrators see: all four counters.
#[derive(Serialize, ToSchema)]
pub struct AdminView {
    id: i64,
    name: String,
    #[schema(value_type = f64, example = 100.00)]
    price: Fen,
    stock: StockView,
}

/// What buyers see.
#[derive(Serialize, ToSchema)]
pub struct PublicView {
    id: i64,
    name: String,
    #[schema(value_type = f64, example = 100.00)]
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

#[utoipa::path(post, path = "/admin/ticket-types", tag = "catalog", request_body = CreateTicketType,
    security(("admin" = [])),
    responses(
        (status = 201, body = inline(Envelope<AdminView>)),
        (status = 400, description = "VALIDATION_ERROR", body = Failure),
        (status = 401, description = "UNAUTHORIZED", body = Failure)))]
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

#[utoipa::path(get, path = "/admin/ticket-types/{id}", tag = "catalog", security(("admin" = [])),
    params(("id" = i64, Path, description = "ticket type id")),
    responses(
        (status = 200, body = inline(Envelope<AdminView>)),
        (status = 401, body = Failure),
        (status = 404, description = "NOT_FOUND", body = Failure)))]
pub async fn get_admin(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let found = state.db.ticket_type(id.into_inner()).await?;
    let found = found.ok_or_else(|| ApiError::NotFound("ticket type not found".into()))?;
    Ok(envelope::ok(AdminView::from(found)))
}

#[utoipa::path(get, path = "/ticket-types", tag = "catalog",
    responses((status = 200, body = inline(Envelope<Vec<PublicView>>))))]
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
