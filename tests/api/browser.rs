//! The console in a real browser: headless Chromium driven over WebDriver (chromedriver) by
//! fantoccini. Without /usr/bin/chromium and /usr/bin/chromedriver the test says it was
//! skipped — unless CI is set, where a missing browser is a failure. Each test saves
//! screenshots under target/screenshots/.

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{Backend, TestApp, ADMIN_TOKEN};
use crate::shop::{paid_purchase, purchase};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver and the session it drives; the driver process ends with this value.
struct Browser {
    driver: Child,
    client: Client,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
}

/// A fresh headless Chromium, or `None` (skipped) on a machine without one outside CI.
async fn browser() -> Option<Browser> {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        assert!(
            !ci(),
            "CI is set but {CHROMIUM} or {CHROMEDRIVER} is missing: the browser tests must run"
        );
        eprintln!("browser test skipped: {CHROMIUM} or {CHROMEDRIVER} is not installed");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let driver = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let profile = tempfile::tempdir().expect("profile dir");
    let mut browser_args = vec![
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1300",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>();
    browser_args.push(format!("--user-data-dir={}", profile.path().display()));
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({ "binary": CHROMIUM, "args": browser_args }),
    );
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    // chromedriver takes a moment to listen; the first connects may be refused.
    let client = loop {
        match ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities.clone())
            .connect(&url)
            .await
        {
            Ok(client) => break client,
            Err(error) if started.elapsed() < Duration::from_secs(20) => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("cannot start a Chromium session: {error}"),
        }
    };
    Some(Browser {
        driver,
        client,
        _profile: profile,
    })
}

async fn screenshot(client: &Client, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    let path = dir.join(format!("{name}.png"));
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(&path, png).expect("write screenshot");
    path
}

