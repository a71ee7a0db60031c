//! A batch that fails: at its commit (every member gets the error), in its reservation set
//! or its stock moves (every member runs again alone).

use std::sync::Arc;
use std::time::Duration;

use sqlx::Executor;
use wallyt_pay_actors::ports::{
    ApplyOutcome, CreateOrderError, OrderStore, PendingLimits, StoreError,
};
use wallyt_pay_actors::{CatalogStore, Fen, NewTicketType, OrderLine, PaymentStatus, UserStore};

use super::{
    apply_later, hold, members, open, order, paid, payment_status, prepay, reserve_later, FENCE,
    NOW, RULES,
};
use crate::helpers::Backend;
use crate::on_both_backends;

on_both_backends!(
    a_failed_commit_fails_every_member,
    a_failed_reservation_set_is_retried_one_by_one,
    a_stock_move_that_fails_fails_only_its_own_orders,
);

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
    let blocker = apply_later(&db, &first_pay, "TX-first");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let members: Vec<_> = [
        (good_pay.clone(), "TX-good"),
        (poisoned_pay.clone(), "poison"),
    ]
    .into_iter()
    .map(|(payment, tx)| apply_later(&db, &payment, tx))
    .collect();
    let reservation = reserve_later(&db, user, tt, 1);
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
    let blocker = apply_later(&db, &first_pay, "TX-set-first");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reserve = |buyer: i64| reserve_later(&db, buyer, tt, 2);
    // On PostgreSQL this one occupies the reservations' own batcher (waiting on the test's
    // lock), so the two below queue together into its next batch; on SQLite all three queue
    // behind the payment above.
    let first = reserve_later(&db, user, tt, 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (good, bad) = (reserve(user), reserve(refused));
    let payment = apply_later(&db, &second_pay, "TX-set-second");
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
    let before = members(&db);
    let blocker = apply_later(&db, &payments[0], "TX-owed-0");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let batch = [
        apply_later(&db, &payments[1], "TX-owed-1"),
        apply_later(&db, &payments[2], "TX-owed-2"),
        apply_later(&db, &payments[3], "TX-owed-3"),
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
