//! The operations console over plain HTTP: sign-in (and its failures counting against the
//! admin limit), CSRF refusal of actions, and escaping of user-controlled text. The browser
//! walk-through is in `browser.rs`.

use reqwest::{redirect, Response, StatusCode};
use serde_json::json;

use crate::helpers::{expect_status, Backend, TestApp, ADMIN_TOKEN};
use crate::on_both_backends;
use crate::shop::paid_purchase;

on_both_backends!(
    actions_without_the_sessions_csrf_token_are_refused,
    markup_in_ticket_names_and_reasons_is_shown_as_text,
    the_refunds_page_lists_filters_and_pages,
    the_dashboard_counts_todays_gateway_errors,
);

/// A console client: no redirects followed, so the tests see the 303s and cookies.
pub struct Console<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    cookie: String,
}

impl<'a> Console<'a> {
    pub async fn sign_in_response(app: &TestApp, token: &str, operator: &str) -> Response {
        reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            .build()
            .unwrap()
            .post(app.url("/console/signin"))
            .form(&[("token", token), ("operator", operator)])
            .send()
            .await
            .expect("POST /console/signin")
    }

    pub async fn sign_in(app: &'a TestApp, operator: &str) -> Console<'a> {
        let response = Console::sign_in_response(app, ADMIN_TOKEN, operator).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let set_cookie = response
            .headers()
            .get("Set-Cookie")
            .expect("a session cookie")
            .to_str()
            .unwrap()
            .to_owned();
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
            assert!(set_cookie.contains(attribute), "{set_cookie}");
        }
        assert!(
            !set_cookie.contains(ADMIN_TOKEN),
            "the token is not the cookie"
        );
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        Console {
            app,
            client: reqwest::Client::builder()
                .redirect(redirect::Policy::none())
                .build()
                .unwrap(),
            cookie,
        }
    }

    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let response = self
            .client
            .get(self.app.url(path))
            .header("Cookie", &self.cookie)
            .send()
            .await
            .expect("GET");
        (response.status(), response.text().await.unwrap())
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
        let response = self
            .client
            .post(self.app.url(path))
            .header("Cookie", &self.cookie)
            .form(form)
            .send()
            .await
            .expect("POST");
        (response.status(), response.text().await.unwrap())
    }
}

/// The value of the first hidden field `name` on a page.
pub fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    page[start..][..page[start..].find('"').unwrap()].to_owned()
}

async fn audit_count(app: &TestApp, action: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM admin_audit WHERE operator = '值班员' AND action = $1",
    )
    .bind(action)
    .fetch_one(app.db.pool())
    .await
    .unwrap()
}

