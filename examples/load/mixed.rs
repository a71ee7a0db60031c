//! `mixed`: the runbook's flow per virtual user, each its own buyer — login → order → prepay
//! → pay (the gateway's notify) → status → refund everything → status — with at most
//! `concurrency` users in flight. Timed per whole flow.

use crate::harness::Harness;
use crate::plan::{Outcome, Sizes};
use crate::stats::closed_loop;
use crate::verify::Checker;

/// Requests one flow makes (the gateway's own pay call included).
const REQUESTS_PER_FLOW: usize = 8;

pub async fn mixed(h: &Harness, sizes: &Sizes) -> Outcome {
    let users = sizes.mixed_users;
    let ticket_type = h.ticket_type("mixed", users).await;
    let (summary, _) = closed_loop("user flow (8 requests)", users, sizes.concurrency, |i| {
        let h = h.clone();
        async move {
            let buyer = h.login(&format!("mixed-{i}")).await;
            let order = h.order(&buyer, ticket_type).await;
            let trade = h.prepay(&buyer, order).await;
            let notify = h.pay(&trade).await;
            assert_eq!(h.notify(notify).await, "success", "order {order}");
            let paid = h.status(&buyer, order).await;
            assert_eq!(
                (paid["status"].as_str(), paid["paymentStatus"].as_str()),
                (Some("CONFIRMED"), Some("PAID")),
                "order {order}: {paid}"
            );
            let refund = h.refund_all(&buyer, order).await;
            assert_eq!(refund["status"], "SUCCESS", "order {order}: {refund}");
            let refunded = h.status(&buyer, order).await;
            assert_eq!(
                (
                    refunded["status"].as_str(),
                    refunded["paymentStatus"].as_str()
                ),
                (Some("CANCELLED"), Some("REFUNDED")),
                "order {order}: {refunded}"
            );
        }
    })
    .await;
    summary.print();
    println!(
        "  {:.0} requests/s over the flows",
        summary.rate() * REQUESTS_PER_FLOW as f64
    );
    let checker = Checker::connect(&h.database_url).await;
    let stock = checker.all_refunded(ticket_type, users).await;
    checker.close().await;
    println!("  verified: {users} orders paid, then refunded (SUCCESS) once each, {stock:?}");
    Outcome::of("mixed", &summary)
}
