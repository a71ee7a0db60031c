//! A measuring probe for group commit (issue 11), beside `examples/load.rs`: the same
//! in-process application and sandbox, plus what the load generator lacks for this work — the
//! group-commit switch, notifies at a fixed arrival rate (open loop), and a flash sale checked
//! for oversell.
//!
//! `PROBE_DATABASE_URL=postgres://… cargo run --release --example notify_probe`
//! Optional: `STORE_GROUP_COMMIT=off`, `PROBE_ORDERS=4000` (half closed loop, half open loop),
//! `PROBE_CONCURRENCY=32` (orders, prepays), `PROBE_NOTIFY_CONCURRENCY=8`, `PROBE_RATE`
//! (open-loop notifies per second; default 70 % of the closed-loop rate just measured).
//! The open-loop latency counts from each notify's scheduled send time, so queueing shows.

use futures_util::future::join_all;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use wallyt_pay::config::{AppEnv, Settings};
use wallyt_pay::sandbox::notify::notify_message;
use wallyt_pay::startup::Application;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Prints one phase: count, rate, p50/p99/max; answers the rate.
fn report(name: &str, mut latencies: Vec<Duration>, elapsed: Duration) -> f64 {
    latencies.sort();
    let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    let rate = latencies.len() as f64 / elapsed.as_secs_f64();
    println!(
        "{name:<28} {:>6} requests  {rate:>8.0} req/s  p50 {:>8.2?}  p99 {:>8.2?}  max {:>8.2?}",
        latencies.len(),
        at(0.5),
        at(0.99),
        latencies.last().unwrap(),
    );
    rate
}

/// Closed loop: `count` requests, at most `concurrency` in flight.
async fn closed<F, Fut>(
    count: usize,
    concurrency: usize,
    make: F,
) -> (Vec<Duration>, Duration, Vec<Value>)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Value> + Send + 'static,
{
    let gate = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let tasks = (0..count).map(|i| {
        let gate = gate.clone();
        let request = make(i);
        tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            let t = Instant::now();
            let value = request.await;
            (t.elapsed(), value)
        })
    });
    let results: Vec<_> = join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let elapsed = started.elapsed();
    let latencies = results.iter().map(|r| r.0).collect();
    (
        latencies,
        elapsed,
        results.into_iter().map(|r| r.1).collect(),
    )
}

/// Open loop: request i is sent at `i / rate` seconds whatever the earlier ones are doing.
async fn open<F, Fut>(count: usize, rate: f64, make: F) -> (Vec<Duration>, Duration, Vec<Value>)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Value> + Send + 'static,
{
    let started = tokio::time::Instant::now();
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let due = started + Duration::from_secs_f64(i as f64 / rate);
            let request = make(i);
            tokio::spawn(async move {
                tokio::time::sleep_until(due).await;
                let value = request.await;
                (due.elapsed(), value)
            })
        })
        .collect();
    let results: Vec<_> = join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let elapsed = started.elapsed();
    let latencies = results.iter().map(|r| r.0).collect();
    (
        latencies,
        elapsed,
        results.into_iter().map(|r| r.1).collect(),
    )
}

