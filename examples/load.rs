//! A load generator for the payment path, against the real application (in-process, its
//! built-in sandbox as the gateway, a fresh SQLite file or `LOAD_DATABASE_URL`).
//!
//! `cargo run --release --example load` — optional: `LOAD_ORDERS=2000 LOAD_CONCURRENCY=32`.
//! Rate limits are off here (`RATE_LIMIT=off`): a few users from one IP would otherwise hit
//! `RATE_LIMIT_USER` within the first second. `LOAD_RATE_LIMIT=on` measures with them on.
//!
//! Phases, each timed per request (p50/p99/max) and as throughput:
//! 1. `POST /orders` (reserve stock), 2. `POST /payments/wechat/prepay` (a gateway round trip),
//! 3. `POST /payments/wallyt/notify` with a signed paid notify per order (verify, actor,
//!    one transaction confirming and ticketing), 4. the same notifies again (duplicates).

use futures_util::future::join_all;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use wallyt_pay::config::{AppEnv, Settings};
use wallyt_pay::sandbox::notify::notify_message;
use wallyt_pay::startup::Application;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Report {
    name: &'static str,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Report {
    fn print(mut self) {
        self.latencies.sort();
        let at = |p: f64| self.latencies[((self.latencies.len() - 1) as f64 * p) as usize];
        println!(
            "{:<22} {:>6} requests  {:>8.0} req/s  p50 {:>7.2?}  p99 {:>7.2?}  max {:>7.2?}",
            self.name,
            self.latencies.len(),
            self.latencies.len() as f64 / self.elapsed.as_secs_f64(),
            at(0.5),
            at(0.99),
            self.latencies.last().unwrap(),
        );
    }
}

/// Runs `make(i)` for every i with at most `concurrency` in flight.
async fn phase<F, Fut>(
    name: &'static str,
    count: usize,
    concurrency: usize,
    make: F,
) -> (Report, Vec<Value>)
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
    let results: Vec<(Duration, Value)> = join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let report = Report {
        name,
        latencies: results.iter().map(|r| r.0).collect(),
        elapsed: started.elapsed(),
    };
    (report, results.into_iter().map(|r| r.1).collect())
}

#[tokio::main]
async fn main() {
    let orders = env_number("LOAD_ORDERS", 2000);
    let concurrency = env_number("LOAD_CONCURRENCY", 32);
    let dir = tempfile::tempdir().unwrap();
    let database_url = std::env::var("LOAD_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}/pay.db", dir.path().display()));
    let rate_limit = std::env::var("LOAD_RATE_LIMIT").unwrap_or_else(|_| "off".into());
    let vars: HashMap<String, String> = [
        ("HTTP_ADDR", "127.0.0.1:0"),
        ("DATABASE_URL", database_url.as_str()),
        ("JWT_SECRET", "load-test-secret-0123456789abcdef"),
        ("ADMIN_TOKEN", "load-admin"),
        ("QUERY_SCHEDULE", ""),
        ("DATABASE_MAX_CONNECTIONS", "16"),
        // One buyer places thousands of orders here: the per-user limits are off for the run.
        ("MAX_PENDING_ORDERS", "0"),
        ("MAX_PENDING_UNITS", "0"),
        ("RATE_LIMIT", rate_limit.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let settings = Settings::from_sources(AppEnv::Development, &config, vars).expect("settings");
    let app = Application::build(settings).await.expect("app");
    let base = format!("http://127.0.0.1:{}", app.port());
    let sandbox = app
        .sandbox()
        .cloned()
        .expect("development mounts the sandbox");
    tokio::spawn(app.run_until_stopped());
    // Notifies are sent by this program, so that their handling is what gets timed.
    sandbox.with_state(|s| s.global_faults.notify_drop = Some(true));

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let login: Value = http
        .post(format!("{base}/auth/wechat/login"))
        .json(&json!({ "code": "load" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap().to_owned();
    let openid = login["openid"].as_str().unwrap().to_owned();
    let ticket_type: Value = http
        .post(format!("{base}/admin/ticket-types"))
        .bearer_auth("load-admin")
        .json(&json!({ "name": "Load", "price": 88.00, "stock": orders }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ticket_type = ticket_type["data"]["id"].clone();
    println!(
        "{orders} orders, concurrency {concurrency}, database {}",
        if database_url.starts_with("sqlite") {
            "SQLite"
        } else {
            "PostgreSQL"
        }
    );

    let (report, created) = phase("POST /orders", orders, concurrency, |_| {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        let body = json!({ "items": [{ "ticketTypeId": ticket_type, "quantity": 1 }] });
        async move {
            let r = http
                .post(format!("{base}/orders"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            r.json::<Value>().await.unwrap()["data"]["id"].clone()
        }
    })
    .await;
    report.print();

    let (report, trades) = phase("POST prepay", orders, concurrency, |i| {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        let body = json!({ "orderId": created[i], "openid": openid });
        async move {
            let r = http
                .post(format!("{base}/payments/wechat/prepay"))
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
    report.print();

    for trade in &trades {
        let pay = http
            .post(format!(
                "{base}/sandbox/trades/{}/pay",
                trade.as_str().unwrap()
            ))
            .send()
            .await
            .unwrap();
        assert!(pay.status().is_success());
    }
    let bodies: Vec<String> = trades
        .iter()
        .map(|t| {
            notify_message(&sandbox, t.as_str().unwrap(), None)
                .unwrap()
                .1
        })
        .collect();
    for name in ["POST notify (first)", "POST notify (again)"] {
        let (report, answers) = phase(name, orders, concurrency, |i| {
            let (http, base, body) = (http.clone(), base.clone(), bodies[i].clone());
            async move {
                let r = http
                    .post(format!("{base}/payments/wallyt/notify"))
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                Value::String(r.text().await.unwrap())
            }
        })
        .await;
        assert!(
            answers.iter().all(|a| a == "success"),
            "every notify is acknowledged"
        );
        report.print();
    }
    let stock: Value = http
        .get(format!("{base}/admin/ticket-types/{ticket_type}"))
        .bearer_auth("load-admin")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stock = &stock["data"]["stock"];
    assert_eq!(
        stock["sold"],
        json!(orders),
        "each order confirmed once: {stock}"
    );
    println!("stock after: {stock}");
}
