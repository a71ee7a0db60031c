//! One simulated node: the real engine actors (registry, refund poller, expiry scheduler,
//! gateway and lock supervisors) started on the shared single-threaded actix system, reaching
//! the shared store, gateway and lock service through handles that die with the node. A crash
//! cuts those handles — every call in flight or later fails, nothing the node remembered
//! survives — and a restart starts a fresh node on the same store.

use actix::prelude::*;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::memory_store::MemoryStore;
use super::model_gateway::{Call, ModelGateway};
use super::SimRng;
use crate::engine::expiry_scheduler::{AttachSink, ExpiryScheduler};
use crate::engine::gateway_supervisor::GatewaySupervisor;
use crate::engine::halt::Halt;
use crate::engine::lock_supervisor::LockSupervisor;
use crate::engine::refund_poller::{Attach, RefundPoller};
use crate::engine::{Engine, EngineConfig, OrderRegistry};
use crate::expiry::Deadline;
use crate::order::{Order, OrderLine};
use crate::payment::{Payment, Ticket};
use crate::ports::locks::next_fence;
use crate::ports::*;
use crate::refund::Refund;
use crate::time::{Clock, UnixMillis};

/// The shared lock service on simulated time (the engine's `LocalLocks` reads
/// `std::time::Instant` and the wall clock, which paused tokio time does not move).
///
/// It also waits for a held lease itself, up to `wait` of simulated time, and then answers an
/// error: `LockSupervisor` measures its own wait with `std::time::Instant` (real time), so
/// under paused time it would retry forever in simulated time and give up after 5 real
/// seconds at a point no seed can replay. Answering an error after a simulated wait keeps
/// its loop from ever spinning (it only loops on `Ok(None)`).
pub struct SimLocks {
    held: Mutex<BTreeMap<String, (String, Instant)>>,
    fences: Mutex<BTreeMap<String, i64>>,
    next_token: AtomicU64,
    clock: Arc<dyn Clock>,
    wait: Duration,
    split_brain: bool,
    released: tokio::sync::Notify,
}

impl SimLocks {
    /// `split_brain`: every request gets a lease (with a fresh, larger fence) even while
    /// another node holds one — the lock service failed open. The store's guards are then
    /// the only line; the mutation tests use it to show each guard is needed on its own.
    pub fn new(clock: Arc<dyn Clock>, wait: Duration, split_brain: bool) -> SimLocks {
        SimLocks {
            held: Mutex::default(),
            fences: Mutex::default(),
            next_token: AtomicU64::new(1),
            clock,
            wait,
            split_brain,
            released: tokio::sync::Notify::new(),
        }
    }

    fn take(&self, key: &str, ttl: Duration) -> Option<Lease> {
        let mut held = self.held.lock().unwrap();
        let now = Instant::now();
        if !self.split_brain && held.get(key).is_some_and(|(_, until)| *until > now) {
            return None;
        }
        let token = self.next_token.fetch_add(1, Ordering::Relaxed).to_string();
        held.insert(key.to_owned(), (token.clone(), now + ttl));
        let mut fences = self.fences.lock().unwrap();
        let fence = next_fence(fences.get(key).copied(), self.clock.now().0);
        fences.insert(key.to_owned(), fence);
        Some(Lease {
            key: key.to_owned(),
            token,
            fence,
        })
    }

    /// The lease on one key vanishes (its holder was partitioned from the lock service for
    /// longer than its TTL): someone else may take it while the old holder still works.
    pub fn lose_one(&self, rng: &mut SimRng) -> Option<String> {
        let mut held = self.held.lock().unwrap();
        let keys: Vec<String> = held.keys().cloned().collect();
        let key = keys
            .get(rng.below(keys.len().max(1) as u64) as usize)?
            .clone();
        held.remove(&key);
        self.released.notify_waiters();
        Some(key)
    }
}

