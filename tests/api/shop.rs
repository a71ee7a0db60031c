//! Buying through the app: orders, prepays, the mounted sandbox's controls, refunds, and a
//! standalone gateway for tests that outlive one app instance.

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;

use crate::helpers::{expect_status, TestApp, ADMIN_TOKEN};

/// The order and payment endpoints, and the mounted sandbox's controls.
impl TestApp {
    pub async fn create_order(&self, token: &str, items: Value) -> Response {
        self.post_json("/orders", Some(token), &json!({ "items": items }))
            .await
    }

    /// Creates an order and answers its JSON `data`.
    pub async fn order_of(&self, token: &str, ticket_type_id: &Value, quantity: i64) -> Value {
        let items = json!([{ "ticketTypeId": ticket_type_id, "quantity": quantity }]);
        let response = self.create_order(token, items).await;
        expect_status(response, StatusCode::CREATED).await["data"].clone()
    }

    pub async fn prepay(&self, token: &str, order_id: &Value, openid: &str) -> Response {
        let body = json!({ "orderId": order_id, "openid": openid });
        self.post_json("/payments/wechat/prepay", Some(token), &body)
            .await
    }

    pub async fn status(&self, token: &str, order_id: &Value) -> Value {
        let response = self
            .get_with_token(&format!("/payments/status/{order_id}"), token)
            .await;
        expect_status(response, StatusCode::OK).await["data"].clone()
    }

    pub async fn order(&self, token: &str, order_id: &Value) -> Value {
        let response = self
            .get_with_token(&format!("/orders/{order_id}"), token)
            .await;
        expect_status(response, StatusCode::OK).await["data"].clone()
    }

    pub async fn stock(&self, ticket_type_id: &Value) -> Value {
        let path = format!("/admin/ticket-types/{ticket_type_id}");
        let response = self.get_with_token(&path, ADMIN_TOKEN).await;
        expect_status(response, StatusCode::OK).await["data"]["stock"].clone()
    }

