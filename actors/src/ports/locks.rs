//! Per-order leases, so that two nodes do not work on one order at once. A lease expires by
//! itself (a crashed node cannot hold an order forever) and is released only by its holder.
//! Losing a lease never breaks correctness: the store's guarded updates still decide.

use async_trait::async_trait;
use std::time::Duration;

/// A held lease: the key and the holder's random token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub key: String,
    pub token: String,
}

#[async_trait]
pub trait LockManager: Send + Sync {
    /// Takes the lease if nobody holds it; `None` when someone else does.
    async fn try_acquire(&self, key: &str, ttl: Duration) -> Result<Option<Lease>, String>;

    /// Extends a lease we still hold; false when it was lost.
    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<bool, String>;

    /// Gives the lease back, only if it is still ours.
    async fn release(&self, lease: &Lease) -> Result<(), String>;
}
