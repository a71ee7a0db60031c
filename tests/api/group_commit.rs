//! Group commit (`STORE_GROUP_COMMIT=on`, the default): transitions that arrive together share
//! one transaction, a savepoint each, and are answered after its commit. These tests force a
//! batch: the first member is held on a lock the test owns, the others queue behind it and
//! form the next batch together. They check that a member refused by its own guard (fenced,
//! already paid, sold out) is rolled back alone, that a duplicate inside one batch is applied
//! once, that a commit that fails fails every member with nothing applied, and that a crowd
//! over HTTP never oversells.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use sqlx::Executor;
use wallyt_pay::config::{DatabaseSettings, GroupCommit};
use wallyt_pay::storage::batcher::Tx;
use wallyt_pay::storage::Database;
use wallyt_pay_actors::ports::{
    ApplyOutcome, CreateOrderError, Fence, NewPrepay, OrderStore, PaymentApplication, PaymentRules,
    PendingLimits, StoreError,
};
use wallyt_pay_actors::{
    CatalogStore, Fen, NewTicketType, Order, OrderLine, Payment, PaymentStatus, UnixMillis,
    UserStore,
};

use crate::helpers::{fresh_database_url, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    a_refused_member_is_rolled_back_alone,
    a_failed_commit_fails_every_member,
    a_failed_reservation_set_is_retried_one_by_one,
    a_stock_move_that_fails_fails_only_its_own_orders,
    lanes_apply_every_payment_once_beside_reservations,
    a_crowd_over_http_never_oversells,
);

const NOW: UnixMillis = UnixMillis(1_733_486_700_000);
const RULES: PaymentRules = PaymentRules {
    revive_within: Duration::from_secs(1800),
};
const FENCE: Fence = Fence(10);

async fn open(backend: Backend) -> Option<(Database, Option<tempfile::TempDir>)> {
    open_with_lanes(backend, 1).await
}

