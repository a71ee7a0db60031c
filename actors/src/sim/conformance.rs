//! The guarded behaviours every store must have, as plain async functions over the ports, so
//! the same checks run against the in-memory store here and against SQLite and PostgreSQL in
//! the root crate. They use only the traits: ticket types through `CatalogStore`, orders for a
//! `user_id` the caller created (SQL stores have a foreign key on it). Each check makes its
//! own ticket types and orders, so all of them can share one store. A failure panics with
//! what the store did instead.

use std::time::Duration;

use crate::catalog::NewTicketType;
use crate::money::Fen;
use crate::order::{CancelReason, Order, OrderLine, OrderStatus};
use crate::payment::{Payment, PaymentStatus};
use crate::policy;
use crate::ports::{
    ApplyOutcome, BeginRefundError, CatalogStore, Fence, FinishOutcome, NewPrepay, NewRefund,
    OrderStore, PaymentApplication, PaymentRules, PendingLimits, RefundResult, StoreError,
};
use crate::refund::{Refund, RefundKind, RefundStatus};
use crate::time::UnixMillis;

/// A store under test.
pub trait ConformanceStore: OrderStore + CatalogStore {}
impl<T: OrderStore + CatalogStore + ?Sized> ConformanceStore for T {}

const NOW: UnixMillis = UnixMillis(1_700_000_000_000);
const PRICE: i64 = 1_000;
const RULES: PaymentRules = PaymentRules {
    revive_within: Duration::from_secs(1800),
};
/// Fences larger than any a clock-based lock service hands out in these tests' lifetime are
/// not needed: each order starts unwritten, so any fence is accepted first.
const FENCE: Fence = Fence(100);

async fn ticket_type<S: ConformanceStore + ?Sized>(store: &S, name: &str, total: i64) -> i64 {
    let new = NewTicketType::new(name, Fen::new(PRICE), total).expect("a valid ticket type");
    store
        .create_ticket_type(&new, NOW)
        .await
        .expect("created")
        .id
}

async fn order<S: ConformanceStore + ?Sized>(store: &S, user: i64, tt: i64, qty: i64) -> Order {
    let lines = [OrderLine {
        ticket_type_id: tt,
        quantity: qty,
    }];
    let expires = NOW.plus(Duration::from_secs(900));
    store
        .create_order(user, &lines, PendingLimits::OFF, expires, NOW)
        .await
        .expect("order created")
}

async fn prepay<S: ConformanceStore + ?Sized>(store: &S, order: &Order, n: u32) -> Payment {
    let new = NewPrepay {
        order_id: order.id,
        out_trade_no: format!("CF{}_{n}", order.id),
        amount: order.total,
        openid: "conformance".into(),
        pay_params: "{}".into(),
        prepay_expires_at: order.expires_at,
    };
    store
        .insert_prepay(&new, FENCE, NOW)
        .await
        .expect("prepay recorded")
}

fn paid(payment: &Payment, at: UnixMillis) -> PaymentApplication {
    PaymentApplication {
        out_trade_no: payment.out_trade_no.clone(),
        transaction_id: format!("TX{}", payment.out_trade_no),
        amount: payment.amount,
        paid_at: at,
    }
}

/// An order of `qty` units, paid and confirmed; answers it and its payment.
async fn confirmed<S: ConformanceStore + ?Sized>(
    store: &S,
    user: i64,
    tt: i64,
    qty: i64,
) -> (Order, Payment) {
    let order = order(store, user, tt, qty).await;
    let payment = prepay(store, &order, 1).await;
    let outcome = store
        .apply_payment(&paid(&payment, NOW), RULES, FENCE, NOW)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        ApplyOutcome::Confirmed {
            tickets: qty as usize
        }
    );
    (order, payment)
}

fn requested(payment: &Payment, no: &str, amount: i64, key: Option<&str>) -> NewRefund {
    NewRefund {
        order_id: payment.order_id,
        payment_id: payment.id,
        out_refund_no: no.into(),
        amount: Fen::new(amount),
        reason: None,
        kind: RefundKind::Requested,
        request_key: key.map(str::to_owned),
        ticket_ids: Vec::new(),
        operator: None,
    }
}

async fn stock<S: ConformanceStore + ?Sized>(store: &S, tt: i64) -> (i64, i64, i64) {
    let s = store.ticket_type(tt).await.unwrap().expect("exists").stock;
    (s.available, s.reserved, s.sold)
}

