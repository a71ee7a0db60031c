//! `POST /auth/wechat/login`: a mini-program login code in, our JWT out.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use wallyt_pay_actors::UserStore;

use crate::http::extractors::AuthUser;
use crate::http::openapi::{Envelope, Failure};
use crate::http::time::rfc3339;
use crate::http::{envelope, ApiError};
use crate::startup::AppState;

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    /// The code from the mini-program's `wx.login()`.
    code: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    token: String,
    openid: String,
    user_id: i64,
    expires_at: String,
}

/// The token is also at the top level, where the runbook reads `.token`.
#[derive(Serialize, ToSchema)]
pub struct LoginAnswer {
    success: bool,
    token: String,
    openid: String,
    data: Session,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    user_id: i64,
    openid: String,
}

const MAX_CODE_CHARS: usize = 128;

#[utoipa::path(post, path = "/auth/wechat/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, body = LoginAnswer),
        (status = 400, description = "VALIDATION_ERROR", body = Failure),
        (status = 401, description = "UNAUTHORIZED: WeChat refused the code", body = Failure),
        (status = 429, description = "RATE_LIMITED per client IP (Retry-After)", body = Failure),
        (status = 502, description = "GATEWAY_ERROR", body = Failure),
        (status = 504, description = "GATEWAY_TIMEOUT", body = Failure)))]
#[tracing::instrument(name = "auth.login", skip_all, fields(user_id))]
pub async fn login(
    state: web::Data<AppState>,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let code = body.code.trim();
    if code.is_empty() || code.len() > MAX_CODE_CHARS || !code.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(ApiError::validation(format!(
            "code must be 1 to {MAX_CODE_CHARS} printable ASCII characters"
        )));
    }
    let session = state.wechat.code_to_session(code).await?;
    let now = state.clock.now();
    let user = state
        .db
        .upsert_user(&session.openid, session.unionid.as_deref(), now)
        .await?;
    tracing::Span::current().record("user_id", user.id);
    let (token, expires) = state.jwt.issue(user.id, &user.openid, now);
    Ok(HttpResponse::Ok().json(LoginAnswer {
        success: true,
        token: token.clone(),
        openid: user.openid.clone(),
        data: Session {
            token,
            openid: user.openid,
            user_id: user.id,
            expires_at: rfc3339(expires),
        },
    }))
}

/// `GET /auth/me`: who the bearer token says the caller is. Lets a mini-program check its
/// stored token before it relies on it.
#[utoipa::path(get, path = "/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = inline(Envelope<Me>)), (status = 401, body = Failure)))]
pub async fn me(user: AuthUser) -> HttpResponse {
    envelope::ok(Me {
        user_id: user.id,
        openid: user.openid,
    })
}
