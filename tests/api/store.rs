//! Store conformance: the same expectations of the schema and the store adapters on SQLite
//! and PostgreSQL — constraints that keep money and stock right even if application code
//! is wrong.

use sqlx::AnyPool;
use wallyt_pay::config::{DatabaseSettings, GroupCommit};
use wallyt_pay::storage::Database;
use wallyt_pay_actors::expiry::DeadlineKind;
use wallyt_pay_actors::ports::{Fence, OrderStore, PendingLimits};
use wallyt_pay_actors::{CatalogStore, Fen, NewTicketType, OrderLine, UnixMillis, UserStore};

use crate::helpers::{fresh_database_url, Backend};
use crate::on_both_backends;

on_both_backends!(
    migrations_apply_once_and_reconnect_cleanly,
    users_upsert_by_openid,
    concurrent_first_logins_make_one_user,
    ticket_types_round_trip,
    stock_counters_must_add_up,
    guarded_reservation_never_oversells,
    money_keys_are_unique,
    payment_events_are_append_only,
    idempotency_keys_are_scoped,
    deadlines_come_back_a_window_at_a_time,
    the_engines_store_conformance_suite_holds,
    the_conformance_suite_holds_without_group_commit,
);

/// The same checks the simulator's in-memory store passes (`wallyt_pay_actors::sim::
/// conformance`): fencing, pay once, the refund cap, FAIL freeing its amount, unique refund
/// keys, expiry waiting for open trades, late payments revived or refunded, double payments,
/// no oversell. So the simulator's store cannot drift from the SQL ones.
async fn the_engines_store_conformance_suite_holds(backend: Backend) {
    let Some((db, _settings, _dir)) = open(backend).await else {
        return;
    };
    let user = db.upsert_user("oConformance", None, NOW).await.unwrap();
    wallyt_pay_actors::sim::conformance::run_all(&db, user.id).await;
}

/// The same suite on the path where each transition has a transaction of its own
/// (`STORE_GROUP_COMMIT=off`); the one above runs batched, the default.
async fn the_conformance_suite_holds_without_group_commit(backend: Backend) {
    let Some((url, _dir)) = fresh_database_url(backend).await else {
        return;
    };
    let settings = DatabaseSettings {
        url: url.into(),
        max_connections: 5,
        read_connections: 0,
        acquire_timeout: std::time::Duration::from_secs(5),
        group_commit: GroupCommit::Off,
        group_commit_lanes: 1,
    };
    let db = Database::connect(&settings).await.expect("connect");
    assert!(db.batcher().is_none());
    let user = db.upsert_user("oConformance", None, NOW).await.unwrap();
    wallyt_pay_actors::sim::conformance::run_all(&db, user.id).await;
}

const NOW: UnixMillis = UnixMillis(1_733_486_700_000);

async fn open(backend: Backend) -> Option<(Database, DatabaseSettings, Option<tempfile::TempDir>)> {
    let (url, dir) = fresh_database_url(backend).await?;
    let settings = DatabaseSettings {
        url: url.into(),
        max_connections: 5,
        read_connections: 0,
        acquire_timeout: std::time::Duration::from_secs(5),
        group_commit: GroupCommit::On,
        group_commit_lanes: 1,
    };
    let db = Database::connect(&settings).await.expect("connect");
    Some((db, settings, dir))
}

async fn exec(pool: &AnyPool, sql: &str) -> Result<u64, sqlx::Error> {
    sqlx::query(sql)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
}

async fn migrations_apply_once_and_reconnect_cleanly(backend: Backend) {
    let Some((db, settings, _dir)) = open(backend).await else {
        return;
    };
    db.create_ticket_type(&NewTicketType::new("A", Fen::new(1), 1).unwrap(), NOW)
        .await
        .unwrap();
    db.close().await;
    let again = Database::connect(&settings).await.expect("second start");
    assert_eq!(again.ticket_types().await.unwrap().len(), 1);
    again.ping().await.unwrap();
}

