//! Engine tests with in-memory ports: the order actor serializes one order's messages across
//! their awaits (and does not serialize different orders), idle actors are reaped and come back
//! on demand, and an actor killed by a panic is replaced.

use actix::prelude::*;
use async_trait::async_trait;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::gateway_supervisor::GatewaySupervisor;
use super::lock_supervisor::LockSupervisor;
use super::*;
use crate::money::Fen;
use crate::order::{Order, OrderLine, OrderStatus};
use crate::payment::{Payment, PaymentStatus, Ticket};
use crate::ports::*;
use crate::time::{SystemClock, UnixMillis};

/// What ran when: (label, order, start, end).
type Timeline = Arc<Mutex<Vec<(&'static str, i64, Instant, Instant)>>>;

struct FakeStore {
    timeline: Timeline,
    /// The first `order()` of this order id panics.
    panic_once_for: Option<i64>,
    panicked: AtomicBool,
}

fn pending(order_id: i64) -> Order {
    Order {
        id: order_id,
        user_id: 1,
        status: OrderStatus::Pending,
        total: Fen::new(100),
        refunded: Fen::ZERO,
        cancel_reason: None,
        expires_at: UnixMillis(i64::MAX / 2),
        created_at: UnixMillis(0),
        paid_at: None,
        cancelled_at: None,
        items: Vec::new(),
    }
}

#[async_trait]
impl OrderStore for FakeStore {
    async fn create_order(
        &self,
        _: i64,
        _: &[OrderLine],
        _: PendingLimits,
        _: UnixMillis,
        _: UnixMillis,
    ) -> Result<Order, CreateOrderError> {
        Err(StoreError::Other("not used here".into()).into())
    }

    async fn order(&self, order_id: i64) -> Result<Option<Order>, StoreError> {
        if self.panic_once_for == Some(order_id) && !self.panicked.swap(true, Ordering::SeqCst) {
            panic!("the store blew up");
        }
        Ok(Some(pending(order_id)))
    }

    async fn payments(&self, _: i64) -> Result<Vec<Payment>, StoreError> {
        Ok(Vec::new())
    }

    async fn payment_by_out_trade_no(&self, _: &str) -> Result<Option<Payment>, StoreError> {
        Ok(None)
    }

    async fn tickets(&self, _: i64) -> Result<Vec<Ticket>, StoreError> {
        Ok(Vec::new())
    }

    async fn insert_prepay(
        &self,
        prepay: &NewPrepay,
        _: Fence,
        now: UnixMillis,
    ) -> Result<Payment, StoreError> {
        Ok(Payment {
            id: 1,
            order_id: prepay.order_id,
            out_trade_no: prepay.out_trade_no.clone(),
            transaction_id: None,
            status: PaymentStatus::NotPay,
            amount: prepay.amount,
            refunded: Fen::ZERO,
            refund_committed: Fen::ZERO,
            openid: prepay.openid.clone(),
            pay_params: Some(prepay.pay_params.clone()),
            prepay_expires_at: prepay.prepay_expires_at,
            created_at: now,
            paid_at: None,
        })
    }

    async fn close_payment(&self, _: i64, _: Fence, _: UnixMillis) -> Result<bool, StoreError> {
        Ok(true)
    }

    async fn apply_payment(
        &self,
        paid: &PaymentApplication,
        _: PaymentRules,
        _: Fence,
        _: UnixMillis,
    ) -> Result<ApplyOutcome, StoreError> {
        let start = Instant::now();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let order_id: i64 = paid
            .out_trade_no
            .trim_start_matches("MP")
            .parse()
            .unwrap_or(0);
        self.timeline
            .lock()
            .unwrap()
            .push(("apply", order_id, start, Instant::now()));
        Ok(ApplyOutcome::Confirmed { tickets: 1 })
    }

    async fn append_event(&self, _: &NewPaymentEvent, _: UnixMillis) -> Result<(), StoreError> {
        Ok(())
    }

    async fn refunds(&self, _: i64) -> Result<Vec<crate::refund::Refund>, StoreError> {
        Ok(Vec::new())
    }

    async fn refund(&self, _: i64) -> Result<Option<crate::refund::Refund>, StoreError> {
        Ok(None)
    }

    async fn refund_for_request(
        &self,
        _: &str,
    ) -> Result<Option<crate::refund::Refund>, StoreError> {
        Ok(None)
    }

    async fn processing_refunds(&self) -> Result<Vec<crate::refund::Refund>, StoreError> {
        Ok(Vec::new())
    }

    async fn begin_refund(
        &self,
        _: &NewRefund,
        _: Fence,
        _: UnixMillis,
    ) -> Result<crate::refund::Refund, BeginRefundError> {
        Err(BeginRefundError::NotConfirmed)
    }

    async fn note_refund_attempt(
        &self,
        _: i64,
        _: Option<&str>,
        _: UnixMillis,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    async fn finish_refund(
        &self,
        _: i64,
        _: &RefundResult,
        _: Fence,
        _: UnixMillis,
    ) -> Result<FinishOutcome, StoreError> {
        Ok(FinishOutcome::AlreadyFinal(
            crate::refund::RefundStatus::Success,
        ))
    }

    async fn open_deadlines(
        &self,
        _: UnixMillis,
    ) -> Result<Vec<crate::expiry::Deadline>, StoreError> {
        Ok(Vec::new())
    }

    async fn expire_order(&self, _: i64, _: Fence, _: UnixMillis) -> Result<bool, StoreError> {
        Ok(false)
    }
}

struct SlowGateway {
    timeline: Timeline,
}

#[async_trait]
impl PaymentGateway for SlowGateway {
    async fn create_prepay(
        &self,
        request: &PrepayRequest,
    ) -> Result<PrepayCreated, GatewayFailure> {
        let start = Instant::now();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let order_id = request.out_trade_no[2..]
            .split('_')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        self.timeline
            .lock()
            .unwrap()
            .push(("prepay", order_id, start, Instant::now()));
        Ok(PrepayCreated {
            pay_params: "{}".into(),
        })
    }

    async fn query_trade(&self, _: &str) -> Result<TradeStatus, GatewayFailure> {
        Ok(TradeStatus::Open)
    }

    async fn close_trade(&self, _: &str) -> Result<(), GatewayFailure> {
        Ok(())
    }

    async fn refund(&self, _: &RefundRequest) -> Result<RefundAccepted, GatewayFailure> {
        Err(GatewayFailure::Refused("not used here".into()))
    }

    async fn refund_progress(&self, _: &str) -> Result<RefundProgress, GatewayFailure> {
        Ok(RefundProgress::Unknown)
    }
}

/// Grants every lease: whatever serializes in these tests is the actor itself.
struct NoLocks;

#[async_trait]
impl LockManager for NoLocks {
    async fn try_acquire(&self, key: &str, _: Duration) -> Result<Option<Lease>, String> {
        Ok(Some(Lease {
            key: key.into(),
            token: "t".into(),
            fence: 1,
        }))
    }

    async fn renew(&self, _: &Lease, _: Duration) -> Result<bool, String> {
        Ok(true)
    }

    async fn release(&self, _: &Lease) -> Result<(), String> {
        Ok(())
    }
}

fn registry(
    timeline: &Timeline,
    idle: Duration,
    panic_once_for: Option<i64>,
) -> (Addr<OrderRegistry>, Arc<AtomicUsize>) {
    let store = FakeStore {
        timeline: timeline.clone(),
        panic_once_for,
        panicked: AtomicBool::new(false),
    };
    let store: Arc<dyn OrderStore> = Arc::new(store);
    let engine = Engine {
        expiry: super::expiry_scheduler::ExpiryScheduler::new(
            None,
            Arc::new(SystemClock),
            Duration::from_secs(3600),
            Arc::new(AtomicUsize::new(0)),
        )
        .start(),
        refund_poller: super::refund_poller::RefundPoller::new(
            store.clone(),
            Arc::new(Silent),
            Duration::from_secs(1),
            Duration::from_secs(30),
        )
        .start(),
        observer: Arc::new(Silent),
        store,
        gateway: GatewaySupervisor::new(Some(Arc::new(SlowGateway {
            timeline: timeline.clone(),
        })))
        .start(),
        locks: LockSupervisor::new(
            Arc::new(NoLocks),
            Duration::from_secs(5),
            Duration::from_secs(1),
        )
        .start(),
        clock: Arc::new(SystemClock),
        fence: Fence(0),
        config: Arc::new(EngineConfig {
            idle_timeout: idle,
            ..EngineConfig::default()
        }),
    };
    let live = Arc::new(AtomicUsize::new(0));
    (OrderRegistry::new(engine, live.clone()).start(), live)
}

fn prepay() -> Prepay {
    Prepay {
        openid: "o1".into(),
        client_ip: "127.0.0.1".into(),
    }
}

fn paid(order_id: i64) -> ApplyPaid {
    ApplyPaid(PaymentApplication {
        out_trade_no: format!("MP{order_id}"),
        transaction_id: "T".into(),
        amount: Fen::new(100),
        paid_at: UnixMillis(0),
    })
}

fn overlaps(timeline: &Timeline, a: i64, b: i64) -> bool {
    let entries = timeline.lock().unwrap().clone();
    let of = |id: i64| {
        entries
            .iter()
            .filter(move |e| e.1 == id)
            .cloned()
            .collect::<Vec<_>>()
    };
    of(a).iter().any(|x| {
        of(b)
            .iter()
            .any(|y| (x.0, x.2) != (y.0, y.2) && x.2 < y.3 && y.2 < x.3)
    })
}

#[actix::test]
async fn one_orders_messages_never_interleave_across_awaits() {
    let timeline = Timeline::default();
    let (registry, _) = registry(&timeline, Duration::from_secs(60), None);
    let actor = registry.send(Lookup(7)).await.unwrap();
    // The prepay awaits a 200 ms gateway call; the notify arrives in the middle of it.
    let first = actor.send(prepay());
    let second = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        actor.send(paid(7)).await
    };
    let (a, b) = futures_util::future::join(first, second).await;
    assert!(a.unwrap().is_ok() && b.unwrap().is_ok());
    let entries = timeline.lock().unwrap().clone();
    assert_eq!(entries.len(), 2);
    assert!(!overlaps(&timeline, 7, 7), "serialized: {entries:?}");
    assert_eq!(
        entries[0].0, "prepay",
        "the notify waited for the prepay to finish"
    );
}

#[actix::test]
async fn different_orders_run_side_by_side() {
    let timeline = Timeline::default();
    let (registry, _) = registry(&timeline, Duration::from_secs(60), None);
    let one = registry.send(Lookup(1)).await.unwrap();
    let two = registry.send(Lookup(2)).await.unwrap();
    let second = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        two.send(paid(2)).await
    };
    let (a, b) = futures_util::future::join(one.send(prepay()), second).await;
    assert!(a.unwrap().is_ok() && b.unwrap().is_ok());
    // The same measurement sees the overlap here, so it would see one above.
    let entries = timeline.lock().unwrap().clone();
    let (p, n) = (&entries[1], &entries[0]);
    assert!(p.2 < n.3 && n.2 < p.3, "expected overlap: {entries:?}");
}

