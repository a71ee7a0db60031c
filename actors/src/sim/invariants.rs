//! What must hold. [`always`] after every step (each store call is one transaction, so the
//! store is always consistent, and the store never believes more than the gateway did);
//! [`at_quiescence`] once nothing is left to do (money adds up, nothing left open).

use std::collections::BTreeMap;

use super::memory_store::{State, Transition};
use super::model_gateway::{GatewayState, GwRefundState, TradeState};
use crate::order::OrderStatus;
use crate::payment::PaymentStatus;
use crate::policy;
use crate::refund::{RefundKind, RefundStatus};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub invariant: &'static str,
    pub detail: String,
}

fn fail<T>(invariant: &'static str, detail: String) -> Result<T, Violation> {
    Err(Violation { invariant, detail })
}

macro_rules! ensure {
    ($cond:expr, $name:literal, $($fmt:tt)+) => {
        if !$cond {
            return Err(Violation {
                invariant: $name,
                detail: format!($($fmt)+),
            });
        }
    };
}

/// The status changes the contract allows; the one step backwards is a late payment's
/// revive of an expired order.
fn allowed(t: &Transition) -> bool {
    let (from, to) = (t.from.as_str(), t.to.as_str());
    match t.entity {
        "order" => matches!(
            (from, to),
            ("PENDING", "CONFIRMED")
                | ("PENDING", "CANCELLED:EXPIRED")
                | ("CONFIRMED", "CANCELLED:REFUNDED")
                | ("CANCELLED:EXPIRED", "CONFIRMED")
                | ("CANCELLED:EXPIRED", "CANCELLED:LATE_PAYMENT_REFUNDED")
                | ("CANCELLED:REFUNDED", "CANCELLED:LATE_PAYMENT_REFUNDED")
        ),
        "payment" => matches!(
            (from, to),
            ("NOTPAY", "PAID")
                | ("NOTPAY", "CLOSED")
                | ("CLOSED", "PAID")
                | ("PAID", "PARTIALLY_REFUNDED")
                | ("PAID", "REFUNDED")
                | ("PARTIALLY_REFUNDED", "REFUNDED")
        ),
        "refund" => from == "PROCESSING" && from != to,
        _ => false,
    }
}

/// After every step.
pub fn always(
    store: &State,
    gateway: &GatewayState,
    transitions: &[Transition],
) -> Result<(), Violation> {
    for t in transitions {
        ensure!(
            allowed(t),
            "status-backwards",
            "{} {}: {} → {}",
            t.entity,
            t.id,
            t.from,
            t.to
        );
    }
    stock(store)?;
    money_in_store(store)?;
    store_agrees_with_gateway(store, gateway)
}

/// No oversell, counters add up, and they match the orders.
fn stock(store: &State) -> Result<(), Violation> {
    let mut sold: BTreeMap<i64, i64> = BTreeMap::new();
    let mut reserved: BTreeMap<i64, i64> = BTreeMap::new();
    // One pass over tickets and refunds, not one per order: this runs after every step.
    let mut by_order: BTreeMap<i64, Vec<&crate::payment::Ticket>> = BTreeMap::new();
    for t in store.tickets.values() {
        by_order.entry(t.order_id).or_default().push(t);
    }
    // A ticket is given back once: at most one refund that still holds or has refunded it,
    // and only a refund of the ticket's own order.
    let mut holders: BTreeMap<i64, i64> = BTreeMap::new();
    for r in store
        .refunds
        .values()
        .filter(|r| matches!(r.status, RefundStatus::Processing | RefundStatus::Success))
    {
        for ticket_id in &r.ticket_ids {
            let owner = store.tickets.get(ticket_id).map(|t| t.order_id);
            ensure!(
                owner == Some(r.order_id),
                "tickets",
                "refund {} of order {} takes ticket {ticket_id} of order {owner:?}",
                r.id,
                r.order_id
            );
            if let Some(first) = holders.insert(*ticket_id, r.id) {
                ensure!(
                    false,
                    "ticket-given-back-once",
                    "ticket {ticket_id} is in refunds {first} and {}",
                    r.id
                );
            }
        }
    }
    let refunded: std::collections::BTreeSet<i64> = store
        .refunds
        .values()
        .filter(|r| r.status == RefundStatus::Success)
        .flat_map(|r| r.ticket_ids.iter().copied())
        .collect();
    for order in store.orders.values() {
        let tickets: Vec<&crate::payment::Ticket> =
            by_order.get(&order.id).cloned().unwrap_or_default();
        fn live(t: &crate::payment::Ticket) -> bool {
            t.status == "VALID" || t.status == "REFUNDING"
        }
        match order.status {
            OrderStatus::Pending => {
                for item in &order.items {
                    *reserved.entry(item.ticket_type_id).or_default() += item.quantity;
                }
                ensure!(
                    tickets.is_empty(),
                    "tickets",
                    "pending order {} has tickets",
                    order.id
                );
            }
            OrderStatus::Confirmed => {
                // A sold unit is a ticket that still admits (or is in a refund); a refunded
                // ticket's unit is back on sale.
                for t in tickets.iter().filter(|t| live(t)) {
                    *sold.entry(t.ticket_type_id).or_default() += 1;
                }
                let units: i64 = order.items.iter().map(|i| i.quantity).sum();
                ensure!(
                    tickets.len() as i64 == units && tickets.iter().any(|t| live(t)),
                    "tickets",
                    "order {} is Confirmed with {} tickets for {units} units, none live",
                    order.id,
                    tickets.len()
                );
            }
            OrderStatus::Cancelled => {
                ensure!(
                    !tickets.iter().any(|t| t.status == "VALID"),
                    "tickets",
                    "order {} is Cancelled with valid tickets",
                    order.id
                );
            }
        }
        // Every cancelled ticket of a paid order went back with a refund that succeeded.
        for t in tickets.iter().filter(|t| t.status == "CANCELLED") {
            let given_back = refunded.contains(&t.id) || order.status == OrderStatus::Cancelled;
            ensure!(
                given_back,
                "tickets",
                "ticket {} of order {} is cancelled without a refund",
                t.id,
                order.id
            );
        }
    }
    for t in store.ticket_types.values() {
        let s = t.stock;
        ensure!(
            s.is_consistent(),
            "stock-adds-up",
            "ticket type {}: {s:?}",
            t.id
        );
        let (want_sold, want_reserved) = (
            sold.get(&t.id).copied().unwrap_or(0),
            reserved.get(&t.id).copied().unwrap_or(0),
        );
        ensure!(
            s.sold == want_sold && s.reserved == want_reserved,
            "stock-matches-orders",
            "ticket type {}: {s:?}, orders hold sold {want_sold} reserved {want_reserved}",
            t.id
        );
    }
    Ok(())
}

