//! The sandbox cashier (`/sandbox/cashier/{out_trade_no}`) over plain HTTP: the pay sheet
//! shows the trade (escaped), its buttons act on the sandbox trade through the controls'
//! own code (Pay sends the real signed notify and the order is confirmed), and a POST
//! without the page's token or from another site does nothing. The browser walk is in
//! `browser.rs`; loopback-only is the controls' unit test (`src/sandbox/loopback.rs`).

use reqwest::{redirect, StatusCode};
use serde_json::json;

use crate::console::hidden;
use crate::helpers::{expect_status, Backend, TestApp};
use crate::shop::purchase;

async fn prepaid(app: &TestApp) -> (crate::shop::Purchase, String) {
    let p = purchase(app, 10, 2).await;
    let prepay = expect_status(
        app.prepay(&p.token, &p.order, &p.openid).await,
        StatusCode::OK,
    )
    .await;
    let otn = prepay["data"]["outTradeNo"].as_str().unwrap().to_owned();
    (p, otn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cashier_pays_fails_and_closes_sandbox_trades() {
    let app = TestApp::spawn_with_sandbox(Backend::Sqlite, |_| {})
        .await
        .unwrap();
    let client = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap();
    let (p, otn) = prepaid(&app).await;
    let path = format!("/sandbox/cashier/{otn}");

    // The sheet: amount in yuan, status, buttons; the trade's text is escaped.
    app.sandbox
        .as_ref()
        .unwrap()
        .with_state(|s| s.trades.get_mut(&otn).unwrap().body = "<script>x</script>票".into());
    let sheet = app.get(&path).await;
    assert_eq!(sheet.status(), StatusCode::OK);
    let csp = sheet.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let page = sheet.text().await.unwrap();
    assert!(page.contains("¥100.00"), "{page}");
    assert!(page.contains("data-state=\"NOTPAY\""), "{page}");
    assert!(page.contains("&lt;script&gt;x&lt;/script&gt;票"), "{page}");
    assert!(!page.contains("<script>"), "{page}");
    for button in ["id=\"pay\"", "id=\"fail\"", "id=\"close\""] {
        assert!(page.contains(button), "{button}");
    }
    let token = hidden(&page, "token");

    // Without the page's token, or from another site: refused, the trade untouched.
    let forged = [
        (String::from("0").repeat(32), None),
        (token.clone(), Some("http://evil.example")),
    ];
    for (token, origin) in forged {
        let mut request = client
            .post(app.url(&path))
            .form(&[("action", "pay"), ("token", token.as_str())]);
        if let Some(origin) = origin {
            request = request.header("Origin", origin);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(app.sandbox_trade(&otn).await["state"], json!("NOTPAY"));

    // Pay, from the page's own origin: redirected to the sheet, the notify confirms the order.
    let response = client
        .post(app.url(&path))
        .header("Origin", app.address.as_str())
        .form(&[("action", "pay"), ("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], format!("{path}?done=pay"));
    let order = app.wait_for_order(&p.token, &p.order, "CONFIRMED").await;
    assert_eq!(order["status"], json!("CONFIRMED"));
    let page = app
        .get(&format!("{path}?done=pay"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("data-state=\"SUCCESS\""), "{page}");
    assert!(!page.contains("id=\"pay\""), "a paid trade has no buttons");
    let again = client
        .post(app.url(&path))
        .form(&[("action", "pay"), ("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);

    // Fail: PAYERROR, unpaid, no notify; then Close closes it.
    let (_, failing) = prepaid(&app).await;
    let failing_path = format!("/sandbox/cashier/{failing}");
    for (action, state) in [("fail", "PAYERROR"), ("close", "CLOSED")] {
        let response = client
            .post(app.url(&failing_path))
            .form(&[("action", action), ("token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{action}");
        let trade = app.sandbox_trade(&failing).await;
        assert_eq!(trade["state"], json!(state), "{action}");
        assert_eq!(trade["notify_attempts"], json!([]));
    }

    let unknown = app.get("/sandbox/cashier/NO_SUCH_TRADE").await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}
