//! The engine's policies: what a verified payment does to its order, which payment a buyer's
//! refund takes money from, and what a successful refund does to its payment and order. Pure
//! functions (which tickets a refund takes is [`crate::ticket_refund`]): the stores call them inside the transaction that applies their answer, so the
//! decision and its effect commit together (nothing is left to a second step that a crash
//! could skip).

use std::time::Duration;

use crate::money::Fen;
use crate::order::{CancelReason, OrderStatus};
use crate::payment::{Payment, PaymentStatus};
use crate::refund::{Refund, RefundKind};
use crate::time::UnixMillis;

/// What a payment the gateway reported does to its order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentEffect {
    /// The order was waiting for it: confirm, sell the reserved stock, issue tickets.
    Confirm,
    /// It expired unpaid a short while ago: take its stock again (if there is enough) and
    /// confirm it after all. When the stock is gone the effect becomes a late-payment refund.
    Revive,
    /// The order cannot take this money: give all of it back.
    Refund(RefundKind),
}

/// The late-payment policy. Money for a PENDING order confirms it. Money for an order that
/// expired revives it within `revive_within` of its expiry, later it goes back (a buyer should
/// not find tickets bought hours ago suddenly valid); money for an order confirmed by another
/// trade, or cancelled for any other reason, goes back in full.
pub fn on_payment(
    status: OrderStatus,
    cancel_reason: Option<CancelReason>,
    expires_at: UnixMillis,
    now: UnixMillis,
    revive_within: Duration,
) -> PaymentEffect {
    match (status, cancel_reason) {
        (OrderStatus::Pending, _) => PaymentEffect::Confirm,
        (OrderStatus::Cancelled, Some(CancelReason::Expired))
            if now <= expires_at.plus(revive_within) =>
        {
            PaymentEffect::Revive
        }
        (OrderStatus::Cancelled, _) => PaymentEffect::Refund(RefundKind::LatePayment),
        (OrderStatus::Confirmed, _) => PaymentEffect::Refund(RefundKind::DoublePayment),
    }
}

/// A new gateway number `{prefix}{order_id}_{millis}`: the clock's millisecond, moved past every
/// number of the same form the order already used — two trades or refunds of one order made in
/// the same millisecond (a coarse clock, a fast retry) must never share a number, or the second
/// would be taken for the first.
pub fn next_number<'a>(
    prefix: &str,
    order_id: i64,
    now: UnixMillis,
    used: impl IntoIterator<Item = &'a str>,
) -> String {
    let stem = format!("{prefix}{order_id}_");
    let last = used
        .into_iter()
        .filter_map(|no| no.strip_prefix(&stem)?.parse::<i64>().ok())
        .max();
    let millis = last.map_or(now.0, |last| now.0.max(last + 1));
    format!("{stem}{millis}")
}

/// The automatic refund of a payment the order cannot keep: all of it, under a number derived
/// from the payment, so that planning it twice finds the first.
pub fn automatic_refund_no(order_id: i64, payment_id: i64) -> String {
    format!("RF{order_id}_P{payment_id}")
}

/// The payment a buyer's refund takes money from: the one that paid for the order, never a
/// payment the engine is already giving back on its own (a double or late payment).
pub fn refundable_payment<'a>(payments: &'a [Payment], refunds: &[Refund]) -> Option<&'a Payment> {
    payments.iter().find(|payment| {
        payment.status.money_received()
            && !refunds
                .iter()
                .any(|r| r.payment_id == payment.id && r.kind != RefundKind::Requested)
    })
}

/// What a refund that succeeded does beyond its own record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefundEffect {
    pub payment_status: PaymentStatus,
    /// The order and its tickets are cancelled, their stock sold → available.
    pub cancels_order: bool,
    /// The order's refunded amount grows by the refund (the money was the order's).
    pub counts_for_order: bool,
    /// A late payment went back: the cancelled order says so.
    pub marks_late_refund: bool,
}

