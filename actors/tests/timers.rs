//! What the engine's timers do, on paused time: prepays and orders expire (the gateway asked
//! first), lost notifies are found by the active queries, and late or second payments are
//! honoured or refunded in full. One node of the real engine against the simulator's store
//! and a gateway that answers at once (`sim::harness`); minutes of deadlines take
//! milliseconds. The HTTP suite keeps one end-to-end case of each (tests/api/expiry.rs,
//! late_payments.rs).

use std::time::Duration;
use wallyt_pay_actors::engine::EngineConfig;
use wallyt_pay_actors::money::Fen;
use wallyt_pay_actors::order::{CancelReason, OrderStatus};
use wallyt_pay_actors::payment::PaymentStatus;
use wallyt_pay_actors::refund::{RefundKind, RefundStatus};
use wallyt_pay_actors::sim::harness::{on_paused_time, Harness};

const MINUTE: Duration = Duration::from_secs(60);

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn an_unpaid_prepay_is_closed_at_its_expiry_and_the_order_at_its_own() {
    on_paused_time(|| async {
        let h = Harness::start(EngineConfig::default()).await;
        let tt = h.ticket_type(1_000, 5).await;
        let order = h.order(tt.id, 2, 10 * MINUTE).await;
        let trade = h.prepay(order.id).await.unwrap().payment.out_trade_no;

        // The prepay lives 5 minutes (PREPAY_TTL); the order 10.
        h.run_for(5 * MINUTE - secs(1)).await;
        assert_eq!(h.trade(&trade), (false, false, Fen::ZERO), "still open");
        h.run_for(secs(5)).await;
        assert_eq!(
            h.trade(&trade),
            (false, true, Fen::ZERO),
            "closed at the gateway"
        );
        assert_eq!(h.payments(order.id).await[0].status, PaymentStatus::Closed);
        assert_eq!(h.order_now(order.id).await.status, OrderStatus::Pending);
        assert_eq!(h.stock(tt.id).await.reserved, 2, "the order still holds it");

        h.run_for(5 * MINUTE).await;
        let expired = h.order_now(order.id).await;
        assert_eq!(expired.status, OrderStatus::Cancelled);
        assert_eq!(expired.cancel_reason, Some(CancelReason::Expired));
        let stock = h.stock(tt.id).await;
        assert_eq!((stock.available, stock.reserved, stock.sold), (5, 0, 0));
        assert_eq!(h.calls("close"), 1, "one close, never repeated");
    });
}

#[test]
fn an_order_without_a_prepay_expires_without_asking_the_gateway() {
    on_paused_time(|| async {
        let h = Harness::start(EngineConfig::default()).await;
        let tt = h.ticket_type(1_000, 3).await;
        let order = h.order(tt.id, 3, 2 * MINUTE).await;
        h.run_for(2 * MINUTE + secs(5)).await;
        assert_eq!(h.order_now(order.id).await.status, OrderStatus::Cancelled);
        assert_eq!(h.stock(tt.id).await.available, 3);
        assert_eq!(h.calls("query") + h.calls("close"), 0);
    });
}

#[test]
fn a_payment_just_before_expiry_whose_notify_is_lost_confirms_the_order() {
    on_paused_time(|| async {
        let h = Harness::start(EngineConfig::default()).await;
        let tt = h.ticket_type(1_000, 5).await;
        let order = h.order(tt.id, 2, 2 * MINUTE).await;
        let trade = h.prepay(order.id).await.unwrap().payment.out_trade_no;
        // After the last active query that fits before the expiry (60 s), before the expiry.
        h.run_for(secs(115)).await;
        assert!(h.pay(&trade, false));
        h.lose_notifies();
        h.run_for(secs(10)).await;

        let confirmed = h.order_now(order.id).await;
        assert_eq!(
            confirmed.status,
            OrderStatus::Confirmed,
            "found by the expiry's query"
        );
        assert_eq!(h.tickets(order.id).await.len(), 2);
        let stock = h.stock(tt.id).await;
        assert_eq!((stock.available, stock.reserved, stock.sold), (3, 0, 2));
        assert_eq!(h.calls("close"), 0, "a paid trade is never closed");
        assert!(h.refunds(order.id).await.is_empty());
    });
}