async fn users_upsert_by_openid(backend: Backend) {
    let Some((db, _, _dir)) = open(backend).await else {
        return;
    };
    let first = db.upsert_user("oA", Some("uA"), NOW).await.unwrap();
    let again = db
        .upsert_user("oA", None, UnixMillis(NOW.0 + 1))
        .await
        .unwrap();
    assert_eq!(first.id, again.id);
    assert_eq!(
        again.unionid.as_deref(),
        Some("uA"),
        "a login without unionid keeps it"
    );
    let other = db.upsert_user("oB", None, NOW).await.unwrap();
    assert_ne!(other.id, first.id);
    assert_eq!(db.find_user(first.id).await.unwrap(), Some(again));
    assert_eq!(db.find_user(9_999).await.unwrap(), None);
}

async fn concurrent_first_logins_make_one_user(backend: Backend) {
    let Some((db, _, _dir)) = open(backend).await else {
        return;
    };
    let logins = (0..8).map(|_| {
        let db = db.clone();
        tokio::spawn(async move { db.upsert_user("oRace", None, NOW).await.unwrap().id })
    });
    let ids: Vec<i64> = futures_join(logins).await;
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
}

async fn ticket_types_round_trip(backend: Backend) {
    let Some((db, _, _dir)) = open(backend).await else {
        return;
    };
    let vip = db
        .create_ticket_type(
            &NewTicketType::new("VIP", Fen::new(10_000), 50).unwrap(),
            NOW,
        )
        .await
        .unwrap();
    let floor = db
        .create_ticket_type(
            &NewTicketType::new("Floor 场地", Fen::new(5_050), 0).unwrap(),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(vip.price, Fen::new(10_000));
    assert!(vip.stock.is_consistent() && vip.stock.available == 50);
    assert_eq!(db.ticket_type(vip.id).await.unwrap(), Some(vip.clone()));
    assert_eq!(db.ticket_types().await.unwrap(), vec![vip, floor]);
    assert_eq!(db.ticket_type(-1).await.unwrap(), None);
}

async fn stock_counters_must_add_up(backend: Backend) {
    let Some((db, _, _dir)) = open(backend).await else {
        return;
    };
    let t = db
        .create_ticket_type(&NewTicketType::new("A", Fen::new(100), 10).unwrap(), NOW)
        .await
        .unwrap();
    let pool = db.pool();
    let id = t.id;
    // Losing a unit, or creating one, violates the invariant.
    assert!(exec(
        pool,
        &format!("UPDATE ticket_types SET available = 9 WHERE id = {id}")
    )
    .await
    .is_err());
    assert!(exec(
        pool,
        &format!("UPDATE ticket_types SET sold = 1 WHERE id = {id}")
    )
    .await
    .is_err());
    // Negative counters are refused even when the sum is right.
    let negative = format!("UPDATE ticket_types SET available = 11, reserved = -1 WHERE id = {id}");
    assert!(exec(pool, &negative).await.is_err());
    assert!(exec(pool, "INSERT INTO ticket_types (name, price_fen, total, available, reserved, sold, created_at, updated_at) VALUES ('free', 0, 1, 1, 0, 0, 0, 0)").await.is_err());
    // A move between counters is fine.
    let reserve = format!("UPDATE ticket_types SET available = available - 2, reserved = reserved + 2 WHERE id = {id}");
    assert_eq!(exec(pool, &reserve).await.unwrap(), 1);
    let after = db.ticket_type(id).await.unwrap().unwrap();
    assert_eq!((after.stock.available, after.stock.reserved), (8, 2));
}

async fn guarded_reservation_never_oversells(backend: Backend) {
    let Some((db, _, _dir)) = open(backend).await else {
        return;
    };
    let t = db
        .create_ticket_type(&NewTicketType::new("A", Fen::new(100), 5).unwrap(), NOW)
        .await
        .unwrap();
    let attempts = (0..12).map(|_| {
        let db = db.clone();
        tokio::spawn(async move {
            let mut tx = db.begin_write().await.unwrap();
            let moved = sqlx::query(
                "UPDATE ticket_types SET available = available - $1, reserved = reserved + $2 \
                 WHERE id = $3 AND available >= $4",
            )
            .bind(1_i64)
            .bind(1_i64)
            .bind(t.id)
            .bind(1_i64)
            .execute(&mut *tx)
            .await
            .unwrap()
            .rows_affected();
            tx.commit().await.unwrap();
            moved
        })
    });
    let moved: u64 = futures_join(attempts).await.into_iter().sum();
    assert_eq!(moved, 5);
    let after = db.ticket_type(t.id).await.unwrap().unwrap();
    assert_eq!((after.stock.available, after.stock.reserved), (0, 5));
    assert!(after.stock.is_consistent());
}

async fn money_keys_are_unique(backend: Backend) {
    let Some((db, _, _dir)) = open(backend).await else {
        return;
    };
    let user = db.upsert_user("oPay", None, NOW).await.unwrap();
    let t = db
        .create_ticket_type(&NewTicketType::new("A", Fen::new(100), 5).unwrap(), NOW)
        .await
        .unwrap();
    let pool = db.pool();
    let order = |id: i64| {
        format!("INSERT INTO orders (id, user_id, status, total_fen, expires_at, created_at, updated_at) VALUES ({id}, {}, 'PENDING', 100, 0, 0, 0)", user.id)
    };
    exec(pool, &order(1)).await.unwrap();
    exec(pool, &order(2)).await.unwrap();
    assert!(exec(pool, &format!("INSERT INTO orders (user_id, status, total_fen, expires_at, created_at, updated_at) VALUES ({}, 'PAID', 100, 0, 0, 0)", user.id)).await.is_err(), "unknown order status");
    let payment = |id: i64, order: i64, otn: &str, txn: &str| {
        format!("INSERT INTO payments (id, order_id, out_trade_no, transaction_id, status, amount_fen, openid, prepay_expires_at, created_at, updated_at) VALUES ({id}, {order}, '{otn}', {txn}, 'NOTPAY', 100, 'oPay', 0, 0, 0)")
    };
    exec(pool, &payment(1, 1, "MP1_1", "NULL")).await.unwrap();
    exec(pool, &payment(2, 1, "MP1_2", "NULL")).await.unwrap();
    assert!(
        exec(pool, &payment(3, 2, "MP1_1", "NULL")).await.is_err(),
        "out_trade_no is unique"
    );
    exec(
        pool,
        "UPDATE payments SET transaction_id = 'T1' WHERE id = 1",
    )
    .await
    .unwrap();
    assert!(
        exec(
            pool,
            "UPDATE payments SET transaction_id = 'T1' WHERE id = 2"
        )
        .await
        .is_err(),
        "transaction_id is unique"
    );
    assert!(
        exec(pool, "UPDATE payments SET refunded_fen = 101 WHERE id = 1")
            .await
            .is_err(),
        "never refund more than paid"
    );

    let refund = |id: i64, no: &str| {
        format!("INSERT INTO refunds (id, order_id, payment_id, out_refund_no, amount_fen, status, created_at, updated_at) VALUES ({id}, 1, 1, '{no}', 50, 'PROCESSING', 0, 0)")
    };
    exec(pool, &refund(1, "RF1_1")).await.unwrap();
    assert!(
        exec(pool, &refund(2, "RF1_1")).await.is_err(),
        "out_refund_no is unique"
    );
    assert!(exec(pool, "INSERT INTO refunds (order_id, payment_id, out_refund_no, amount_fen, status, created_at, updated_at) VALUES (1, 1, 'RF1_9', 0, 'PROCESSING', 0, 0)").await.is_err(), "refunds are positive");

    let ticket = |code: &str| {
        format!("INSERT INTO tickets (order_id, ticket_type_id, code, status, created_at) VALUES (1, {}, '{code}', 'VALID', 0)", t.id)
    };
    exec(pool, &ticket("CODE-1")).await.unwrap();
    assert!(
        exec(pool, &ticket("CODE-1")).await.is_err(),
        "ticket codes are unique"
    );
    assert!(exec(pool, "INSERT INTO order_items (order_id, ticket_type_id, quantity, unit_price_fen) VALUES (1, 999, 1, 100)").await.is_err(), "foreign keys hold");
}

async fn payment_events_are_append_only(backend: Backend) {
    let Some((db, _, _dir)) = open(backend).await else {
        return;
    };
    let pool = db.pool();
    exec(pool, "INSERT INTO payment_events (kind, out_trade_no, verdict, raw, created_at) VALUES ('notify', 'MP1_1', 'accepted', '<xml/>', 0)").await.unwrap();
    assert!(
        exec(pool, "UPDATE payment_events SET verdict = 'rewritten'")
            .await
            .is_err()
    );
    assert!(exec(pool, "DELETE FROM payment_events").await.is_err());
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM payment_events")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

async fn idempotency_keys_are_scoped(backend: Backend) {
    let Some((db, _, _dir)) = open(backend).await else {
        return;
    };
    let a = db.upsert_user("oA", None, NOW).await.unwrap().id;
    let b = db.upsert_user("oB", None, NOW).await.unwrap().id;
    let pool = db.pool();
    let key = |user: i64, endpoint: &str| {
        format!("INSERT INTO idempotency_keys (user_id, endpoint, idem_key, request_hash, state, created_at) VALUES ({user}, '{endpoint}', 'k1', 'h', 'IN_FLIGHT', 0)")
    };
    exec(pool, &key(a, "refund")).await.unwrap();
    exec(pool, &key(b, "refund")).await.unwrap();
    exec(pool, &key(a, "prepay")).await.unwrap();
    assert!(exec(pool, &key(a, "refund")).await.is_err());
}

async fn futures_join<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.expect("task"));
    }
    out
}