/// No refund beyond what was paid; the payment's counters are its refunds' sums.
fn money_in_store(store: &State) -> Result<(), Violation> {
    for p in store.payments.values() {
        let refunds = store.refunds.values().filter(|r| r.payment_id == p.id);
        let (mut held, mut done) = (0, 0);
        for r in refunds {
            ensure!(
                p.status.money_received(),
                "refund-without-money",
                "refund {} of unpaid payment {}",
                r.out_refund_no,
                p.id
            );
            if r.status.holds_money() {
                held += r.amount.get();
            }
            if r.status == RefundStatus::Success {
                done += r.amount.get();
            }
        }
        ensure!(
            held <= p.amount.get(),
            "refund-cap",
            "payment {} of {} holds {held} in refunds",
            p.id,
            p.amount.get()
        );
        ensure!(
            p.refund_committed.get() == held && p.refunded.get() == done,
            "refund-counters",
            "payment {}: committed {} refunded {}, its refunds hold {held} and succeeded {done}",
            p.id,
            p.refund_committed.get(),
            p.refunded.get()
        );
    }
    Ok(())
}

/// The store never believes in money the gateway did not move, and every refund the gateway
/// knows was recorded first (so it is never made twice nor forgotten).
fn store_agrees_with_gateway(store: &State, gateway: &GatewayState) -> Result<(), Violation> {
    if let Some(no) = gateway.reused_refund_numbers.first() {
        return fail(
            "one-effect-per-refund-number",
            format!("{no} was sent for two different refunds"),
        );
    }
    for p in store.payments.values() {
        if !p.status.money_received() {
            continue;
        }
        let trade = gateway.trades.get(&p.out_trade_no);
        let paid = trade.is_some_and(|t| matches!(&t.state, TradeState::Paid { transaction_id, .. } if Some(transaction_id) == p.transaction_id.as_ref()) && t.amount == p.amount);
        ensure!(
            paid,
            "paid-means-paid",
            "payment {} ({}) is {:?} but the gateway has {trade:?}",
            p.id,
            p.out_trade_no,
            p.status
        );
    }
    let by_no: BTreeMap<&str, _> = store
        .refunds
        .values()
        .map(|r| (r.out_refund_no.as_str(), r))
        .collect();
    for (no, g) in &gateway.refunds {
        let Some(r) = by_no.get(no.as_str()) else {
            return fail(
                "refund-recorded-first",
                format!("the gateway has refund {no} the store does not"),
            );
        };
        ensure!(
            r.amount == g.amount,
            "refund-amount",
            "refund {no}: store {} gateway {}",
            r.amount.get(),
            g.amount.get()
        );
        let agree = match r.status {
            RefundStatus::Processing => true,
            RefundStatus::Success => g.state == GwRefundState::Success,
            RefundStatus::Fail => g.state == GwRefundState::Fail,
            RefundStatus::Change => g.state == GwRefundState::Change,
        };
        ensure!(
            agree,
            "refund-outcome",
            "refund {no}: store {:?}, gateway {:?}",
            r.status,
            g.state
        );
    }
    for r in store.refunds.values() {
        if r.status == RefundStatus::Success {
            ensure!(
                gateway.refunds.contains_key(&r.out_refund_no),
                "refund-outcome",
                "refund {} SUCCESS in the store only",
                r.out_refund_no
            );
        }
    }
    Ok(())
}

