//! CI smoke of the benchmark's scenarios (examples/load, the code scripts/bench.sh runs): each
//! scenario runs a few seconds, small, for correctness only — every one verifies its effects
//! in the database afterwards (orders confirmed exactly once with their tickets, exactly S
//! sold, stock adding up, refunds SUCCESS) and panics otherwise. No timing is asserted: a
//! debug build on a shared machine measures nothing. PostgreSQL (a fresh database) when
//! TEST_DATABASE_URL is set, else a fresh SQLite file.

// The generator's modules, compiled here as they are in the example; the parts only its
// command line uses (the full sizes) are unused in this crate.
#[allow(dead_code)]
#[path = "../examples/load/flash.rs"]
mod flash;
#[allow(dead_code)]
#[path = "../examples/load/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "../examples/load/mixed.rs"]
mod mixed;
#[allow(dead_code)]
#[path = "../examples/load/notify.rs"]
mod notify;
#[allow(dead_code)]
#[path = "../examples/load/plan.rs"]
mod plan;
#[allow(dead_code)]
#[path = "../examples/load/stats.rs"]
mod stats;
#[allow(dead_code)]
#[path = "../examples/load/status.rs"]
mod status;
#[allow(dead_code)]
#[path = "../examples/load/verify.rs"]
mod verify;

use sqlx::{Connection, Executor};

/// A fresh PostgreSQL database under TEST_DATABASE_URL (named like the API tests' so that CI
/// drops it), or a SQLite file in `dir`.
async fn fresh_database(dir: &std::path::Path) -> String {
    let Ok(base) = std::env::var("TEST_DATABASE_URL") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but TEST_DATABASE_URL is not set: the smoke must run on PostgreSQL"
        );
        return format!("sqlite://{}/pay.db", dir.display());
    };
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("TEST_DATABASE_URL is set but unreachable: {e}"));
    let name = format!("wallyt_test_{}", uuid::Uuid::new_v4().simple());
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create the smoke's database");
    let mut url = url::Url::parse(&base).expect("TEST_DATABASE_URL is a URL");
    url.set_path(&name);
    url.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_benchmark_scenario_runs_and_verifies_its_effects() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = fresh_database(dir.path()).await;
    let h = harness::Harness::start(&url).await;
    let names: Vec<String> = plan::SCENARIOS.iter().map(|s| s.to_string()).collect();
    let outcomes = plan::run(&h, &names, &plan::Sizes::smoke()).await;
    assert_eq!(outcomes.len(), plan::SCENARIOS.len());
    assert!(outcomes.iter().all(|o| o.count > 0), "{outcomes:?}");
}
