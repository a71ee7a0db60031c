//! The step loop. One seed = one world: a single-threaded actix system on paused tokio time,
//! a few nodes, one store, one gateway, one lock service. Each step delivers one event chosen
//! by the seeded generator — a buyer's request, a gateway answer, a notify, a payment, time
//! passing, a crash or a restart — then lets the engine run until it waits again (on a parked
//! gateway call or a timer), then checks the invariants. After the active phase the world is
//! made calm (no faults, every node restarted, normal gateway answers) and time runs until
//! nothing is left to do; then money must add up and nothing may be left open.

use actix::prelude::*;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::invariants::{self, Violation};
use super::memory_store::{FaultRates, Guards, MemoryStore};
use super::model_gateway::{GatewayRates, ModelGateway, Notify};
use super::node::{Node, Shared, SimLocks};
use super::{SimClock, SimRng};
use crate::catalog::NewTicketType;
use crate::engine::RefundAsk;
use crate::engine::{ApplyPaid, EngineConfig, EngineError, Lookup, OrderActor, Prepay};
use crate::engine::{Refund as RefundMsg, SyncWithGateway};
use crate::money::Fen;
use crate::order::OrderLine;
use crate::ports::{CatalogStore, OrderStore, PaymentApplication, PendingLimits, UserStore};
use crate::ticket_refund::BuyerAsk;
use crate::time::{Clock, UnixMillis};

/// Invariants that a known engine bug breaks, reported but not counted as violations until
/// the engine is fixed. Each entry names the invariant and the bug. Empty: the last one (two
/// refunds of one order in one millisecond sharing a number) is fixed by
/// `policy::next_number`.
pub const KNOWN_ENGINE_BUGS: &[(&str, &str)] = &[];

#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Steps of the active phase (the calm-down phase adds its own).
    pub steps: usize,
    pub nodes: usize,
    pub guards: Guards,
    pub store_faults: FaultRates,
    pub gateway: GatewayRates,
    pub max_orders: usize,
    /// Per thousand steps.
    pub crash: u32,
    pub lose_lease: u32,
    /// The lock service grants every lease (see `SimLocks::new`).
    pub split_brain: bool,
    /// Per thousand buyer requests sent twice at once (double click, client retry).
    pub burst: u32,
    /// Per thousand store calls that are slow (up to 3 s of simulated time), so that flows
    /// of one order overlap across time as well as within a millisecond.
    pub slow_store: u32,
    /// Steps the calm-down phase may take before what is still open is a violation.
    pub calm_budget: usize,
}

impl SimConfig {
    /// A harsher world for the guard mutation tests: the lock service fails open and every
    /// request arrives twice, so the store's guards are the only line left.
    pub fn hostile() -> SimConfig {
        SimConfig {
            split_brain: true,
            burst: 1000,
            ..SimConfig::default()
        }
    }
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            steps: 460,
            nodes: 2,
            guards: Guards::default(),
            store_faults: FaultRates {
                before: 15,
                after: 15,
            },
            gateway: GatewayRates::default(),
            max_orders: 24,
            crash: 6,
            lose_lease: 15,
            split_brain: false,
            burst: 200,
            slow_store: 30,
            calm_budget: 4_000,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct SeedReport {
    pub seed: u64,
    pub steps: usize,
    /// The violation, with the seed, the step and a short trace.
    pub violation: Option<String>,
    /// Violations of invariants in [`KNOWN_ENGINE_BUGS`].
    pub known_bug: Option<String>,
    pub needs_human: Vec<String>,
    /// What the seed did (orders by status, trades, refunds), to see that it did something.
    pub summary: String,
}

/// What the buyers saw, shared with the request tasks.
#[derive(Default)]
struct Client {
    /// Refund ids each request key was answered with: one refund per key, ever.
    answers: BTreeMap<String, BTreeSet<i64>>,
    /// Keys used per order, with what was asked (a retry repeats the body).
    keys: BTreeMap<i64, Vec<(String, RefundAsk)>>,
}

struct World {
    seed: u64,
    config: SimConfig,
    rng: SimRng,
    shared: Shared,
    nodes: Vec<Node>,
    next_node: usize,
    user: i64,
    ticket_types: Vec<i64>,
    orders: Vec<i64>,
    client: Rc<RefCell<Client>>,
    /// Requests sent and not answered yet.
    inflight: Rc<std::cell::Cell<usize>>,
    /// Set while a burst sends its copies: they travel together.
    same_delay: Option<Duration>,
    trace: VecDeque<String>,
    step: usize,
    next_key: u64,
}

/// Runs one seed to the end (or to its first violation).
pub fn run_seed(seed: u64, config: &SimConfig) -> SeedReport {
    // A runtime without an I/O driver: nothing here does I/O, and parking on a driver costs a
    // system call at every turn of the scheduler, which the step loop takes thousands of.
    let system = actix::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime")
    });
    let config = config.clone();
    let report = system.block_on(async move {
        let mut world = World::new(seed, config).await;
        let report = world.run().await;
        // Stopped while the runtime still runs: dropping live actors' timers after the
        // runtime is gone panics inside actix.
        actix::System::current().stop();
        report
    });
    let _ = system.run();
    report
}

