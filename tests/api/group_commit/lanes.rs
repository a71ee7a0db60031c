//! Several payment lanes at once beside the reservations' batcher.

use std::sync::Arc;

use wallyt_pay_actors::ports::{ApplyOutcome, CreateOrderError, OrderStore};
use wallyt_pay_actors::{CatalogStore, Fen, NewTicketType, UserStore};

use super::open_with_lanes;
use super::{members, order, paid, prepay, reserve_later, FENCE, NOW, RULES};
use crate::helpers::Backend;
use crate::on_both_backends;

on_both_backends!(lanes_apply_every_payment_once_beside_reservations);

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
    let reservations: Vec<_> = (0..60).map(|_| reserve_later(&db, user, tt, 1)).collect();
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