#[test]
fn a_lost_notify_is_found_by_the_active_queries_long_before_the_expiry() {
    on_paused_time(|| async {
        let h = Harness::start(EngineConfig::default()).await;
        let tt = h.ticket_type(1_000, 5).await;
        let order = h.order(tt.id, 1, 15 * MINUTE).await;
        let trade = h.prepay(order.id).await.unwrap().payment.out_trade_no;
        h.run_for(secs(5)).await;
        assert!(h.pay(&trade, false));
        h.lose_notifies();
        // The first active query is 10 s after the prepay.
        h.run_for(secs(6)).await;
        assert_eq!(h.order_now(order.id).await.status, OrderStatus::Confirmed);
        assert_eq!(h.calls("query"), 1);
        // Nothing more is asked about a settled order.
        h.run_for(20 * MINUTE).await;
        assert_eq!(h.calls("query"), 1);
    });
}

/// Lets the order expire with its trade closed, then the customer pays that trade anyway.
async fn pay_after_expiry(h: &Harness, order_id: i64, trade: &str) {
    h.run_for(2 * MINUTE).await;
    assert_eq!(h.order_now(order_id).await.status, OrderStatus::Cancelled);
    assert!(h.trade(trade).1, "closed at expiry");
    assert!(
        h.pay(trade, true),
        "the gateway takes the money all the same"
    );
}

#[test]
fn a_late_payment_with_stock_left_revives_the_order() {
    on_paused_time(|| async {
        let h = Harness::start(EngineConfig::default()).await;
        let tt = h.ticket_type(1_000, 5).await;
        let order = h.order(tt.id, 2, MINUTE).await;
        let trade = h.prepay(order.id).await.unwrap().payment.out_trade_no;
        pay_after_expiry(&h, order.id, &trade).await;
        h.run_for(secs(4)).await;
        assert_eq!(h.deliver_notifies().await, 1);

        let revived = h.order_now(order.id).await;
        assert_eq!(revived.status, OrderStatus::Confirmed);
        assert_eq!(revived.cancel_reason, None);
        assert_eq!(h.tickets(order.id).await.len(), 2);
        let stock = h.stock(tt.id).await;
        assert_eq!((stock.available, stock.reserved, stock.sold), (3, 0, 2));
        assert!(h.refunds(order.id).await.is_empty());
    });
}

#[test]
fn a_late_payment_without_stock_is_refunded_in_full() {
    on_paused_time(|| async {
        let h = Harness::start(EngineConfig::default()).await;
        let tt = h.ticket_type(2_500, 2).await;
        let order = h.order(tt.id, 2, MINUTE).await;
        let trade = h.prepay(order.id).await.unwrap().payment.out_trade_no;
        pay_after_expiry(&h, order.id, &trade).await;
        // Someone else took the released stock meanwhile.
        let other = h.order(tt.id, 2, 10 * MINUTE).await;
        h.run_for(secs(4)).await;
        assert_eq!(h.deliver_notifies().await, 1);
        h.run_for(secs(30)).await;

        let refunds = h.refunds(order.id).await;
        assert_eq!(refunds.len(), 1);
        assert_eq!(refunds[0].kind, RefundKind::LatePayment);
        assert_eq!(refunds[0].status, RefundStatus::Success);
        assert_eq!(refunds[0].amount, Fen::new(5_000));
        assert_eq!(
            h.trade(&trade).2,
            Fen::new(5_000),
            "refunded at the gateway"
        );
        assert_eq!(h.order_now(order.id).await.status, OrderStatus::Cancelled);
        assert!(h.tickets(order.id).await.is_empty());
        assert_eq!(h.order_now(other.id).await.status, OrderStatus::Pending);
        let stock = h.stock(tt.id).await;
        assert_eq!((stock.available, stock.reserved, stock.sold), (0, 2, 0));
    });
}

