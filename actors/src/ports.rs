//! Ports: what the engine needs from the outside world, as traits. The application implements
//! them with sqlx (and later reqwest and redis); tests of the engine can implement them in
//! memory. Each store method is one transaction.

use crate::catalog::{NewTicketType, TicketType};
use crate::time::UnixMillis;
use crate::user::User;
use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or timed out: the caller may retry later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A unique key or a guarded update refused the write: someone else got there first.
    #[error("storage conflict: {0}")]
    Conflict(String),
    /// Anything else: a bug or a schema mismatch, never the caller's fault.
    #[error("storage failure: {0}")]
    Other(String),
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates the user on first login, refreshes `last_login_at` (and a newly learnt unionid)
    /// afterwards. Safe under concurrent logins of the same openid.
    async fn upsert_user(
        &self,
        openid: &str,
        unionid: Option<&str>,
        now: UnixMillis,
    ) -> Result<User, StoreError>;

    async fn find_user(&self, id: i64) -> Result<Option<User>, StoreError>;
}

#[async_trait]
pub trait CatalogStore: Send + Sync {
    async fn create_ticket_type(
        &self,
        new: &NewTicketType,
        now: UnixMillis,
    ) -> Result<TicketType, StoreError>;

    async fn ticket_type(&self, id: i64) -> Result<Option<TicketType>, StoreError>;

    /// All ticket types, oldest first.
    async fn ticket_types(&self) -> Result<Vec<TicketType>, StoreError>;
}