fn engine_config() -> EngineConfig {
    EngineConfig {
        // A shorter ladder of active queries keeps seeds short; the shape is the default's.
        query_schedule: [10, 30, 90].map(Duration::from_secs).to_vec(),
        ..EngineConfig::default()
    }
}

async fn ask<M>(
    registry: &Addr<crate::engine::OrderRegistry>,
    order_id: i64,
    msg: M,
) -> Option<M::Result>
where
    M: Message + Clone + Send + 'static,
    M::Result: Send,
    OrderActor: Handler<M>,
{
    // As the HTTP edge does: an actor that stopped just after the lookup is looked up again.
    for _ in 0..2 {
        let addr = registry.send(Lookup(order_id)).await.ok()?;
        match addr.send(msg.clone()).await {
            Ok(answer) => return Some(answer),
            Err(MailboxError::Closed) => continue,
            Err(MailboxError::Timeout) => return None,
        }
    }
    None
}

impl World {
    async fn new(seed: u64, config: SimConfig) -> World {
        let mut rng = SimRng::new(seed);
        let activity = Arc::new(AtomicU64::new(0));
        let clock: Arc<dyn Clock> = Arc::new(SimClock::new(UnixMillis(1_750_000_000_000)));
        let store = Arc::new(MemoryStore::new(config.guards));
        let gateway = Arc::new(ModelGateway::new(
            config.gateway,
            rng.fork(),
            activity.clone(),
        ));
        let engine = engine_config();
        let locks = Arc::new(SimLocks::new(
            clock.clone(),
            engine.lease_wait,
            config.split_brain,
        ));
        let now = clock.now();
        let user = store
            .upsert_user("buyer", None, now)
            .await
            .expect("no faults yet")
            .id;
        let mut ticket_types = Vec::new();
        for (i, total) in [3, 5, 8].into_iter().enumerate() {
            let price = Fen::new(1_000 * (i as i64 + 1));
            let new = NewTicketType::new(&format!("tt{i}"), price, total).expect("valid");
            ticket_types.push(
                store
                    .create_ticket_type(&new, now)
                    .await
                    .expect("no faults")
                    .id,
            );
        }
        store.inspect(|_| ());
        store.inject_faults(config.store_faults, rng.fork());
        let shared = Shared {
            store,
            gateway,
            locks,
            clock,
            activity,
            network: Arc::new(std::sync::Mutex::new(rng.fork())),
            slow_store: config.slow_store,
            config: engine,
        };
        let nodes = (0..config.nodes)
            .map(|id| Node::start(id, &shared))
            .collect();
        World {
            seed,
            next_node: config.nodes,
            config,
            rng,
            shared,
            nodes,
            user,
            ticket_types,
            orders: Vec::new(),
            client: Rc::default(),
            inflight: Rc::default(),
            same_delay: None,
            trace: VecDeque::new(),
            step: 0,
            next_key: 0,
        }
    }

    fn now(&self) -> UnixMillis {
        self.shared.clock.now()
    }

    fn note(&mut self, what: String) {
        if self.trace.len() == 24 {
            self.trace.pop_front();
        }
        let t = (self.now().0 - 1_750_000_000_000) as f64 / 1000.0;
        self.trace
            .push_back(format!("#{} t={t:.3}s {what}", self.step));
    }