async fn open_with_lanes(
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

async fn order(db: &Database, user: i64, tt: i64, quantity: i64) -> Order {
    let lines = [OrderLine {
        ticket_type_id: tt,
        quantity,
    }];
    let expires = NOW.plus(Duration::from_secs(900));
    db.create_order(user, &lines, PendingLimits::OFF, expires, NOW)
        .await
        .expect("order")
}

async fn prepay(db: &Database, order: &Order) -> Payment {
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

fn paid(payment: &Payment, transaction_id: &str) -> PaymentApplication {
    PaymentApplication {
        out_trade_no: payment.out_trade_no.clone(),
        transaction_id: transaction_id.into(),
        amount: payment.amount,
        paid_at: NOW,
    }
}

/// Holds the batcher's next transaction: on SQLite any write transaction does (one writer);
/// on PostgreSQL the ticket type's row, which a payment's confirmation updates.
async fn hold(db: &Database, backend: Backend, ticket_type: i64) -> Tx {
    let mut tx = db.begin_write().await.expect("begin");
    if matches!(backend, Backend::Postgres) {
        let lock = format!("SELECT id FROM ticket_types WHERE id = {ticket_type} FOR UPDATE");
        tx.execute(lock.as_str()).await.expect("lock");
    }
    tx
}

/// Batches and members committed, over the reservations' batcher and the payments' (the same
/// one on SQLite; on PostgreSQL payments have their own).
fn members(db: &Database) -> (u64, u64) {
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

async fn payment_status(db: &Database, payment: &Payment) -> PaymentStatus {
    db.payment_by_out_trade_no(&payment.out_trade_no)
        .await
        .unwrap()
        .unwrap()
        .status
}

async fn a_refused_member_is_rolled_back_alone(backend: Backend) {
    let Some((db, _dir)) = open(backend).await else {
        return;
    };
    let db = Arc::new(db);
    let user = db.upsert_user("oGroup", None, NOW).await.unwrap().id;
    let tt = db
        .create_ticket_type(&NewTicketType::new("G", Fen::new(100), 5).unwrap(), NOW)
        .await
        .unwrap()
        .id;
    let (first, fenced, ok) = (
        order(&db, user, tt, 1).await,
        order(&db, user, tt, 1).await,
        order(&db, user, tt, 1).await,
    );
    let (first_pay, fenced_pay, ok_pay) = (
        prepay(&db, &first).await,
        prepay(&db, &fenced).await,
        prepay(&db, &ok).await,
    );
    let before = members(&db);
    let held = hold(&db, backend, tt).await;
    let blocker = {
        let (db, application) = (db.clone(), paid(&first_pay, "TX-first"));
        tokio::spawn(async move { db.apply_payment(&application, RULES, FENCE, NOW).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The next batch: a member under a stale fence, the same payment twice, and an order for
    // more than is left (2 units remain once the three above are sold... and it asks 3).
    let stale = {
        let (db, application) = (db.clone(), paid(&fenced_pay, "TX-fenced"));
        tokio::spawn(async move { db.apply_payment(&application, RULES, Fence(5), NOW).await })
    };
    let twice: Vec<_> = (0..2)
        .map(|_| {
            let (db, application) = (db.clone(), paid(&ok_pay, "TX-ok"));
            tokio::spawn(async move { db.apply_payment(&application, RULES, FENCE, NOW).await })
        })
        .collect();
    let too_many = {
        let db = db.clone();
        tokio::spawn(async move {
            let lines = [OrderLine {
                ticket_type_id: tt,
                quantity: 3,
            }];
            let expires = NOW.plus(Duration::from_secs(900));
            db.create_order(user, &lines, PendingLimits::OFF, expires, NOW)
                .await
        })
    };
    // On PostgreSQL the order above forms a batch alone (reservations have a batcher of their
    // own, now waiting on the test's lock); this one forms the next.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let fits = {
        let db = db.clone();
        tokio::spawn(async move {
            let lines = [OrderLine {
                ticket_type_id: tt,
                quantity: 2,
            }];
            let expires = NOW.plus(Duration::from_secs(900));
            db.create_order(user, &lines, PendingLimits::OFF, expires, NOW)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(held);

    assert_eq!(
        blocker.await.unwrap().unwrap(),
        ApplyOutcome::Confirmed { tickets: 1 }
    );
    assert!(matches!(
        stale.await.unwrap(),
        Err(StoreError::Fenced(newer)) if newer == FENCE.0
    ));
    let mut outcomes = Vec::new();
    for copy in twice {
        outcomes.push(copy.await.unwrap().unwrap());
    }
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(
        outcomes,
        vec![
            ApplyOutcome::AlreadyApplied,
            ApplyOutcome::Confirmed { tickets: 1 }
        ]
    );
    assert!(matches!(
        too_many.await.unwrap(),
        Err(CreateOrderError::InsufficientStock(id)) if id == tt
    ));
    let fitted = fits
        .await
        .unwrap()
        .expect("the order that fits is reserved");
    assert_eq!(fitted.total, Fen::new(200));
    let after = members(&db);
    // On PostgreSQL reservations have a batcher of their own: the two orders a batch each,
    // the three payments one together.
    let expected = match backend {
        Backend::Sqlite => (2, 6),
        Backend::Postgres => (4, 6),
    };
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        expected,
        "the blocker alone, then the five others together"
    );

    // What committed: the fenced payment untouched, the duplicate applied once, the refused
    // order reserved nothing, and the counters add up.
    assert_eq!(
        payment_status(&db, &fenced_pay).await,
        PaymentStatus::NotPay
    );
    assert_eq!(payment_status(&db, &ok_pay).await, PaymentStatus::Paid);
    assert_eq!(db.tickets(ok.id).await.unwrap().len(), 1);
    let stock = db.ticket_type(tt).await.unwrap().unwrap().stock;
    assert_eq!(
        (stock.available, stock.reserved, stock.sold),
        (0, 3, 2),
        "{stock:?}"
    );
}

async fn a_failed_commit_fails_every_member(backend: Backend) {
    // A commit that fails needs a check that runs at commit: a deferred constraint trigger,
    // which SQLite does not have. PostgreSQL only.
    if matches!(backend, Backend::Sqlite) {
        return;
    }
    let Some((db, _dir)) = open(backend).await else {
        return;
    };
    let db = Arc::new(db);
    for sql in [
        "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN \
           IF NEW.transaction_id = 'poison' THEN RAISE EXCEPTION 'poisoned commit'; END IF; \
           RETURN NEW; END $$ LANGUAGE plpgsql",
        "CREATE CONSTRAINT TRIGGER poison AFTER UPDATE ON payments \
           DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
        // And an order of 3.00 yuan cannot commit either.
        "CREATE FUNCTION refuse_poison_order() RETURNS trigger AS $$ BEGIN \
           IF NEW.total_fen = 300 THEN RAISE EXCEPTION 'poisoned order commit'; END IF; \
           RETURN NEW; END $$ LANGUAGE plpgsql",
        "CREATE CONSTRAINT TRIGGER poison_order AFTER INSERT ON orders \
           DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_poison_order()",
    ] {
        db.pool().execute(sql).await.expect("trigger");
    }
    let user = db.upsert_user("oPoison", None, NOW).await.unwrap().id;
    let tt = db
        .create_ticket_type(&NewTicketType::new("P", Fen::new(100), 10).unwrap(), NOW)
        .await
        .unwrap()
        .id;
    let (first, good, poisoned) = (
        order(&db, user, tt, 1).await,
        order(&db, user, tt, 1).await,
        order(&db, user, tt, 1).await,
    );
    let (first_pay, good_pay, poisoned_pay) = (
        prepay(&db, &first).await,
        prepay(&db, &good).await,
        prepay(&db, &poisoned).await,
    );
    let held = hold(&db, backend, tt).await;
    let blocker = {
        let (db, application) = (db.clone(), paid(&first_pay, "TX-first"));
        tokio::spawn(async move { db.apply_payment(&application, RULES, FENCE, NOW).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let members: Vec<_> = [
        (good_pay.clone(), "TX-good"),
        (poisoned_pay.clone(), "poison"),
    ]
    .into_iter()
    .map(|(payment, tx)| {
        let (db, application) = (db.clone(), paid(&payment, tx));
        tokio::spawn(async move { db.apply_payment(&application, RULES, FENCE, NOW).await })
    })
    .collect();
    let reservation = {
        let db = db.clone();
        tokio::spawn(async move {
            let lines = [OrderLine {
                ticket_type_id: tt,
                quantity: 1,
            }];
            let expires = NOW.plus(Duration::from_secs(900));
            db.create_order(user, &lines, PendingLimits::OFF, expires, NOW)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(held);

    assert!(blocker.await.unwrap().is_ok());
    for member in members {
        let answer = member.await.unwrap();
        assert!(
            matches!(&answer, Err(StoreError::Other(m)) if m.contains("poisoned commit")),
            "{answer:?}"
        );
    }
    // The reservation is in a batch of its own (reservations have their own batcher on
    // PostgreSQL): it stands.
    let reserved = reservation.await.unwrap().expect("reserved");
    assert_eq!(reserved.total, Fen::new(100));
    // Nothing of the poisoned batch stands: both payments open.
    assert_eq!(payment_status(&db, &good_pay).await, PaymentStatus::NotPay);
    assert_eq!(
        payment_status(&db, &poisoned_pay).await,
        PaymentStatus::NotPay
    );
    let stock = db.ticket_type(tt).await.unwrap().unwrap().stock;
    assert_eq!((stock.available, stock.reserved, stock.sold), (6, 3, 1));
    // A reservation whose batch cannot commit is answered the commit's error and holds nothing.
    let lines = [OrderLine {
        ticket_type_id: tt,
        quantity: 3,
    }];
    let expires = NOW.plus(Duration::from_secs(900));
    let poisoned = db
        .create_order(user, &lines, PendingLimits::OFF, expires, NOW)
        .await;
    assert!(
        matches!(&poisoned, Err(CreateOrderError::Store(StoreError::Other(m))) if m.contains("poisoned order commit")),
        "{poisoned:?}"
    );
    let stock = db.ticket_type(tt).await.unwrap().unwrap().stock;
    assert_eq!((stock.available, stock.reserved, stock.sold), (6, 3, 1));
    // The gateway retries: the good payment alone goes through.
    assert_eq!(
        db.apply_payment(&paid(&good_pay, "TX-good"), RULES, FENCE, NOW)
            .await
            .unwrap(),
        ApplyOutcome::Confirmed { tickets: 1 }
    );
}

async fn a_failed_reservation_set_is_retried_one_by_one(backend: Backend) {
    // A batch's reservations are made as one set. A statement of the set that fails (here a
    // trigger refusing one buyer's order) writes none of them; each is then run alone, so only
    // the refused buyer's order fails. The payments batched beside them (SQLite, where one
    // batcher takes both, the set under a savepoint of its own) commit.
    let Some((db, _dir)) = open(backend).await else {
        return;
    };
    let db = Arc::new(db);
    let refused = db.upsert_user("oRefused", None, NOW).await.unwrap().id;
    let user = db.upsert_user("oSet", None, NOW).await.unwrap().id;
    let trigger = match backend {
        Backend::Postgres => vec![
            format!(
                "CREATE FUNCTION refuse_buyer() RETURNS trigger AS $$ BEGIN \
                 IF NEW.user_id = {refused} THEN RAISE EXCEPTION 'buyer refused'; END IF; \
                 RETURN NEW; END $$ LANGUAGE plpgsql"
            ),
            "CREATE TRIGGER refuse_buyer BEFORE INSERT ON orders \
             FOR EACH ROW EXECUTE FUNCTION refuse_buyer()"
                .to_string(),
        ],
        Backend::Sqlite => vec![format!(
            "CREATE TRIGGER refuse_buyer BEFORE INSERT ON orders \
             WHEN NEW.user_id = {refused} BEGIN SELECT RAISE(ABORT, 'buyer refused'); END"
        )],
    };
    for sql in trigger {
        db.pool().execute(sql.as_str()).await.expect("trigger");
    }
    let tt = db
        .create_ticket_type(&NewTicketType::new("S", Fen::new(100), 10).unwrap(), NOW)
        .await
        .unwrap()
        .id;
    let (first, second) = (order(&db, user, tt, 1).await, order(&db, user, tt, 1).await);
    let (first_pay, second_pay) = (prepay(&db, &first).await, prepay(&db, &second).await);
    let before = members(&db);
    let held = hold(&db, backend, tt).await;
    let blocker = {
        let (db, application) = (db.clone(), paid(&first_pay, "TX-set-first"));
        tokio::spawn(async move { db.apply_payment(&application, RULES, FENCE, NOW).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reserve = |buyer: i64| {
        let db = db.clone();
        tokio::spawn(async move {
            let lines = [OrderLine {
                ticket_type_id: tt,
                quantity: 2,
            }];
            let expires = NOW.plus(Duration::from_secs(900));
            db.create_order(buyer, &lines, PendingLimits::OFF, expires, NOW)
                .await
        })
    };
    // On PostgreSQL this one occupies the reservations' own batcher (waiting on the test's
    // lock), so the two below queue together into its next batch; on SQLite all three queue
    // behind the payment above.
    let first = {
        let db = db.clone();
        tokio::spawn(async move {
            let lines = [OrderLine {
                ticket_type_id: tt,
                quantity: 1,
            }];
            let expires = NOW.plus(Duration::from_secs(900));
            db.create_order(user, &lines, PendingLimits::OFF, expires, NOW)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (good, bad) = (reserve(user), reserve(refused));
    let payment = {
        let (db, application) = (db.clone(), paid(&second_pay, "TX-set-second"));
        tokio::spawn(async move { db.apply_payment(&application, RULES, FENCE, NOW).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(held);

    assert!(blocker.await.unwrap().is_ok());
    let first = first
        .await
        .unwrap()
        .expect("retried alone, or in a batch of its own");
    let good = good.await.unwrap().expect("retried alone");
    assert_eq!((first.total, good.total), (Fen::new(100), Fen::new(200)));
    let answer = bad.await.unwrap();
    assert!(
        matches!(&answer, Err(CreateOrderError::Store(StoreError::Other(m))) if m.contains("buyer refused")),
        "{answer:?}"
    );
    assert_eq!(
        payment.await.unwrap().unwrap(),
        ApplyOutcome::Confirmed { tickets: 1 }
    );
    let after = members(&db);
    // SQLite: the blocker alone, then three reservations and a payment in one batch, which
    // commits with the reservations rolled back to their savepoint (and retried alone, not
    // counted). PostgreSQL: the first reservation's batch, the payments' two; the batch of
    // two reservations fails (uncounted) and both are retried alone.
    let expected = match backend {
        Backend::Sqlite => (2, 5),
        Backend::Postgres => (3, 3),
    };
    assert_eq!((after.0 - before.0, after.1 - before.1), expected);
    // Both payments confirmed; the two orders reserved, the refused one not.
    let stock = db.ticket_type(tt).await.unwrap().unwrap().stock;
    assert_eq!((stock.available, stock.reserved, stock.sold), (5, 3, 2));
}

async fn a_stock_move_that_fails_fails_only_its_own_orders(backend: Backend) {
    // Confirmations owe their reservation's move to sold; the batch makes the moves of all its
    // members together, last. If the row does not hold what they owe (inconsistent data, made
    // here by hand under the test's lock), nothing of that batch stands and each payment runs
    // again alone: those of the inconsistent row fail (open for the gateway's retry, no
    // ticket), the one of another ticket type is confirmed.
    let Some((db, _dir)) = open(backend).await else {
        return;
    };
    let db = Arc::new(db);
    let user = db.upsert_user("oOwed", None, NOW).await.unwrap().id;
    let tt = db
        .create_ticket_type(&NewTicketType::new("O", Fen::new(100), 10).unwrap(), NOW)
        .await
        .unwrap()
        .id;
    let other = db
        .create_ticket_type(&NewTicketType::new("P", Fen::new(100), 10).unwrap(), NOW)
        .await
        .unwrap()
        .id;
    // The last order is of another type, whose row is consistent: it goes down with its batch.
    let orders = [
        order(&db, user, tt, 1).await,
        order(&db, user, tt, 1).await,
        order(&db, user, tt, 1).await,
        order(&db, user, other, 1).await,
    ];
    let mut payments = Vec::new();
    for order in &orders {
        payments.push(prepay(&db, order).await);
    }
    let mut held = hold(&db, backend, tt).await;
    let apply = |payment: &Payment, tx: &str| {
        let (db, application) = (db.clone(), paid(payment, tx));
        tokio::spawn(async move { db.apply_payment(&application, RULES, FENCE, NOW).await })
    };
    let before = members(&db);
    let blocker = apply(&payments[0], "TX-owed-0");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let batch = [
        apply(&payments[1], "TX-owed-1"),
        apply(&payments[2], "TX-owed-2"),
        apply(&payments[3], "TX-owed-3"),
    ];
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Three units reserved; the row now claims one.
    let tamper = format!("UPDATE ticket_types SET reserved = 1, available = 9 WHERE id = {tt}");
    held.execute(tamper.as_str()).await.expect("tamper");
    held.commit().await.expect("commit");

    assert_eq!(
        blocker.await.unwrap().unwrap(),
        ApplyOutcome::Confirmed { tickets: 1 }
    );
    let [short_a, short_b, fine] = batch;
    for member in [short_a, short_b] {
        let answer = member.await.unwrap();
        assert!(
            matches!(&answer, Err(StoreError::Other(m)) if m.contains("does not hold the reserved stock")),
            "{answer:?}"
        );
    }
    assert_eq!(
        fine.await.unwrap().unwrap(),
        ApplyOutcome::Confirmed { tickets: 1 }
    );
    let after = members(&db);
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (1, 1),
        "the blocker's batch committed, the three others' did not (they ran alone)"
    );
    for (order, payment) in orders.iter().zip(&payments).skip(1).take(2) {
        assert_eq!(payment_status(&db, payment).await, PaymentStatus::NotPay);
        assert!(db.tickets(order.id).await.unwrap().is_empty());
    }
    assert_eq!(payment_status(&db, &payments[3]).await, PaymentStatus::Paid);
    assert_eq!(db.tickets(orders[3].id).await.unwrap().len(), 1);
    let stock = db.ticket_type(tt).await.unwrap().unwrap().stock;
    assert_eq!((stock.available, stock.reserved, stock.sold), (9, 0, 1));
    let stock = db.ticket_type(other).await.unwrap().unwrap().stock;
    assert_eq!((stock.available, stock.reserved, stock.sold), (9, 0, 1));
}

async fn lanes_apply_every_payment_once_beside_reservations(backend: Backend) {
    // Four payment lanes on PostgreSQL (SQLite keeps one batcher): 120 orders of one hot
    // ticket type paid at once, each twice in a row (as its actor would send a notify and its
    // retry), while 60 new orders reserve the same type. Every payment applies once, every
    // confirmation sells its unit once, nothing is oversold. (Two copies of one payment at
    // the same moment take an actor and a lease both failing; lanes could then wait on each
    // other's order rows in a cycle, which PostgreSQL breaks by failing one batch — correct,
    // and retried by the gateway, but not what this test is about.)
    let Some((db, _dir)) = open_with_lanes(backend, 4).await else {
        return;
    };
    let db = Arc::new(db);
    let user = db.upsert_user("oLanes", None, NOW).await.unwrap().id;
    let tt = db
        .create_ticket_type(&NewTicketType::new("L", Fen::new(100), 150).unwrap(), NOW)
        .await
        .unwrap()
        .id;
    let mut payments = Vec::new();
    for _ in 0..120 {
        let order = order(&db, user, tt, 1).await;
        payments.push(prepay(&db, &order).await);
    }
    let before = members(&db);
    let mut applies = Vec::new();
    for payment in &payments {
        let (db, application) = (db.clone(), paid(payment, &format!("TX-{}", payment.id)));
        applies.push(tokio::spawn(async move {
            let first = db.apply_payment(&application, RULES, FENCE, NOW).await;
            let again = db.apply_payment(&application, RULES, FENCE, NOW).await;
            (first, again)
        }));
    }
    let reservations: Vec<_> = (0..60)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move {
                let lines = [OrderLine {
                    ticket_type_id: tt,
                    quantity: 1,
                }];
                let expires = NOW.plus(Duration::from_secs(900));
                db.create_order(user, &lines, PendingLimits::OFF, expires, NOW)
                    .await
            })
        })
        .collect();
    let (mut confirmed, mut again) = (0, 0);
    for apply in applies {
        let (first, second) = apply.await.unwrap();
        for outcome in [first, second] {
            match outcome {
                Ok(ApplyOutcome::Confirmed { tickets: 1 }) => confirmed += 1,
                Ok(ApplyOutcome::AlreadyApplied) => again += 1,
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!((confirmed, again), (120, 120));
    let mut reserved = 0;
    for reservation in reservations {
        match reservation.await.unwrap() {
            Ok(_) => reserved += 1,
            Err(CreateOrderError::InsufficientStock(_)) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(reserved, 30, "150 units: 120 sold, 30 left for 60 buyers");
    let stock = db.ticket_type(tt).await.unwrap().unwrap().stock;
    assert_eq!((stock.available, stock.reserved, stock.sold), (0, 30, 120));
    for payment in &payments {
        assert_eq!(db.tickets(payment.order_id).await.unwrap().len(), 1);
    }
    let after = members(&db);
    assert_eq!(
        after.1 - before.1,
        300,
        "every transition went through a batch"
    );
}

async fn a_crowd_over_http_never_oversells(backend: Backend) {
    // Twenty buyers, three orders each at once, two lines each (one hot type of 25, one
    // plentiful), at most two unpaid orders per buyer: the limits and the stock are checked
    // inside the batched transaction, each order all or nothing.
    let Some(app) = TestApp::spawn_with(backend, |vars| {
        vars.insert("MAX_PENDING_ORDERS".into(), "2".into());
        vars.insert("MAX_PENDING_UNITS".into(), "0".into());
        vars.insert("STORE_GROUP_COMMIT".into(), "on".into());
    })
    .await
    else {
        return;
    };
    let hot = app.create_ticket_type("Hot", "88.00", 25).await["id"].clone();
    let plenty = app.create_ticket_type("Plenty", "10.00", 1000).await["id"].clone();
    let mut tokens = Vec::new();
    for i in 0..20 {
        tokens.push(app.login(&format!("oFlash{i}")).await.0);
    }
    let app = Arc::new(app);
    let buyers = (0..60).map(|i| {
        let (app, token) = (app.clone(), tokens[i % 20].clone());
        let items = json!([
            { "ticketTypeId": hot, "quantity": 1 },
            { "ticketTypeId": plenty, "quantity": 2 },
        ]);
        tokio::spawn(async move { app.create_order(&token, items).await.status() })
    });
    let mut statuses = Vec::new();
    for buyer in buyers {
        statuses.push(buyer.await.unwrap());
    }
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 25, "{statuses:?}");
    assert!(statuses.iter().all(|s| [
        StatusCode::CREATED,
        StatusCode::CONFLICT,
        StatusCode::TOO_MANY_REQUESTS
    ]
    .contains(s)));
    assert_eq!(
        app.stock(&hot).await,
        json!({ "total": 25, "available": 0, "reserved": 25, "sold": 0 })
    );
    // Every order took both of its lines, none took one alone.
    assert_eq!(
        app.stock(&plenty).await,
        json!({ "total": 1000, "available": 950, "reserved": 50, "sold": 0 })
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM (SELECT user_id FROM orders GROUP BY user_id HAVING COUNT(*) > 2) AS over")
            .await,
        0
    );
}
