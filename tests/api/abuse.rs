//! Abuse limits at the HTTP edge: token-bucket rate limits (per client IP on /auth/*, per user
//! on orders, prepay and refund, failed admin authentications per IP) and the client IP they
//! key on, which only a trusted proxy's X-Forwarded-For can change. The test helpers turn rate
//! limits off by default; every case here turns them on with small limits.

use reqwest::{Response, StatusCode};
use serde_json::json;
use std::collections::HashMap;

use crate::helpers::{expect_error, expect_status, Backend, TestApp, ADMIN_TOKEN};
use crate::shop::purchase;

fn limits(rate_ip: &str, rate_user: &str) -> impl FnOnce(&mut HashMap<String, String>) {
    let (rate_ip, rate_user) = (rate_ip.to_owned(), rate_user.to_owned());
    move |vars| {
        vars.insert("RATE_LIMIT".into(), "on".into());
        vars.insert("RATE_LIMIT_IP".into(), rate_ip);
        vars.insert("RATE_LIMIT_USER".into(), rate_user);
    }
}

/// 429 RATE_LIMITED in the envelope, with a whole-second Retry-After of at least 1.
async fn expect_limited(response: Response) -> u64 {
    let retry_after = response
        .headers()
        .get("Retry-After")
        .map(|v| v.to_str().unwrap().to_owned());
    expect_error(response, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
    let seconds: u64 = retry_after
        .expect("a Retry-After header")
        .parse()
        .expect("Retry-After in whole seconds");
    assert!(seconds >= 1, "Retry-After {seconds}");
    seconds
}

async fn login_from(app: &TestApp, code: &str, forwarded_for: Option<&str>) -> Response {
    let mut request = app
        .client
        .post(app.url("/auth/wechat/login"))
        .json(&json!({ "code": code }));
    if let Some(xff) = forwarded_for {
        request = request.header("X-Forwarded-For", xff);
    }
    request.send().await.expect("POST")
}

#[tokio::test]
async fn a_login_flood_from_one_ip_is_refused_after_the_burst_spoofed_header_or_not() {
    let app = TestApp::spawn_with(Backend::Sqlite, limits("3/min", "120/min"))
        .await
        .unwrap();
    app.wechat_knows("code-flood", "oFlood").await;
    for _ in 0..3 {
        expect_status(login_from(&app, "code-flood", None).await, StatusCode::OK).await;
    }
    // 60 s / 3 cells: the next cell is about 20 s away.
    let wait = expect_limited(login_from(&app, "code-flood", None).await).await;
    assert!((1..=20).contains(&wait), "Retry-After {wait}");
    // The peer is not a trusted proxy: a made-up X-Forwarded-For is still the same client.
    for spoof in ["203.0.113.1", "203.0.113.2", "198.51.100.7, 203.0.113.3"] {
        expect_limited(login_from(&app, "code-flood", Some(spoof)).await).await;
    }
    // /auth/* as a whole shares the IP's bucket.
    expect_limited(app.get("/auth/me").await).await;
    // Other endpoints are not under the IP limit.
    expect_status(app.get("/ticket-types").await, StatusCode::OK).await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket() {
    let app = TestApp::spawn_with(Backend::Sqlite, |vars| {
        limits("2/min", "120/min")(vars);
        vars.insert("TRUSTED_PROXIES".into(), "127.0.0.0/8, 10.0.0.0/8".into());
    })
    .await
    .unwrap();
    app.wechat_knows("code-proxied", "oProxied").await;
    let alice = Some("203.0.113.10, 10.0.0.5");
    for _ in 0..2 {
        expect_status(
            login_from(&app, "code-proxied", alice).await,
            StatusCode::OK,
        )
        .await;
    }
    expect_limited(login_from(&app, "code-proxied", alice).await).await;
    // Another client behind the same proxy is not held back by the first one's flood.
    let bob = Some("198.51.100.20");
    expect_status(login_from(&app, "code-proxied", bob).await, StatusCode::OK).await;
}

#[tokio::test]
async fn each_user_is_limited_on_orders_prepay_and_refund() {
    let app = TestApp::spawn_with(Backend::Sqlite, limits("300/min", "3/min"))
        .await
        .unwrap();
    let ticket_type = app.create_ticket_type("VIP", "50.00", 100).await;
    let items = json!([{ "ticketTypeId": ticket_type["id"], "quantity": 1 }]);

    let (orders, _, _) = app.login("oOrders").await;
    // A malformed body is refused before the rate limit and costs nothing (contract order).
    for _ in 0..4 {
        let response = app.create_order(&orders, json!([])).await;
        expect_error(response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
    }
    for _ in 0..3 {
        expect_status(
            app.create_order(&orders, items.clone()).await,
            StatusCode::CREATED,
        )
        .await;
    }
    expect_limited(app.create_order(&orders, items.clone()).await).await;
    // The limit is the user's, not everyone's.
    let (other, _, _) = app.login("oSomeoneElse").await;
    expect_status(
        app.create_order(&other, items.clone()).await,
        StatusCode::CREATED,
    )
    .await;

    // Prepay and refund on their own, with a fresh user each: no such order → 404 until the
    // bucket is empty.
    let (payer, payer_openid, _) = app.login("oPayer").await;
    for _ in 0..3 {
        let response = app.prepay(&payer, &json!(999_999), &payer_openid).await;
        expect_error(response, StatusCode::NOT_FOUND, "ORDER_NOT_FOUND").await;
    }
    expect_limited(app.prepay(&payer, &json!(999_999), &payer_openid).await).await;

    let (refunder, _, _) = app.login("oRefunder").await;
    for _ in 0..3 {
        let response = app
            .refund(&refunder, json!({ "orderId": 999_999 }), None)
            .await;
        expect_error(response, StatusCode::NOT_FOUND, "ORDER_NOT_FOUND").await;
    }
    // An Idempotency-Key does not buy extra requests.
    let response = app
        .refund(&refunder, json!({ "orderId": 999_999 }), Some("key-1"))
        .await;
    expect_limited(response).await;
}

async fn admin_get(app: &TestApp, token: &str) -> Response {
    app.get_with_token("/admin/ticket-types/1", token).await
}

#[tokio::test]
async fn failed_admin_authentications_lock_the_ip_out_even_for_the_right_token() {
    let app = TestApp::spawn_with(Backend::Sqlite, limits("300/min", "120/min"))
        .await
        .unwrap();
    // Successes never count.
    for _ in 0..15 {
        let response = admin_get(&app, ADMIN_TOKEN).await;
        expect_error(response, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    }
    // A missing token guesses nothing and counts nothing.
    for _ in 0..12 {
        expect_error(
            app.get("/admin/ticket-types/1").await,
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
        )
        .await;
    }
    for guess in 0..10 {
        let response = admin_get(&app, &format!("guess-{guess}")).await;
        expect_error(response, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    }
    expect_limited(admin_get(&app, "guess-10").await).await;
    // Over the limit, a right guess must look like a wrong one: else guessing goes on.
    let wait = expect_limited(admin_get(&app, ADMIN_TOKEN).await).await;
    assert!(wait <= 6, "one cell of 10/min refills in 6 s, not {wait}");
    let response = app
        .client
        .get(app.url("/admin/ticket-types/1"))
        .bearer_auth(ADMIN_TOKEN)
        .header("X-Forwarded-For", "203.0.113.99")
        .send()
        .await
        .unwrap();
    expect_limited(response).await;
    // Buyers' endpoints are not affected by the admin lock.
    expect_status(app.get("/ticket-types").await, StatusCode::OK).await;
}

#[tokio::test]
async fn rate_limit_off_turns_every_limit_off() {
    for (switch, limited) in [("on", true), ("off", false)] {
        let app = TestApp::spawn_with(Backend::Sqlite, |vars| {
            limits("1/min", "1/min")(vars);
            vars.insert("RATE_LIMIT".into(), switch.into());
        })
        .await
        .unwrap();
        app.wechat_knows("code-switch", "oSwitch").await;
        let ticket_type = app.create_ticket_type("VIP", "50.00", 100).await;
        let items = json!([{ "ticketTypeId": ticket_type["id"], "quantity": 1 }]);
        let mut statuses = Vec::new();
        let token = expect_status(login_from(&app, "code-switch", None).await, StatusCode::OK)
            .await["token"]
            .as_str()
            .unwrap()
            .to_owned();
        statuses.push(login_from(&app, "code-switch", None).await.status());
        for _ in 0..2 {
            statuses.push(app.create_order(&token, items.clone()).await.status());
        }
        for _ in 0..11 {
            statuses.push(admin_get(&app, "wrong").await.status());
        }
        let refused = statuses
            .iter()
            .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
            .count();
        // On: the second login, the second order and the eleventh failure are refused.
        assert_eq!(
            refused,
            if limited { 3 } else { 0 },
            "RATE_LIMIT={switch}: {statuses:?}"
        );
    }
}

#[tokio::test]
async fn the_notify_endpoint_is_never_rate_limited() {
    let app = TestApp::spawn_with(Backend::Sqlite, |vars| {
        limits("1/min", "1/min")(vars);
    })
    .await
    .unwrap();
    app.wechat_knows("code-notify", "oNotify").await;
    // The limits are live in this app...
    expect_status(login_from(&app, "code-notify", None).await, StatusCode::OK).await;
    expect_limited(login_from(&app, "code-notify", None).await).await;
    // ...yet the gateway's notifies, all from one IP, always get an answer of their own.
    for _ in 0..30 {
        let (status, answer) = app.notify_raw("<xml><status>0</status></xml>").await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer, "fail");
    }
}

/// The IP the sandbox gateway recorded for the trade of a fresh prepay sent with `xff`.
async fn mch_create_ip(app: &TestApp, xff: &str) -> String {
    let p = purchase(app, 10, 1).await;
    let response = app
        .client
        .post(app.url("/payments/wechat/prepay"))
        .bearer_auth(&p.token)
        .header("X-Forwarded-For", xff)
        .json(&json!({ "orderId": p.order, "openid": p.openid }))
        .send()
        .await
        .unwrap();
    let prepay = expect_status(response, StatusCode::OK).await;
    let otn = prepay["data"]["outTradeNo"].as_str().unwrap();
    app.sandbox_trade(otn).await["mch_create_ip"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn only_a_trusted_proxy_can_set_the_ip_sent_to_the_gateway() {
    let app = TestApp::spawn_with_sandbox(Backend::Sqlite, |_| {})
        .await
        .unwrap();
    assert_eq!(mch_create_ip(&app, "203.0.113.77").await, "127.0.0.1");

    let proxied = TestApp::spawn_with_sandbox(Backend::Sqlite, |vars| {
        vars.insert("TRUSTED_PROXIES".into(), "127.0.0.1".into());
    })
    .await
    .unwrap();
    // The right-most address the trusted proxy did not vouch for is the buyer.
    assert_eq!(
        mch_create_ip(&proxied, "198.51.100.1, 203.0.113.77").await,
        "203.0.113.77"
    );
}
