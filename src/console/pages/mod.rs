//! The console's pages, one module each, and the answers they share.

pub mod actions;
pub mod dashboard;
pub mod order;
pub mod orders;
pub mod refunds;

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use maud::html;

use super::page;
use super::session::Session;
use crate::http::ApiError;

/// A POST without its session's CSRF token: refused, nothing done.
pub fn forbidden(session: &Session) -> HttpResponse {
    page(
        StatusCode::FORBIDDEN,
        "Refused",
        Some(session),
        None,
        html! {
            p id="refused" {
                "This form did not come from a page of your session (its CSRF token is missing \
                 or wrong), so nothing was done. Open the page again and retry."
            }
        },
    )
}

/// A page that could not be read (an unknown order, a bad filter, the store down).
pub fn failed(session: &Session, error: &ApiError) -> HttpResponse {
    use actix_web::ResponseError;
    let status = error.status_code();
    page(
        status,
        if status == StatusCode::NOT_FOUND {
            "Not found"
        } else {
            "Cannot show this page"
        },
        Some(session),
        None,
        // The error's text is written for callers: it names no secret.
        html! { p.flash.error { (error.to_string()) } },
    )
}