#[tokio::main]
async fn main() {
    let orders: usize = env_or("PROBE_ORDERS", 4000);
    let concurrency: usize = env_or("PROBE_CONCURRENCY", 32);
    let notify_concurrency: usize = env_or("PROBE_NOTIFY_CONCURRENCY", 8);
    // Unset: the configuration's default.
    let group_commit = std::env::var("STORE_GROUP_COMMIT").unwrap_or_default();
    let dir = tempfile::tempdir().unwrap();
    let database_url = std::env::var("PROBE_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}/pay.db", dir.path().display()));
    let mut vars: HashMap<String, String> = [
        ("HTTP_ADDR", "127.0.0.1:0"),
        ("DATABASE_URL", database_url.as_str()),
        ("JWT_SECRET", "load-test-secret-0123456789abcdef"),
        ("ADMIN_TOKEN", "load-admin"),
        ("QUERY_SCHEDULE", ""),
        ("DATABASE_MAX_CONNECTIONS", "16"),
        ("MAX_PENDING_ORDERS", "0"),
        ("MAX_PENDING_UNITS", "0"),
        ("RATE_LIMIT", "off"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    if !group_commit.is_empty() {
        vars.insert("STORE_GROUP_COMMIT".into(), group_commit.clone());
    }
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let settings = Settings::from_sources(AppEnv::Development, &config, vars).expect("settings");
    let group_commit = format!("{:?}", settings.database.group_commit);
    let app = Application::build(settings).await.expect("app");
    let base = format!("http://127.0.0.1:{}", app.port());
    let sandbox = app
        .sandbox()
        .cloned()
        .expect("development mounts the sandbox");
    tokio::spawn(app.run_until_stopped());
    sandbox.with_state(|s| s.global_faults.notify_drop = Some(true));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency.max(64))
        .build()
        .unwrap();
    let admin = |path: &str| format!("{base}{path}");
    let login: Value = http
        .post(admin("/auth/wechat/login"))
        .json(&json!({ "code": "probe" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap().to_owned();
    let openid = login["openid"].as_str().unwrap().to_owned();
    let new_type = |stock: usize| {
        let http = http.clone();
        let url = admin("/admin/ticket-types");
        async move {
            let created: Value = http
                .post(url)
                .bearer_auth("load-admin")
                .json(&json!({ "name": "Probe", "price": 88.00, "stock": stock }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            created["data"]["id"].clone()
        }
    };
    let stock_of = |ticket_type: Value| {
        let http = http.clone();
        let url = admin(&format!("/admin/ticket-types/{ticket_type}"));
        async move {
            let stock: Value = http
                .get(url)
                .bearer_auth("load-admin")
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            stock["data"]["stock"].clone()
        }
    };
    println!(
        "{orders} orders, concurrency {concurrency}, notify concurrency {notify_concurrency}, \
         group commit {group_commit}, {}",
        if database_url.starts_with("sqlite") {
            "SQLite"
        } else {
            "PostgreSQL"
        }
    );
    let order = |ticket_type: Value| {
        let (http, url, token) = (http.clone(), admin("/orders"), token.clone());
        let body = json!({ "items": [{ "ticketTypeId": ticket_type, "quantity": 1 }] });
        async move {
            let r = http
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let answer: Value = r.json().await.unwrap();
            match status {
                201 => json!({ "id": answer["data"]["id"] }),
                _ => json!({ "status": status }),
            }
        }
    };

    // Flash sale: every buyer on one ticket type; then a sold-out crowd, checked exactly.
    let hot = new_type(orders).await;
    let (lat, elapsed, created) = closed(orders, concurrency, |_| order(hot.clone())).await;
    report("flash: POST /orders", lat, elapsed);
    assert!(
        created.iter().all(|c| c["id"].is_i64()),
        "every order reserved"
    );
    let scarce = new_type(orders / 10).await;
    let (lat, elapsed, answers) = closed(orders / 2, concurrency, |_| order(scarce.clone())).await;
    report("flash: sold-out crowd", lat, elapsed);
    let sold = answers.iter().filter(|a| a["id"].is_i64()).count();
    assert!(answers
        .iter()
        .all(|a| a["id"].is_i64() || a["status"] == json!(409)));
    let stock = stock_of(scarce).await;
    assert_eq!(stock["reserved"], json!(orders / 10), "{stock}");
    assert_eq!(sold, orders / 10, "exactly the stock was sold");
    println!(
        "flash: oversold 0 ({} of {} reserved)",
        orders / 10,
        orders / 2
    );

    let (lat, elapsed, trades) = closed(orders, concurrency, |i| {
        let (http, url, token) = (
            http.clone(),
            admin("/payments/wechat/prepay"),
            token.clone(),
        );
        let body = json!({ "orderId": created[i]["id"], "openid": openid });
        async move {
            let r = http
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()["data"]["outTradeNo"].clone()
        }
    })
    .await;
    report("POST prepay", lat, elapsed);
    for trade in &trades {
        let url = admin(&format!("/sandbox/trades/{}/pay", trade.as_str().unwrap()));
        assert!(http.post(url).send().await.unwrap().status().is_success());
    }
    let bodies: Arc<Vec<String>> = Arc::new(
        trades
            .iter()
            .map(|t| {
                notify_message(&sandbox, t.as_str().unwrap(), None)
                    .unwrap()
                    .1
            })
            .collect(),
    );
    let notify = |i: usize| {
        let (http, url, body) = (
            http.clone(),
            admin("/payments/wallyt/notify"),
            bodies[i].clone(),
        );
        async move {
            let r = http.post(url).body(body).send().await.unwrap();
            Value::String(r.text().await.unwrap())
        }
    };
    let half = orders / 2;
    let (lat, elapsed, answers) = closed(half, notify_concurrency, notify).await;
    let peak = report("notify first (closed loop)", lat, elapsed);
    assert!(answers.iter().all(|a| a == "success"));
    let rate = env_or("PROBE_RATE", (peak * 0.7).round());
    let (lat, elapsed, answers) = open(orders - half, rate, |i| notify(half + i)).await;
    report(&format!("notify first (open {rate:.0}/s)"), lat, elapsed);
    assert!(answers.iter().all(|a| a == "success"));
    let (lat, elapsed, answers) = closed(orders, notify_concurrency, notify).await;
    report("notify again (duplicates)", lat, elapsed);
    assert!(answers.iter().all(|a| a == "success"));
    let stock = stock_of(hot).await;
    assert_eq!(
        stock["sold"],
        json!(orders),
        "each order confirmed once: {stock}"
    );
    println!("stock after: {stock}");
}
