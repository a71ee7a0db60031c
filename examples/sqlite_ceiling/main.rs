//! The SQLite ceiling: the SQL of scripts/bench/*.sql (the same files pgbench runs on
//! PostgreSQL) in a tight loop in one process, against a fresh file with our migrations and
//! the server's pragmas (WAL, synchronous=NORMAL). Writers are one connection in a loop —
//! SQLite has one writer at a time, so more would only queue; the status read runs on
//! `SQLITE_CEILING_READERS` connections (default 4) at once, as WAL lets readers do.
//!
//! `cargo run --release --example sqlite_ceiling` (`SQLITE_CEILING_SECS`, default 5 per
//! script). Prints `ceiling scenario=… backend=sqlite rate=…` lines for scripts/bench.sh.

mod script;

use script::{Statement, Variables};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Column, Row, SqliteConnection, SqlitePool};
use std::time::{Duration, Instant};
use wallyt_pay::config::{DatabaseSettings, GroupCommit, SecretUrl};

const SEED: &str = include_str!("../../scripts/bench/seed.sql");
const NOTIFY: &str = include_str!("../../scripts/bench/notify.sql");
const HOT_ORDER: &str = include_str!("../../scripts/bench/hot_order.sql");
const STATUS: &str = include_str!("../../scripts/bench/status.sql");
/// Notify transactions one run may take (each confirms an order of its own).
const ORDERS: i64 = 200_000;
/// The instant every script writes (`\set now` in the scripts).
const NOW: i64 = 1_764_000_200_000;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let secs = Duration::from_secs(env_number("SQLITE_CEILING_SECS", 5));
    let readers = env_number("SQLITE_CEILING_READERS", 4) as usize;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("ceiling.db");
    // Our migrations, applied as the server applies them.
    let settings = DatabaseSettings {
        url: SecretUrl::new(format!("sqlite://{}", file.display())),
        max_connections: 1,
        read_connections: 0,
        acquire_timeout: Duration::from_secs(10),
        group_commit: GroupCommit::Off,
        group_commit_lanes: 1,
    };
    wallyt_pay::storage::Database::connect(&settings)
        .await
        .expect("migrations")
        .close()
        .await;
    let options = SqliteConnectOptions::new()
        .filename(&file)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(readers as u32 + 1)
        .connect_with(options)
        .await
        .expect("pool");
    seed(&pool).await;

    let mut conn = pool.acquire().await.expect("connection");
    let notify = script::parse(NOTIFY);
    let started = Instant::now();
    let mut n: i64 = 0;
    while started.elapsed() < secs {
        n += 1;
        assert!(n <= ORDERS, "seed more orders: the loop ran out");
        let vars = Variables::from([("oid".into(), n), ("now".into(), NOW)]);
        run(&mut conn, &notify, vars).await;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    let confirmed: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE status = 'CONFIRMED'")
            .fetch_one(&mut *conn)
            .await
            .expect("count");
    assert_eq!(
        confirmed,
        n + 300,
        "each notify transaction confirmed its order"
    );
    println!(
        "ceiling scenario=notify backend=sqlite rate={rate:.1} count={n} load1={}",
        load1()
    );

    let hot = script::parse(HOT_ORDER);
    let started = Instant::now();
    let mut orders = 0u64;
    while started.elapsed() < secs {
        orders += 1;
        run(&mut conn, &hot, Variables::from([("now".into(), NOW)])).await;
    }
    let rate = orders as f64 / started.elapsed().as_secs_f64();
    println!(
        "ceiling scenario=flash-sale backend=sqlite rate={rate:.1} count={orders} load1={}",
        load1()
    );
    drop(conn);

    let started = Instant::now();
    let tasks = (0..readers).map(|r| {
        let (pool, status) = (pool.clone(), script::parse(STATUS));
        tokio::spawn(async move {
            let mut conn = pool.acquire().await.expect("reader");
            let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ r as u64;
            let mut reads = 0u64;
            while started.elapsed() < secs {
                // xorshift: one of the 300 confirmed orders, as pgbench's random() picks.
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let oid = 50_000_001 + (seed % 300) as i64;
                run(&mut conn, &status, Variables::from([("oid".into(), oid)])).await;
                reads += 1;
            }
            reads
        })
    });
    let reads: u64 = futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("reader task"))
        .sum();
    let rate = reads as f64 / started.elapsed().as_secs_f64();
    println!(
        "ceiling scenario=status backend=sqlite rate={rate:.1} count={reads} readers={readers} load1={}",
        load1()
    );
    pool.close().await;
}

/// The 1-minute load average beside each figure (other work on the cores moves them).
fn load1() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "-".into())
}

/// Runs a script's statements with its variables; `\gset` rows add variables.
async fn run(conn: &mut SqliteConnection, statements: &[Statement], mut vars: Variables) {
    for statement in statements {
        // Writers take the lock up front, as `Database::begin_write` does on SQLite.
        let sql = if statement.sql == "BEGIN" {
            "BEGIN IMMEDIATE"
        } else {
            statement.sql.as_str()
        };
        let mut query = sqlx::query(sql);
        for name in &statement.params {
            let value = *vars
                .get(name)
                .unwrap_or_else(|| panic!("no value for :{name}"));
            query = query.bind(value);
        }
        let rows = query.fetch_all(&mut *conn).await.expect(sql);
        if statement.gset {
            let row = rows.first().expect("\\gset wants a row");
            for column in row.columns() {
                if let Ok(value) = row.try_get::<i64, _>(column.ordinal()) {
                    vars.insert(column.name().to_owned(), value);
                }
            }
        }
    }
}

/// seed.sql for one notify client of [`ORDERS`] orders, over a table of integers.
async fn seed(pool: &SqlitePool) {
    let mut conn = pool.acquire().await.expect("connection");
    sqlx::query(
        "CREATE TEMP TABLE bench_series AS WITH RECURSIVE n(value) AS \
         (SELECT 0 UNION ALL SELECT value + 1 FROM n WHERE value < ?1) SELECT value FROM n",
    )
    .bind(ORDERS)
    .execute(&mut *conn)
    .await
    .expect("series");
    let vars = Variables::from([("clients".into(), 1), ("per_client".into(), ORDERS)]);
    sqlx::query("BEGIN")
        .execute(&mut *conn)
        .await
        .expect("begin");
    run(&mut conn, &script::parse(SEED), vars).await;
    sqlx::query("COMMIT")
        .execute(&mut *conn)
        .await
        .expect("commit");
    sqlx::query("DROP TABLE bench_series")
        .execute(&mut *conn)
        .await
        .expect("drop series");
}