async fn deadlines_come_back_a_window_at_a_time(backend: Backend) {
    let Some((db, _, _dir)) = open(backend).await else {
        return;
    };
    let user = db.upsert_user("oDeadlines", None, NOW).await.unwrap().id;
    let t = db
        .create_ticket_type(&NewTicketType::new("A", Fen::new(100), 10).unwrap(), NOW)
        .await
        .unwrap();
    let line = [OrderLine {
        ticket_type_id: t.id,
        quantity: 1,
    }];
    let soon = db
        .create_order(
            user,
            &line,
            PendingLimits::OFF,
            UnixMillis(NOW.0 + 1_000),
            NOW,
        )
        .await
        .unwrap();
    let later = db
        .create_order(
            user,
            &line,
            PendingLimits::OFF,
            UnixMillis(NOW.0 + 3_600_000),
            NOW,
        )
        .await
        .unwrap();
    let window = db.open_deadlines(UnixMillis(NOW.0 + 60_000)).await.unwrap();
    let orders: Vec<i64> = window
        .iter()
        .filter(|d| d.key.kind == DeadlineKind::OrderExpiry)
        .map(|d| d.key.order_id)
        .collect();
    assert_eq!(orders, vec![soon.id]);
    let all = db.open_deadlines(UnixMillis(i64::MAX)).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all
        .iter()
        .any(|d| d.key.order_id == later.id && d.at == later.expires_at));
    // Expiring releases the reservation; a second expiry finds nothing to do.
    assert!(db.expire_order(soon.id, Fence(0), NOW).await.unwrap());
    assert!(!db.expire_order(soon.id, Fence(0), NOW).await.unwrap());
    let stock = db.ticket_type(t.id).await.unwrap().unwrap().stock;
    assert_eq!((stock.available, stock.reserved), (9, 1));
}
