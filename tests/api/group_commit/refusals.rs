//! A member refused by its own guard is rolled back alone; a crowd over HTTP never oversells.

use std::sync::Arc;
use std::time::Duration;

use wallyt_pay_actors::ports::{ApplyOutcome, CreateOrderError, Fence, OrderStore, StoreError};
use wallyt_pay_actors::{CatalogStore, Fen, NewTicketType, PaymentStatus, UserStore};

use super::{
    apply_later, hold, members, open, order, paid, payment_status, prepay, reserve_later, FENCE,
    NOW, RULES,
};
use crate::helpers::Backend;
use crate::on_both_backends;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

on_both_backends!(
    a_refused_member_is_rolled_back_alone,
    a_crowd_over_http_never_oversells,
);

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
    let blocker = apply_later(&db, &first_pay, "TX-first");
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The next batch: a member under a stale fence, the same payment twice, and an order for
    // more than is left (2 units remain once the three above are sold... and it asks 3).
    let stale = {
        let (db, application) = (db.clone(), paid(&fenced_pay, "TX-fenced"));
        tokio::spawn(async move { db.apply_payment(&application, RULES, Fence(5), NOW).await })
    };
    let twice: Vec<_> = (0..2).map(|_| apply_later(&db, &ok_pay, "TX-ok")).collect();
    let too_many = reserve_later(&db, user, tt, 3);
    // On PostgreSQL the order above forms a batch alone (reservations have a batcher of their
    // own, now waiting on the test's lock); this one forms the next.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let fits = reserve_later(&db, user, tt, 2);
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
