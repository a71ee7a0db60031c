//! `POST /auth/wechat/login`: a mini-program login code in, our JWT out.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use wallyt_pay_actors::UserStore;

use crate::http::extractors::AuthUser;
use crate::http::time::rfc3339;
use crate::http::{envelope, ApiError};
use crate::startup::AppState;

#[derive(Deserialize)]
pub struct LoginRequest {
    code: String,
}

const MAX_CODE_CHARS: usize = 128;

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
    Ok(HttpResponse::Ok().json(json!({
        "success": true,
        "token": token,
        "openid": user.openid,
        "data": {
            "token": token,
            "openid": user.openid,
            "userId": user.id,
            "expiresAt": rfc3339(expires),
        }
    })))
}

/// `GET /auth/me`: who the bearer token says the caller is. Lets a mini-program check its
/// stored token before it relies on it.
pub async fn me(user: AuthUser) -> HttpResponse {
    envelope::ok(json!({ "userId": user.id, "openid": user.openid }))
}
