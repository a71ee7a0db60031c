//! A deterministic simulator of the real engine (issue 9): the actix order actors, registry,
//! refund poller, expiry scheduler and lock supervisor run unchanged on paused tokio time
//! against an in-memory store with the SQL store's guards ([`memory_store`]), a model of the
//! Wallyt gateway whose answers are delivered one step at a time ([`model_gateway`]), and
//! several nodes sharing one lock service ([`node`]). [`world`] picks the steps from a seed;
//! [`invariants`] says whether money and stock are still right. [`conformance`] holds the
//! store checks any `OrderStore` must pass (the root crate runs them against SQL).

pub mod conformance;
pub mod harness;
pub mod invariants;
pub mod memory_store;
pub mod model_gateway;
pub mod node;
pub mod world;

pub use memory_store::{Guards, MemoryStore};
pub use world::{run_seed, SeedReport, SimConfig};

use crate::time::{Clock, UnixMillis};

/// splitmix64: tiny, seedable and identical on every platform, so a seed replays exactly.
#[derive(Clone, Debug)]
pub struct SimRng(u64);

impl SimRng {
    pub fn new(seed: u64) -> SimRng {
        SimRng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u32) -> bool {
        self.below(1000) < u64::from(per_mille)
    }

    /// A fresh generator for a sub-component, so each one's draws do not shift the others'.
    pub fn fork(&mut self) -> SimRng {
        SimRng::new(self.next_u64())
    }
}

/// The clock of paused tokio time, from a fixed realistic epoch: the engine's timers (tokio)
/// and its timestamps (this clock) move together, and only when the simulator lets time run.
pub struct SimClock {
    start: tokio::time::Instant,
    epoch: UnixMillis,
}

impl SimClock {
    pub fn new(epoch: UnixMillis) -> SimClock {
        SimClock {
            start: tokio::time::Instant::now(),
            epoch,
        }
    }
}

impl Clock for SimClock {
    fn now(&self) -> UnixMillis {
        let elapsed = i64::try_from(self.start.elapsed().as_millis()).unwrap_or(i64::MAX);
        UnixMillis(self.epoch.0 + elapsed)
    }
}
