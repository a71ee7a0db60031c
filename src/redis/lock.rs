//! Order leases in Redis: `SET key token NX PX ttl` takes one, a Lua compare-and-expire renews
//! it and a Lua compare-and-delete gives it back — never GET then DEL, which could delete a
//! lease that expired and was taken by another node in between.

use async_trait::async_trait;
use rand::RngCore;
use redis::aio::ConnectionManager;
use redis::Script;
use std::time::Duration;
use wallyt_pay_actors::ports::locks::next_fence;
use wallyt_pay_actors::ports::{Lease, LockManager};
use wallyt_pay_actors::{Clock, SystemClock};

/// Takes the lease and draws its fencing token in one step: `max(last + 1, now_ms * 1000)`,
/// so tokens keep growing even when Redis lost the last one (it keeps nothing on disk).
const ACQUIRE: &str = r#"
if redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then
  local last = tonumber(redis.call("GET", KEYS[2]) or "0")
  local fence = math.max(last + 1, tonumber(ARGV[3]))
  redis.call("SET", KEYS[2], string.format("%d", fence))
  return fence
else
  return -1
end"#;

const RENEW: &str = r#"
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
else
  return 0
end"#;

const RELEASE: &str = r#"
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
else
  return 0
end"#;

#[derive(Clone)]
pub struct RedisLocks {
    connection: ConnectionManager,
}

impl RedisLocks {
    pub async fn connect(url: &str) -> Result<RedisLocks, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let connection = ConnectionManager::new(client).await?;
        Ok(RedisLocks { connection })
    }

    pub async fn ping(&self) -> Result<(), redis::RedisError> {
        let mut connection = self.connection.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map(drop)
    }
}

fn token() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl LockManager for RedisLocks {
    async fn try_acquire(&self, key: &str, ttl: Duration) -> Result<Option<Lease>, String> {
        let token = token();
        let mut connection = self.connection.clone();
        let from_clock = next_fence(None, SystemClock.now().0);
        let fence: i64 = Script::new(ACQUIRE)
            .key(key)
            .key(format!("{key}:fence"))
            .arg(&token)
            .arg(millis(ttl))
            .arg(from_clock)
            .invoke_async(&mut connection)
            .await
            .map_err(|e| e.to_string())?;
        Ok((fence >= 0).then(|| Lease {
            key: key.to_owned(),
            token,
            fence,
        }))
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<bool, String> {
        let mut connection = self.connection.clone();
        let renewed: i64 = Script::new(RENEW)
            .key(&lease.key)
            .arg(&lease.token)
            .arg(millis(ttl))
            .invoke_async(&mut connection)
            .await
            .map_err(|e| e.to_string())?;
        Ok(renewed == 1)
    }

    async fn release(&self, lease: &Lease) -> Result<(), String> {
        let mut connection = self.connection.clone();
        let _: i64 = Script::new(RELEASE)
            .key(&lease.key)
            .arg(&lease.token)
            .invoke_async(&mut connection)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}
