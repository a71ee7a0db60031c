//! `flash-sale`: one ticket type of S units, more buyers than units, each buying one at once.
//! Exactly S orders must be accepted (201), every other buyer told INSUFFICIENT_STOCK (409);
//! then the S winners pay and exactly S units are sold.

use reqwest::StatusCode;

use crate::harness::{Buyer, Harness};
use crate::plan::{Outcome, Sizes};
use crate::stats::{closed_loop, Summary};
use crate::verify::Checker;

pub async fn flash_sale(h: &Harness, sizes: &Sizes) -> Outcome {
    let (stock, buyers) = (sizes.flash_stock, sizes.flash_buyers);
    assert!(buyers > stock, "a flash sale has more buyers than units");
    let (summary, logged_in) = closed_loop("setup: login", buyers, sizes.concurrency, |i| {
        let h = h.clone();
        async move { h.login(&format!("flash-{i}")).await }
    })
    .await;
    summary.print();
    let ticket_type = h.ticket_type("flash", stock).await;
    let (summary, answers) = closed_loop("POST /orders (flash)", buyers, sizes.concurrency, |i| {
        let (h, buyer) = (h.clone(), logged_in[i].clone());
        async move { h.try_order(&buyer, ticket_type).await }
    })
    .await;
    summary.print();
    let mut winners: Vec<(Buyer, i64)> = Vec::with_capacity(stock);
    for (buyer, (status, body)) in logged_in.into_iter().zip(answers) {
        match status {
            StatusCode::CREATED => winners.push((buyer, body["data"]["id"].as_i64().unwrap())),
            StatusCode::CONFLICT if body["error"]["code"] == "INSUFFICIENT_STOCK" => {}
            other => panic!("flash order answered {other}: {body}"),
        }
    }
    assert_eq!(winners.len(), stock, "exactly the stock is reserved");
    // What the ceiling measures is accepted orders: the refusals count in the time only.
    let sold = Summary {
        name: "accepted orders (flash)".into(),
        count: stock,
        ..summary
    };
    let checker = Checker::connect(&h.database_url).await;
    let after = checker.stock(ticket_type).await;
    assert_eq!(
        (after.available, after.reserved),
        (0, stock as i64),
        "{after:?}"
    );

    let (summary, _) = closed_loop("setup: winners pay", stock, sizes.concurrency, |i| {
        let (h, (buyer, order)) = (h.clone(), winners[i].clone());
        async move {
            let trade = h.prepay(&buyer, order).await;
            let notify = h.pay(&trade).await;
            assert_eq!(h.notify(notify).await, "success");
        }
    })
    .await;
    summary.print();
    let after = checker.all_confirmed_once(ticket_type, stock).await;
    checker.close().await;
    assert_eq!(after.sold, stock as i64, "exactly S sold");
    println!("  verified: {stock} of {buyers} buyers got a unit, none oversold, {after:?}");
    Outcome::of("flash-sale", &sold)
}