/// Waits until the element's text contains `needle` (pages load after a click).
async fn wait_text(client: &Client, css: &str, needle: &str) -> String {
    let started = Instant::now();
    loop {
        if let Ok(element) = client.find(Locator::Css(css)).await {
            if let Ok(text) = element.text().await {
                if text.contains(needle) {
                    return text;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(15),
                    "{css} says {text:?}, not {needle:?}"
                );
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no {css} on {}",
            client.current_url().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn type_into(client: &Client, css: &str, text: &str) {
    let input = client.find(Locator::Css(css)).await.expect(css);
    input.clear().await.expect("clear");
    input.send_keys(text).await.expect("type");
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .expect(css)
        .click()
        .await
        .expect("click");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_finds_refunds_and_syncs_an_order_in_chromium() {
    let Some(browser) = browser().await else {
        return;
    };
    let app = TestApp::spawn_with_sandbox(Backend::Sqlite, |_| {})
        .await
        .unwrap();
    let (p, otn) = paid_purchase(&app, 10, 2).await;
    let order = p.order.as_i64().unwrap();
    let c = &browser.client;

    // Sign in: the dashboard, nothing needing attention yet.
    c.goto(&app.url("/console")).await.unwrap();
    wait_text(c, "h1", "Sign in").await;
    type_into(c, "input[name=token]", ADMIN_TOKEN).await;
    type_into(c, "input[name=operator]", "值班员 Li").await;
    click(c, "#signin").await;
    wait_text(c, "h1", "Dashboard").await;
    wait_text(c, "#attention-empty", "Nothing needs a human").await;
    wait_text(c, "#paid", "¥100.00").await;

    // Find the order by its out_trade_no and open its timeline.
    click(c, "nav a[href='/console/orders']").await;
    type_into(c, "input[name=outTradeNo]", &otn).await;
    click(c, "#search").await;
    wait_text(c, "#orders", &otn).await;
    click(c, &format!("#orders a[href='/console/orders/{order}']")).await;
    wait_text(c, "h1", &format!("Order #{order}")).await;
    let timeline = wait_text(c, "#timeline", "payment.paid").await;
    assert!(timeline.contains("order.created"), "{timeline}");

    // Refund one ticket: done through the engine, recorded with the operator's name.
    type_into(c, "#tickets input[name=reason]", "买家不能来了").await;
    click(c, "#tickets button.danger").await;
    wait_text(c, "#flash", "SUCCESS").await;
    wait_text(c, "#order-refunded", "¥50.00").await;
    wait_text(c, "#refunds", "值班员 Li").await;

    // Sync with the gateway.
    click(c, "#sync").await;
    wait_text(c, "#flash", "Synced: the order is CONFIRMED").await;
    wait_text(c, "#timeline", "sync").await;
    screenshot(c, "console-order").await;

    // The gateway answers CHANGE for the other ticket's refund: it needs a human now.
    app.sandbox_faults(Some(&otn), json!({ "refund_outcome": "CHANGE" }))
        .await;
    type_into(c, "#tickets input[name=reason]", "演出取消").await;
    click(c, "#tickets button.danger").await;
    wait_text(c, "#flash", "Not done").await;
    click(c, "nav a[href='/console']").await;
    let attention = wait_text(c, "#attention", "REFUND_NOT_DELIVERED").await;
    assert!(attention.contains("CHANGE"), "{attention}");
    wait_text(c, "#refunded", "¥50.00").await;
    let shot = screenshot(c, "console-dashboard").await;
    assert!(std::fs::metadata(shot).unwrap().len() > 10_000);

    // The refunds page: both refunds, newest (the CHANGE one) first.
    click(c, "nav a[href='/console/refunds']").await;
    let refunds = wait_text(c, "#refunds", "CHANGE").await;
    assert!(refunds.contains("买家不能来了"), "{refunds}");
    screenshot(c, "console-refunds").await;

    // Both console refunds are audited under the session's operator.
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM admin_audit WHERE operator = '值班员 Li' AND action = 'refund'"
        )
        .await,
        2
    );
    c.clone().close().await.unwrap();
}

/// Opens the page again until `css` says `needle`: the console has no script that refreshes
/// it, so a payment confirmed by a notify shows on the next load.
async fn reload_until(client: &Client, url: &str, css: &str, needle: &str) -> String {
    let started = Instant::now();
    loop {
        client.goto(url).await.unwrap();
        if let Ok(element) = client.find(Locator::Css(css)).await {
            let text = element.text().await.unwrap_or_default();
            if text.contains(needle) {
                return text;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "{css} still says {text:?}, not {needle:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_pays_at_the_sandbox_cashier_and_the_console_shows_it_confirmed() {
    let Some(browser) = browser().await else {
        return;
    };
    let app = TestApp::spawn_with_sandbox(Backend::Sqlite, |_| {})
        .await
        .unwrap();
    let p = purchase(&app, 10, 2).await;
    let prepay = app.prepay(&p.token, &p.order, &p.openid).await;
    let prepay: serde_json::Value = prepay.json().await.unwrap();
    let otn = prepay["data"]["outTradeNo"].as_str().unwrap().to_owned();
    let order = p.order.as_i64().unwrap();
    let c = &browser.client;

    // The pay sheet, as the buyer would see it after wx.requestPayment.
    let cashier = app.url(&format!("/sandbox/cashier/{otn}"));
    c.goto(&cashier).await.unwrap();
    wait_text(c, "#trade-status", "NOTPAY").await;
    wait_text(c, "#amount", "¥100.00").await;
    screenshot(c, "sandbox-cashier").await;
    click(c, "#pay").await;
    wait_text(c, "#flash", "Paid").await;
    wait_text(c, "#trade-status", "SUCCESS").await;
    // The notify goes out after the page was drawn: it shows on the next load.
    reload_until(c, &cashier, "#notify", "acknowledged").await;
    screenshot(c, "sandbox-cashier-paid").await;

    // The operator sees the order confirmed by the notify, with the request that brought it.
    c.goto(&app.url("/console")).await.unwrap();
    wait_text(c, "h1", "Sign in").await;
    type_into(c, "input[name=token]", ADMIN_TOKEN).await;
    type_into(c, "input[name=operator]", "值班员 Li").await;
    click(c, "#signin").await;
    wait_text(c, "h1", "Dashboard").await;
    let page = app.url(&format!("/console/orders/{order}"));
    reload_until(c, &page, "#order-status", "CONFIRMED").await;
    let timeline = wait_text(c, "#timeline", "notify.received").await;
    assert!(timeline.contains("confirmed"), "{timeline}");
    let ids = c
        .find_all(Locator::Css("#timeline td.request-id"))
        .await
        .unwrap();
    let mut shown = Vec::new();
    for cell in ids {
        shown.push(cell.text().await.unwrap());
    }
    assert!(
        shown
            .iter()
            .any(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())),
        "{shown:?}"
    );
    screenshot(c, "console-order-paid-at-cashier").await;
    c.clone().close().await.unwrap();
}
