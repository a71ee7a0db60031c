//! Extractors that authenticate: [`AuthUser`] for mini-program endpoints, [`Admin`] for the
//! catalogue administration.

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use secrecy::ExposeSecret;
use std::future::{ready, Ready};

use super::error::ApiError;
use crate::auth::jwt::TokenError;
use crate::startup::AppState;

/// The logged-in user, from a valid, unexpired bearer JWT.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: i64,
    pub openid: String,
}

/// Proof that the caller presented the admin token.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

/// Leave to read `/metrics`: anyone when `METRICS_TOKEN` is unset (a scraper on a private
/// network), else only a bearer of that token — metrics name routes, volumes and failure rates.
#[derive(Debug, Clone, Copy)]
pub struct MetricsReader;

fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get("Authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn state(req: &HttpRequest) -> &AppState {
    req.app_data::<web::Data<AppState>>()
        .expect("AppState is registered by startup")
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Ready<Result<AuthUser, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = match bearer(req) {
            None => Err(ApiError::Unauthorized("missing bearer token")),
            Some(token) => match state(req).jwt.verify(token) {
                Ok(claims) => Ok(AuthUser {
                    id: claims.uid,
                    openid: claims.openid,
                }),
                Err(TokenError::Expired) => Err(ApiError::Unauthorized("token expired")),
                Err(TokenError::Invalid) => Err(ApiError::Unauthorized("invalid token")),
            },
        };
        ready(result)
    }
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Admin, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = state(req);
        let ip = state.client_ip(req);
        // A locked-out IP learns nothing, not even that a token is right (see ratelimit).
        if let Err(limited) = state.limits.admin_gate(ip) {
            return ready(Err(limited));
        }
        let expected = state.admin_token.expose_secret().as_bytes();
        let result = match bearer(req) {
            Some(token) if constant_time_eq::constant_time_eq(token.as_bytes(), expected) => {
                Ok(Admin)
            }
            // Only a wrong token is a guess; a missing one counts against nothing.
            Some(_) => Err(state
                .limits
                .admin_failed(ip, ApiError::Unauthorized("invalid admin token"))),
            None => Err(ApiError::Unauthorized("missing admin token")),
        };
        ready(result)
    }
}

impl FromRequest for MetricsReader {
    type Error = ApiError;
    type Future = Ready<Result<MetricsReader, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(expected) = state(req).metrics_token.as_ref() else {
            return ready(Ok(MetricsReader));
        };
        // Constant time, as for the admin token: the comparison must not tell how much of a
        // guess was right.
        let expected = expected.expose_secret().as_bytes();
        let result = match bearer(req) {
            Some(token) if constant_time_eq::constant_time_eq(token.as_bytes(), expected) => {
                Ok(MetricsReader)
            }
            Some(_) => Err(ApiError::Unauthorized("invalid metrics token")),
            None => Err(ApiError::Unauthorized("missing metrics token")),
        };
        ready(result)
    }
}
