//! The operations console (issue 12): server-rendered pages at `/console` for the people who
//! run a sale. Pages read through the admin API's own functions and actions go through the
//! admin API's own code paths (`sync_as`, `replay_as`, `operator_refund_as`), so a button in a
//! browser and a call of the API audit, dedupe and act the same way.
//!
//! Markup comes from maud: checked at compile time, and every `(value)` it interpolates is
//! HTML-escaped — user-controlled text (ticket names, reasons, openids) is never marked safe.

pub mod csrf;
pub mod pages;
pub mod session;
pub mod signin;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::DateTime;
use maud::{html, Markup, DOCTYPE};
use wallyt_pay_actors::Fen;

use crate::startup::AppState;
use session::Session;

const STYLESHEET: &str = include_str!("assets/console.css");

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/console")
            .route("", web::get().to(pages::dashboard::show))
            .route("/", web::get().to(pages::dashboard::show))
            .route("/console.css", web::get().to(stylesheet))
            .route("/signin", web::get().to(signin::form))
            .route("/signin", web::post().to(signin::submit))
            .route("/signout", web::post().to(signin::signout))
            .route("/orders", web::get().to(pages::orders::show))
            .route("/refunds", web::get().to(pages::refunds::show))
            .route("/orders/{id}", web::get().to(pages::order::show))
            .route("/orders/{id}/sync", web::post().to(pages::actions::sync))
            .route(
                "/orders/{id}/refunds",
                web::post().to(pages::actions::refund),
            )
            .route(
                "/events/{id}/replay",
                web::post().to(pages::actions::replay),
            ),
    );
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(STYLESHEET)
}

/// The state every page reads.
pub fn state(req: &HttpRequest) -> &AppState {
    req.app_data::<web::Data<AppState>>()
        .expect("AppState is registered by startup")
}

/// To the sign-in page: no session, or it has ended.
pub fn to_signin() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/console/signin"))
        .finish()
}

/// Yuan with two decimals: the console's only unit of money.
pub fn yuan(amount: Fen) -> String {
    format!("¥{}", amount.to_yuan_string())
}

/// An RFC 3339 time of the admin API (already in the console's zone) as people read it.
pub fn when(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|_| rfc3339.to_owned())
}

/// A message above the page: what an action did, or why it did not.
pub struct Flash {
    pub ok: bool,
    pub text: String,
}

/// The hidden field every form of a session carries.
pub fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name=(csrf::FIELD) value=(session.csrf); }
}

/// A whole page: head, navigation (when signed in), the flash, the body.
pub fn page(
    status: StatusCode,
    title: &str,
    session: Option<&Session>,
    flash: Option<&Flash>,
    body: Markup,
) -> HttpResponse {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · wallyt-pay console" }
                link rel="stylesheet" href="/console/console.css";
            }
            body {
                header {
                    strong { "wallyt-pay console" }
                    @if let Some(session) = session {
                        nav {
                            a href="/console" { "Dashboard" }
                            a href="/console/orders" { "Orders" }
                            a href="/console/refunds" { "Refunds" }
                            a href="/docs/" { "API docs" }
                        }
                        form.signout method="post" action="/console/signout" {
                            (csrf_field(session))
                            span.operator { "Operator: " (session.operator) }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    @if let Some(flash) = flash {
                        p.flash.ok[flash.ok].error[!flash.ok] id="flash" { (flash.text) }
                    }
                    (body)
                }
            }
        }
    };
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        // Pages hold order data: never kept by a shared cache, never framed by another site.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'none'; frame-ancestors 'none'",
        ))
        .body(markup.into_string())
}