#[test]
fn a_late_payment_past_the_revive_horizon_is_refunded_though_stock_is_left() {
    on_paused_time(|| async {
        let h = Harness::start(EngineConfig::default()).await;
        let tt = h.ticket_type(1_000, 5).await;
        let order = h.order(tt.id, 1, MINUTE).await;
        let trade = h.prepay(order.id).await.unwrap().payment.out_trade_no;
        // LATE_PAYMENT_REVIVE_WITHIN is 30 minutes after the expiry.
        h.run_for(31 * MINUTE).await;
        assert!(h.pay(&trade, true));
        h.run_for(secs(4)).await;
        assert_eq!(h.deliver_notifies().await, 1);
        h.run_for(secs(30)).await;

        assert_eq!(h.order_now(order.id).await.status, OrderStatus::Cancelled);
        let refunds = h.refunds(order.id).await;
        assert_eq!(refunds.len(), 1);
        assert_eq!(refunds[0].status, RefundStatus::Success);
        assert_eq!(h.trade(&trade).2, Fen::new(1_000));
        assert_eq!(h.stock(tt.id).await.available, 5);
    });
}

/// Lets the first prepay expire and be closed, then opens a second trade for the order.
async fn two_trades(h: &Harness, order_id: i64) -> (String, String) {
    let first = h.prepay(order_id).await.unwrap().payment.out_trade_no;
    h.run_for(5 * MINUTE + secs(5)).await;
    assert!(h.trade(&first).1, "the first trade is closed at its expiry");
    let second = h.prepay(order_id).await.unwrap().payment.out_trade_no;
    assert_ne!(first, second);
    (first, second)
}

#[test]
fn a_second_trade_paid_for_a_confirmed_order_is_refunded_in_full() {
    on_paused_time(|| async {
        let h = Harness::start(EngineConfig::default()).await;
        let tt = h.ticket_type(5_000, 5).await;
        let order = h.order(tt.id, 1, 30 * MINUTE).await;
        let (first, second) = two_trades(&h, order.id).await;
        assert!(h.pay(&second, false));
        h.run_for(secs(4)).await;
        h.deliver_notifies().await;
        assert_eq!(h.order_now(order.id).await.status, OrderStatus::Confirmed);
        // Then the first, closed trade is paid after all.
        assert!(h.pay(&first, true));
        h.run_for(secs(4)).await;
        h.deliver_notifies().await;
        h.run_for(secs(30)).await;

        let confirmed = h.order_now(order.id).await;
        assert_eq!(
            confirmed.status,
            OrderStatus::Confirmed,
            "it keeps its own payment"
        );
        assert_eq!(confirmed.refunded, Fen::ZERO);
        assert_eq!(h.tickets(order.id).await.len(), 1);
        assert_eq!(
            h.trade(&first).2,
            Fen::new(5_000),
            "the double payment went back"
        );
        assert_eq!(h.trade(&second).2, Fen::ZERO);
        let stock = h.stock(tt.id).await;
        assert_eq!((stock.available, stock.reserved, stock.sold), (4, 0, 1));
    });
}

#[test]
fn an_open_trade_is_closed_after_another_trade_confirmed_the_order() {
    on_paused_time(|| async {
        let h = Harness::start(EngineConfig::default()).await;
        let tt = h.ticket_type(5_000, 5).await;
        let order = h.order(tt.id, 1, 30 * MINUTE).await;
        let (first, second) = two_trades(&h, order.id).await;
        // The closed first trade is paid after all: it confirms the order (a revive-free
        // confirmation, the order never expired).
        assert!(h.pay(&first, true));
        h.run_for(secs(4)).await;
        h.deliver_notifies().await;
        assert_eq!(h.order_now(order.id).await.status, OrderStatus::Confirmed);
        // The second trade must not stay open: at its own expiry it is closed.
        h.run_for(6 * MINUTE).await;
        assert!(h.trade(&second).1, "closed at the gateway");
        let open = h.payments(order.id).await;
        assert!(open.iter().all(|p| p.status != PaymentStatus::NotPay));
        assert_eq!(h.order_now(order.id).await.status, OrderStatus::Confirmed);
    });
}
