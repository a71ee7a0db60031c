//! One module per group of endpoints; `configure` is the route table.

mod catalog;
mod health;
mod login;
mod notify;
mod orders;
mod payments;
mod refunds;

use actix_web::web;

use super::rejections::{resource, route_not_found};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/healthz").route(web::get().to(health::healthz)))
        .service(resource("/readyz").route(web::get().to(health::readyz)))
        .service(resource("/metrics").route(web::get().to(health::metrics)))
        .service(resource("/auth/wechat/login").route(web::post().to(login::login)))
        .service(resource("/auth/me").route(web::get().to(login::me)))
        .service(resource("/ticket-types").route(web::get().to(catalog::list_public)))
        .service(resource("/admin/ticket-types").route(web::post().to(catalog::create)))
        .service(resource("/admin/ticket-types/{id}").route(web::get().to(catalog::get_admin)))
        .service(resource("/orders").route(web::post().to(orders::create)))
        .service(resource("/orders/{id}").route(web::get().to(orders::get)))
        .service(resource("/payments/wechat/prepay").route(web::post().to(payments::prepay)))
        .service(resource("/payments/status/{order_id}").route(web::get().to(payments::status)))
        .service(resource("/payments/refund").route(web::post().to(refunds::refund)))
        .service(resource("/payments/wallyt/notify").route(web::post().to(notify::notify)))
        .default_service(web::to(route_not_found));
}
