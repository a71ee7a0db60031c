//! The application under load: started in this process with its built-in sandbox as the
//! gateway, abuse limits off, and the requests every scenario is made of (login, order,
//! prepay, pay, notify, refund), each checking its answer so that a wrong one fails the run.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;
use wallyt_pay::config::{AppEnv, Settings};
use wallyt_pay::sandbox::notify::notify_message;
use wallyt_pay::sandbox::Sandbox;
use wallyt_pay::startup::Application;

pub const ADMIN_TOKEN: &str = "load-admin-token-0123456789abcdef";

/// A logged-in buyer.
#[derive(Clone)]
pub struct Buyer {
    pub token: String,
    pub openid: String,
}

#[derive(Clone)]
pub struct Harness {
    pub base: String,
    pub port: u16,
    pub http: reqwest::Client,
    pub sandbox: Sandbox,
    pub database_url: String,
}

impl Harness {
    /// Starts the application on a free loopback port. Limits that would refuse a load test
    /// (one buyer with thousands of unpaid orders, hundreds of requests a second from one
    /// user and one IP) are off; background queries of open trades are off so that only the
    /// requests of the scenario reach the database.
    pub async fn start(database_url: &str) -> Harness {
        let mut vars: HashMap<String, String> = [
            ("HTTP_ADDR", "127.0.0.1:0"),
            ("DATABASE_URL", database_url),
            ("JWT_SECRET", "load-test-secret-0123456789abcdef"),
            ("ADMIN_TOKEN", ADMIN_TOKEN),
            ("QUERY_SCHEDULE", ""),
            ("DATABASE_MAX_CONNECTIONS", "16"),
            ("MAX_PENDING_ORDERS", "0"),
            ("MAX_PENDING_UNITS", "0"),
            ("RATE_LIMIT", "off"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        // Anything else the caller wants to try (HTTP_WORKERS, DATABASE_MAX_CONNECTIONS…).
        for (key, value) in std::env::vars() {
            if let Some(name) = key.strip_prefix("LOAD_SERVER_") {
                vars.insert(name.to_owned(), value);
            }
        }
        let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let settings =
            Settings::from_sources(AppEnv::Development, &config, vars).expect("settings");
        let app = Application::build(settings).await.expect("app starts");
        let port = app.port();
        let sandbox = app
            .sandbox()
            .cloned()
            .expect("development mounts the sandbox");
        tokio::spawn(app.run_until_stopped());
        // Notifies are sent by the scenarios, so that their handling is what gets timed.
        sandbox.with_state(|s| s.global_faults.notify_drop = Some(true));
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .expect("http client");
        Harness {
            base: format!("http://127.0.0.1:{port}"),
            port,
            http,
            sandbox,
            database_url: database_url.to_owned(),
        }
    }

    pub fn backend(&self) -> &'static str {
        if self.database_url.starts_with("postgres") {
            "postgres"
        } else {
            "sqlite"
        }
    }

    pub async fn login(&self, code: &str) -> Buyer {
        let answer = self
            .http
            .post(format!("{}/auth/wechat/login", self.base))
            .json(&json!({ "code": code }))
            .send()
            .await
            .expect("login sent");
        let login = expect_json(answer, StatusCode::OK, "login").await;
        Buyer {
            token: login["token"].as_str().expect("token").to_owned(),
            openid: login["openid"].as_str().expect("openid").to_owned(),
        }
    }

    /// A ticket type of `stock` units at 88.00; answers its id.
    pub async fn ticket_type(&self, name: &str, stock: usize) -> i64 {
        let answer = self
            .http
            .post(format!("{}/admin/ticket-types", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({ "name": name, "price": 88.00, "stock": stock }))
            .send()
            .await
            .expect("ticket type sent");
        let created = expect_json(answer, StatusCode::CREATED, "ticket type").await;
        created["data"]["id"].as_i64().expect("ticket type id")
    }

    /// POST /orders for one unit; the status and the answer as they came.
    pub async fn try_order(&self, buyer: &Buyer, ticket_type: i64) -> (StatusCode, Value) {
        let answer = self
            .http
            .post(format!("{}/orders", self.base))
            .bearer_auth(&buyer.token)
            .json(&json!({ "items": [{ "ticketTypeId": ticket_type, "quantity": 1 }] }))
            .send()
            .await
            .expect("order sent");
        let status = answer.status();
        (status, answer.json().await.expect("order answer is JSON"))
    }

    pub async fn order(&self, buyer: &Buyer, ticket_type: i64) -> i64 {
        let (status, body) = self.try_order(buyer, ticket_type).await;
        assert_eq!(status, StatusCode::CREATED, "order refused: {body}");
        body["data"]["id"].as_i64().expect("order id")
    }

    /// Prepay for the order; answers its out_trade_no.
    pub async fn prepay(&self, buyer: &Buyer, order_id: i64) -> String {
        let answer = self
            .http
            .post(format!("{}/payments/wechat/prepay", self.base))
            .bearer_auth(&buyer.token)
            .json(&json!({ "orderId": order_id, "openid": buyer.openid }))
            .send()
            .await
            .expect("prepay sent");
        let prepay = expect_json(answer, StatusCode::OK, "prepay").await;
        prepay["data"]["outTradeNo"]
            .as_str()
            .expect("outTradeNo")
            .to_owned()
    }

    /// The buyer pays at the gateway; answers the signed notify the gateway would send.
    pub async fn pay(&self, out_trade_no: &str) -> String {
        let paid = self
            .http
            .post(format!("{}/sandbox/trades/{out_trade_no}/pay", self.base))
            .send()
            .await
            .expect("pay sent");
        assert!(paid.status().is_success(), "sandbox pay: {}", paid.status());
        notify_message(&self.sandbox, out_trade_no, None)
            .expect("a paid trade has a notify")
            .1
    }

    /// Posts a notify; answers the plain-text answer (`success` or `fail`).
    pub async fn notify(&self, body: String) -> String {
        let answer = self
            .http
            .post(format!("{}/payments/wallyt/notify", self.base))
            .body(body)
            .send()
            .await
            .expect("notify sent");
        answer.text().await.expect("notify answer")
    }

    pub async fn status(&self, buyer: &Buyer, order_id: i64) -> Value {
        let answer = self
            .http
            .get(format!("{}/payments/status/{order_id}", self.base))
            .bearer_auth(&buyer.token)
            .send()
            .await
            .expect("status sent");
        expect_json(answer, StatusCode::OK, "status").await["data"].clone()
    }

    /// Refunds everything still refundable of the order; answers the refund's data.
    pub async fn refund_all(&self, buyer: &Buyer, order_id: i64) -> Value {
        let answer = self
            .http
            .post(format!("{}/payments/refund", self.base))
            .bearer_auth(&buyer.token)
            .json(&json!({ "orderId": order_id, "reason": "load" }))
            .send()
            .await
            .expect("refund sent");
        expect_json(answer, StatusCode::OK, "refund").await["data"].clone()
    }
}

async fn expect_json(answer: reqwest::Response, want: StatusCode, what: &str) -> Value {
    let status = answer.status();
    let body = answer.text().await.unwrap_or_default();
    assert_eq!(status, want, "{what} answered {status}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what} answer is not JSON ({e})"))
}