/// The effect of a refund of `kind` that succeeded, bringing the payment to `refunded` of
/// `amount`, leaving `live_tickets` tickets of the order VALID or REFUNDING. A buyer's or an
/// operator's refund cancels the order when it completes the payment or gives back its last
/// ticket; a double payment's refund leaves the order alone (that money was never the
/// order's).
pub fn on_refund_success(
    kind: RefundKind,
    refunded: Fen,
    amount: Fen,
    live_tickets: usize,
) -> RefundEffect {
    let payment_status = if refunded >= amount {
        PaymentStatus::Refunded
    } else {
        PaymentStatus::PartiallyRefunded
    };
    match kind {
        RefundKind::Requested => RefundEffect {
            payment_status,
            cancels_order: payment_status == PaymentStatus::Refunded || live_tickets == 0,
            counts_for_order: true,
            marks_late_refund: false,
        },
        RefundKind::LatePayment => RefundEffect {
            payment_status,
            cancels_order: false,
            counts_for_order: true,
            marks_late_refund: true,
        },
        RefundKind::DoublePayment => RefundEffect {
            payment_status,
            cancels_order: false,
            counts_for_order: false,
            marks_late_refund: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WITHIN: Duration = Duration::from_secs(1800);

    #[test]
    fn late_payments_revive_within_the_horizon_and_are_refunded_after_it() {
        let expired = UnixMillis(1_000_000);
        let decide = |status, reason, now| on_payment(status, reason, expired, now, WITHIN);
        assert_eq!(
            decide(OrderStatus::Pending, None, UnixMillis(0)),
            PaymentEffect::Confirm
        );
        let soon = expired.plus(Duration::from_secs(60));
        assert_eq!(
            decide(OrderStatus::Cancelled, Some(CancelReason::Expired), soon),
            PaymentEffect::Revive
        );
        let late = expired.plus(WITHIN + Duration::from_millis(1));
        assert_eq!(
            decide(OrderStatus::Cancelled, Some(CancelReason::Expired), late),
            PaymentEffect::Refund(RefundKind::LatePayment)
        );
        assert_eq!(
            decide(OrderStatus::Cancelled, Some(CancelReason::Refunded), soon),
            PaymentEffect::Refund(RefundKind::LatePayment)
        );
        assert_eq!(
            decide(OrderStatus::Confirmed, None, soon),
            PaymentEffect::Refund(RefundKind::DoublePayment)
        );
    }

    #[test]
    fn numbers_of_one_order_never_repeat_within_a_millisecond() {
        let now = UnixMillis(1_000);
        assert_eq!(next_number("RF", 7, now, []), "RF7_1000");
        assert_eq!(next_number("RF", 7, now, ["RF7_1000"]), "RF7_1001");
        assert_eq!(next_number("RF", 7, now, ["RF7_999", "RF7_P3"]), "RF7_1000");
        assert_eq!(
            next_number("MP", 7, now, ["RF7_5000", "MP17_9"]),
            "MP7_1000"
        );
    }

    #[test]
    fn only_a_buyers_complete_refund_cancels_the_order() {
        let amount = Fen::new(10_000);
        let full = on_refund_success(RefundKind::Requested, amount, amount, 2);
        assert!(full.cancels_order && full.counts_for_order);
        assert_eq!(full.payment_status, PaymentStatus::Refunded);
        let part = on_refund_success(RefundKind::Requested, Fen::new(1), amount, 1);
        assert!(!part.cancels_order);
        assert_eq!(part.payment_status, PaymentStatus::PartiallyRefunded);
        let last_ticket = on_refund_success(RefundKind::Requested, Fen::new(1), amount, 0);
        assert!(last_ticket.cancels_order, "every ticket given back");
        let double = on_refund_success(RefundKind::DoublePayment, amount, amount, 0);
        assert!(!double.cancels_order && !double.counts_for_order);
        let late = on_refund_success(RefundKind::LatePayment, amount, amount, 0);
        assert!(!late.cancels_order && late.marks_late_refund);
    }
}
