//! Storage: the sqlx adapters behind the engine's store ports. One `Database` speaks to either
//! the embedded SQLite file or PostgreSQL through sqlx's `Any` driver, so every query is
//! written once (`$1` placeholders, BIGINT money and millisecond instants work on both);
//! only the migrations differ per backend.

pub mod admin;
mod attention;
pub mod batcher;
mod catalog;
pub mod dashboard;
mod expiry;
mod fence;
pub mod gateway_errors;
pub mod idempotency;
pub mod notify_audit;
mod orders;
mod payments;
pub mod read_pool;
pub mod reconciliation;
pub mod refund_list;
mod refunds;
pub mod request_ids;
mod reserve;
mod status;
mod stock;
mod tickets;
mod users;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Connection, Executor, Transaction};
use std::path::Path;
use wallyt_pay_actors::StoreError;

use crate::config::{DatabaseSettings, GroupCommit};

pub use status::{OrderStatusRow, PaymentBrief};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The pool plus which backend it talks to, and the group-commit batchers that apply
/// reservations and payments when it is on (`STORE_GROUP_COMMIT`).
#[derive(Clone, Debug)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
    /// Reservations (`POST /orders`).
    batcher: Option<batcher::CommitBatcher>,
    /// Payment applications (`STORE_GROUP_COMMIT=on`): the same batcher on SQLite, one of
    /// several lanes on PostgreSQL.
    payments: Option<batcher::CommitBatcher>,
    /// Where the status read runs, when it has connections of its own (PostgreSQL).
    reads: Option<read_pool::ReadPool>,
}

/// A pooled connection idle this long is pinged before use (see `Database::connect`).
const PING_IDLE_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Database {
    /// Connects (creating the SQLite file and its folder on first start) and applies the
    /// migrations of the backend.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Database, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = backend_url(settings.url.expose())?;
        let mut options = AnyPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            // sqlx pings every connection when it goes back to the pool, and by default again
            // when it is taken out: two extra round trips per checkout, which the status
            // endpoint's profile showed costing more than its one query. A connection that
            // went back (pinged) moments ago is alive; only one idle for a while — the
            // database may have restarted meanwhile — is pinged before it is handed out.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_IDLE_AFTER {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            });
        if backend == Backend::Sqlite {
            options = options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL lets readers run beside the one writer; the busy timeout makes
                    // writers queue instead of failing; foreign keys are off by default.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(&url).await.map_err(store_error)?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&pool)
            .await
            .map_err(|e| StoreError::Other(format!("migrations failed: {e}")))?;
        // In-process SQLite has no round trip to save: its reads share the pool.
        let reads = (backend == Backend::Postgres && settings.read_connections > 0)
            .then(|| {
                let size = settings.read_connections as usize;
                read_pool::ReadPool::new(&url, size, settings.acquire_timeout)
            })
            .transpose()?;
        let db = Database {
            pool,
            backend,
            batcher: None,
            payments: None,
            reads,
        };
        // Half the pool by default: the other half serves everything else meanwhile. Never
        // all of it: the reservations' batcher and the unbatched transitions (expiry,
        // refunds) need connections too.
        let most = settings.max_connections.saturating_sub(2).max(1);
        let lanes = match settings.group_commit_lanes {
            0 => (settings.max_connections / 2).max(1),
            lanes => lanes,
        }
        .min(most);
        Ok(db.with_group_commit(settings.group_commit, lanes as usize))
    }

    /// This database with what `mode` names group-committed by batcher tasks of its own (see
    /// [`batcher`]); `Auto` picks by backend. On PostgreSQL payments get `lanes` lanes and
    /// reservations a batcher of their own (their stock locks come first, see `batcher`); on
    /// SQLite, one writer, one batcher of one lane takes both.
    pub fn with_group_commit(self, mode: GroupCommit, lanes: usize) -> Database {
        let unbatched = Database {
            batcher: None,
            payments: None,
            ..self
        };
        let mode = match mode {
            GroupCommit::Auto => GroupCommit::On,
            mode => mode,
        };
        if mode == GroupCommit::Off {
            return unbatched;
        }
        let reservations = batcher::CommitBatcher::spawn(unbatched.clone(), 1);
        let payments = match (mode, self.backend) {
            (GroupCommit::Reservations, _) => None,
            (_, Backend::Sqlite) => Some(reservations.clone()),
            (_, Backend::Postgres) => Some(batcher::CommitBatcher::spawn(unbatched.clone(), lanes)),
        };
        Database {
            batcher: Some(reservations),
            payments,
            ..unbatched
        }
    }

    /// The batcher of reservations, when group commit is on for anything.
    pub fn batcher(&self) -> Option<&batcher::CommitBatcher> {
        self.batcher.as_ref()
    }

    /// The batcher that applies payments, when they are group-committed (on SQLite the one
    /// above).
    pub fn payment_batcher(&self) -> Option<&batcher::CommitBatcher> {
        self.payments.as_ref()
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The status read's own connections, when it has them.
    pub(crate) fn reads(&self) -> Option<&read_pool::ReadPool> {
        self.reads.as_ref()
    }

    /// The raw pool, for the conformance tests and the adapters in this module.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Readiness: one round trip.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(store_error)
    }

    /// Starts a write transaction. On SQLite it takes the write lock up front (`BEGIN
    /// IMMEDIATE`): a deferred transaction that read first and then tries to write can fail
    /// with SQLITE_BUSY instead of waiting its turn.
    pub async fn begin_write(&self) -> Result<Transaction<'static, sqlx::Any>, StoreError> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
        .map_err(store_error)
    }

    pub async fn close(&self) {
        if let Some(reads) = &self.reads {
            reads.close();
        }
        self.pool.close().await;
    }
}

/// Tells the backend from the URL and makes a SQLite URL create its file (and folder).
fn backend_url(url: &str) -> Result<(Backend, String), StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_owned()));
    }
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Err(StoreError::Other(
            "DATABASE_URL must start with sqlite: or postgres://".into(),
        ));
    };
    let path = rest.trim_start_matches("//");
    let (file, query) = path.split_once('?').unwrap_or((path, ""));
    if file != ":memory:" && !file.is_empty() {
        if let Some(dir) = Path::new(file)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Other(format!("cannot create {}: {e}", dir.display())))?;
        }
    }
    let url = if query.contains("mode=") {
        url.to_owned()
    } else if query.is_empty() {
        format!("{url}?mode=rwc")
    } else {
        format!("{url}&mode=rwc")
    };
    Ok((Backend::Sqlite, url))
}

/// Sorts sqlx errors into what a caller can act on.
pub(crate) fn store_error(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => StoreError::Unavailable(error.to_string()),
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_owned())
        }
        _ => StoreError::Other(error.to_string()),
    }
}

/// Reads a column the way both backends store it.
pub(crate) fn column<T>(row: &AnyRow, name: &str) -> Result<T, StoreError>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    use sqlx::Row;
    row.try_get(name).map_err(store_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_get_create_mode() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nested/pay.db");
        let (backend, url) = backend_url(&format!("sqlite://{}", file.display())).unwrap();
        assert_eq!(backend, Backend::Sqlite);
        assert!(url.ends_with("?mode=rwc"));
        assert!(file.parent().unwrap().is_dir());
        let (_, url) = backend_url("sqlite::memory:?cache=shared").unwrap();
        assert!(url.ends_with("&mode=rwc"));
        assert_eq!(
            backend_url("postgres://u@h/db").unwrap().0,
            Backend::Postgres
        );
        assert!(backend_url("mysql://u@h/db").is_err());
    }
}
