//! What each order message does, as plain async functions over the [`Engine`]. They run inside
//! the order actor (one at a time per order) and under the order's lease (one node at a time);
//! every state change is one store transaction with guarded updates, so even without those
//! two the database would refuse a double confirmation or an oversell.

use super::deadlines;
use super::error::ActorError;
use super::expiry_scheduler::Schedule;
use super::gateway_supervisor::{CloseTrade, CreatePrepay, QueryTrade};
use super::messages::{Prepay, PrepayAnswer};
use super::refunds::send_planned_refund;
use super::Engine;
use crate::order::{Order, OrderStatus};
use crate::payment::{Payment, PaymentStatus};
use crate::policy;
use crate::ports::{
    ApplyOutcome, GatewayFailure, NewPrepay, NotifyBody, PaymentApplication, PaymentAudit,
    PrepayRequest, StoreError, TradeStatus,
};
use crate::refund::RefundKind;
use crate::time::UnixMillis;

async fn load(engine: &Engine, order_id: i64) -> Result<Order, ActorError> {
    engine
        .store
        .order(order_id)
        .await?
        .ok_or(ActorError::OrderNotFound)
}

pub(super) fn mailbox(error: actix::MailboxError) -> ActorError {
    ActorError::Busy(format!("gateway supervisor: {error}"))
}

pub async fn prepay(
    engine: &Engine,
    order_id: i64,
    msg: Prepay,
) -> Result<PrepayAnswer, ActorError> {
    let now = engine.clock.now();
    let order = load(engine, order_id).await?;
    if !order.status.payable(order.expires_at, now) {
        return Err(ActorError::InvalidOrderStatus(format!(
            "order is {} and cannot be paid",
            describe(&order, now)
        )));
    }
    let payments = engine.store.payments(order_id).await?;
    if let Some(open) = payments
        .iter()
        .rev()
        .find(|p| p.status == PaymentStatus::NotPay)
    {
        if open.reusable(now) {
            return Ok(PrepayAnswer {
                payment: open.clone(),
                reused: true,
            });
        }
        // An expired prepay is closed at the gateway before a new trade replaces it.
        close_trade(engine, open).await?;
    }

    let out_trade_no = policy::next_number(
        "MP",
        order_id,
        now,
        payments.iter().map(|p| p.out_trade_no.as_str()),
    );
    let deadline = now.plus(engine.config.prepay_ttl).min(order.expires_at);
    let time_expire = UnixMillis(deadline.0 - deadline.0.rem_euclid(1000));
    let request = PrepayRequest {
        out_trade_no: out_trade_no.clone(),
        description: engine.config.description.clone(),
        amount: order.total,
        client_ip: msg.client_ip,
        openid: msg.openid.clone(),
        attach: format!(r#"{{"orderId":{},"userId":{}}}"#, order.id, order.user_id),
        time_start: now,
        time_expire,
    };
    let created = engine
        .gateway
        .send(CreatePrepay(request))
        .await
        .map_err(mailbox)?
        .inspect_err(|failure| {
            tracing::error!(event = "wallyt.jspay.error", order_id, out_trade_no = %out_trade_no, error = %failure);
        })?;
    let prepay = NewPrepay {
        order_id,
        out_trade_no,
        amount: order.total,
        openid: msg.openid,
        pay_params: created.pay_params,
        prepay_expires_at: time_expire,
    };
    match engine.store.insert_prepay(&prepay, engine.fence, now).await {
        Ok(payment) => {
            for deadline in deadlines::for_prepay(engine, &payment) {
                engine.expiry.do_send(Schedule(deadline));
            }
            Ok(PrepayAnswer {
                payment,
                reused: false,
            })
        }
        Err(StoreError::Conflict(_)) => Err(ActorError::InvalidOrderStatus(
            "the order changed while the prepay was created".into(),
        )),
        Err(other) => Err(other.into()),
    }
}

fn describe(order: &Order, now: UnixMillis) -> &'static str {
    match order.status {
        OrderStatus::Pending if now >= order.expires_at => "expired",
        status => status.as_str(),
    }
}

/// Closes an open trade at the gateway, then in the store. A trade the customer paid after all
/// is applied instead, and the caller learns the order is no longer payable.
pub(super) async fn close_trade(engine: &Engine, payment: &Payment) -> Result<(), ActorError> {
    let closed = engine
        .gateway
        .send(CloseTrade(payment.out_trade_no.clone()))
        .await
        .map_err(mailbox)?;
    match closed {
        // ORDERCLOSED arrives here as Ok: a trade the gateway closed on its own is closed.
        Ok(()) => {
            engine
                .store
                .close_payment(payment.id, engine.fence, engine.clock.now())
                .await?;
            Ok(())
        }
        Err(GatewayFailure::AlreadyPaid) => {
            sync_trade(engine, payment).await?;
            Err(ActorError::InvalidOrderStatus(
                "the order has been paid".into(),
            ))
        }
        Err(failure) => Err(failure.into()),
    }
}