#[actix::test]
async fn idle_actors_are_reaped_and_come_back_on_demand() {
    let timeline = Timeline::default();
    let (registry, live) = registry(&timeline, Duration::from_millis(100), None);
    let actor = registry.send(Lookup(3)).await.unwrap();
    actor.send(SyncWithGateway).await.unwrap().unwrap();
    assert_eq!(registry.send(LiveActors).await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(registry.send(LiveActors).await.unwrap(), 0);
    assert_eq!(live.load(Ordering::Relaxed), 0);
    assert!(!actor.connected());
    let again = registry.send(Lookup(3)).await.unwrap();
    again.send(SyncWithGateway).await.unwrap().unwrap();
    assert_eq!(registry.send(LiveActors).await.unwrap(), 1);
}

#[actix::test]
async fn an_actor_killed_by_a_panic_is_replaced() {
    let timeline = Timeline::default();
    let (registry, _) = registry(&timeline, Duration::from_secs(60), Some(9));
    let doomed = registry.send(Lookup(9)).await.unwrap();
    assert!(
        doomed.send(prepay()).await.is_err(),
        "the panic ends the actor"
    );
    assert_eq!(registry.send(LiveActors).await.unwrap(), 0);
    let fresh = registry.send(Lookup(9)).await.unwrap();
    assert!(fresh.send(prepay()).await.unwrap().is_ok());
}
