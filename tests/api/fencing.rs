//! Fencing (issue 9, defect 7): a node that lost its lease cannot commit. Node A takes an
//! order's lease and calls the gateway; it is paused (its lease renewals never arrive) until the
//! lease expires; node B takes the lease, opens the order's trade and records it; A wakes up and
//! tries to record a second trade for the same order. Before fencing, A's write landed and the
//! order had two open trades; now the store refuses it.

use async_trait::async_trait;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use wallyt_pay::config::{DatabaseSettings, GroupCommit};
use wallyt_pay::engine::EngineHandle;
use wallyt_pay::storage::Database;
use wallyt_pay_actors::engine::local_locks::LocalLocks;
use wallyt_pay_actors::engine::{EngineConfig, EngineError, Prepay};
use wallyt_pay_actors::ports::*;
use wallyt_pay_actors::{
    CatalogStore, Clock, Fen, NewTicketType, OrderLine, PaymentStatus, SystemClock, UnixMillis,
    UserStore,
};

use crate::helpers::{fresh_database_url, Backend};
use crate::on_both_backends;

on_both_backends!(a_node_that_lost_its_lease_cannot_commit);

/// The lock service as a paused or partitioned node sees it: its renewals never arrive.
struct NoRenewals(Arc<LocalLocks>);

#[async_trait]
impl LockManager for NoRenewals {
    async fn try_acquire(&self, key: &str, ttl: Duration) -> Result<Option<Lease>, String> {
        self.0.try_acquire(key, ttl).await
    }

    async fn renew(&self, _: &Lease, _: Duration) -> Result<bool, String> {
        Err("paused".into())
    }

    async fn release(&self, lease: &Lease) -> Result<(), String> {
        self.0.release(lease).await
    }
}

/// A stand-in for the payment gateway that can hold a prepay call until released (the pause).
struct HeldGateway {
    hold: Option<Arc<Notify>>,
    prepays: Arc<AtomicUsize>,
}

#[async_trait]
impl PaymentGateway for HeldGateway {
    async fn create_prepay(&self, _: &PrepayRequest) -> Result<PrepayCreated, GatewayFailure> {
        self.prepays.fetch_add(1, Ordering::SeqCst);
        if let Some(hold) = &self.hold {
            hold.notified().await;
        }
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
        Err(GatewayFailure::Refused("not in this test".into()))
    }

    async fn refund_progress(&self, _: &str) -> Result<RefundProgress, GatewayFailure> {
        Ok(RefundProgress::Unknown)
    }
}

fn node(db: &Database, gateway: HeldGateway, locks: Arc<dyn LockManager>) -> EngineHandle {
    EngineHandle::start(
        Arc::new(db.clone()),
        Some(Arc::new(gateway)),
        locks,
        Arc::new(SystemClock),
        Arc::new(Silent),
        EngineConfig {
            lease_ttl: Duration::from_millis(300),
            lease_wait: Duration::from_secs(3),
            ..EngineConfig::default()
        },
    )
}

async fn a_node_that_lost_its_lease_cannot_commit(backend: Backend) {
    let Some((url, _dir)) = fresh_database_url(backend).await else {
        return;
    };
    let db = Database::connect(&DatabaseSettings {
        url: url.into(),
        max_connections: 5,
        read_connections: 0,
        acquire_timeout: Duration::from_secs(5),
        group_commit: GroupCommit::On,
        group_commit_lanes: 1,
    })
    .await
    .expect("connect");
    let now = SystemClock.now();
    let user = db.upsert_user("oFenced", None, now).await.unwrap();
    let kind = NewTicketType {
        name: "VIP".into(),
        price: Fen::new(5_000),
        total: 10,
    };
    let tickets = db.create_ticket_type(&kind, now).await.unwrap();
    let line = OrderLine {
        ticket_type_id: tickets.id,
        quantity: 1,
    };
    let expires = UnixMillis(now.0 + 600_000);
    let order = db
        .create_order(user.id, &[line], PendingLimits::OFF, expires, now)
        .await
        .unwrap();

    let shared = Arc::new(LocalLocks::new());
    let hold = Arc::new(Notify::new());
    let prepays = Arc::new(AtomicUsize::new(0));
    let paused = node(
        &db,
        HeldGateway {
            hold: Some(hold.clone()),
            prepays: prepays.clone(),
        },
        Arc::new(NoRenewals(shared.clone())),
    );
    let live = node(
        &db,
        HeldGateway {
            hold: None,
            prepays: prepays.clone(),
        },
        shared.clone(),
    );
    let msg = Prepay {
        openid: "oFenced".into(),
        client_ip: "127.0.0.1".into(),
    };
    let first = {
        let (paused, msg) = (paused.clone(), msg.clone());
        tokio::spawn(async move { paused.send(order.id, msg).await })
    };
    // A is inside its gateway call, holding the lease it can no longer renew.
    while prepays.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = live
        .send(order.id, msg)
        .await
        .expect("B takes the expired lease");
    assert!(!second.reused);

    hold.notify_one();
    let woke = first.await.unwrap();
    assert!(
        matches!(&woke, Err(EngineError::Store(StoreError::Fenced(_)))),
        "the paused node's write must be fenced: {woke:?}"
    );
    let payments = db.payments(order.id).await.unwrap();
    assert_eq!(payments.len(), 1, "one trade recorded: {payments:?}");
    assert_eq!(payments[0].out_trade_no, second.payment.out_trade_no);
    assert_eq!(payments[0].status, PaymentStatus::NotPay);
    paused.stop();
    live.stop();
}