    /// Polls the order (without asking the gateway) until it has `status`.
    pub async fn wait_for_order(&self, token: &str, order_id: &Value, status: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let order = self.order(token, order_id).await;
            if order["status"] == json!(status) || std::time::Instant::now() > deadline {
                return order;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }

    pub async fn sandbox_pay(&self, out_trade_no: &str) -> Response {
        self.client
            .post(self.url(&format!("/sandbox/trades/{out_trade_no}/pay")))
            .send()
            .await
            .expect("POST")
    }

    /// The gateway closes the trade on its own side, without the engine asking.
    pub async fn sandbox_close(&self, out_trade_no: &str) -> Response {
        self.client
            .post(self.url(&format!("/sandbox/trades/{out_trade_no}/close")))
            .send()
            .await
            .expect("POST")
    }

    pub async fn sandbox_trade(&self, out_trade_no: &str) -> Value {
        self.get(&format!("/sandbox/trades/{out_trade_no}"))
            .await
            .json()
            .await
            .expect("JSON")
    }

    /// The trade once its first notify attempt has its answer: the order can be seen
    /// CONFIRMED (committed) a moment before the sandbox has read our `success`.
    pub async fn sandbox_trade_notified(&self, out_trade_no: &str) -> Value {
        for _ in 0..100 {
            let trade = self.sandbox_trade(out_trade_no).await;
            if trade["notify_attempts"][0]["acknowledged"].is_boolean() {
                return trade;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the first notify of {out_trade_no} got no answer within 5 s");
    }

    pub async fn sandbox_faults(&self, out_trade_no: Option<&str>, faults: Value) {
        let path = match out_trade_no {
            Some(no) => format!("/sandbox/trades/{no}/faults"),
            None => "/sandbox/faults".to_owned(),
        };
        let response = self
            .client
            .put(self.url(&path))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }

    /// POSTs a notify body as the gateway would; answers (HTTP status, body text).
    pub async fn notify_raw(&self, body: impl Into<reqwest::Body>) -> (StatusCode, String) {
        let response = self
            .client
            .post(self.url("/payments/wallyt/notify"))
            .header("Content-Type", "text/xml")
            .body(body)
            .send()
            .await
            .expect("POST");
        (response.status(), response.text().await.unwrap_or_default())
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(self.db.pool())
            .await
            .expect("count")
    }
}

/// A buyer with a PENDING order for `quantity` tickets of a fresh 50.00 type.
pub struct Purchase {
    pub token: String,
    pub openid: String,
    pub ticket_type: Value,
    pub order: Value,
}

pub async fn purchase(app: &TestApp, stock: i64, quantity: i64) -> Purchase {
    let (token, openid, _) = app
        .login(&format!("oBuyer{}", uuid::Uuid::new_v4().simple()))
        .await;
    let ticket_type = app.create_ticket_type("VIP", "50.00", stock).await;
    let order = app.order_of(&token, &ticket_type["id"], quantity).await;
    Purchase {
        token,
        openid,
        ticket_type: ticket_type["id"].clone(),
        order: order["id"].clone(),
    }
}

impl TestApp {
    pub async fn refund(&self, token: &str, body: Value, key: Option<&str>) -> Response {
        let mut request = self
            .client
            .post(self.url("/payments/refund"))
            .bearer_auth(token)
            .json(&body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.expect("POST")
    }
}

/// A CONFIRMED purchase of `quantity` tickets at 50.00 (paid through the mounted sandbox);
/// answers it with its out_trade_no.
pub async fn paid_purchase(app: &TestApp, stock: i64, quantity: i64) -> (Purchase, String) {
    let p = purchase(app, stock, quantity).await;
    let prepay = expect_status(
        app.prepay(&p.token, &p.order, &p.openid).await,
        StatusCode::OK,
    )
    .await;
    let otn = prepay["data"]["outTradeNo"].as_str().unwrap().to_owned();
    assert!(app.sandbox_pay(&otn).await.status().is_success());
    let order = app.wait_for_order(&p.token, &p.order, "CONFIRMED").await;
    assert_eq!(order["status"], json!("CONFIRMED"));
    (p, otn)
}

/// A standalone sandbox gateway that outlives app instances (restarts, several nodes). Its
/// notify URL is a dead end: tests pay through its controls and deliver notifies themselves.
pub struct Gateway {
    pub sandbox: wallyt_pay::sandbox::Sandbox,
    pub base: String,
    key: String,
}

impl Gateway {
    pub fn start() -> Gateway {
        Gateway::start_with(wallyt_pay::sandbox::SandboxConfig::generated())
    }

    /// A gateway with its own settings (e.g. a faster notify retry schedule).
    pub fn start_with(config: wallyt_pay::sandbox::SandboxConfig) -> Gateway {
        let sandbox = wallyt_pay::sandbox::Sandbox::new(config);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        tokio::spawn(sandbox.clone().serve(listener).unwrap());
        let key = secrecy::ExposeSecret::expose_secret(&sandbox.config().key).to_owned();
        Gateway { sandbox, base, key }
    }

    /// The variables that point an app at this gateway.
    pub fn vars(&self) -> impl Fn(&mut HashMap<String, String>) + Clone + Send + 'static {
        let (base, key) = (self.base.clone(), self.key.clone());
        move |vars| {
            vars.insert("WALLYT_API_URL".into(), format!("{base}/pay/gateway"));
            vars.insert("WALLYT_MCH_ID".into(), "7551000001".into());
            vars.insert("WALLYT_SECRET_KEY".into(), key.clone());
            vars.insert(
                "WALLYT_NOTIFY_URL".into(),
                "http://127.0.0.1:9/payments/wallyt/notify".into(),
            );
        }
    }

    pub async fn pay(&self, out_trade_no: &str, force: bool) {
        let response = reqwest::Client::new()
            .post(format!("{}/sandbox/trades/{out_trade_no}/pay", self.base))
            .json(&json!({ "force": force }))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{}",
            response.text().await.unwrap()
        );
    }

    pub fn trade(&self, out_trade_no: &str) -> wallyt_pay::sandbox::state::Trade {
        self.sandbox.with_state(|s| s.trades[out_trade_no].clone())
    }
}

/// The refunds the sandbox holds for a trade.
pub async fn sandbox_refunds(app: &TestApp, out_trade_no: &str) -> Vec<Value> {
    app.sandbox_trade(out_trade_no).await["refunds"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The customer pays a trade even though it is closed (a late payment).
pub async fn force_pay(app: &TestApp, out_trade_no: &str) {
    let response = app
        .client
        .post(app.url(&format!("/sandbox/trades/{out_trade_no}/pay")))
        .json(&json!({ "force": true }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
}