#[async_trait]
impl LockManager for SimLocks {
    async fn try_acquire(&self, key: &str, ttl: Duration) -> Result<Option<Lease>, String> {
        let deadline = Instant::now() + self.wait;
        loop {
            // Armed before the look, so a release between the look and the wait is not missed.
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if let Some(lease) = self.take(key, ttl) {
                return Ok(Some(lease));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err("held by another node (simulated wait)".into());
            }
            // Woken by a release or by the holder's expiry, never by polling: a poll every few
            // milliseconds of simulated time was most of the simulator's work.
            let expires = self.held.lock().unwrap().get(key).map(|(_, until)| *until);
            let wake = expires
                .map_or(deadline, |until| until.min(deadline))
                .max(now);
            tokio::select! {
                _ = released => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<bool, String> {
        let mut held = self.held.lock().unwrap();
        match held.get_mut(&lease.key) {
            Some((token, until)) if *token == lease.token => {
                *until = Instant::now() + ttl;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release(&self, lease: &Lease) -> Result<(), String> {
        let mut held = self.held.lock().unwrap();
        if held.get(&lease.key).is_some_and(|(t, _)| *t == lease.token) {
            held.remove(&lease.key);
            self.released.notify_waiters();
        }
        Ok(())
    }
}

/// What dies with a node: its connections. Shared by the node's three handles.
#[derive(Clone)]
pub struct Life {
    alive: Arc<AtomicBool>,
    activity: Arc<AtomicU64>,
    network: Arc<Mutex<SimRng>>,
    slow_store: u32,
}

impl Life {
    /// The way to the store takes a while: other tasks may run in between (0 to 2 turns of
    /// the scheduler, drawn from the seed). Without it an in-memory call never yields and two
    /// nodes could never interleave between a read and the guarded write that follows it.
    /// Now and then (`SimConfig::slow_store`, 3% by default) the database is slow: up to 3 s of simulated time, during which
    /// other steps (payments, notifies, crashes) happen between a flow's read and its write.
    async fn round_trip(&self) {
        let (turns, slow) = {
            let mut rng = self.network.lock().unwrap();
            let slow = rng.chance(self.slow_store).then(|| rng.below(3_000));
            (rng.below(3), slow)
        };
        if let Some(ms) = slow {
            tokio::time::sleep(Duration::from_millis(1 + ms)).await;
        }
        for _ in 0..turns {
            tokio::task::yield_now().await;
        }
    }

    fn check(&self) -> Result<(), StoreError> {
        self.activity.fetch_add(1, Ordering::Relaxed);
        if self.alive.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err(StoreError::Unavailable("the node crashed".into()))
        }
    }
}

/// The node's connection to the shared store.
pub struct NodeStore {
    store: Arc<MemoryStore>,
    life: Life,
}

macro_rules! through {
    ($self:ident, $call:expr) => {{
        $self.life.check()?;
        $self.life.round_trip().await;
        let answer = $call.await;
        // A node that died during the call never hears its answer.
        $self.life.check()?;
        answer
    }};
}

#[async_trait]
impl OrderStore for NodeStore {
    async fn create_order(
        &self,
        user_id: i64,
        lines: &[OrderLine],
        limits: PendingLimits,
        expires_at: UnixMillis,
        now: UnixMillis,
    ) -> Result<Order, CreateOrderError> {
        through!(
            self,
            self.store
                .create_order(user_id, lines, limits, expires_at, now)
        )
    }
    async fn order(&self, order_id: i64) -> Result<Option<Order>, StoreError> {
        through!(self, self.store.order(order_id))
    }
    async fn payments(&self, order_id: i64) -> Result<Vec<Payment>, StoreError> {
        through!(self, self.store.payments(order_id))
    }
    async fn payment_by_out_trade_no(&self, no: &str) -> Result<Option<Payment>, StoreError> {
        through!(self, self.store.payment_by_out_trade_no(no))
    }
    async fn tickets(&self, order_id: i64) -> Result<Vec<Ticket>, StoreError> {
        through!(self, self.store.tickets(order_id))
    }
    async fn insert_prepay(
        &self,
        prepay: &NewPrepay,
        fence: Fence,
        now: UnixMillis,
    ) -> Result<Payment, StoreError> {
        through!(self, self.store.insert_prepay(prepay, fence, now))
    }
    async fn close_payment(
        &self,
        id: i64,
        fence: Fence,
        now: UnixMillis,
    ) -> Result<bool, StoreError> {
        through!(self, self.store.close_payment(id, fence, now))
    }
    async fn apply_payment(
        &self,
        payment: &PaymentApplication,
        rules: PaymentRules,
        fence: Fence,
        now: UnixMillis,
    ) -> Result<ApplyOutcome, StoreError> {
        through!(self, self.store.apply_payment(payment, rules, fence, now))
    }
    async fn append_event(
        &self,
        event: &NewPaymentEvent,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        through!(self, self.store.append_event(event, now))
    }
    async fn refunds(&self, order_id: i64) -> Result<Vec<Refund>, StoreError> {
        through!(self, self.store.refunds(order_id))
    }
    async fn refund(&self, refund_id: i64) -> Result<Option<Refund>, StoreError> {
        through!(self, self.store.refund(refund_id))
    }
    async fn refund_for_request(&self, key: &str) -> Result<Option<Refund>, StoreError> {
        through!(self, self.store.refund_for_request(key))
    }
    async fn processing_refunds(&self) -> Result<Vec<Refund>, StoreError> {
        through!(self, self.store.processing_refunds())
    }
    async fn begin_refund(
        &self,
        refund: &NewRefund,
        fence: Fence,
        now: UnixMillis,
    ) -> Result<Refund, BeginRefundError> {
        through!(self, self.store.begin_refund(refund, fence, now))
    }
    async fn note_refund_attempt(
        &self,
        id: i64,
        gateway_id: Option<&str>,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        through!(self, self.store.note_refund_attempt(id, gateway_id, now))
    }
    async fn finish_refund(
        &self,
        id: i64,
        result: &RefundResult,
        fence: Fence,
        now: UnixMillis,
    ) -> Result<FinishOutcome, StoreError> {
        through!(self, self.store.finish_refund(id, result, fence, now))
    }
    async fn open_deadlines(&self, until: UnixMillis) -> Result<Vec<Deadline>, StoreError> {
        through!(self, self.store.open_deadlines(until))
    }
    async fn expire_order(
        &self,
        id: i64,
        fence: Fence,
        now: UnixMillis,
    ) -> Result<bool, StoreError> {
        through!(self, self.store.expire_order(id, fence, now))
    }
}

/// The node's connection to the gateway: each call is parked in the model until answered.
pub struct NodeGateway {
    node: usize,
    model: Arc<ModelGateway>,
    life: Life,
}

impl NodeGateway {
    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, GatewayFailure>>) -> Call,
    ) -> Result<T, GatewayFailure> {
        if self.life.check().is_err() {
            return Err(GatewayFailure::Unavailable("the node crashed".into()));
        }
        let (tx, rx) = oneshot::channel();
        self.model.park(self.node, make(tx));
        let answer = rx
            .await
            .unwrap_or_else(|_| Err(GatewayFailure::Unavailable("connection lost".into())));
        match self.life.check() {
            Ok(()) => answer,
            Err(_) => Err(GatewayFailure::Unavailable("the node crashed".into())),
        }
    }
}

#[async_trait]
impl PaymentGateway for NodeGateway {
    async fn create_prepay(&self, r: &PrepayRequest) -> Result<PrepayCreated, GatewayFailure> {
        self.call(|tx| Call::Prepay(r.clone(), tx)).await
    }
    async fn query_trade(&self, no: &str) -> Result<TradeStatus, GatewayFailure> {
        self.call(|tx| Call::Query(no.to_owned(), tx)).await
    }
    async fn close_trade(&self, no: &str) -> Result<(), GatewayFailure> {
        self.call(|tx| Call::Close(no.to_owned(), tx)).await
    }
    async fn refund(&self, r: &RefundRequest) -> Result<RefundAccepted, GatewayFailure> {
        self.call(|tx| Call::Refund(r.clone(), tx)).await
    }
    async fn refund_progress(&self, no: &str) -> Result<RefundProgress, GatewayFailure> {
        self.call(|tx| Call::Progress(no.to_owned(), tx)).await
    }
}

/// The node's connection to the lock service: a dead node can neither take nor keep a lease.
pub struct NodeLocks {
    locks: Arc<SimLocks>,
    life: Life,
}

#[async_trait]
impl LockManager for NodeLocks {
    async fn try_acquire(&self, key: &str, ttl: Duration) -> Result<Option<Lease>, String> {
        self.life.check().map_err(|e| e.to_string())?;
        let lease = self.locks.try_acquire(key, ttl).await;
        self.life.check().map_err(|e| e.to_string())?;
        lease
    }
    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<bool, String> {
        self.life.check().map_err(|e| e.to_string())?;
        self.locks.renew(lease, ttl).await
    }
    async fn release(&self, lease: &Lease) -> Result<(), String> {
        self.life.check().map_err(|e| e.to_string())?;
        self.locks.release(lease).await
    }
}

/// A running node.
pub struct Node {
    pub id: usize,
    pub registry: Addr<OrderRegistry>,
    pub store: Arc<dyn OrderStore>,
    pub config: Arc<EngineConfig>,
    expiry: Addr<ExpiryScheduler>,
    halts: Vec<Recipient<Halt>>,
    alive: Arc<AtomicBool>,
}

/// What every node shares.
#[derive(Clone)]
pub struct Shared {
    pub store: Arc<MemoryStore>,
    pub gateway: Arc<ModelGateway>,
    pub locks: Arc<SimLocks>,
    pub clock: Arc<dyn Clock>,
    pub activity: Arc<AtomicU64>,
    pub network: Arc<Mutex<SimRng>>,
    /// Per thousand store calls that take up to 3 s of simulated time.
    pub slow_store: u32,
    pub config: EngineConfig,
}

impl Node {
    /// Starts the engine of a node exactly as the application does (src/engine.rs).
    pub fn start(id: usize, shared: &Shared) -> Node {
        let alive = Arc::new(AtomicBool::new(true));
        let life = Life {
            alive: alive.clone(),
            activity: shared.activity.clone(),
            network: shared.network.clone(),
            slow_store: shared.slow_store,
        };
        let store: Arc<dyn OrderStore> = Arc::new(NodeStore {
            store: shared.store.clone(),
            life: life.clone(),
        });
        let gateway: Arc<dyn PaymentGateway> = Arc::new(NodeGateway {
            node: id,
            model: shared.gateway.clone(),
            life: life.clone(),
        });
        let locks: Arc<dyn LockManager> = Arc::new(NodeLocks {
            locks: shared.locks.clone(),
            life,
        });
        let config = shared.config.clone();
        let refund_poller = RefundPoller::new(
            store.clone(),
            Arc::new(crate::ports::Silent),
            config.refund_poll_base,
            config.refund_sweep_interval,
        )
        .start();
        let expiry = ExpiryScheduler::new(
            Some(store.clone()),
            shared.clock.clone(),
            config.sweep_interval,
            Arc::new(AtomicUsize::new(0)),
        )
        .start();
        let config = Arc::new(config);
        let gateway = GatewaySupervisor::new(Some(gateway)).start();
        let locks = LockSupervisor::new(locks, config.lease_ttl, config.lease_wait).start();
        let engine = Engine {
            store: store.clone(),
            gateway: gateway.clone(),
            locks: locks.clone(),
            clock: shared.clock.clone(),
            config: config.clone(),
            refund_poller: refund_poller.clone(),
            expiry: expiry.clone(),
            observer: Arc::new(Silent),
            fence: Fence(0),
        };
        let registry = OrderRegistry::new(engine, Arc::new(AtomicUsize::new(0))).start();
        refund_poller.do_send(Attach(registry.clone()));
        expiry.do_send(AttachSink(registry.clone().recipient()));
        let halts = vec![
            registry.clone().recipient(),
            expiry.clone().recipient(),
            refund_poller.recipient(),
            locks.recipient(),
            gateway.recipient(),
        ];
        Node {
            id,
            registry,
            store,
            config,
            expiry,
            halts,
            alive,
        }
    }

    pub fn alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
    }

    /// The node dies: from now on every call of its engine fails, and its timers stop.
    pub fn crash(&self) {
        self.alive.store(false, Ordering::Relaxed);
        for actor in &self.halts {
            actor.do_send(Halt);
        }
    }

    /// A new order's expiry joins this node's timers (src/engine.rs `watch_order`).
    pub fn watch_order(&self, order_id: i64, expires_at: UnixMillis) {
        let at = expires_at.plus(self.config.expiry_grace);
        self.expiry
            .do_send(crate::engine::expiry_scheduler::Schedule(
                crate::engine::deadlines::order_deadline(order_id, at),
            ));
    }
}
