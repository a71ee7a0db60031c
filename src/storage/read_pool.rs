//! Connections for the status read, kept outside sqlx's pool. sqlx pings every connection it
//! takes back (one more round trip to the database per request, before the connection can
//! serve the next one); for `GET /payments/status`, the endpoint buyers poll, that ping cost
//! as much as the query itself (docs/benchmarks.md, "The status read"). Here a connection
//! goes back as it is and is pinged before use only after it has been idle for a while.
//!
//! A request dropped mid-query leaves its connection with an answer in flight: such a
//! connection is thrown away, not returned (sqlx would drain it before the next statement,
//! but nothing needs that bet). A connection that fails is thrown away with every idle one,
//! and the read is tried once more on a fresh connection: it is a read, and the database may
//! simply have restarted.

use deadpool::managed::{self, Metrics, Object, Pool, RecycleResult};
use deadpool::Runtime;
use sqlx::AnyConnection;
use sqlx::Connection;
use std::time::Duration;
use wallyt_pay_actors::StoreError;

use super::store_error;

/// Idle longer than this, a connection is pinged before it is handed out again.
const PING_IDLE_AFTER: Duration = Duration::from_secs(1);

/// The `application_name` the read connections announce (what an operator sees in
/// `pg_stat_activity`).
pub const APPLICATION_NAME: &str = "wallyt-pay-reads";

#[derive(Debug)]
struct Connections {
    url: String,
}

impl managed::Manager for Connections {
    type Type = AnyConnection;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<AnyConnection, sqlx::Error> {
        AnyConnection::connect(&self.url).await
    }

    async fn recycle(
        &self,
        connection: &mut AnyConnection,
        metrics: &Metrics,
    ) -> RecycleResult<sqlx::Error> {
        if metrics.last_used() >= PING_IDLE_AFTER {
            connection.ping().await?;
        }
        Ok(())
    }
}

/// A small set of PostgreSQL connections for one-statement reads.
#[derive(Clone, Debug)]
pub struct ReadPool {
    pool: Pool<Connections>,
}

impl ReadPool {
    /// `size` connections at most, opened on first use; `wait` bounds how long a read waits
    /// for one (as `DATABASE_ACQUIRE_TIMEOUT` does for the main pool).
    pub fn new(url: &str, size: usize, wait: Duration) -> Result<ReadPool, StoreError> {
        let separator = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{separator}application_name={APPLICATION_NAME}");
        let pool = Pool::builder(Connections { url })
            .max_size(size)
            .wait_timeout(Some(wait))
            .create_timeout(Some(wait))
            .recycle_timeout(Some(wait))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Other(format!("read connections: {e}")))?;
        Ok(ReadPool { pool })
    }

    /// Runs `read` on a connection; on a failure, once more on a new connection.
    pub async fn read<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        F: for<'c> Fn(
            &'c mut AnyConnection,
        ) -> futures_util::future::BoxFuture<'c, Result<T, sqlx::Error>>,
    {
        let mut last = None;
        for _ in 0..2 {
            let object = self.pool.get().await.map_err(|e| match e {
                managed::PoolError::Backend(error) => store_error(error),
                other => StoreError::Unavailable(format!("read connections: {other}")),
            })?;
            let mut borrowed = Borrowed(Some(object));
            let result = read(borrowed.connection()).await;
            match result {
                Ok(value) => {
                    borrowed.give_back();
                    return Ok(value);
                }
                Err(error) if retryable(&error) => {
                    // Not back into the pool (`borrowed` drops it). A connection lost is most
                    // often all of them lost (the database restarted): the idle ones go too,
                    // so the retry opens a fresh one instead of drawing another dead one.
                    drop(borrowed);
                    self.pool.retain(|_, _| false);
                    last = Some(error);
                }
                Err(error) => {
                    borrowed.give_back();
                    return Err(store_error(error));
                }
            }
        }
        Err(store_error(last.expect("a failed attempt")))
    }

    /// Closes the idle connections and refuses new reads.
    pub fn close(&self) {
        self.pool.close();
    }
}

/// A connection out of the pool: it goes back only when its read finished; dropped in the
/// middle (the request was cancelled) or after a connection error, it is closed instead.
struct Borrowed(Option<Object<Connections>>);

impl Borrowed {
    fn connection(&mut self) -> &mut AnyConnection {
        self.0.as_mut().expect("borrowed until given back")
    }

    fn give_back(mut self) {
        // Dropping the object returns it to the pool.
        drop(self.0.take());
    }
}

impl Drop for Borrowed {
    fn drop(&mut self) {
        if let Some(object) = self.0.take() {
            drop(Object::take(object));
        }
    }
}

/// A failure of the connection rather than of the statement.
fn retryable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::Tls(_)
    ) || matches!(error, sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("57P") || c.starts_with("08")))
}