async fn actions_without_the_sessions_csrf_token_are_refused(backend: Backend) {
    let Some(app) = TestApp::spawn_with_sandbox(backend, |_| {}).await else {
        return;
    };
    let (p, _) = paid_purchase(&app, 10, 1).await;
    let order = p.order.as_i64().unwrap();
    let console = Console::sign_in(&app, "值班员").await;
    let (status, page) = console.get(&format!("/console/orders/{order}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let csrf = hidden(&page, "csrf");
    let key = hidden(&page, "idempotencyKey");
    let sync = format!("/console/orders/{order}/sync");
    let refund = format!("/console/orders/{order}/refunds");

    // No token, a wrong one, another session's: refused and nothing done or audited.
    let other = Console::sign_in(&app, "someone else").await;
    let (_, other_page) = other.get(&format!("/console/orders/{order}")).await;
    let foreign = hidden(&other_page, "csrf");
    for token in [None, Some("0".repeat(64)), Some(foreign)] {
        let mut form = vec![("idempotencyKey", key.as_str())];
        if let Some(token) = &token {
            form.push(("csrf", token.as_str()));
        }
        let (status, body) = console.post(&sync, &form).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert!(body.contains("id=\"refused\""), "{body}");
        let mut refund_form = form.clone();
        refund_form.extend([("amount", "10.00"), ("reason", "forged")]);
        let (status, _) = console.post(&refund, &refund_form).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    assert_eq!(audit_count(&app, "sync").await, 0);
    assert_eq!(audit_count(&app, "refund").await, 0);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM refunds WHERE order_id = {order}"
        ))
        .await,
        0
    );

    // Without a session at all: to the sign-in page.
    let anonymous = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap();
    let response = anonymous
        .post(app.url(&sync))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["Location"], "/console/signin");

    // With the session's token the sync runs, audited with the session's operator; the same
    // form sent twice (a double click) is one action.
    let form = [("csrf", csrf.as_str()), ("idempotencyKey", key.as_str())];
    let (status, body) = console.post(&sync, &form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("Synced: the order is CONFIRMED"), "{body}");
    let (status, again) = console.post(&sync, &form).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(audit_count(&app, "sync").await, 2, "both clicks audited");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM idempotency_keys WHERE endpoint LIKE 'admin-sync:%'")
            .await,
        1,
        "one action under the form's key"
    );

    // Signing out ends the session on the server: the old cookie no longer works.
    let (status, _) = console
        .post("/console/signout", &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _) = console.get(&format!("/console/orders/{order}")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

async fn markup_in_ticket_names_and_reasons_is_shown_as_text(backend: Backend) {
    let Some(app) = TestApp::spawn_with_sandbox(backend, |_| {}).await else {
        return;
    };
    let (p, _) = paid_purchase(&app, 10, 2).await;
    let order = p.order.as_i64().unwrap();
    let name = "<script>alert('name')</script>";
    sqlx::query("UPDATE ticket_types SET name = $1 WHERE id = $2")
        .bind(name)
        .bind(p.ticket_type.as_i64().unwrap())
        .execute(app.db.pool())
        .await
        .unwrap();
    let reason = "<script>alert('reason')</script><img src=x onerror=alert(1)>";
    let response = app
        .client
        .post(app.url(&format!("/admin/orders/{order}/refunds")))
        .bearer_auth(ADMIN_TOKEN)
        .header("X-Operator", "<b>op</b>")
        .json(&json!({ "amount": 10.00, "reason": reason }))
        .send()
        .await
        .unwrap();
    expect_status(response, StatusCode::OK).await;

    let console = Console::sign_in(&app, "<i>夜班</i>").await;
    let (status, page) = console.get(&format!("/console/orders/{order}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("&lt;script&gt;alert('name')&lt;/script&gt;"),
        "{page}"
    );
    assert!(
        page.contains("&lt;script&gt;alert('reason')&lt;/script&gt;&lt;img"),
        "{page}"
    );
    assert!(page.contains("&lt;b&gt;op&lt;/b&gt;"), "{page}");
    assert!(page.contains("&lt;i&gt;夜班&lt;/i&gt;"), "{page}");
    for raw in ["<script>", "<img", "<b>op", "<i>夜班"] {
        assert!(!page.contains(raw), "{raw} reached the page unescaped");
    }
}

#[tokio::test]
async fn failed_sign_ins_count_against_the_admin_limit() {
    let app = TestApp::spawn_with(Backend::Sqlite, |vars| {
        vars.insert("RATE_LIMIT".into(), "on".into());
        vars.insert("RATE_LIMIT_IP".into(), "300/min".into());
        vars.insert("RATE_LIMIT_USER".into(), "120/min".into());
    })
    .await
    .unwrap();
    for guess in 0..10 {
        let response = Console::sign_in_response(&app, &format!("guess-{guess}"), "x").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let page = response.text().await.unwrap();
        assert!(
            !page.contains(&format!("guess-{guess}")),
            "the guess is not echoed"
        );
    }
    // Locked out: even the right token is refused, on the form and on the API alike.
    let response = Console::sign_in_response(&app, ADMIN_TOKEN, "x").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().get("Set-Cookie").is_none());
    let response = app.get_with_token("/admin/orders", ADMIN_TOKEN).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn pages_need_a_session_and_docs_are_served_locally() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let client = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["/console", "/console/orders", "/console/orders/1"] {
        let response = client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
    }
    // An empty operator name is refused even with the right token.
    let response = Console::sign_in_response(&app, ADMIN_TOKEN, "  ").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let console = Console::sign_in(&app, "甲").await;
    let (status, page) = console.get("/console").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Nothing needs a human now."), "{page}");
    assert!(!page.contains(ADMIN_TOKEN));
    // Swagger UI from the binary, reading our own document.
    let (status, docs) = console.get("/docs/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(docs.contains("swagger-ui"), "{docs}");
    let initializer = app.get("/docs/swagger-initializer.js").await;
    assert_eq!(initializer.status(), StatusCode::OK);
    assert!(initializer.text().await.unwrap().contains("/openapi.json"));
}

/// `/console/refunds`: newest first, filtered by status, paged, the reason escaped.
async fn the_refunds_page_lists_filters_and_pages(backend: Backend) {
    let Some(app) = TestApp::spawn_with_sandbox(backend, |_| {}).await else {
        return;
    };
    let (p, otn) = paid_purchase(&app, 10, 3).await;
    let order = p.order.as_i64().unwrap();
    let reason = "<script>alert('r')</script>";
    let response = app
        .client
        .post(app.url(&format!("/admin/orders/{order}/refunds")))
        .bearer_auth(ADMIN_TOKEN)
        .header("X-Operator", "Li Lei")
        .json(&json!({ "amount": 10.00, "reason": reason }))
        .send()
        .await
        .unwrap();
    expect_status(response, StatusCode::OK).await;
    // The gateway refuses the next one: a FAIL refund.
    app.sandbox_faults(Some(&otn), json!({ "refund_outcome": "FAIL" }))
        .await;
    let response = app
        .refund(
            &p.token,
            json!({ "orderId": order, "refundAmount": 50.00 }),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);

    let console = Console::sign_in(&app, "甲").await;
    let (status, page) = console.get("/console/refunds").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let failed = page.find("¥50.00").expect("the failed refund");
    let goodwill = page.find("¥10.00").expect("the operator's refund");
    assert!(failed < goodwill, "newest first");
    assert!(page.contains(&format!("href=\"/console/orders/{order}\"")));
    assert!(page.contains("Li Lei"));
    assert!(
        page.contains("&lt;script&gt;alert('r')&lt;/script&gt;"),
        "{page}"
    );
    assert!(!page.contains("<script>"), "{page}");

    let (_, fails) = console.get("/console/refunds?status=FAIL").await;
    assert!(
        fails.contains("¥50.00") && !fails.contains("¥10.00"),
        "{fails}"
    );
    let (_, successes) = console.get("/console/refunds?status=SUCCESS").await;
    assert!(successes.contains("¥10.00") && !successes.contains("¥50.00"));
    let (status, _) = console.get("/console/refunds?status=DONE").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // 20 more refunds: the first page holds 20 and links to the next, which ends the list.
    let payment: i64 = sqlx::query_scalar("SELECT id FROM payments WHERE out_trade_no = $1")
        .bind(&otn)
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    for i in 0..20 {
        sqlx::query(
            "INSERT INTO refunds (order_id, payment_id, out_refund_no, amount_fen, status, \
             attempts, created_at, updated_at) VALUES ($1, $2, $3, 1, 'SUCCESS', 1, 0, 0)",
        )
        .bind(order)
        .bind(payment)
        .bind(format!("RF-bulk-{i}"))
        .execute(app.db.pool())
        .await
        .unwrap();
    }
    let (_, first) = console.get("/console/refunds").await;
    assert!(first.contains("RF-bulk-19") && !first.contains("¥10.00"));
    let marker = "id=\"next-page\"";
    let link_at = first.find(marker).expect("a next page");
    let href = first[..link_at].rsplit("href=\"").next().unwrap();
    let next = href[..href.find('"').unwrap()].replace("&amp;", "&");
    let (status, second) = console.get(&next).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert!(
        second.contains("¥10.00") && second.contains("¥50.00"),
        "{second}"
    );
    assert!(!second.contains(marker), "the last page");
}

/// The dashboard counts today's failed gateway calls (timeouts, 5xx, garbage …), kept
/// durably as `gateway.error` events.
async fn the_dashboard_counts_todays_gateway_errors(backend: Backend) {
    let Some(app) = TestApp::spawn_with_sandbox(backend, |_| {}).await else {
        return;
    };
    let p = crate::shop::purchase(&app, 10, 1).await;
    app.sandbox_faults(None, json!({ "gateway_5xx": 1 })).await;
    let response = app.prepay(&p.token, &p.order, &p.openid).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let sql = "SELECT COUNT(*) FROM payment_events WHERE kind = 'gateway.error'";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.count(sql).await < 1 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(app.count(sql).await, 1);
    let (verdict, raw): (String, String) =
        sqlx::query_as("SELECT verdict, raw FROM payment_events WHERE kind = 'gateway.error'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert_eq!(verdict, "transport");
    assert!(raw.starts_with("pay.weixin.jspay: "), "{raw}");

    let console = Console::sign_in(&app, "甲").await;
    let (status, page) = console.get("/console").await;
    assert_eq!(status, StatusCode::OK);
    let card = &page[page.find("id=\"gateway-errors\"").expect("the card")..];
    assert!(
        card[..card.find("failed calls").unwrap()].contains("<div class=\"n\">1</div>"),
        "{card}"
    );
}
