//! What a deadline does to its order (inside the order's actor, under its lease). The gateway
//! is always asked before anything is given up: a trade found paid is applied exactly as a
//! notify; an unpaid one is closed; only then is the order cancelled and its stock released.
//! A gateway that cannot be reached means *try again later* — never release the stock of an
//! order whose money may have arrived.

use super::error::ActorError;
use super::flows::{apply_reported, close_trade, query_trade};
use super::Engine;
use crate::expiry::{Deadline, DeadlineKey, DeadlineKind};
use crate::order::OrderStatus;
use crate::payment::{Payment, PaymentStatus};
use crate::ports::TradeStatus;
use crate::time::UnixMillis;

fn at(order_id: i64, kind: DeadlineKind, at: UnixMillis) -> Deadline {
    Deadline {
        key: DeadlineKey { order_id, kind },
        at,
        attempt: 0,
    }
}

/// The deadlines a new prepay starts: the active queries and its expiry.
pub fn for_prepay(engine: &Engine, payment: &Payment) -> Vec<Deadline> {
    let grace = engine.config.expiry_grace;
    let mut deadlines = vec![at(
        payment.order_id,
        DeadlineKind::PrepayExpiry {
            payment_id: payment.id,
        },
        payment.prepay_expires_at.plus(grace),
    )];
    if let Some(first) = engine.config.query_schedule.first() {
        let kind = DeadlineKind::Reconcile {
            payment_id: payment.id,
            step: 0,
        };
        deadlines.push(at(payment.order_id, kind, payment.created_at.plus(*first)));
    }
    deadlines
}

/// The expiry deadline of an order, at `when`.
pub fn order_deadline(order_id: i64, when: UnixMillis) -> Deadline {
    at(order_id, DeadlineKind::OrderExpiry, when)
}

pub async fn expire(
    engine: &Engine,
    order_id: i64,
    kind: DeadlineKind,
) -> Result<Vec<Deadline>, ActorError> {
    let now = engine.clock.now();
    let Some(order) = engine.store.order(order_id).await? else {
        return Ok(Vec::new());
    };
    // A prepay's own expiry still ends its trade when the order was settled by another trade
    // meanwhile (nothing stays open); the other deadlines only matter while the order waits.
    let prepay_expiry = matches!(kind, DeadlineKind::PrepayExpiry { .. });
    if order.status != OrderStatus::Pending && !prepay_expiry {
        return Ok(Vec::new());
    }
    let payments = engine.store.payments(order_id).await?;
    let open = |payment_id: i64| {
        payments
            .iter()
            .find(|p| p.id == payment_id && p.status == PaymentStatus::NotPay)
    };
    match kind {
        DeadlineKind::Reconcile { payment_id, step } => {
            engine.observer.deadline_fired("reconcile");
            let Some(payment) = open(payment_id).filter(|p| p.reusable(now)) else {
                return Ok(Vec::new());
            };
            if settle_if_paid(engine, payment).await? {
                engine.observer.reconciliation_hit();
                return Ok(Vec::new());
            }
            let next = engine.config.query_schedule.get(step + 1).map(|wait| {
                let kind = DeadlineKind::Reconcile {
                    payment_id,
                    step: step + 1,
                };
                at(order_id, kind, payment.created_at.plus(*wait))
            });
            Ok(next
                .filter(|d| d.at < payment.prepay_expires_at)
                .into_iter()
                .collect())
        }
        DeadlineKind::PrepayExpiry { payment_id } => {
            let Some(payment) = open(payment_id) else {
                return Ok(Vec::new());
            };
            if now < payment.prepay_expires_at {
                return Ok(vec![at(order_id, kind, payment.prepay_expires_at)]);
            }
            engine.observer.deadline_fired("prepay");
            settle_open_trade(engine, payment).await?;
            Ok(Vec::new())
        }
        DeadlineKind::OrderExpiry => {
            if now < order.expires_at {
                return Ok(vec![at(order_id, kind, order.expires_at)]);
            }
            engine.observer.deadline_fired("order");
            for payment in payments
                .iter()
                .filter(|p| p.status == PaymentStatus::NotPay)
            {
                settle_open_trade(engine, payment).await?;
            }
            if engine
                .store
                .expire_order(order_id, engine.fence, engine.clock.now())
                .await?
            {
                tracing::info!(event = "order.expired", order_id);
            }
            Ok(Vec::new())
        }
    }
}

/// Queries the trade; a payment found is applied like a notify. Answers whether it was paid.
async fn settle_if_paid(engine: &Engine, payment: &Payment) -> Result<bool, ActorError> {
    let status = query_trade(engine, payment).await?;
    apply_reported(engine, payment, status).await
}

/// Ends an open trade for good: applied if the customer paid, closed otherwise.
async fn settle_open_trade(engine: &Engine, payment: &Payment) -> Result<(), ActorError> {
    let status = query_trade(engine, payment).await?;
    match status {
        TradeStatus::Paid { .. } => apply_reported(engine, payment, status).await.map(drop),
        // The gateway never had it: nothing to close there.
        TradeStatus::Unknown => {
            engine
                .store
                .close_payment(payment.id, engine.fence, engine.clock.now())
                .await?;
            Ok(())
        }
        // A trade the gateway reports CLOSED is closed once more all the same: cheap, and it
        // answers ORDERCLOSED (success) — no trade is left payable on a stale answer.
        TradeStatus::Open | TradeStatus::Closed => match close_trade(engine, payment).await {
            Ok(()) => {
                engine.observer.trade_closed();
                Ok(())
            }
            // The close found the trade paid after all: it has been applied by now.
            Err(ActorError::InvalidOrderStatus(_)) => Ok(()),
            Err(error) => Err(error),
        },
    }
}
