//! Signing in with the admin token and an operator name, and signing out. A wrong token counts
//! against the same failed-admin-auth limit as the API's bearer token (a locked-out address is
//! refused before its token is even compared), so the form is no way around that limit.
//!
//! The sign-in form has no CSRF token (there is no session yet to bind it to): forging it
//! would need the admin token, and it would only sign the victim's browser in.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::{csrf, page, pages, state, to_signin, Flash};
use crate::http::routes::admin::operator_name;
use crate::http::ApiError;

#[derive(Deserialize)]
pub struct SignIn {
    #[serde(default)]
    token: String,
    #[serde(default)]
    operator: String,
}

#[derive(Deserialize)]
pub struct SignOut {
    csrf: Option<String>,
}

fn form_page(status: StatusCode, flash: Option<Flash>, operator: &str) -> HttpResponse {
    let body = html! {
        form.signin method="post" action="/console/signin" {
            label { "Admin token"
                input type="password" name="token" autocomplete="off" required;
            }
            label { "Your name (recorded with every action)"
                input type="text" name="operator" value=(operator) maxlength="64" required;
            }
            button type="submit" id="signin" { "Sign in" }
        }
    };
    page(status, "Sign in", None, flash.as_ref(), body)
}

pub async fn form(req: HttpRequest) -> HttpResponse {
    if state(&req).console.of(&req).is_some() {
        return HttpResponse::SeeOther()
            .insert_header(("Location", "/console"))
            .finish();
    }
    form_page(StatusCode::OK, None, "")
}

pub async fn submit(req: HttpRequest, form: web::Form<SignIn>) -> HttpResponse {
    let state = state(&req);
    let ip = state.client_ip(&req);
    let refused = |status, text: String| {
        form_page(
            status,
            Some(Flash { ok: false, text }),
            // The name is given back to fix the token; the token never is.
            &form.operator,
        )
    };
    if let Err(limited) = state.limits.admin_gate(ip) {
        return refused(StatusCode::TOO_MANY_REQUESTS, limited.to_string());
    }
    let expected = state.admin_token.expose_secret().as_bytes();
    if !constant_time_eq::constant_time_eq(form.token.trim().as_bytes(), expected) {
        let error = state
            .limits
            .admin_failed(ip, ApiError::Unauthorized("invalid admin token"));
        tracing::warn!(event = "console.signin.refused", %ip);
        return match error {
            ApiError::RateLimited { .. } => {
                refused(StatusCode::TOO_MANY_REQUESTS, error.to_string())
            }
            _ => refused(
                StatusCode::UNAUTHORIZED,
                "That is not the admin token.".into(),
            ),
        };
    }
    let operator = match operator_name(&form.operator, "operator") {
        Ok(name) => name,
        Err(error) => return refused(StatusCode::BAD_REQUEST, error.to_string()),
    };
    let session = state.console.start(operator);
    tracing::info!(event = "console.signin", operator = %session.operator, %ip);
    HttpResponse::SeeOther()
        .cookie(state.console.cookie(&session))
        .insert_header(("Location", "/console"))
        .finish()
}

pub async fn signout(req: HttpRequest, form: web::Form<SignOut>) -> HttpResponse {
    let state = state(&req);
    let Some(session) = state.console.of(&req) else {
        return to_signin();
    };
    // A forged sign-out is a nuisance, not a breach; still refused, like every other POST.
    if !csrf::valid(&session, form.csrf.as_deref()) {
        return pages::forbidden(&session);
    }
    state.console.end(&session.id);
    let mut response = to_signin();
    response
        .add_cookie(&state.console.removal())
        .expect("a valid cookie");
    response
}
