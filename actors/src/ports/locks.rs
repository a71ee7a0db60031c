//! Per-order leases, so that two nodes do not work on one order at once. A lease expires by
//! itself (a crashed node cannot hold an order forever) and is released only by its holder.
//! Losing a lease never breaks correctness: the store's guarded updates still decide, and each
//! lease carries a fencing token that those updates check, so a holder that lost its lease
//! (paused, partitioned) cannot commit after the next holder did.

use async_trait::async_trait;
use std::time::Duration;

/// A held lease: the key, the holder's random token, and its fencing token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub key: String,
    pub token: String,
    /// Strictly greater than the fence of every earlier lease on the same key, also across a
    /// restart of the lock service (it starts from the clock: `max(last + 1, now_ms * 1000)`).
    pub fence: i64,
}

/// The next fencing token after `last`, given the wall clock: monotonic while the lock service
/// remembers `last`, and still above every token it handed out before it forgot (a Redis
/// restart), as long as fewer than 1,000 leases a millisecond are taken on one key.
pub fn next_fence(last: Option<i64>, now_millis: i64) -> i64 {
    let from_clock = now_millis.saturating_mul(1000);
    last.map_or(from_clock, |last| last.saturating_add(1).max(from_clock))
}

/// Calls should fail, not hang, when the lock service cannot be reached: the caller answers
/// busy and retries. (The `LockSupervisor` bounds every call too, as a last resort.)
#[async_trait]
pub trait LockManager: Send + Sync {
    /// Takes the lease if nobody holds it; `None` when someone else does.
    async fn try_acquire(&self, key: &str, ttl: Duration) -> Result<Option<Lease>, String>;

    /// Extends a lease we still hold; false when it was lost.
    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<bool, String>;

    /// Gives the lease back, only if it is still ours.
    async fn release(&self, lease: &Lease) -> Result<(), String>;
}
