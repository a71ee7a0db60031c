//! One node of the real engine on paused time, for tests of what timers do (expiry, active
//! queries, late payments): the simulator's store and gateway, but every gateway call is
//! answered normally at once and notifies are delivered only when a test says so. Minutes of
//! deadlines run in milliseconds, and a test reads like the story it checks.

use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::memory_store::{Guards, MemoryStore};
use super::model_gateway::{GatewayRates, ModelGateway};
use super::node::{Node, Shared, SimLocks};
use super::world::notify_route;
use super::{SimClock, SimRng};
use crate::catalog::{NewTicketType, TicketType};
use crate::engine::{EngineConfig, EngineError, Lookup, Prepay, PrepayAnswer};
use crate::money::Fen;
use crate::order::{Order, OrderLine};
use crate::payment::{Payment, Ticket};
use crate::ports::{CatalogStore, OrderStore, PendingLimits, UserStore};
use crate::refund::Refund;
use crate::time::{Clock, UnixMillis};

/// Runs `test` on a fresh single-threaded actix system on paused time.
pub fn on_paused_time<F, Fut>(test: F)
where
    F: FnOnce() -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let system = actix::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime")
    });
    system.block_on(async move {
        test().await;
        actix::System::current().stop();
    });
    let _ = system.run();
}

pub struct Harness {
    pub shared: Shared,
    pub node: Node,
    user: i64,
}

impl Harness {
    /// Must run inside [`on_paused_time`].
    pub async fn start(config: EngineConfig) -> Harness {
        let activity = Arc::new(AtomicU64::new(0));
        let clock: Arc<dyn Clock> = Arc::new(SimClock::new(UnixMillis(1_750_000_000_000)));
        let quiet = GatewayRates {
            down: 0,
            late: 0,
            not_sure: 0,
            settle: 1000,
            fail: 0,
            change: 0,
            notify_lost: 0,
            notify_dup: 0,
        };
        let gateway = Arc::new(ModelGateway::new(quiet, SimRng::new(1), activity.clone()));
        gateway.set_quiet();
        let shared = Shared {
            store: Arc::new(MemoryStore::new(Guards::default())),
            gateway,
            locks: Arc::new(SimLocks::new(clock.clone(), config.lease_wait, false)),
            clock,
            activity,
            network: Arc::new(Mutex::new(SimRng::new(2))),
            slow_store: 0,
            config,
        };
        let user = shared
            .store
            .upsert_user("buyer", None, shared.clock.now())
            .await
            .expect("a user")
            .id;
        let node = Node::start(0, &shared);
        Harness { shared, node, user }
    }

    pub fn now(&self) -> UnixMillis {
        self.shared.clock.now()
    }

    pub async fn ticket_type(&self, price_fen: i64, total: i64) -> TicketType {
        let new = NewTicketType::new("ticket", Fen::new(price_fen), total).expect("valid");
        self.shared
            .store
            .create_ticket_type(&new, self.now())
            .await
            .expect("created")
    }

    /// An order of `quantity` units that expires in `ttl`, watched by the node's timers.
    pub async fn order(&self, ticket_type: i64, quantity: i64, ttl: Duration) -> Order {
        let line = OrderLine {
            ticket_type_id: ticket_type,
            quantity,
        };
        let (now, expires) = (self.now(), self.now().plus(ttl));
        let order = self
            .node
            .store
            .create_order(self.user, &[line], PendingLimits::OFF, expires, now)
            .await
            .expect("stock for the order");
        self.node.watch_order(order.id, order.expires_at);
        order
    }

    pub async fn prepay(&self, order_id: i64) -> Result<PrepayAnswer, EngineError> {
        let actor = self
            .node
            .registry
            .send(Lookup(order_id))
            .await
            .expect("registry");
        let msg = Prepay {
            openid: "buyer".into(),
            client_ip: "127.0.0.1".into(),
        };
        let ask = actor.send(msg);
        let answer = self.answering(ask).await.expect("the actor answers")?;
        self.shared.gateway.mark_known(&answer.payment.out_trade_no);
        Ok(answer)
    }

    /// The buyer pays at the gateway (`late`: a trade already closed or expired). Its
    /// notifies wait until [`Harness::deliver_notifies`] or [`Harness::lose_notifies`].
    pub fn pay(&self, out_trade_no: &str, late: bool) -> bool {
        self.shared.gateway.pay(out_trade_no, late, self.now())
    }

    /// Delivers the notifies that are due through the notify route; answers how many.
    pub async fn deliver_notifies(&self) -> usize {
        let mut delivered = 0;
        while let Some(notify) = self.shared.gateway.take_due_notify(self.now(), 0) {
            let route = notify_route(&self.node.store, &self.node.registry, &notify);
            self.answering(route).await;
            delivered += 1;
        }
        delivered
    }

    /// The gateway's notifies are lost on the way, however often it sends them.
    pub fn lose_notifies(&self) {
        let far = UnixMillis(i64::MAX / 2);
        while self.shared.gateway.take_due_notify(far, 0).is_some() {}
    }

    /// Lets `span` of time pass in small slices, answering every gateway call as it comes.
    pub async fn run_for(&self, span: Duration) {
        let until = tokio::time::Instant::now() + span;
        while tokio::time::Instant::now() < until {
            self.answer_parked();
            let slice = (until - tokio::time::Instant::now()).min(Duration::from_millis(100));
            tokio::time::sleep(slice).await;
        }
        self.answer_parked();
        for _ in 0..50 {
            tokio::task::yield_now().await;
            self.answer_parked();
        }
    }

    /// Drives `work` to its end, answering the gateway calls it (or anything else) makes.
    async fn answering<T>(&self, work: impl Future<Output = T>) -> T {
        tokio::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => return done,
                _ = tokio::time::sleep(Duration::from_millis(1)) => self.answer_parked(),
            }
        }
    }

    fn answer_parked(&self) {
        for id in self.shared.gateway.parked() {
            self.shared.gateway.answer(id, self.now());
        }
    }

    pub async fn order_now(&self, order_id: i64) -> Order {
        let order = self.shared.store.order(order_id).await;
        order.expect("store").expect("the order")
    }

    pub async fn payments(&self, order_id: i64) -> Vec<Payment> {
        self.shared.store.payments(order_id).await.expect("store")
    }

    pub async fn refunds(&self, order_id: i64) -> Vec<Refund> {
        self.shared.store.refunds(order_id).await.expect("store")
    }

    pub async fn tickets(&self, order_id: i64) -> Vec<Ticket> {
        self.shared.store.tickets(order_id).await.expect("store")
    }

    pub async fn stock(&self, ticket_type: i64) -> crate::catalog::Stock {
        let found = self.shared.store.ticket_type(ticket_type).await;
        found.expect("store").expect("the ticket type").stock
    }

    /// What the gateway says of a trade: (paid, closed, refunded fen).
    pub fn trade(&self, out_trade_no: &str) -> (bool, bool, Fen) {
        self.shared.gateway.inspect(|g| {
            let trade = &g.trades[out_trade_no];
            let paid = matches!(trade.state, super::model_gateway::TradeState::Paid { .. });
            let closed = matches!(trade.state, super::model_gateway::TradeState::Closed);
            (paid, closed, g.refunded(out_trade_no))
        })
    }

    /// Gateway calls made so far, by kind (`prepay`, `query`, `close`, `refund`, ...).
    pub fn calls(&self, kind: &str) -> usize {
        self.shared
            .gateway
            .inspect(|g| g.calls.get(kind).copied().unwrap_or(0))
    }
}
