//! Group commit (`STORE_GROUP_COMMIT=on`, what `auto` means): transitions that arrive
//! together share one transaction and are answered after its commit. These tests force a
//! batch: the first member is held on a lock the test owns, the others queue behind it and
//! form the next batch together. `refusals`: a member refused by its own guard (fenced,
//! already paid, sold out) is rolled back alone, a duplicate inside one batch is applied once,
//! a crowd over HTTP never oversells. `failures`: a commit that fails fails every member with
//! nothing applied; a reservation set or a stock move that fails sends every member to run
//! alone, where only the bad one fails. `lanes`: several payment batches at once.

mod failures;
mod lanes;
mod refusals;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Executor;
use tokio::task::JoinHandle;
use wallyt_pay::config::{DatabaseSettings, GroupCommit};
use wallyt_pay::storage::batcher::Tx;
use wallyt_pay::storage::Database;
use wallyt_pay_actors::ports::{
    ApplyOutcome, CreateOrderError, Fence, NewPrepay, OrderStore, PaymentApplication, PaymentRules,
    PendingLimits, StoreError,
};
use wallyt_pay_actors::{Order, OrderLine, Payment, PaymentStatus, UnixMillis};

use crate::helpers::{fresh_database_url, Backend};

pub(super) const NOW: UnixMillis = UnixMillis(1_733_486_700_000);
pub(super) const RULES: PaymentRules = PaymentRules {
    revive_within: Duration::from_secs(1800),
};
pub(super) const FENCE: Fence = Fence(10);

pub(super) async fn open(backend: Backend) -> Option<(Database, Option<tempfile::TempDir>)> {
    open_with_lanes(backend, 1).await
}

pub(super) async fn open_with_lanes(
    backend: Backend,
    lanes: u32,
) -> Option<(Database, Option<tempfile::TempDir>)> {
    let (url, dir) = fresh_database_url(backend).await?;
    let settings = DatabaseSettings {
        url: url.into(),
        max_connections: 8,
        read_connections: 0,
        acquire_timeout: Duration::from_secs(5),
        group_commit: GroupCommit::On,
        group_commit_lanes: lanes,
    };
    Some((Database::connect(&settings).await.expect("connect"), dir))
}

/// A PENDING order of `quantity` units of `tt`, limits off.
pub(super) async fn reserve(
    db: &Database,
    user: i64,
    tt: i64,
    quantity: i64,
) -> Result<Order, CreateOrderError> {
    let lines = [OrderLine {
        ticket_type_id: tt,
        quantity,
    }];
    let expires = NOW.plus(Duration::from_secs(900));
    db.create_order(user, &lines, PendingLimits::OFF, expires, NOW)
        .await
}

pub(super) async fn order(db: &Database, user: i64, tt: i64, quantity: i64) -> Order {
    reserve(db, user, tt, quantity).await.expect("order")
}

/// [`reserve`] in a task of its own, free to wait for a batch.
pub(super) fn reserve_later(
    db: &Arc<Database>,
    user: i64,
    tt: i64,
    quantity: i64,
) -> JoinHandle<Result<Order, CreateOrderError>> {
    let db = db.clone();
    tokio::spawn(async move { reserve(&db, user, tt, quantity).await })
}

/// `payment` applied as paid (transaction `transaction_id`) in a task of its own.
pub(super) fn apply_later(
    db: &Arc<Database>,
    payment: &Payment,
    transaction_id: &str,
) -> JoinHandle<Result<ApplyOutcome, StoreError>> {
    let (db, application) = (db.clone(), paid(payment, transaction_id));
    tokio::spawn(async move { db.apply_payment(&application, RULES, FENCE, NOW).await })
}

pub(super) async fn prepay(db: &Database, order: &Order) -> Payment {
    let new = NewPrepay {
        order_id: order.id,
        out_trade_no: format!("GC{}", order.id),
        amount: order.total,
        openid: "group".into(),
        pay_params: "{}".into(),
        prepay_expires_at: order.expires_at,
    };
    db.insert_prepay(&new, FENCE, NOW).await.expect("prepay")
}

pub(super) fn paid(payment: &Payment, transaction_id: &str) -> PaymentApplication {
    PaymentApplication {
        out_trade_no: payment.out_trade_no.clone(),
        transaction_id: transaction_id.into(),
        amount: payment.amount,
        paid_at: NOW,
    }
}

/// Holds the batcher's next transaction: on SQLite any write transaction does (one writer);
/// on PostgreSQL the ticket type's row, which a payment's confirmation updates.
pub(super) async fn hold(db: &Database, backend: Backend, ticket_type: i64) -> Tx {
    let mut tx = db.begin_write().await.expect("begin");
    if matches!(backend, Backend::Postgres) {
        let lock = format!("SELECT id FROM ticket_types WHERE id = {ticket_type} FOR UPDATE");
        tx.execute(lock.as_str()).await.expect("lock");
    }
    tx
}

/// Batches and members committed, over the reservations' batcher and the payments' (the same
/// one on SQLite; on PostgreSQL payments have their own).
pub(super) fn members(db: &Database) -> (u64, u64) {
    let reservations = db.batcher().expect("group commit is on").stats();
    let payments = db.payment_batcher().expect("payments are batched").stats();
    let mut counted = vec![reservations];
    if !std::ptr::eq(reservations, payments) {
        counted.push(payments);
    }
    counted.iter().fold((0, 0), |(batches, members), stats| {
        (
            batches + stats.batches.load(Ordering::Relaxed),
            members + stats.members.load(Ordering::Relaxed),
        )
    })
}

pub(super) async fn payment_status(db: &Database, payment: &Payment) -> PaymentStatus {
    db.payment_by_out_trade_no(&payment.out_trade_no)
        .await
        .unwrap()
        .unwrap()
        .status
}
