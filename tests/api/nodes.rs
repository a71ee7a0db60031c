//! The real `wallyt-pay` binary as a child process against the standalone sandbox `Gateway`:
//! for tests that kill a node with SIGKILL (no shutdown code runs) or run several of them.

use secrecy::ExposeSecret;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{config_dir, ADMIN_TOKEN, JWT_SECRET};
use crate::shop::Gateway;

const BINARY: &str = env!("CARGO_BIN_EXE_wallyt-pay");

/// One running node; dropping it kills the process.
pub struct Node {
    pub child: Child,
    pub base: String,
}

impl Node {
    /// SIGKILL (on unix `Child::kill` sends SIGKILL), and reaps the process.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the binary against the gateway (and its jscode2session) with short deadlines;
/// `vars` are set after (and so override) the defaults. With `log`, the node's output goes
/// to that file, otherwise it is discarded.
pub async fn start(
    gateway: &Gateway,
    database_url: &str,
    vars: &[(&str, String)],
    log: Option<&Path>,
) -> Node {
    let port = free_port();
    let config = gateway.sandbox.config();
    let mut command = Command::new(BINARY);
    command
        .env_clear()
        .env("APP_ENV", "test")
        .env("CONFIG_DIR", config_dir())
        .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", database_url)
        .env("JWT_SECRET", JWT_SECRET)
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env("WECHAT_MINI_APPID", &config.appid)
        .env("WECHAT_MINI_SECRET", config.app_secret.expose_secret())
        .env("WECHAT_API_BASE", &gateway.base)
        .env("WALLYT_API_URL", format!("{}/pay/gateway", gateway.base))
        .env("WALLYT_MCH_ID", &config.mch_id)
        .env("WALLYT_SECRET_KEY", config.key.expose_secret())
        .env(
            "WALLYT_NOTIFY_URL",
            "http://127.0.0.1:9/payments/wallyt/notify",
        )
        .env("PREPAY_TTL", "3s")
        .env("ORDER_TTL", "5s")
        .env("EXPIRY_GRACE", "100ms")
        .env("QUERY_SCHEDULE", "");
    for (name, value) in vars {
        command.env(name, value);
    }
    match log {
        Some(path) => {
            let file = std::fs::File::create(path).unwrap();
            command.stdout(file.try_clone().unwrap()).stderr(file);
        }
        None => {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
    }
    let child = command.spawn().unwrap();
    let mut node = Node {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if reqwest::get(format!("{}/readyz", node.base))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return node;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    node.kill();
    panic!("the server did not become ready");
}