/// What a finished run must show. Answers the refunds that need a person (FAIL or CHANGE of
/// money the order cannot keep), which are listed, not violations.
pub fn at_quiescence(
    store: &State,
    gateway: &GatewayState,
    notifies_pending: usize,
) -> Result<Vec<String>, Violation> {
    for o in store.orders.values() {
        ensure!(
            o.status != OrderStatus::Pending,
            "left-open",
            "order {} still PENDING",
            o.id
        );
    }
    for p in store.payments.values() {
        ensure!(
            p.status != PaymentStatus::NotPay,
            "left-open",
            "payment {} still NOTPAY",
            p.id
        );
    }
    for r in store.refunds.values() {
        ensure!(
            r.status != RefundStatus::Processing,
            "left-open",
            "refund {} still PROCESSING",
            r.out_refund_no
        );
    }
    for (no, g) in &gateway.refunds {
        ensure!(
            g.state != GwRefundState::Processing,
            "left-open",
            "gateway refund {no} still PROCESSING"
        );
    }
    ensure!(
        notifies_pending == 0,
        "left-open",
        "{notifies_pending} notifies never acknowledged"
    );

    let mut needs_human = Vec::new();
    for (no, trade) in &gateway.trades {
        if !matches!(trade.state, TradeState::Paid { .. }) {
            continue;
        }
        let Some(p) = store.payments.values().find(|p| &p.out_trade_no == no) else {
            return fail(
                "money-accounted",
                format!("trade {no} was paid and the store has no payment"),
            );
        };
        ensure!(
            p.status.money_received(),
            "money-accounted",
            "trade {no} was paid, payment {} is {:?}",
            p.id,
            p.status
        );
        let refunded = gateway.refunded(no);
        ensure!(
            refunded == p.refunded,
            "money-accounted",
            "trade {no}: gateway refunded {}, store {}",
            refunded.get(),
            p.refunded.get()
        );
        if refunded >= trade.amount {
            continue;
        }
        let order = &store.orders[&p.order_id];
        let payments: Vec<_> = store
            .payments
            .values()
            .filter(|x| x.order_id == order.id)
            .cloned()
            .collect();
        let refunds: Vec<_> = store
            .refunds
            .values()
            .filter(|r| r.order_id == order.id)
            .cloned()
            .collect();
        let keeps = policy::refundable_payment(&payments, &refunds).map(|k| k.id);
        if order.status == OrderStatus::Confirmed && keeps == Some(p.id) {
            continue;
        }
        let stuck = refunds.iter().find(|r| {
            r.payment_id == p.id && matches!(r.status, RefundStatus::Fail | RefundStatus::Change)
        });
        match stuck {
            Some(r) => needs_human.push(format!(
                "refund {} ({}) {:?}: {} of trade {no} needs a person",
                r.out_refund_no,
                r.kind.as_str(),
                r.status,
                trade.amount.get() - refunded.get()
            )),
            None => {
                return fail(
                    "money-accounted",
                    format!(
                        "trade {no} keeps {} for order {} ({:?}) that does not own it",
                        trade.amount.get() - refunded.get(),
                        order.id,
                        order.status
                    ),
                )
            }
        }
    }
    for o in store
        .orders
        .values()
        .filter(|o| o.status == OrderStatus::Confirmed)
    {
        let payments: Vec<_> = store
            .payments
            .values()
            .filter(|x| x.order_id == o.id)
            .cloned()
            .collect();
        let refunds: Vec<_> = store
            .refunds
            .values()
            .filter(|r| r.order_id == o.id)
            .cloned()
            .collect();
        let keeps = policy::refundable_payment(&payments, &refunds);
        let paid = keeps.is_some_and(|p| {
            p.refunded < p.amount
                && gateway
                    .trades
                    .get(&p.out_trade_no)
                    .is_some_and(|t| matches!(t.state, TradeState::Paid { .. }))
        });
        ensure!(
            paid,
            "confirmed-means-paid",
            "order {} CONFIRMED without money it keeps: {keeps:?}",
            o.id
        );
        let autos = refunds
            .iter()
            .filter(|r| {
                r.kind != RefundKind::Requested && keeps.is_some_and(|k| k.id == r.payment_id)
            })
            .count();
        ensure!(
            autos == 0,
            "confirmed-means-paid",
            "order {} is kept by a payment being refunded",
            o.id
        );
    }
    Ok(needs_human)
}
