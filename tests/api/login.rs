//! `POST /auth/wechat/login` against a jscode2session stand-in, and the bearer token at
//! `GET /auth/me`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{expect_error, expect_status, Backend, TestApp, JWT_SECRET};
use crate::on_both_backends;

on_both_backends!(
    login_issues_a_token_for_the_openid,
    logins_of_one_openid_are_one_user
);

async fn login_issues_a_token_for_the_openid(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.wechat_knows("code-1", "oUser_1").await;
    let response = app
        .post_json("/auth/wechat/login", None, &json!({ "code": "code-1" }))
        .await;
    let raw = response.text().await.unwrap();
    assert!(
        !raw.contains("SESSION-KEY-NEVER-SHOWN"),
        "session_key leaked: {raw}"
    );
    let body: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(body["success"], json!(true));
    assert_eq!(body["openid"], json!("oUser_1"));
    assert_eq!(body["token"], body["data"]["token"]);
    assert_eq!(body["data"]["openid"], json!("oUser_1"));
    let expires_at = body["data"]["expiresAt"].as_str().unwrap();
    let expires_at = chrono::DateTime::parse_from_rfc3339(expires_at).unwrap();
    let lifetime = expires_at.timestamp() - chrono::Utc::now().timestamp();
    assert!(
        (7100..=7200).contains(&lifetime),
        "JWT_TTL is 2h, got {lifetime}s"
    );

    let token = body["token"].as_str().unwrap();
    let me = expect_status(app.get_with_token("/auth/me", token).await, StatusCode::OK).await;
    assert_eq!(me["data"]["userId"], body["data"]["userId"]);
    assert_eq!(me["data"]["openid"], json!("oUser_1"));
}

async fn logins_of_one_openid_are_one_user(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, _, first) = app.login("oSame").await;
    let (_, _, again) = app.login("oSame").await;
    let (_, _, other) = app.login("oOther").await;
    assert_eq!(first, again);
    assert_ne!(first, other);
}

async fn sqlite_app() -> TestApp {
    TestApp::spawn(Backend::Sqlite).await.unwrap()
}

#[tokio::test]
async fn a_code_wechat_rejects_is_401() {
    let app = sqlite_app().await;
    Mock::given(method("GET"))
        .and(path("/sns/jscode2session"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(r#"{"errcode":40029,"errmsg":"invalid code"}"#),
        )
        .expect(1)
        .mount(&app.wechat)
        .await;
    let response = app
        .post_json(
            "/auth/wechat/login",
            None,
            &json!({ "code": "invalid-code" }),
        )
        .await;
    expect_error(response, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn a_missing_or_empty_code_is_400_and_wechat_is_not_asked() {
    let app = sqlite_app().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&app.wechat)
        .await;
    for body in [
        json!({}),
        json!({ "code": "" }),
        json!({ "code": 42 }),
        json!({ "code": "a b" }),
    ] {
        let response = app.post_json("/auth/wechat/login", None, &body).await;
        expect_error(response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
    }
}

#[tokio::test]
async fn wechat_garbage_or_server_error_is_502() {
    let app = sqlite_app().await;
    Mock::given(method("GET"))
        .and(wiremock::matchers::query_param("js_code", "garbage"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>oops</html>"))
        .mount(&app.wechat)
        .await;
    Mock::given(method("GET"))
        .and(wiremock::matchers::query_param("js_code", "down"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&app.wechat)
        .await;
    for code in ["garbage", "down"] {
        let response = app
            .post_json("/auth/wechat/login", None, &json!({ "code": code }))
            .await;
        expect_error(response, StatusCode::BAD_GATEWAY, "GATEWAY_ERROR").await;
    }
}

#[tokio::test]
async fn wechat_unreachable_is_502() {
    // A port nobody listens on: bind one, note it, let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = TestApp::spawn_with(Backend::Sqlite, |vars| {
        vars.insert("WECHAT_API_BASE".into(), format!("http://127.0.0.1:{port}"));
    })
    .await
    .unwrap();
    let response = app
        .post_json("/auth/wechat/login", None, &json!({ "code": "abc" }))
        .await;
    let body = expect_error(response, StatusCode::BAD_GATEWAY, "GATEWAY_ERROR").await;
    assert!(!body.to_string().contains("wechat-test-secret"));
}

#[tokio::test]
async fn wechat_too_slow_is_504() {
    let app = TestApp::spawn_with(Backend::Sqlite, |vars| {
        vars.insert("HTTP_TIMEOUT".into(), "300ms".into());
    })
    .await
    .unwrap();
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(r#"{"openid":"oSlow","session_key":"k"}"#)
                .set_delay(Duration::from_secs(2)),
        )
        .mount(&app.wechat)
        .await;
    let response = app
        .post_json("/auth/wechat/login", None, &json!({ "code": "slow" }))
        .await;
    expect_error(response, StatusCode::GATEWAY_TIMEOUT, "GATEWAY_TIMEOUT").await;
}

fn claims(uid: i64, exp: i64) -> serde_json::Value {
    json!({ "sub": uid.to_string(), "uid": uid, "openid": "oX", "iat": exp - 60, "exp": exp })
}

#[tokio::test]
async fn bad_tokens_are_401() {
    let app = sqlite_app().await;
    let (good, _, uid) = app.login("oTokens").await;
    let now = chrono::Utc::now().timestamp();

    let expired = encode(
        &Header::default(),
        &claims(uid, now - 600),
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let foreign = encode(
        &Header::default(),
        &claims(uid, now + 600),
        &EncodingKey::from_secret(b"some-other-secret-0123456789abcdef"),
    )
    .unwrap();
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims(uid, now + 600).to_string())
    );
    // The good token with its payload swapped: the signature no longer matches.
    let mut parts: Vec<&str> = good.split('.').collect();
    let tampered_payload = URL_SAFE_NO_PAD.encode(claims(uid + 1, now + 600).to_string());
    parts[1] = &tampered_payload;
    let tampered = parts.join(".");

    for token in [
        expired.as_str(),
        foreign.as_str(),
        none.as_str(),
        tampered.as_str(),
        "garbage",
    ] {
        let response = app.get_with_token("/auth/me", token).await;
        expect_error(response, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    }
    let response = app.get("/auth/me").await;
    expect_error(response, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    let response = app
        .client
        .get(app.url("/auth/me"))
        .header("Authorization", format!("Basic {good}"))
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    expect_status(app.get_with_token("/auth/me", &good).await, StatusCode::OK).await;
}

#[tokio::test]
async fn login_without_wechat_credentials_is_503() {
    let app = TestApp::spawn_with(Backend::Sqlite, |vars| {
        vars.remove("WECHAT_MINI_APPID");
        vars.remove("WECHAT_MINI_SECRET");
    })
    .await
    .unwrap();
    let response = app
        .post_json("/auth/wechat/login", None, &json!({ "code": "abc" }))
        .await;
    expect_error(response, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE").await;
}