/// Asks the gateway about one trade.
pub(super) async fn query_trade(
    engine: &Engine,
    payment: &Payment,
) -> Result<TradeStatus, ActorError> {
    engine
        .gateway
        .send(QueryTrade(payment.out_trade_no.clone()))
        .await
        .map_err(mailbox)?
        .map_err(ActorError::from)
}

/// Applies a payment the gateway reported for this trade, exactly as a notify. Answers
/// whether there was one.
pub(super) async fn apply_reported(
    engine: &Engine,
    payment: &Payment,
    status: TradeStatus,
) -> Result<bool, ActorError> {
    let TradeStatus::Paid {
        transaction_id,
        amount,
        paid_at,
    } = status
    else {
        return Ok(false);
    };
    let application = PaymentApplication {
        out_trade_no: payment.out_trade_no.clone(),
        transaction_id,
        amount,
        paid_at,
    };
    apply_paid(engine, payment.order_id, application, "query", None).await?;
    Ok(true)
}

/// Asks the gateway about one trade and applies a payment it reports.
async fn sync_trade(engine: &Engine, payment: &Payment) -> Result<bool, ActorError> {
    let status = query_trade(engine, payment).await?;
    apply_reported(engine, payment, status).await
}

/// Applies a verified payment and records what came of it. The store applies the policy's
/// decision (confirm, revive, or refund in full) in the same transaction as PAID, so a crash
/// after it leaves nothing undecided: a planned refund is a PROCESSING row that every node's
/// refund poller finishes. The audit lines (the engine's, and a notify's body and verdict)
/// go to the store with the payment, so a store with transactions commits them together.
pub async fn apply_paid(
    engine: &Engine,
    order_id: i64,
    application: PaymentApplication,
    source: &str,
    notify: Option<NotifyBody>,
) -> Result<ApplyOutcome, ActorError> {
    let now = engine.clock.now();
    let audit = PaymentAudit {
        order_id,
        source: source.to_owned(),
        request_id: notify.as_ref().and_then(|n| n.request_id.clone()),
        notify,
    };
    let outcome = engine
        .store
        .apply_payment_audited(
            &application,
            engine.payment_rules(),
            engine.fence,
            now,
            &audit,
        )
        .await?;
    let otn = application.out_trade_no.as_str();
    match &outcome {
        ApplyOutcome::Confirmed { tickets } => {
            tracing::info!(
                event = "order.confirmed",
                order_id,
                out_trade_no = otn,
                tickets,
                source
            );
        }
        ApplyOutcome::Revived { tickets } => {
            tracing::info!(
                event = "wallyt.notify.late_payment",
                order_id,
                out_trade_no = otn,
                action = "reconfirmed",
                tickets,
                source
            );
            engine.observer.late_payment("reconfirmed");
        }
        ApplyOutcome::RefundPlanned { refund } => {
            let double = refund.kind == RefundKind::DoublePayment;
            tracing::warn!(
                event = "wallyt.notify.late_payment",
                order_id,
                out_trade_no = otn,
                action = "refund",
                kind = refund.kind.as_str(),
                out_refund_no = %refund.out_refund_no,
                source,
            );
            engine.observer.late_payment(if double {
                "double_refunded"
            } else {
                "refunded"
            });
        }
        ApplyOutcome::AmountMismatch { expected } => {
            tracing::error!(
                event = "wallyt.notify.amount_mismatch",
                order_id,
                out_trade_no = otn,
                expected = expected.get(),
                got = application.amount.get(),
                source,
            );
        }
        ApplyOutcome::AlreadyApplied | ApplyOutcome::UnknownTrade => {}
    }
    if let ApplyOutcome::RefundPlanned { refund } = &outcome {
        // The refund is already durable; sending it now is the fast path, the poller the
        // safety net.
        send_planned_refund(engine, refund.clone()).await;
    }
    Ok(outcome)
}

/// For a pending order with an open prepay: one gateway query, applied if paid.
pub async fn sync_with_gateway(engine: &Engine, order_id: i64) -> Result<(), ActorError> {
    let now = engine.clock.now();
    let order = load(engine, order_id).await?;
    if order.status != OrderStatus::Pending {
        return Ok(());
    }
    let payments = engine.store.payments(order_id).await?;
    match payments
        .iter()
        .rev()
        .find(|p| p.status == PaymentStatus::NotPay)
    {
        Some(open) if open.reusable(now) => sync_trade(engine, open).await.map(drop),
        _ => Ok(()),
    }
}