async fn status<S: ConformanceStore + ?Sized>(store: &S, order_id: i64) -> Order {
    store.order(order_id).await.unwrap().expect("exists")
}

async fn begin<S: ConformanceStore + ?Sized>(store: &S, new: &NewRefund) -> Refund {
    match store.begin_refund(new, FENCE, NOW).await {
        Ok(refund) => refund,
        Err(error) => panic!("begin_refund {}: {error}", new.out_refund_no),
    }
}

/// A write under an older fence than one that wrote the order is refused, changing nothing.
pub async fn fencing_refuses_an_older_fence<S: ConformanceStore + ?Sized>(store: &S, user: i64) {
    let tt = ticket_type(store, "cf-fencing", 5).await;
    let order = order(store, user, tt, 1).await;
    let new = NewPrepay {
        order_id: order.id,
        out_trade_no: format!("CF{}_f", order.id),
        amount: order.total,
        openid: "conformance".into(),
        pay_params: "{}".into(),
        prepay_expires_at: order.expires_at,
    };
    let payment = store.insert_prepay(&new, Fence(20), NOW).await.unwrap();
    let stale = store.close_payment(payment.id, Fence(10), NOW).await;
    assert!(
        matches!(stale, Err(StoreError::Fenced(_))),
        "an older fence must be refused, got {stale:?}"
    );
    let payments = store.payments(order.id).await.unwrap();
    assert_eq!(payments[0].status, PaymentStatus::NotPay, "nothing changed");
    assert!(store
        .close_payment(payment.id, Fence(21), NOW)
        .await
        .unwrap());
}

/// Applying the same payment twice confirms once: the second answers AlreadyApplied.
pub async fn double_apply_is_already_applied<S: ConformanceStore + ?Sized>(store: &S, user: i64) {
    let tt = ticket_type(store, "cf-double-apply", 5).await;
    let (order, payment) = confirmed(store, user, tt, 2).await;
    let again = store
        .apply_payment(&paid(&payment, NOW), RULES, FENCE, NOW)
        .await
        .unwrap();
    assert_eq!(again, ApplyOutcome::AlreadyApplied);
    assert_eq!(stock(store, tt).await, (3, 0, 2), "sold once");
    assert_eq!(store.tickets(order.id).await.unwrap().len(), 2);
    let other = order_with_prepay(store, user, tt).await;
    let mismatch = PaymentApplication {
        amount: Fen::new(1),
        ..paid(&other, NOW)
    };
    let outcome = store
        .apply_payment(&mismatch, RULES, FENCE, NOW)
        .await
        .unwrap();
    assert!(
        matches!(outcome, ApplyOutcome::AmountMismatch { .. }),
        "{outcome:?}"
    );
}

async fn order_with_prepay<S: ConformanceStore + ?Sized>(store: &S, user: i64, tt: i64) -> Payment {
    let order = order(store, user, tt, 1).await;
    prepay(store, &order, 1).await
}

/// Two refunds that together exceed the payment: the second is refused; a FAIL frees the
/// amount of the first, which can then be refunded again.
pub async fn refund_cap_and_fail_frees<S: ConformanceStore + ?Sized>(store: &S, user: i64) {
    let tt = ticket_type(store, "cf-refund-cap", 5).await;
    let (_, payment) = confirmed(store, user, tt, 2).await;
    let half = PRICE + 1;
    let first = begin(
        store,
        &requested(&payment, &format!("CFR{}a", payment.id), half, None),
    )
    .await;
    let second = store
        .begin_refund(
            &requested(&payment, &format!("CFR{}b", payment.id), half, None),
            FENCE,
            NOW,
        )
        .await;
    assert!(
        matches!(second, Err(BeginRefundError::Exceeded { refundable }) if refundable.get() == PRICE - 1),
        "the cap must refuse the second refund: {second:?}"
    );
    let done = store
        .finish_refund(first.id, &RefundResult::Fail, FENCE, NOW)
        .await
        .unwrap();
    assert_eq!(
        done,
        FinishOutcome::Finished {
            order_cancelled: false
        }
    );
    let again = store
        .finish_refund(first.id, &RefundResult::Change, FENCE, NOW)
        .await
        .unwrap();
    assert_eq!(
        again,
        FinishOutcome::AlreadyFinal(RefundStatus::Fail),
        "final once"
    );
    begin(
        store,
        &requested(&payment, &format!("CFR{}c", payment.id), 2 * PRICE, None),
    )
    .await;
}

