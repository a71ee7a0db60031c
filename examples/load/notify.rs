//! `notify` and `notify-open-loop`: the first paid notify of each of N orders of one ticket
//! type (verify, the order's actor, the transaction confirming and ticketing it).

use crate::harness::{Buyer, Harness};
use crate::plan::{Outcome, Sizes};
use crate::stats::{closed_loop, open_loop, Summary};
use crate::verify::Checker;

/// Orders of one ticket type, each prepaid and paid at the gateway, with the notify the
/// gateway would send for it.
pub struct Prepared {
    pub buyer: Buyer,
    pub ticket_type: i64,
    pub orders: Vec<i64>,
    pub notifies: Vec<String>,
}

/// `count` one-unit orders of a new ticket type of exactly `count` units, by one buyer.
pub async fn prepare(h: &Harness, name: &str, count: usize, concurrency: usize) -> Prepared {
    let buyer = h.login(&format!("load-{name}")).await;
    let ticket_type = h.ticket_type(name, count).await;
    let (summary, orders) = closed_loop("setup: POST /orders", count, concurrency, |_| {
        let (h, buyer) = (h.clone(), buyer.clone());
        async move { h.order(&buyer, ticket_type).await }
    })
    .await;
    summary.print();
    let (summary, trades) = closed_loop("setup: POST prepay", count, concurrency, |i| {
        let (h, buyer, order) = (h.clone(), buyer.clone(), orders[i]);
        async move { h.prepay(&buyer, order).await }
    })
    .await;
    summary.print();
    let (_, notifies) = closed_loop("setup: pay at the gateway", count, concurrency, |i| {
        let (h, trade) = (h.clone(), trades[i].clone());
        async move { h.pay(&trade).await }
    })
    .await;
    Prepared {
        buyer,
        ticket_type,
        orders,
        notifies,
    }
}

/// Posts every prepared notify with `concurrency` in flight; all must be acknowledged.
pub async fn send_all(h: &Harness, p: &Prepared, name: &str, concurrency: usize) -> Summary {
    let (summary, answers) = closed_loop(name, p.notifies.len(), concurrency, |i| {
        let (h, body) = (h.clone(), p.notifies[i].clone());
        async move { h.notify(body).await }
    })
    .await;
    assert_acknowledged(name, &answers);
    summary
}

fn assert_acknowledged(name: &str, answers: &[String]) {
    let refused = answers.iter().filter(|a| *a != "success").count();
    assert_eq!(
        refused, 0,
        "{name}: {refused} notifies were not acknowledged"
    );
}

/// Closed loop: N first notifies with `concurrency` in flight, then the same N again
/// (duplicates: acknowledged, nothing changes).
pub async fn notify(h: &Harness, sizes: &Sizes) -> Outcome {
    let p = prepare(h, "notify", sizes.notify_orders, sizes.concurrency).await;
    let first = send_all(h, &p, "POST notify (first)", sizes.concurrency).await;
    first.print();
    let again = send_all(h, &p, "POST notify (again)", sizes.concurrency).await;
    again.print();
    let checker = Checker::connect(&h.database_url).await;
    let stock = checker
        .all_confirmed_once(p.ticket_type, sizes.notify_orders)
        .await;
    checker.close().await;
    println!(
        "  verified: {} orders confirmed once each, {stock:?}",
        p.orders.len()
    );
    Outcome::of("notify", &first)
}

/// Open loop: first notifies arriving at `rate` per second for `sizes.open_loop_secs`,
/// whatever the server does; latency from each one's scheduled send time.
pub async fn notify_open_loop(h: &Harness, sizes: &Sizes, rate: f64) -> Outcome {
    let count = ((rate * sizes.open_loop_secs).ceil() as usize).max(1);
    println!("  open loop: {count} notifies at {rate:.0}/s");
    let p = prepare(h, "notify-open-loop", count, sizes.concurrency).await;
    let (summary, answers) = open_loop("POST notify (open loop)", count, rate, |i| {
        let (h, body) = (h.clone(), p.notifies[i].clone());
        async move { h.notify(body).await }
    })
    .await;
    summary.print();
    assert_acknowledged("open loop", &answers);
    let checker = Checker::connect(&h.database_url).await;
    let stock = checker.all_confirmed_once(p.ticket_type, count).await;
    checker.close().await;
    println!("  verified: {count} orders confirmed once each, {stock:?}");
    Outcome::of("notify-open-loop", &summary)
}