    /// Lets every task run until the engine waits on something (a parked gateway call, a
    /// timer) — without letting time move.
    async fn settle(&self) {
        let activity = &self.shared.activity;
        let (mut last, mut quiet) = (activity.load(Ordering::Relaxed), 0);
        for _ in 0..20_000 {
            tokio::task::yield_now().await;
            let now = activity.load(Ordering::Relaxed);
            if now == last {
                quiet += 1;
                if quiet >= 8 {
                    return;
                }
            } else {
                (last, quiet) = (now, 0);
            }
        }
    }

    fn live_node(&mut self) -> Option<usize> {
        let live: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].alive())
            .collect();
        live.get(self.rng.below(live.len().max(1) as u64) as usize)
            .copied()
    }

    fn pick_order(&mut self) -> Option<i64> {
        if self.orders.is_empty() {
            return None;
        }
        // Recent orders are more interesting: half the picks among the last four.
        let n = self.orders.len();
        let i = if self.rng.chance(500) {
            n - 1 - self.rng.below(n.min(4) as u64) as usize
        } else {
            self.rng.below(n as u64) as usize
        };
        Some(self.orders[i])
    }

    async fn run(&mut self) -> SeedReport {
        let mut report = SeedReport {
            seed: self.seed,
            ..SeedReport::default()
        };
        while self.step < self.config.steps {
            self.step += 1;
            self.active_step().await;
            self.settle().await;
            if let Err(v) = self.check() {
                return self.failed(report, v);
            }
        }
        self.calm_down().await;
        let mut calm = 0;
        while calm < self.config.calm_budget && self.calm_step().await {
            calm += 1;
            self.step += 1;
            self.settle().await;
            if let Err(v) = self.check() {
                return self.failed(report, v);
            }
        }
        report.steps = self.step;
        report.summary = self.summary();
        let pending = self.shared.gateway.pending_notifies();
        let end = self.shared.store.inspect(|s| {
            self.shared
                .gateway
                .inspect(|g| invariants::at_quiescence(s, g, pending))
        });
        match end {
            Ok(needs_human) => report.needs_human = needs_human,
            Err(v) => return self.failed(report, v),
        }
        report
    }

    fn summary(&self) -> String {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        self.shared.store.inspect(|s| {
            counts.insert("guard hits".into(), s.unguarded);
            for o in s.orders.values() {
                let key = format!("order {:?} {:?}", o.status, o.cancel_reason);
                *counts.entry(key).or_default() += 1;
            }
            for r in s.refunds.values() {
                *counts
                    .entry(format!("refund {:?} {:?}", r.kind, r.status))
                    .or_default() += 1;
            }
        });
        self.shared.gateway.inspect(|g| {
            for t in g.trades.values() {
                let paid = matches!(t.state, super::model_gateway::TradeState::Paid { .. });
                *counts.entry(format!("trade paid={paid}")).or_default() += 1;
            }
        });
        format!("{counts:?}")
    }

    fn check(&self) -> Result<(), Violation> {
        let transitions = self.shared.store.drain_transitions();
        self.shared.store.inspect(|s| {
            self.shared
                .gateway
                .inspect(|g| invariants::always(s, g, &transitions))
        })?;
        let client = self.client.borrow();
        for (key, refunds) in &client.answers {
            if refunds.len() > 1 {
                return Err(Violation {
                    invariant: "one-refund-per-request",
                    detail: format!("request key {key} answered with refunds {refunds:?}"),
                });
            }
        }
        Ok(())
    }

    fn failed(&self, mut report: SeedReport, v: Violation) -> SeedReport {
        report.steps = self.step;
        let trace: Vec<&str> = self.trace.iter().map(String::as_str).collect();
        let text = format!(
            "seed {} step {}: {}: {}\n  trace (last {} steps):\n    {}",
            self.seed,
            self.step,
            v.invariant,
            v.detail,
            trace.len(),
            trace.join("\n    ")
        );
        if KNOWN_ENGINE_BUGS
            .iter()
            .any(|(name, _)| *name == v.invariant)
        {
            report.known_bug = Some(text);
        } else {
            report.violation = Some(text);
        }
        report
    }

    /// One event of the active phase, chosen by weight among those possible now.
    async fn active_step(&mut self) {
        let parked = self.shared.gateway.parked();
        let now = self.now();
        let due = self.shared.gateway.due_notifies(now);
        let dead = self.nodes.iter().filter(|n| !n.alive()).count();
        let live = self.nodes.len() - dead;
        let weights = [
            (0, if parked.is_empty() { 0 } else { 40 }),
            (1, if due == 0 { 0 } else { 15 }),
            (
                2,
                if self.orders.len() < self.config.max_orders {
                    6
                } else {
                    0
                },
            ),
            (3, 10),
            (4, 10),
            (5, 5),
            (6, 3),
            (7, 12),
            (8, if live > 1 { self.config.crash } else { 0 }),
            (9, if dead > 0 { 10 } else { 0 }),
            (10, self.config.lose_lease),
        ];
        let total: u32 = weights.iter().map(|(_, w)| w).sum();
        let mut roll = self.rng.below(u64::from(total)) as u32;
        let choice = weights
            .iter()
            .find(|(_, w)| {
                if roll < *w {
                    true
                } else {
                    roll -= w;
                    false
                }
            })
            .map_or(7, |(c, _)| *c);
        match choice {
            0 => {
                let id = parked[self.rng.below(parked.len() as u64) as usize];
                let what = self.shared.gateway.answer(id, now);
                self.note(format!("gateway answers {what}"));
            }
            1 => self.deliver_notify(),
            2 => self.new_order().await,
            3 => self.prepay(),
            4 => self.customer_pays(),
            5 => self.refund(),
            6 => self.sync(),
            7 => self.advance().await,
            8 => self.crash(),
            9 => self.restart(),
            _ => {
                let mut rng = self.rng.fork();
                if let Some(key) = self.shared.locks.lose_one(&mut rng) {
                    self.note(format!("lease {key} lost"));
                }
            }
        }
    }

    /// Runs a buyer's (or the gateway's) request as its own task, after its network delay;
    /// counted while in flight, so the calm phase waits for it.
    fn spawn_request(&mut self, request: impl std::future::Future<Output = ()> + 'static) {
        let delay = self.network_delay();
        let inflight = self.inflight.clone();
        inflight.set(inflight.get() + 1);
        actix::spawn(async move {
            tokio::time::sleep(delay).await;
            request.await;
            inflight.set(inflight.get() - 1);
        });
    }

    /// How long a request travels before it reaches the node: often at once, else up to two
    /// seconds, so that requests sent in different steps arrive together and interleave.
    fn network_delay(&mut self) -> Duration {
        if let Some(delay) = self.same_delay {
            return delay;
        }
        if self.rng.chance(500) {
            Duration::ZERO
        } else {
            Duration::from_millis(self.rng.below(2_000))
        }
    }

    async fn advance(&mut self) {
        const STEPS_MS: [u64; 8] = [20, 100, 300, 1_000, 3_000, 10_000, 60_000, 240_000];
        let ms = STEPS_MS[self.rng.below(STEPS_MS.len() as u64) as usize];
        self.note(format!("time passes {ms} ms"));
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    async fn new_order(&mut self) {
        let Some(n) = self.live_node() else { return };
        // Mostly one line, sometimes two or three; 1–2 units each, on small stocks, so
        // orders sell out and late payments find their stock gone.
        let mut lines: Vec<OrderLine> = Vec::new();
        let types = self.ticket_types.clone();
        for tt in types {
            if self.rng.chance(350) {
                let quantity = 1 + self.rng.below(2) as i64;
                lines.push(OrderLine {
                    ticket_type_id: tt,
                    quantity,
                });
            }
        }
        if lines.is_empty() {
            let tt = self.ticket_types[self.rng.below(self.ticket_types.len() as u64) as usize];
            lines.push(OrderLine {
                ticket_type_id: tt,
                quantity: 1,
            });
        }
        let now = self.now();
        let ttl = Duration::from_secs(60 + self.rng.below(540));
        let expires = now.plus(ttl);
        let node = &self.nodes[n];
        let id = node.id;
        match node
            .store
            .create_order(self.user, &lines, PendingLimits::OFF, expires, now)
            .await
        {
            Ok(order) => {
                node.watch_order(order.id, order.expires_at);
                self.orders.push(order.id);
                self.note(format!(
                    "node {id} creates order {} ({} fen)",
                    order.id,
                    order.total.get()
                ));
            }
            Err(error) => self.note(format!("create order refused: {error}")),
        }
    }

    /// A buyer's request; now and then (double click, client retry) sent twice at once.
    fn prepay(&mut self) {
        let Some(order_id) = self.pick_order() else {
            return;
        };
        self.burst(|world| world.prepay_on(order_id));
    }

    /// Sends a request once, or now and then twice at the same moment (double click, a
    /// client retry): the copies arrive together, each at a node of its own choosing.
    fn burst(&mut self, mut send: impl FnMut(&mut World)) {
        if self.rng.chance(self.config.burst) {
            let delay = self.network_delay();
            self.same_delay = Some(delay);
            send(self);
            send(self);
            self.same_delay = None;
        } else {
            send(self);
        }
    }

    fn prepay_on(&mut self, order_id: i64) {
        let Some(n) = self.live_node() else {
            return;
        };
        let (id, registry) = (self.nodes[n].id, self.nodes[n].registry.clone());
        self.note(format!("buyer asks node {id} to prepay order {order_id}"));
        let gateway = self.shared.gateway.clone();
        let msg = Prepay {
            openid: "buyer".into(),
            client_ip: "127.0.0.1".into(),
        };
        self.spawn_request(async move {
            if let Some(Ok(answer)) = ask(&registry, order_id, msg).await {
                gateway.mark_known(&answer.payment.out_trade_no);
            }
        });
    }

    fn customer_pays(&mut self) {
        let now = self.now();
        let late = self.rng.chance(60);
        let trades: Vec<String> = self.shared.gateway.inspect(|g| {
            g.trades
                .iter()
                .filter(|(_, t)| t.known_to_buyer && (t.payable(now) || late))
                .filter(|(_, t)| !matches!(t.state, super::model_gateway::TradeState::Paid { .. }))
                .map(|(no, _)| no.clone())
                .collect()
        });
        if trades.is_empty() {
            return;
        }
        let no = trades[self.rng.below(trades.len() as u64) as usize].clone();
        if self.shared.gateway.pay(&no, late, now) {
            self.note(format!(
                "customer pays {no}{}",
                if late { " (late)" } else { "" }
            ));
        }
    }

    fn refund(&mut self) {
        let Some(order_id) = self.pick_order() else {
            return;
        };
        self.burst(|world| world.refund_on(order_id));
    }

    fn refund_on(&mut self, order_id: i64) {
        let Some(n) = self.live_node() else {
            return;
        };
        let (key, wanted) = {
            let mut client = self.client.borrow_mut();
            let keys = client.keys.entry(order_id).or_default();
            let reuse = !keys.is_empty() && self.rng.chance(350);
            if reuse {
                keys[self.rng.below(keys.len() as u64) as usize].clone()
            } else {
                self.next_key += 1;
                // A buyer gives back whole tickets (the rest, or an amount that may or may not
                // be made of ticket prices); an operator refunds any amount.
                let ask = match self.rng.below(10) {
                    0..=3 => RefundAsk::Buyer(BuyerAsk::Rest),
                    4..=6 => RefundAsk::Buyer(BuyerAsk::Amount(Fen::new(
                        1_000 * (1 + self.rng.below(3) as i64),
                    ))),
                    _ => RefundAsk::Operator {
                        operator: "sim".into(),
                        amount: self
                            .rng
                            .chance(600)
                            .then(|| Fen::new(500 * (1 + self.rng.below(6) as i64))),
                        ticket_ids: Vec::new(),
                        payment_id: None,
                    },
                };
                let key = format!("k{}", self.next_key);
                keys.push((key.clone(), ask.clone()));
                (key, ask)
            }
        };
        let key = (!self.rng.chance(100)).then_some(key);
        let (id, registry) = (self.nodes[n].id, self.nodes[n].registry.clone());
        self.note(format!(
            "buyer asks node {id} to refund order {order_id} {wanted:?} key {key:?}"
        ));
        let client = self.client.clone();
        let msg = RefundMsg {
            ask: wanted,
            reason: None,
            request_key: key.clone(),
        };
        self.spawn_request(async move {
            if let (Some(Ok(refund)), Some(key)) = (ask(&registry, order_id, msg).await, key) {
                client
                    .borrow_mut()
                    .answers
                    .entry(key)
                    .or_default()
                    .insert(refund.id);
            }
        });
    }

    fn sync(&mut self) {
        let (Some(n), Some(order_id)) = (self.live_node(), self.pick_order()) else {
            return;
        };
        let (id, registry) = (self.nodes[n].id, self.nodes[n].registry.clone());
        self.note(format!("buyer looks at order {order_id} on node {id}"));
        self.spawn_request(async move {
            let _ = ask(&registry, order_id, SyncWithGateway).await;
        });
    }

    /// The notify route: find the order of the trade, hand the payment to its actor; an
    /// error answer makes the gateway send it again later.
    fn deliver_notify(&mut self) {
        let pick = self.rng.below(1 << 16) as usize;
        let Some(n) = self.live_node() else { return };
        let Some(notify) = self.shared.gateway.take_due_notify(self.now(), pick) else {
            return;
        };
        let node = &self.nodes[n];
        let (id, store, registry) = (node.id, node.store.clone(), node.registry.clone());
        self.note(format!(
            "notify of {} to node {id} (attempt {})",
            notify.out_trade_no, notify.attempts
        ));
        let (gateway, clock) = (self.shared.gateway.clone(), self.shared.clock.clone());
        self.spawn_request(async move {
            if !notify_route(&store, &registry, &notify).await {
                gateway.redeliver(notify, clock.now());
            }
        });
    }

    fn crash(&mut self) {
        let Some(n) = self.live_node() else { return };
        let id = self.nodes[n].id;
        self.nodes[n].crash();
        self.shared.gateway.drop_node_calls(id, self.now());
        self.note(format!("node {id} crashes"));
    }

    fn restart(&mut self) {
        let Some(n) = self.nodes.iter().position(|n| !n.alive()) else {
            return;
        };
        let id = self.next_node;
        self.next_node += 1;
        self.nodes[n] = Node::start(id, &self.shared);
        self.note(format!("node {id} starts"));
    }

    /// The world turns calm: no more faults or crashes, dead nodes come back.
    async fn calm_down(&mut self) {
        self.shared.store.stop_faults();
        self.shared.gateway.set_quiet();
        while self.nodes.iter().any(|n| !n.alive()) {
            self.restart();
        }
        self.note("calm: no more faults, every node up".into());
    }

    /// One step of the calm phase; false when nothing is left to do.
    async fn calm_step(&mut self) -> bool {
        let now = self.now();
        if let Some(&id) = self.shared.gateway.parked().first() {
            let what = self.shared.gateway.answer(id, now);
            self.note(format!("gateway answers {what}"));
            return true;
        }
        if self.shared.gateway.due_notifies(now) > 0 {
            self.deliver_notify();
            return true;
        }
        let open = self.shared.store.inspect(|s| {
            s.orders
                .values()
                .any(|o| o.status == crate::order::OrderStatus::Pending)
                || s.payments
                    .values()
                    .any(|p| p.status == crate::payment::PaymentStatus::NotPay)
                || s.refunds
                    .values()
                    .any(|r| r.status == crate::refund::RefundStatus::Processing)
        });
        if open || self.shared.gateway.pending_notifies() > 0 || self.inflight.get() > 0 {
            self.note("time passes 5000 ms".into());
            tokio::time::sleep(Duration::from_secs(5)).await;
            return true;
        }
        false
    }
}

/// What the HTTP notify route does with a verified notify; answers whether it acknowledged.
pub(super) async fn notify_route(
    store: &Arc<dyn OrderStore>,
    registry: &Addr<crate::engine::OrderRegistry>,
    notify: &Notify,
) -> bool {
    let Ok(Some(payment)) = store.payment_by_out_trade_no(&notify.out_trade_no).await else {
        return false;
    };
    let application = PaymentApplication {
        out_trade_no: notify.out_trade_no.clone(),
        transaction_id: notify.transaction_id.clone(),
        amount: notify.amount,
        paid_at: notify.paid_at,
    };
    let answer: Option<Result<_, EngineError>> =
        ask(registry, payment.order_id, ApplyPaid(application)).await;
    matches!(answer, Some(Ok(_)))
}
