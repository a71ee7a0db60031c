//! `TestApp`: the application under test, its database and its WeChat stand-in.

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, Executor};
use std::collections::HashMap;
use std::path::Path;
use tempfile::TempDir;
use wallyt_pay::config::{AppEnv, Settings};
use wallyt_pay::startup::Application;
use wallyt_pay::storage::Database;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const ADMIN_TOKEN: &str = "test-admin-token";
pub const JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef";
pub const WECHAT_APPID: &str = "wx-test-appid";

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn(Backend)` once per backend, as `name::sqlite` and
/// `name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::helpers::Backend::Postgres).await
            }
        }
    )+};
}

/// A fresh, empty database of the backend; `None` (with a note) when PostgreSQL is not
/// configured outside CI. The temp dir keeps an SQLite file alive for the test's duration.
pub async fn fresh_database_url(backend: Backend) -> Option<(String, Option<TempDir>)> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}/pay.db", dir.path().display());
            Some((url, Some(dir)))
        }
        Backend::Postgres => {
            let Ok(base) = std::env::var("TEST_DATABASE_URL") else {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "CI=true but TEST_DATABASE_URL is not set: the PostgreSQL cases must run"
                );
                eprintln!("PostgreSQL case did not run: TEST_DATABASE_URL is not set");
                return None;
            };
            let mut conn = sqlx::PgConnection::connect(&base)
                .await
                .unwrap_or_else(|e| panic!("TEST_DATABASE_URL is set but unreachable: {e}"));
            let name = format!("wallyt_test_{}", uuid::Uuid::new_v4().simple());
            conn.execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create test database");
            let mut url = url::Url::parse(&base).expect("TEST_DATABASE_URL is a URL");
            url.set_path(&name);
            Some((url.to_string(), None))
        }
    }
}

pub fn config_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config"))
}

pub struct TestApp {
    pub handle: wallyt_pay::startup::AppHandle,
    /// The built-in sandbox (development mode), with its merchant key.
    pub sandbox: Option<wallyt_pay::sandbox::Sandbox>,
    pub address: String,
    pub database_url: String,
    pub client: reqwest::Client,
    pub db: Database,
    pub wechat: MockServer,
    _db_dir: Option<TempDir>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        TestApp::spawn_with(backend, |_| {}).await
    }

    /// Spawns with the test settings, after `adjust` has changed the variables.
    pub async fn spawn_with(
        backend: Backend,
        adjust: impl FnOnce(&mut HashMap<String, String>),
    ) -> Option<TestApp> {
        TestApp::spawn_in(AppEnv::Test, backend, adjust).await
    }

    /// Spawns as `app_env` would run (development mounts the sandbox, production never).
    pub async fn spawn_in(
        app_env: AppEnv,
        backend: Backend,
        adjust: impl FnOnce(&mut HashMap<String, String>),
    ) -> Option<TestApp> {
        if std::env::var("TEST_LOG").is_ok() {
            wallyt_pay::telemetry::init(wallyt_pay::config::LogFormat::Pretty);
        }
        let (database_url, db_dir) = fresh_database_url(backend).await?;
        let wechat = MockServer::start().await;
        let mut vars: HashMap<String, String> = [
            ("DATABASE_URL", database_url.as_str()),
            ("JWT_SECRET", JWT_SECRET),
            ("ADMIN_TOKEN", ADMIN_TOKEN),
            ("WECHAT_MINI_APPID", WECHAT_APPID),
            ("WECHAT_MINI_SECRET", "wechat-test-secret"),
            ("WECHAT_API_BASE", &wechat.uri()),
            ("DATABASE_MAX_CONNECTIONS", "5"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        adjust(&mut vars);
        if app_env != AppEnv::Test {
            vars.insert("HTTP_ADDR".into(), "127.0.0.1:0".into());
            vars.insert("HTTP_WORKERS".into(), "1".into());
        }
        let settings = Settings::from_sources(app_env, config_dir(), vars).expect("settings");
        let db_settings = settings.database.clone();
        let app = Application::build(settings).await.expect("app builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let sandbox = app.sandbox().cloned();
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        let db = Database::connect(&db_settings)
            .await
            .expect("test db handle");
        Some(TestApp {
            handle,
            sandbox,
            address,
            database_url,
            client: reqwest::Client::new(),
            db,
            wechat,
            _db_dir: db_dir,
        })
    }

    /// Development mode: the app mounts its sandbox and pays through it; the notify schedule
    /// runs at 1/100 speed.
    pub async fn spawn_with_sandbox(
        backend: Backend,
        adjust: impl FnOnce(&mut HashMap<String, String>),
    ) -> Option<TestApp> {
        TestApp::spawn_in(AppEnv::Development, backend, |vars| {
            vars.remove("WECHAT_MINI_APPID");
            vars.remove("WECHAT_MINI_SECRET");
            vars.remove("WECHAT_API_BASE");
            vars.insert("SANDBOX_NOTIFY_TIME_SCALE".into(), "0.01".into());
            adjust(vars);
        })
        .await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn get_with_token(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET")
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("POST")
    }

    /// Teaches the WeChat stand-in a login code.
    pub async fn wechat_knows(&self, code: &str, openid: &str) {
        Mock::given(method("GET"))
            .and(path("/sns/jscode2session"))
            .and(query_param("js_code", code))
            .and(query_param("appid", WECHAT_APPID))
            .and(query_param("grant_type", "authorization_code"))
            .respond_with(ResponseTemplate::new(200).set_body_string(
                json!({ "openid": openid, "session_key": "SESSION-KEY-NEVER-SHOWN" }).to_string(),
            ))
            .mount(&self.wechat)
            .await;
    }

    /// Logs in through the WeChat stand-in; answers (token, openid, user id).
    pub async fn login(&self, openid: &str) -> (String, String, i64) {
        let code = format!("code-{openid}");
        // With the sandbox mounted, its jscode2session maps the code to an openid of its own.
        if self.sandbox.is_none() {
            self.wechat_knows(&code, openid).await;
        }
        let response = self
            .post_json("/auth/wechat/login", None, &json!({ "code": code }))
            .await;
        let body = expect_status(response, StatusCode::OK).await;
        (
            body["token"].as_str().unwrap().to_owned(),
            body["openid"].as_str().unwrap().to_owned(),
            body["data"]["userId"].as_i64().unwrap(),
        )
    }

    pub async fn create_ticket_type(&self, name: &str, price: &str, stock: i64) -> Value {
        let body = format!(r#"{{"name": "{name}", "price": {price}, "stock": {stock}}}"#);
        let response = self
            .client
            .post(self.url("/admin/ticket-types"))
            .bearer_auth(ADMIN_TOKEN)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .expect("POST");
        expect_status(response, StatusCode::CREATED).await["data"].clone()
    }
}

/// Asserts the status and answers the JSON body.
pub async fn expect_status(response: Response, status: StatusCode) -> Value {
    let actual = response.status();
    let text = response.text().await.expect("body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

/// Asserts an error envelope with the status and code.
pub async fn expect_error(response: Response, status: StatusCode, code: &str) -> Value {
    let body = expect_status(response, status).await;
    assert_eq!(body["success"], json!(false), "{body}");
    assert_eq!(body["error"]["code"], json!(code), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}

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

    pub async fn sandbox_trade(&self, out_trade_no: &str) -> Value {
        self.get(&format!("/sandbox/trades/{out_trade_no}"))
            .await
            .json()
            .await
            .expect("JSON")
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
        use wallyt_pay::sandbox::{Sandbox, SandboxConfig};
        let sandbox = Sandbox::new(SandboxConfig::generated());
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
