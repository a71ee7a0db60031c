//! Timers over real HTTP with TTLs of seconds, end to end: an unpaid prepay is closed and its
//! order expires, and none of it depends on one process staying alive. The other cases of
//! expiry and lost notifies run on paused time against the engine (actors/tests/timers.rs).

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use crate::helpers::{expect_status, Backend, TestApp};
use crate::on_both_backends;
use crate::shop::{purchase, Gateway, Purchase};

on_both_backends!(an_unpaid_prepay_closes_and_the_order_expires);

pub fn short_ttls(vars: &mut std::collections::HashMap<String, String>) {
    vars.insert("PREPAY_TTL".into(), "2s".into());
    vars.insert("ORDER_TTL".into(), "4s".into());
    vars.insert("EXPIRY_GRACE".into(), "100ms".into());
    vars.insert("QUERY_SCHEDULE".into(), "".into());
}

pub async fn prepay(app: &TestApp, p: &Purchase) -> String {
    let response = app.prepay(&p.token, &p.order, &p.openid).await;
    expect_status(response, StatusCode::OK).await["data"]["outTradeNo"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Polls until `check` holds or `within` passes; answers the last value seen.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (bool, Value)>,
{
    let deadline = Instant::now() + within;
    loop {
        let (done, value) = check().await;
        if done || Instant::now() > deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn an_unpaid_prepay_closes_and_the_order_expires(backend: Backend) {
    let Some(app) = TestApp::spawn_with_sandbox(backend, short_ttls).await else {
        return;
    };
    let p = purchase(&app, 10, 3).await;
    let otn = prepay(&app, &p).await;

    let trade = eventually(Duration::from_secs(5), || async {
        let trade = app.sandbox_trade(&otn).await;
        (trade["close_calls"] == json!(1), trade)
    })
    .await;
    assert_eq!(trade["state"], json!("CLOSED"));
    assert_eq!(trade["close_calls"], json!(1));
    // The sandbox counts the close before it answers; the engine records it just after.
    let order = eventually(Duration::from_secs(2), || async {
        let order = app.order(&p.token, &p.order).await;
        (order["payment"]["status"] == json!("CLOSED"), order)
    })
    .await;
    assert_eq!(order["payment"]["status"], json!("CLOSED"), "{order}");

    let order = app.wait_for_order(&p.token, &p.order, "CANCELLED").await;
    assert_eq!(order["status"], json!("CANCELLED"));
    assert_eq!(order["cancelReason"], json!("EXPIRED"));
    assert!(order["cancelledAt"].is_string());
    assert_eq!(
        app.stock(&p.ticket_type).await,
        json!({ "total": 10, "available": 10, "reserved": 0, "sold": 0 })
    );
    assert_eq!(
        app.sandbox_trade(&otn).await["close_calls"],
        json!(1),
        "closed once"
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("expiry_deadlines_fired_total{kind=\"order\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wallyt_trades_closed_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn timers_survive_a_restart() {
    let gateway = Gateway::start();
    let wallyt = gateway.vars();
    let node = move |vars: &mut std::collections::HashMap<String, String>| {
        wallyt(vars);
        short_ttls(vars);
    };
    let first = TestApp::spawn_with(Backend::Sqlite, node.clone())
        .await
        .unwrap();
    let p = purchase(&first, 5, 2).await;
    let otn = prepay(&first, &p).await;
    // The process goes away with its timers; the next one rebuilds them from the database.
    first.handle.stop().await;
    let database_url = first.database_url.clone();
    let second = TestApp::spawn_with(Backend::Sqlite, move |vars| {
        node(vars);
        vars.insert("DATABASE_URL".into(), database_url);
    })
    .await
    .unwrap();
    let order = second.wait_for_order(&p.token, &p.order, "CANCELLED").await;
    assert_eq!(order["cancelReason"], json!("EXPIRED"));
    assert_eq!(gateway.trade(&otn).close_calls, 1);
    assert_eq!(second.stock(&p.ticket_type).await["available"], json!(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_with_redis_expire_each_order_once() {
    let (Ok(redis), Ok(_)) = (
        std::env::var("TEST_REDIS_URL"),
        std::env::var("TEST_DATABASE_URL"),
    ) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI needs TEST_REDIS_URL and TEST_DATABASE_URL"
        );
        eprintln!(
            "two-node expiry case did not run: TEST_REDIS_URL or TEST_DATABASE_URL is not set"
        );
        return;
    };
    let gateway = Gateway::start();
    let wallyt = gateway.vars();
    let node = move |vars: &mut std::collections::HashMap<String, String>| {
        wallyt(vars);
        short_ttls(vars);
        vars.insert("REDIS_URL".into(), redis.clone());
        // Both nodes learn every deadline from the shared database within a moment.
        vars.insert("EXPIRY_SWEEP_INTERVAL".into(), "200ms".into());
    };
    let a = TestApp::spawn_with(Backend::Postgres, node.clone())
        .await
        .unwrap();
    let shared = a.database_url.clone();
    let b = TestApp::spawn_with(Backend::Postgres, move |vars| {
        node(vars);
        vars.insert("DATABASE_URL".into(), shared);
    })
    .await
    .unwrap();
    let mut orders = Vec::new();
    for _ in 0..3 {
        let p = purchase(&a, 5, 1).await;
        let otn = prepay(&a, &p).await;
        orders.push((p, otn));
    }
    for (p, otn) in &orders {
        let order = b.wait_for_order(&p.token, &p.order, "CANCELLED").await;
        assert_eq!(order["cancelReason"], json!("EXPIRED"));
        // Each node's timer fires, but the deadline's work is done once: the later firing
        // finds the trade closed (under the order's lease) and asks the gateway nothing.
        let trade = gateway.trade(otn);
        assert_eq!(trade.close_calls, 1, "one close call per trade");
        assert_eq!(trade.query_calls, 1, "one query per trade");
        assert_eq!(a.stock(&p.ticket_type).await["available"], json!(5));
    }
    let expired = "SELECT COUNT(*) FROM orders WHERE cancel_reason = 'EXPIRED'";
    assert_eq!(a.count(expired).await, 3);
}