/// A refund number or request key used before answers Exists with the first refund.
pub async fn refund_keys_are_unique<S: ConformanceStore + ?Sized>(store: &S, user: i64) {
    let tt = ticket_type(store, "cf-refund-keys", 5).await;
    let (_, payment) = confirmed(store, user, tt, 2).await;
    let key = format!("cf-key-{}", payment.id);
    let no = format!("CFK{}", payment.id);
    let first = begin(store, &requested(&payment, &no, 100, Some(&key))).await;
    let same_no = store
        .begin_refund(&requested(&payment, &no, 100, None), FENCE, NOW)
        .await;
    assert!(
        matches!(&same_no, Err(BeginRefundError::Exists(r)) if r.id == first.id),
        "{same_no:?}"
    );
    let same_key = store
        .begin_refund(
            &requested(&payment, &format!("{no}x"), 100, Some(&key)),
            FENCE,
            NOW,
        )
        .await;
    assert!(
        matches!(&same_key, Err(BeginRefundError::Exists(r)) if r.id == first.id),
        "{same_key:?}"
    );
    let found = store.refund_for_request(&key).await.unwrap();
    assert_eq!(found.map(|r| r.id), Some(first.id));
}

/// An order with an open NOTPAY trade does not expire; once the trade is closed it does, and
/// its reservation goes back. A prepay is then refused (PENDING only).
pub async fn expiry_waits_for_open_trades<S: ConformanceStore + ?Sized>(store: &S, user: i64) {
    let tt = ticket_type(store, "cf-expiry", 5).await;
    let order = order(store, user, tt, 2).await;
    let payment = prepay(store, &order, 1).await;
    let later = order.expires_at.plus(Duration::from_secs(1));
    assert!(!store.expire_order(order.id, FENCE, later).await.unwrap());
    assert!(store.close_payment(payment.id, FENCE, later).await.unwrap());
    assert!(!store.close_payment(payment.id, FENCE, later).await.unwrap());
    assert!(store.expire_order(order.id, FENCE, later).await.unwrap());
    assert!(
        !store.expire_order(order.id, FENCE, later).await.unwrap(),
        "once"
    );
    assert_eq!(stock(store, tt).await, (5, 0, 0));
    let again = NewPrepay {
        order_id: order.id,
        out_trade_no: format!("CF{}_late", order.id),
        amount: order.total,
        openid: "conformance".into(),
        pay_params: "{}".into(),
        prepay_expires_at: later,
    };
    let refused = store.insert_prepay(&again, FENCE, later).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
}

/// An expired order is revived by a late payment when its stock is still there (available →
/// sold); when it was sold meanwhile the payment becomes a planned LATE_PAYMENT refund of all
/// of it, whose success marks the order LATE_PAYMENT_REFUNDED.
pub async fn late_payments_revive_or_are_refunded<S: ConformanceStore + ?Sized>(
    store: &S,
    user: i64,
) {
    let tt = ticket_type(store, "cf-late", 1).await;
    let expire = |order: Order, payment: Payment| async move {
        let later = order.expires_at.plus(Duration::from_secs(1));
        assert!(store.close_payment(payment.id, FENCE, later).await.unwrap());
        assert!(store.expire_order(order.id, FENCE, later).await.unwrap());
    };
    let first = order(store, user, tt, 1).await;
    let first_pay = prepay(store, &first, 1).await;
    expire(first.clone(), first_pay.clone()).await;
    let late = first.expires_at.plus(Duration::from_secs(60));
    let revived = store
        .apply_payment(&paid(&first_pay, late), RULES, FENCE, late)
        .await
        .unwrap();
    assert_eq!(revived, ApplyOutcome::Revived { tickets: 1 });
    assert_eq!(status(store, first.id).await.status, OrderStatus::Confirmed);
    assert_eq!(stock(store, tt).await, (0, 0, 1));

    let tt = ticket_type(store, "cf-late-sold-out", 1).await;
    let second = order(store, user, tt, 1).await;
    let second_pay = prepay(store, &second, 1).await;
    expire(second.clone(), second_pay.clone()).await;
    let (_, _) = confirmed(store, user, tt, 1).await;
    let outcome = store
        .apply_payment(&paid(&second_pay, late), RULES, FENCE, late)
        .await
        .unwrap();
    let ApplyOutcome::RefundPlanned { refund } = outcome else {
        panic!("sold out: the late payment must be refunded, got {outcome:?}");
    };
    assert_eq!(refund.kind, RefundKind::LatePayment);
    assert_eq!(refund.amount, second_pay.amount);
    assert_eq!(refund.status, RefundStatus::Processing);
    assert_eq!(
        refund.out_refund_no,
        policy::automatic_refund_no(second.id, second_pay.id)
    );
    assert_eq!(stock(store, tt).await, (0, 0, 1), "no oversell");
    let success = RefundResult::Success {
        refund_id: None,
        at: late,
    };
    store
        .finish_refund(refund.id, &success, FENCE, late)
        .await
        .unwrap();
    let order = status(store, second.id).await;
    assert_eq!(order.status, OrderStatus::Cancelled);
    assert_eq!(order.cancel_reason, Some(CancelReason::LatePaymentRefunded));
    assert_eq!(order.refunded, second_pay.amount);
    let payment = store
        .payment_by_out_trade_no(&second_pay.out_trade_no)
        .await
        .unwrap();
    assert_eq!(payment.map(|p| p.status), Some(PaymentStatus::Refunded));
}

