//! `GET /sns/jscode2session`, the way WeChat answers it: JSON with a text/plain content type,
//! errors as `errcode`/`errmsg`. A code maps to a stable openid; codes starting with `invalid`
//! are refused with 40029.

use actix_web::web::{Data, Query};
use actix_web::HttpResponse;
use md5::{Digest, Md5};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;

use super::Sandbox;

#[derive(Deserialize)]
pub struct Jscode2Session {
    appid: Option<String>,
    secret: Option<String>,
    js_code: Option<String>,
    grant_type: Option<String>,
}

fn answer(body: serde_json::Value) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain")
        .body(body.to_string())
}

fn error(errcode: i64, errmsg: &str) -> HttpResponse {
    answer(json!({ "errcode": errcode, "errmsg": errmsg }))
}

/// The openid a code stands for: the same code always gives the same user.
pub fn openid_for(appid: &str, code: &str) -> String {
    let digest = Md5::digest(format!("{appid}:{code}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("oSbx{}", &hex[..24])
}

pub async fn jscode2session(sandbox: Data<Sandbox>, query: Query<Jscode2Session>) -> HttpResponse {
    let config = sandbox.config();
    if query.grant_type.as_deref() != Some("authorization_code") {
        return error(40002, "invalid grant_type");
    }
    if query.appid.as_deref() != Some(config.appid.as_str()) {
        return error(40013, "invalid appid");
    }
    let secret_ok = query.secret.as_deref().is_some_and(|s| {
        constant_time_eq::constant_time_eq(
            s.as_bytes(),
            config.app_secret.expose_secret().as_bytes(),
        )
    });
    if !secret_ok {
        return error(40125, "invalid appsecret");
    }
    let code = match query.js_code.as_deref() {
        Some(code) if !code.is_empty() => code,
        _ => return error(41008, "missing code"),
    };
    if code.starts_with("invalid") {
        return error(40029, "invalid code");
    }
    answer(json!({
        "openid": openid_for(&config.appid, code),
        "session_key": sandbox.nonce(),
    }))
}
