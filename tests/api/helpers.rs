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

/// Long enough for production (32 characters at least).
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";
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
            drop_stale_databases(&mut conn).await;
            let name = format!(
                "wallyt_test_{}_{}",
                unix_secs(),
                uuid::Uuid::new_v4().simple()
            );
            conn.execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create test database");
            let mut url = url::Url::parse(&base).expect("TEST_DATABASE_URL is a URL");
            url.set_path(&name);
            Some((url.to_string(), None))
        }
    }
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Every test makes a database of its own and a run leaves hundreds behind; on a machine that
/// keeps them, autovacuum's launcher visits every one of them each minute, a load the
/// benchmarks then measure. Once per test process, databases of runs over two hours old go
/// (their names carry their creation time; no run lasts that long).
async fn drop_stale_databases(conn: &mut sqlx::PgConnection) {
    static ONCE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    ONCE.get_or_init(|| async {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT datname FROM pg_database WHERE datname LIKE 'wallyt\\_test\\_%'",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap_or_default();
        let cutoff = unix_secs().saturating_sub(2 * 3600);
        for name in names {
            let created = name
                .strip_prefix("wallyt_test_")
                .and_then(|rest| rest.split_once('_'))
                .and_then(|(secs, _)| secs.parse::<u64>().ok());
            if created.is_some_and(|secs| secs < cutoff) {
                let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                let _ = conn.execute(drop.as_str()).await;
            }
        }
    })
    .await;
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

/// A finished test lets go of its app: the engine's thread (which holds a pool of database
/// connections) stops, so a long run does not pile up connections on a shared PostgreSQL.
impl Drop for TestApp {
    fn drop(&mut self) {
        self.handle.stop_now();
    }
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
            // Many apps run at once against one PostgreSQL: keep each one's share small.
            ("DATABASE_READ_CONNECTIONS", "2"),
            // Most tests make many requests as one user from one IP (127.0.0.1); the shipped
            // defaults keep rate limits on, so tests turn them off here and the abuse tests
            // (tests/api/abuse.rs) turn them back on explicitly with small limits.
            ("RATE_LIMIT", "off"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        // `TEST_STORE_GROUP_COMMIT=on` runs the suite with payments group-committed too (the
        // default batches reservations only); a test that sets its own mode keeps it.
        if let Ok(mode) = std::env::var("TEST_STORE_GROUP_COMMIT") {
            vars.insert("STORE_GROUP_COMMIT".into(), mode);
        }
        adjust(&mut vars);
        if app_env != AppEnv::Test {
            // A test may choose its own address (another interface than loopback).
            vars.entry("HTTP_ADDR".into())
                .or_insert_with(|| "127.0.0.1:0".into());
            vars.insert("HTTP_WORKERS".into(), "1".into());
        }
        let settings = Settings::from_sources(app_env, config_dir(), vars).expect("settings");
        let db_settings = settings.database.clone();
        let app = Application::build(settings).await.expect("app builds");
        let address = format!("http://{}", app.address());
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
