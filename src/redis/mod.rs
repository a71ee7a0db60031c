//! Redis, when `REDIS_URL` is set: the cross-node order leases.

pub mod lock;

pub use lock::RedisLocks;
