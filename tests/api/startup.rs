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
    let mut child = Command::new(BINARY)
        .env_clear()
        .env("CONFIG_DIR", crate::helpers::config_dir())
        .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
        .current_dir(dir.path())
        .stdout(Stdio::null())
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
