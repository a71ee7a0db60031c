//! The LockSupervisor owns the lock backend (Redis across nodes, in-process otherwise) and
//! keeps the leases it hands out alive: each one is renewed at a third of its TTL until it is
//! released, so a long gateway call does not lose it, while a crashed node's lease still
//! expires on its own.
//!
//! The lock service may be down or slow. Every call to it is bounded (`call_timeout`), so an
//! order message never waits on it for more than that: it answers busy (503, `fail` to a
//! notify) and its work is retried, while the store's guards and the fencing tokens keep
//! correctness without the lock service.

use actix::prelude::*;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::ActorError;
use crate::ports::{Lease, LockManager};

/// How long one call to the lock service may take before the order is answered busy.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(2);

pub struct LockSupervisor {
    locks: Arc<dyn LockManager>,
    ttl: Duration,
    wait: Duration,
    call_timeout: Duration,
    renewals: HashMap<String, SpawnHandle>,
}

impl LockSupervisor {
    pub fn new(locks: Arc<dyn LockManager>, ttl: Duration, wait: Duration) -> LockSupervisor {
        LockSupervisor {
            locks,
            ttl,
            wait,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            renewals: HashMap::new(),
        }
    }

    pub fn with_call_timeout(mut self, call_timeout: Duration) -> LockSupervisor {
        self.call_timeout = call_timeout;
        self
    }
}

/// One call to the lock service, an error when it does not answer within `limit`.
async fn bounded<T>(
    limit: Duration,
    call: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(limit, call)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {limit:?}")))
}

impl Actor for LockSupervisor {
    type Context = Context<Self>;
}

/// Take the lease on `key`, waiting up to the configured time for its holder.
pub struct Acquire {
    pub key: String,
}

impl Message for Acquire {
    type Result = Result<Lease, ActorError>;
}

pub struct Release(pub Lease);

impl Message for Release {
    type Result = ();
}

impl Handler<Acquire> for LockSupervisor {
    type Result = ResponseActFuture<Self, Result<Lease, ActorError>>;

    fn handle(&mut self, msg: Acquire, _: &mut Context<Self>) -> Self::Result {
        let locks = self.locks.clone();
        let (ttl, wait, limit) = (self.ttl, self.wait, self.call_timeout);
        let acquire = async move {
            let deadline = Instant::now() + wait;
            loop {
                match bounded(limit, locks.try_acquire(&msg.key, ttl)).await {
                    Ok(Some(lease)) => return Ok(lease),
                    Ok(None) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(20)).await
                    }
                    Ok(None) => {
                        return Err(ActorError::Busy("another node holds the order".into()))
                    }
                    // Waiting would not help an order whose lease nobody can grant: answer now.
                    Err(error) => return Err(ActorError::Busy(format!("lock service: {error}"))),
                }
            }
        };
        Box::pin(acquire.into_actor(self).map(|result, act, ctx| {
            if let Ok(lease) = &result {
                let handle = act.keep_renewing(lease.clone(), ctx);
                act.renewals.insert(lease.token.clone(), handle);
            }
            result
        }))
    }
}

impl LockSupervisor {
    fn keep_renewing(&mut self, lease: Lease, ctx: &mut Context<Self>) -> SpawnHandle {
        ctx.run_interval(self.ttl / 3, move |act, ctx| {
            let (locks, lease) = (act.locks.clone(), lease.clone());
            let (ttl, limit) = (act.ttl, act.call_timeout);
            ctx.spawn(
                async move {
                    match bounded(limit, locks.renew(&lease, ttl)).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(event = "order.lease.lost", key = %lease.key),
                        // Still ours as far as we know; the next renewal tries again, and the
                        // fencing token guards the store if it did expire meanwhile.
                        Err(error) => {
                            tracing::warn!(event = "order.lease.renew_failed", key = %lease.key, %error)
                        }
                    }
                }
                .into_actor(act),
            );
        })
    }
}

impl Handler<Release> for LockSupervisor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, Release(lease): Release, ctx: &mut Context<Self>) -> Self::Result {
        if let Some(handle) = self.renewals.remove(&lease.token) {
            ctx.cancel_future(handle);
        }
        let (locks, limit) = (self.locks.clone(), self.call_timeout);
        Box::pin(async move {
            if let Err(error) = bounded(limit, locks.release(&lease)).await {
                // It expires on its own; the database guards correctness meanwhile.
                tracing::warn!(event = "order.lease.release_failed", key = %lease.key, %error);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;

    /// A lock service that never answers (a host that dropped off the network).
    struct Silent;

    #[async_trait]
    impl LockManager for Silent {
        async fn try_acquire(&self, _: &str, _: Duration) -> Result<Option<Lease>, String> {
            std::future::pending().await
        }
        async fn renew(&self, _: &Lease, _: Duration) -> Result<bool, String> {
            std::future::pending().await
        }
        async fn release(&self, _: &Lease) -> Result<(), String> {
            std::future::pending().await
        }
    }

    #[actix::test]
    async fn a_silent_lock_service_answers_busy_within_the_call_timeout() {
        let ttl = Duration::from_secs(15);
        let supervisor = LockSupervisor::new(Arc::new(Silent), ttl, Duration::from_secs(5))
            .with_call_timeout(Duration::from_millis(200))
            .start();
        let started = Instant::now();
        let answer = supervisor.send(Acquire { key: "k".into() }).await.unwrap();
        assert!(matches!(answer, Err(ActorError::Busy(_))), "{answer:?}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );

        let lease = Lease {
            key: "k".into(),
            token: "t".into(),
            fence: 1,
        };
        let started = Instant::now();
        supervisor.send(Release(lease)).await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
}
