//! A load generator against the real application, started in this process with its built-in
//! sandbox as the gateway (the generator shares the machine's cores with it).
//!
//! `cargo run --release --example load -- [SCENARIO…]` with scenarios `notify`,
//! `notify-open-loop`, `flash-sale`, `status`, `mixed` (default: all, in that order).
//! `-- migrate` only applies the migrations to `LOAD_DATABASE_URL` (scripts/bench.sh uses it
//! for the pgbench ceiling's database).
//!
//! Environment: `LOAD_DATABASE_URL` (default: a fresh SQLite file), sizes as `LOAD_<FIELD>`
//! (see plan.rs), server settings as `LOAD_SERVER_<NAME>` (e.g. `LOAD_SERVER_HTTP_WORKERS=1`),
//! `LOAD_LOG_FILE` for the server's log (default: discarded with the temp dir),
//! `LOAD_LOG_FORMAT` (`json`, as production logs, or `pretty`).
//!
//! Each scenario verifies its effects in the database and panics when they are wrong; each
//! prints a `result scenario=… rate=… p99_ms=…` line for scripts/bench.sh.

mod flash;
mod harness;
mod mixed;
mod notify;
mod plan;
mod stats;
mod status;
mod verify;

use wallyt_pay::config::{DatabaseSettings, GroupCommit, LogFormat, SecretUrl};

#[tokio::main]
async fn main() {
    let mut names: Vec<String> = std::env::args().skip(1).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = std::env::var("LOAD_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}/pay.db", dir.path().display()));
    if names == ["migrate"] {
        let url = SecretUrl::new(database_url);
        let settings = DatabaseSettings {
            url: url.clone(),
            max_connections: 1,
            read_connections: 0,
            acquire_timeout: std::time::Duration::from_secs(10),
            group_commit: GroupCommit::Off,
            group_commit_lanes: 1,
        };
        wallyt_pay::storage::Database::connect(&settings)
            .await
            .expect("migrations apply");
        println!("migrated {}", url.redacted());
        return;
    }
    if names.is_empty() || names == ["all"] {
        names = plan::SCENARIOS.iter().map(|s| s.to_string()).collect();
    }
    let log_file = std::env::var("LOAD_LOG_FILE")
        .unwrap_or_else(|_| dir.path().join("server.log").display().to_string());
    let log = std::fs::File::create(&log_file).expect("log file");
    let format = match std::env::var("LOAD_LOG_FORMAT").as_deref() {
        Ok("pretty") => LogFormat::Pretty,
        _ => LogFormat::Json,
    };
    wallyt_pay::telemetry::init_with_writer(format, std::sync::Mutex::new(log));

    let h = harness::Harness::start(&database_url).await;
    let sizes = plan::Sizes::full();
    println!("load: {} at {}, {sizes:?}", h.backend(), h.base);
    plan::run(&h, &names, &sizes).await;
}
