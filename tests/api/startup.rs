//! The server binary itself: refuses production without its secrets, and on the embedded
//! default creates its SQLite file under `data/` and serves.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_wallyt-pay");

#[test]
fn production_refuses_to_start_without_jwt_secret() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BINARY)
        .env_clear()
        .env("APP_ENV", "production")
        .env("ADMIN_TOKEN", "some-admin-token")
        .env("CONFIG_DIR", crate::helpers::config_dir())
        .env("HTTP_ADDR", "127.0.0.1:0")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("JWT_SECRET is required in production"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "nothing is created before refusing"
    );
}

#[test]
fn development_default_serves_on_an_sqlite_file_under_data() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = dir.path().join("server.log");
    let mut child = Command::new(BINARY)
        .env_clear()
        .env("CONFIG_DIR", crate::helpers::config_dir())
        .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("NO_COLOR", "1")
        .current_dir(dir.path())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut healthy = false;
    while Instant::now() < deadline && !healthy {
        std::thread::sleep(Duration::from_millis(100));
        healthy = probe::get_ok(&format!("http://127.0.0.1:{port}/readyz"));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(healthy, "the server did not become ready");
    assert!(dir.path().join("data/pay.db").is_file());
    let token = std::fs::read_to_string(dir.path().join("data/dev-admin-token")).unwrap();
    assert!(token.starts_with("dev-"));
    let output = std::fs::read_to_string(&log).unwrap();
    assert!(
        output.contains("BUILT-IN SANDBOX") && output.contains("no real money can move"),
        "the banner says the sandbox is mounted: {output}"
    );
}

/// Production refuses a guessable admin token and clear-text gateway URLs before it creates
/// anything, and says which setting is wrong.
#[test]
fn production_refuses_short_admin_tokens_and_plain_http() {
    let cases = [
        (vec![("ADMIN_TOKEN", "short-admin-token")], "ADMIN_TOKEN"),
        (
            vec![("WECHAT_API_BASE", "http://api.weixin.qq.com")],
            "WECHAT_API_BASE",
        ),
        (vec![("WALLYT_SIGN_TYPE", "SHA256")], "WALLYT_SIGN_TYPE"),
    ];
    for (vars, named) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(BINARY);
        command
            .env_clear()
            .env("APP_ENV", "production")
            .env("JWT_SECRET", "0123456789abcdef0123456789abcdef")
            .env("ADMIN_TOKEN", "0123456789abcdef0123456789abcdef")
            .env("CONFIG_DIR", crate::helpers::config_dir())
            .env("HTTP_ADDR", "127.0.0.1:0")
            .current_dir(dir.path());
        for (name, value) in &vars {
            command.env(name, value);
        }
        let output = command.output().unwrap();
        assert!(!output.status.success(), "{named}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("refusing to start") && stderr.contains(named),
            "{stderr}"
        );
        assert!(
            !stderr.contains("short-admin-token"),
            "the token is not echoed"
        );
        assert!(!dir.path().join("data").exists(), "nothing is created");
    }
}

/// A blocking HTTP probe, so this test needs no runtime.
mod probe {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    pub fn get_ok(url: &str) -> bool {
        let rest = url.trim_start_matches("http://");
        let (host, path) = rest.split_once('/').unwrap();
        let Ok(mut stream) = TcpStream::connect(host) else {
            return false;
        };
        let request = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response.starts_with("HTTP/1.1 200")
    }
}
