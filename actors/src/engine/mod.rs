//! The order engine: one [`OrderActor`] per live order serializing its messages, the
//! [`OrderRegistry`] that spawns and reaps them, and the supervisors that own the gateway
//! client ([`GatewaySupervisor`]) and the cross-node leases ([`LockSupervisor`]). The logic of
//! each message is in [`flows`]; the actors only decide *when* it runs.

pub mod deadlines;
pub mod error;
pub mod expiry_scheduler;
pub mod flows;
pub mod gateway_supervisor;
pub mod halt;
pub mod local_locks;
pub mod lock_supervisor;
pub mod messages;
pub mod order_actor;
pub mod refund_poller;
pub mod refunds;
pub mod registry;
pub mod sync;

#[cfg(test)]
mod tests;

use actix::Addr;
use std::sync::Arc;
use std::time::Duration;

use crate::ports::{Fence, Observer, OrderStore, PaymentRules};
use crate::time::Clock;
use error::ActorError;
use expiry_scheduler::ExpiryScheduler;
use gateway_supervisor::GatewaySupervisor;
use lock_supervisor::{Acquire, LockSupervisor, Release};
use refund_poller::RefundPoller;

pub use error::ActorError as EngineError;
pub use messages::{
    ApplyNotified, ApplyPaid, CheckRefund, Expire, Prepay, PrepayAnswer, Refund, RefundAsk,
    SyncWithGateway,
};
pub use order_actor::OrderActor;
pub use registry::{LiveActors, Lookup, OrderRegistry};
pub use sync::{RefundFinding, SyncAll, SyncReport, TradeFinding};

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub prepay_ttl: Duration,
    /// An order actor with no message for this long stops; the next message respawns it.
    pub idle_timeout: Duration,
    pub mailbox_capacity: usize,
    /// At most one gateway query per order in this interval from status requests.
    pub status_query_interval: Duration,
    pub lease_ttl: Duration,
    /// How long a message waits for another node to give the order back.
    pub lease_wait: Duration,
    /// The goods description sent to the gateway.
    pub description: String,
    /// The first wait of the refund poller; later ones back off from it.
    pub refund_poll_base: Duration,
    /// When an open prepay is queried (after its creation) in case its notify was lost.
    pub query_schedule: Vec<Duration>,
    /// How long past a deadline to wait before acting (lets an in-flight notify land first).
    pub expiry_grace: Duration,
    /// How often the store is swept for deadlines the timer service does not know.
    pub sweep_interval: Duration,
    /// A late payment revives its expired order only this long after the expiry.
    pub late_payment_revive_within: Duration,
    /// How often every node reloads the PROCESSING refunds from the store (a refund whose
    /// node died is polled by the others).
    pub refund_sweep_interval: Duration,
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            prepay_ttl: Duration::from_secs(300),
            idle_timeout: Duration::from_secs(60),
            mailbox_capacity: 64,
            status_query_interval: Duration::from_secs(3),
            lease_ttl: Duration::from_secs(15),
            lease_wait: Duration::from_secs(5),
            description: "Event tickets".into(),
            refund_poll_base: Duration::from_secs(1),
            query_schedule: [10, 30, 60, 180, 300].map(Duration::from_secs).to_vec(),
            expiry_grace: Duration::from_secs(2),
            sweep_interval: Duration::from_secs(30),
            late_payment_revive_within: Duration::from_secs(30 * 60),
            refund_sweep_interval: Duration::from_secs(30),
        }
    }
}

/// Everything an order actor works with. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    pub store: Arc<dyn OrderStore>,
    pub gateway: Addr<GatewaySupervisor>,
    pub locks: Addr<LockSupervisor>,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<EngineConfig>,
    pub refund_poller: Addr<RefundPoller>,
    pub expiry: Addr<ExpiryScheduler>,
    pub observer: Arc<dyn Observer>,
    /// The fencing token of the lease this engine acts under (`with_lease` sets it; the
    /// store refuses writes of an order under a token older than one that wrote it).
    pub fence: Fence,
}

impl Engine {
    pub fn payment_rules(&self) -> PaymentRules {
        PaymentRules {
            revive_within: self.config.late_payment_revive_within,
        }
    }

    /// Runs `work` while holding the order's lease; `work` gets the engine fenced with it.
    pub async fn with_lease<T, F, Fut>(&self, order_id: i64, work: F) -> Result<T, ActorError>
    where
        F: FnOnce(Engine) -> Fut,
        Fut: std::future::Future<Output = Result<T, ActorError>>,
    {
        let key = format!("wallyt-pay:order:{order_id}");
        let lease = self
            .locks
            .send(Acquire { key })
            .await
            .map_err(|e| ActorError::Busy(e.to_string()))??;
        let fenced = Engine {
            fence: Fence(lease.fence),
            ..self.clone()
        };
        let result = work(fenced).await;
        // Released even when the work failed; a lost release only delays the next holder.
        let _ = self.locks.send(Release(lease)).await;
        result
    }
}
