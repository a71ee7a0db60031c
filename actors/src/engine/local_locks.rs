//! Leases within one process, for a single node (no `REDIS_URL`). Same contract as the Redis
//! one: expiring, released only by the holder's token.

use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::ports::locks::next_fence;
use crate::ports::{Lease, LockManager};
use crate::time::{Clock, SystemClock};

#[derive(Default)]
pub struct LocalLocks {
    held: Mutex<HashMap<String, (String, Instant)>>,
    next_token: AtomicU64,
    /// The last fencing token handed out per key (kept after release: tokens only grow).
    fences: Mutex<HashMap<String, i64>>,
}

impl LocalLocks {
    pub fn new() -> LocalLocks {
        LocalLocks::default()
    }
}

#[async_trait]
impl LockManager for LocalLocks {
    async fn try_acquire(&self, key: &str, ttl: Duration) -> Result<Option<Lease>, String> {
        let mut held = self.held.lock().map_err(|e| e.to_string())?;
        let now = Instant::now();
        if held.get(key).is_some_and(|(_, until)| *until > now) {
            return Ok(None);
        }
        let token = self.next_token.fetch_add(1, Ordering::Relaxed).to_string();
        held.insert(key.to_owned(), (token.clone(), now + ttl));
        let mut fences = self.fences.lock().map_err(|e| e.to_string())?;
        let fence = next_fence(fences.get(key).copied(), SystemClock.now().0);
        fences.insert(key.to_owned(), fence);
        Ok(Some(Lease {
            key: key.to_owned(),
            token,
            fence,
        }))
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<bool, String> {
        let mut held = self.held.lock().map_err(|e| e.to_string())?;
        match held.get_mut(&lease.key) {
            Some((token, until)) if *token == lease.token => {
                *until = Instant::now() + ttl;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release(&self, lease: &Lease) -> Result<(), String> {
        let mut held = self.held.lock().map_err(|e| e.to_string())?;
        if held
            .get(&lease.key)
            .is_some_and(|(token, _)| *token == lease.token)
        {
            held.remove(&lease.key);
        }
        Ok(())
    }
}