/// A second trade paid for a confirmed order is refunded in full (DOUBLE_PAYMENT) and its
/// success leaves the order alone; a buyer's full refund cancels order, tickets and stock.
pub async fn double_payment_and_full_refund<S: ConformanceStore + ?Sized>(store: &S, user: i64) {
    let tt = ticket_type(store, "cf-double-payment", 5).await;
    let order = order(store, user, tt, 2).await;
    let one = prepay(store, &order, 1).await;
    let two = prepay(store, &order, 2).await;
    store
        .apply_payment(&paid(&one, NOW), RULES, FENCE, NOW)
        .await
        .unwrap();
    let outcome = store
        .apply_payment(&paid(&two, NOW), RULES, FENCE, NOW)
        .await
        .unwrap();
    let ApplyOutcome::RefundPlanned { refund } = outcome else {
        panic!("a second payment must be refunded, got {outcome:?}");
    };
    assert_eq!(refund.kind, RefundKind::DoublePayment);
    let success = RefundResult::Success {
        refund_id: Some("G1".into()),
        at: NOW,
    };
    store
        .finish_refund(refund.id, &success, FENCE, NOW)
        .await
        .unwrap();
    let kept = status(store, order.id).await;
    assert_eq!(
        (kept.status, kept.refunded),
        (OrderStatus::Confirmed, Fen::ZERO)
    );

    let full = begin(
        store,
        &requested(&one, &format!("CFF{}", one.id), 2 * PRICE, None),
    )
    .await;
    let done = store
        .finish_refund(full.id, &success, FENCE, NOW)
        .await
        .unwrap();
    assert_eq!(
        done,
        FinishOutcome::Finished {
            order_cancelled: true
        }
    );
    let cancelled = status(store, order.id).await;
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    assert_eq!(cancelled.cancel_reason, Some(CancelReason::Refunded));
    assert_eq!(cancelled.refunded, Fen::new(2 * PRICE));
    assert_eq!(stock(store, tt).await, (5, 0, 0), "sold → available");
    let tickets = store.tickets(order.id).await.unwrap();
    assert!(
        tickets.iter().all(|t| t.status == "CANCELLED"),
        "{tickets:?}"
    );
    let refused = store
        .begin_refund(
            &requested(&one, &format!("CFF{}b", one.id), 1, None),
            FENCE,
            NOW,
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(BeginRefundError::NotConfirmed | BeginRefundError::Exceeded { .. })
        ),
        "{refused:?}"
    );
}

/// Orders reserve all their lines or none, and never more than is available.
pub async fn stock_is_never_oversold<S: ConformanceStore + ?Sized>(store: &S, user: i64) {
    let tt = ticket_type(store, "cf-stock", 3).await;
    order(store, user, tt, 2).await;
    let lines = [OrderLine {
        ticket_type_id: tt,
        quantity: 2,
    }];
    let refused = store
        .create_order(user, &lines, PendingLimits::OFF, NOW, NOW)
        .await;
    assert!(refused.is_err(), "only 1 left: {refused:?}");
    assert_eq!(stock(store, tt).await, (1, 2, 0));
}

