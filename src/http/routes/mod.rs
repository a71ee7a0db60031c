//! One module per group of endpoints; `configure` is the route table.

pub(crate) mod admin;
mod catalog;
mod health;
mod login;
mod notify;
mod orders;
mod payments;
pub(crate) mod refunds;

use actix_web::middleware::from_fn;
use actix_web::{web, HttpResponse};
use utoipa::OpenApi;

use super::openapi::{Failure, Security};
use crate::gateway::wallyt::jspay::PayParams;

use super::ratelimit;
use super::rejections::{resource, route_not_found};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/healthz").route(web::get().to(health::healthz)))
        .service(resource("/readyz").route(web::get().to(health::readyz)))
        .service(resource("/metrics").route(web::get().to(health::metrics)))
        .service(resource("/openapi.json").route(web::get().to(openapi_json)))
        .service(
            // Per client IP, before anything else of the request is looked at.
            web::scope("/auth")
                .wrap(from_fn(ratelimit::per_ip))
                .service(resource("/wechat/login").route(web::post().to(login::login)))
                .service(resource("/me").route(web::get().to(login::me)))
                .default_service(web::to(route_not_found)),
        )
        .service(resource("/ticket-types").route(web::get().to(catalog::list_public)))
        .service(resource("/admin/ticket-types").route(web::post().to(catalog::create)))
        .service(resource("/admin/ticket-types/{id}").route(web::get().to(catalog::get_admin)))
        .service(resource("/orders").route(web::post().to(orders::create)))
        .service(resource("/orders/{id}").route(web::get().to(orders::get)))
        .service(resource("/payments/wechat/prepay").route(web::post().to(payments::prepay)))
        .service(resource("/payments/status/{order_id}").route(web::get().to(payments::status)))
        .service(resource("/payments/refund").route(web::post().to(refunds::refund)))
        .service(
            resource("/admin/orders/{id}/refunds").route(web::post().to(refunds::operator_refund)),
        )
        .service(resource("/admin/orders").route(web::get().to(admin::orders::list)))
        .service(resource("/admin/orders.csv").route(web::get().to(admin::csv::export)))
        .service(resource("/admin/orders/{id}").route(web::get().to(admin::orders::detail)))
        .service(resource("/admin/orders/{id}/sync").route(web::post().to(admin::actions::sync)))
        .service(
            resource("/admin/events/{id}/replay").route(web::post().to(admin::actions::replay)),
        )
        .service(resource("/admin/attention").route(web::get().to(admin::attention::attention)))
        .service(
            resource("/admin/reconciliation/{date}")
                .route(web::get().to(admin::reconciliation::show)),
        )
        .service(
            resource("/admin/reconciliation/{date}/run")
                .route(web::post().to(admin::reconciliation::run)),
        )
        .service(resource("/payments/wallyt/notify").route(web::post().to(notify::notify)))
        .configure(crate::console::configure)
        // The interactive OpenAPI page: Swagger UI's assets are vendored into the binary by
        // utoipa-swagger-ui's `vendored` feature (nothing fetched at build or run time); it
        // reads the document this server already serves at /openapi.json.
        .service(resource("/docs").route(web::get().to(|| async {
            HttpResponse::PermanentRedirect()
                .insert_header(("Location", "/docs/"))
                .finish()
        })))
        .service(
            utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}")
                .config(utoipa_swagger_ui::Config::from("/openapi.json")),
        )
        .default_service(web::to(route_not_found));
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "wallyt-pay",
        description = "Payment engine for WeChat mini-program ticket sales through the Wallyt gateway. \
                       Amounts are JSON numbers of yuan with at most two decimals."
    ),
    paths(
        health::healthz, health::readyz, health::metrics,
        login::login, login::me,
        catalog::list_public, catalog::create, catalog::get_admin,
        orders::create, orders::get,
        payments::prepay, payments::status, refunds::refund, refunds::operator_refund,
        notify::notify,
        admin::orders::list, admin::csv::export, admin::orders::detail, admin::actions::sync,
        admin::actions::replay, admin::attention::attention, admin::reconciliation::show,
        admin::reconciliation::run,
    ),
    components(schemas(Failure, PayParams)),
    modifiers(&Security)
)]
pub struct ApiDoc;

/// The document as served and as kept in `docs/openapi.json`.
pub fn openapi_document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
}

async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(openapi_document())
}
