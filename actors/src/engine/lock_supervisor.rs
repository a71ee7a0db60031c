//! The LockSupervisor owns the lock backend (Redis across nodes, in-process otherwise) and
//! keeps the leases it hands out alive: each one is renewed at a third of its TTL until it is
//! released, so a long gateway call does not lose it, while a crashed node's lease still
//! expires on its own.

use actix::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::ActorError;
use crate::ports::{Lease, LockManager};

pub struct LockSupervisor {
    locks: Arc<dyn LockManager>,
    ttl: Duration,
    wait: Duration,
    renewals: HashMap<String, SpawnHandle>,
}

impl LockSupervisor {
    pub fn new(locks: Arc<dyn LockManager>, ttl: Duration, wait: Duration) -> LockSupervisor {
        LockSupervisor {
            locks,
            ttl,
            wait,
            renewals: HashMap::new(),
        }
    }
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
        let (ttl, wait) = (self.ttl, self.wait);
        let acquire = async move {
            let deadline = Instant::now() + wait;
            loop {
                match locks.try_acquire(&msg.key, ttl).await {
                    Ok(Some(lease)) => return Ok(lease),
                    Ok(None) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(20)).await
                    }
                    Ok(None) => {
                        return Err(ActorError::Busy("another node holds the order".into()))
                    }
                    Err(error) => return Err(ActorError::Busy(format!("lock service: {error}"))),
                }
            }
        };
        Box::pin(acquire.into_actor(self).map(|result, act, ctx| {
            if let Ok(lease) = &result {
                let renewing = lease.clone();
                let handle = ctx.run_interval(act.ttl / 3, move |act, ctx| {
                    let (locks, lease, ttl) = (act.locks.clone(), renewing.clone(), act.ttl);
                    ctx.spawn(
                        async move {
                            if !matches!(locks.renew(&lease, ttl).await, Ok(true)) {
                                tracing::warn!(event = "order.lease.lost", key = %lease.key);
                            }
                        }
                        .into_actor(act),
                    );
                });
                act.renewals.insert(lease.token.clone(), handle);
            }
            result
        }))
    }
}

impl Handler<Release> for LockSupervisor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, Release(lease): Release, ctx: &mut Context<Self>) -> Self::Result {
        if let Some(handle) = self.renewals.remove(&lease.token) {
            ctx.cancel_future(handle);
        }
        let locks = self.locks.clone();
        Box::pin(async move {
            if let Err(error) = locks.release(&lease).await {
                // It expires on its own; the database guards correctness meanwhile.
                tracing::warn!(event = "order.lease.release_failed", key = %lease.key, %error);
            }
        })
    }
}