/// A refund takes only VALID tickets of its own order, each once: REFUNDING while it runs,
/// CANCELLED with its unit back on sale when it succeeds, VALID again when it fails.
pub async fn tickets_are_given_back_once<S: ConformanceStore + ?Sized>(store: &S, user: i64) {
    let tt = ticket_type(store, "cf-tickets", 5).await;
    let (order, payment) = confirmed(store, user, tt, 2).await;
    let (other, _) = confirmed(store, user, tt, 1).await;
    let tickets = store.tickets(order.id).await.unwrap();
    let foreign = store.tickets(other.id).await.unwrap()[0].id;
    let with = |no: &str, ids: Vec<i64>| NewRefund {
        ticket_ids: ids,
        ..requested(&payment, &format!("CFT{}{no}", payment.id), PRICE, None)
    };
    let first = begin(store, &with("a", vec![tickets[0].id])).await;
    assert_eq!(first.ticket_ids, vec![tickets[0].id]);
    let status_of = |all: Vec<crate::payment::Ticket>, id: i64| {
        all.into_iter().find(|t| t.id == id).map(|t| t.status)
    };
    assert_eq!(
        status_of(store.tickets(order.id).await.unwrap(), tickets[0].id).as_deref(),
        Some("REFUNDING")
    );
    for (no, ids) in [("b", vec![tickets[0].id]), ("c", vec![foreign])] {
        let refused = store.begin_refund(&with(no, ids), FENCE, NOW).await;
        assert!(
            matches!(refused, Err(BeginRefundError::TicketsNotRefundable)),
            "a ticket in a refund or of another order: {refused:?}"
        );
    }
    // The refused ones changed nothing: the second ticket is still refundable for its price.
    let second = begin(store, &with("d", vec![tickets[1].id])).await;
    store
        .finish_refund(second.id, &RefundResult::Fail, FENCE, NOW)
        .await
        .unwrap();
    assert_eq!(
        status_of(store.tickets(order.id).await.unwrap(), tickets[1].id).as_deref(),
        Some("VALID"),
        "a failed refund gives its ticket back"
    );
    let success = RefundResult::Success {
        refund_id: None,
        at: NOW,
    };
    store
        .finish_refund(first.id, &success, FENCE, NOW)
        .await
        .unwrap();
    assert_eq!(
        status_of(store.tickets(order.id).await.unwrap(), tickets[0].id).as_deref(),
        Some("CANCELLED")
    );
    assert_eq!(
        stock(store, tt).await,
        (3, 0, 2),
        "the refunded ticket's unit is on sale again (2 of 3 still sold)"
    );
    assert_eq!(status(store, order.id).await.status, OrderStatus::Confirmed);
}

/// A close never lands on a paid trade: it answers false and the payment stays PAID (the
/// close's read and its write may straddle the payment's notify).
pub async fn a_paid_payment_is_never_closed<S: ConformanceStore + ?Sized>(store: &S, user: i64) {
    let tt = ticket_type(store, "cf-close-paid", 5).await;
    let (order, payment) = confirmed(store, user, tt, 1).await;
    let closed = store.close_payment(payment.id, FENCE, NOW).await.unwrap();
    assert!(!closed, "a paid payment was closed");
    let payments = store.payments(order.id).await.unwrap();
    assert_eq!(payments[0].status, PaymentStatus::Paid);
    assert_eq!(status(store, order.id).await.status, OrderStatus::Confirmed);
}

/// Every check above, in turn.
pub async fn run_all<S: ConformanceStore + ?Sized>(store: &S, user_id: i64) {
    fencing_refuses_an_older_fence(store, user_id).await;
    double_apply_is_already_applied(store, user_id).await;
    refund_cap_and_fail_frees(store, user_id).await;
    refund_keys_are_unique(store, user_id).await;
    expiry_waits_for_open_trades(store, user_id).await;
    late_payments_revive_or_are_refunded(store, user_id).await;
    double_payment_and_full_refund(store, user_id).await;
    stock_is_never_oversold(store, user_id).await;
    tickets_are_given_back_once(store, user_id).await;
    a_paid_payment_is_never_closed(store, user_id).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::UserStore;
    use crate::sim::{Guards, MemoryStore};

    #[tokio::test]
    async fn the_memory_store_conforms() {
        let store = MemoryStore::default();
        let user = store.upsert_user("conformance", None, NOW).await.unwrap();
        run_all(&store, user.id).await;
    }

    /// The suite is not vacuous: each guard it covers, switched off, fails it.
    #[tokio::test]
    async fn the_suite_catches_missing_guards() {
        for &name in Guards::names() {
            let store = MemoryStore::new(Guards::without(name));
            let user = store.upsert_user("c", None, NOW).await.unwrap();
            let caught = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(
                run_all(&store, user.id),
            ))
            .await;
            assert!(caught.is_err(), "the suite passed without the {name} guard");
        }
    }
}
