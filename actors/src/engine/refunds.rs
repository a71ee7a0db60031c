//! What a refund message does. The record is written PROCESSING before the gateway hears of
//! it; an uncertain answer keeps it and is retried under the same `out_refund_no` (never a new
//! one: that is how integrations refund twice); a NOTSURE is resent under the same number; the
//! outcome is asked briefly before answering and then by the refund poller until final.

use std::time::Duration;

use super::error::ActorError;
use super::flows::mailbox;
use super::gateway_supervisor::{AskRefund, QueryRefund};
use super::messages::{Refund as RefundMessage, RefundAsk};
use super::refund_poller::Watch;
use super::Engine;
use crate::order::{Order, OrderStatus};
use crate::payment::{Payment, Ticket};
use crate::policy;
use crate::ports::{
    BeginRefundError, FinishOutcome, GatewayFailure, NewPaymentEvent, NewRefund, RefundProgress,
    RefundRequest, RefundResult,
};
use crate::refund::{refundable, Refund, RefundKind, RefundStatus};
use crate::ticket::TicketStatus;
use crate::ticket_refund::{self, PricedTicket, TicketRefundError};

/// Outcome queries before the first answer; the rest is the poller's.
const BRIEF_QUERIES: usize = 3;
const BRIEF_SPACING: Duration = Duration::from_millis(150);

pub async fn refund(
    engine: &Engine,
    order_id: i64,
    msg: RefundMessage,
) -> Result<Refund, ActorError> {
    // A retry of a request that already made its refund answers that refund — whatever
    // happened to the first attempt (timeout, 5xx, disconnect, crash) — and never a second.
    if let Some(key) = msg.request_key.as_deref() {
        if let Some(existing) = engine.store.refund_for_request(key).await? {
            return resume(engine, existing).await;
        }
    }
    let order = engine
        .store
        .order(order_id)
        .await?
        .ok_or(ActorError::OrderNotFound)?;
    if order.status != OrderStatus::Confirmed {
        return Err(ActorError::InvalidOrderStatus(format!(
            "order is {}; only CONFIRMED orders can be refunded",
            order.status.as_str()
        )));
    }
    let payments = engine.store.payments(order_id).await?;
    let refunds = engine.store.refunds(order_id).await?;
    let chosen = match &msg.ask {
        RefundAsk::Operator {
            payment_id: Some(id),
            ..
        } => payments
            .iter()
            .find(|p| p.id == *id && p.status.money_received()),
        _ => policy::refundable_payment(&payments, &refunds),
    };
    let payment = chosen.ok_or_else(|| {
        ActorError::InvalidOrderStatus("the order has no payment to refund".into())
    })?;
    // Refunds still PROCESSING hold their amount: what is left is what they leave.
    let left = refundable(payment.amount, payment.refund_committed);
    let tickets = priced_tickets(&order, &engine.store.tickets(order_id).await?);
    let (taken, operator) = match &msg.ask {
        RefundAsk::Buyer(ask) => (ticket_refund::buyer_refund(ask, &tickets, left), None),
        RefundAsk::Operator {
            operator,
            amount,
            ticket_ids,
            ..
        } => (
            ticket_refund::operator_refund(*amount, ticket_ids, &tickets, left),
            Some(operator.clone()),
        ),
    };
    let taken = taken.map_err(|e| match e {
        TicketRefundError::Exceeded { refundable } => {
            ActorError::RefundAmountExceeded { refundable }
        }
        other => ActorError::InvalidRequest(other.to_string()),
    })?;
    let now = engine.clock.now();
    let new = NewRefund {
        order_id,
        payment_id: payment.id,
        out_refund_no: policy::next_number(
            "RF",
            order_id,
            now,
            refunds.iter().map(|r| r.out_refund_no.as_str()),
        ),
        amount: taken.amount,
        reason: msg.reason,
        kind: RefundKind::Requested,
        request_key: msg.request_key,
        ticket_ids: taken.ticket_ids,
        operator,
    };
    let refund = match engine.store.begin_refund(&new, engine.fence, now).await {
        Ok(refund) => refund,
        Err(BeginRefundError::Exists(existing)) => {
            // The same request raced itself in (two nodes): answer the refund it made. A
            // refund of another request that drew the same number (two nodes that both
            // believed they held the order, in one millisecond) is not this request's
            // answer: busy, and the retry draws a number past it.
            let ours = match new.request_key.as_deref() {
                Some(key) => engine
                    .store
                    .refund_for_request(key)
                    .await?
                    .is_some_and(|bound| bound.id == existing.id),
                None => false,
            };
            if ours {
                return resume(engine, *existing).await;
            }
            return Err(ActorError::Busy(
                "another refund of the order took the same number".into(),
            ));
        }
        Err(BeginRefundError::Exceeded { refundable }) => {
            return Err(ActorError::RefundAmountExceeded { refundable })
        }
        Err(BeginRefundError::NotConfirmed) => {
            return Err(ActorError::InvalidOrderStatus(
                "only CONFIRMED orders can be refunded".into(),
            ))
        }
        Err(BeginRefundError::TicketsNotRefundable) => {
            return Err(ActorError::InvalidRequest(
                TicketRefundError::NotRefundableTickets.to_string(),
            ))
        }
        Err(BeginRefundError::Store(e)) => return Err(e.into()),
    };
    tracing::info!(
        event = "wallyt.refund.requested",
        order_id,
        out_refund_no = %refund.out_refund_no,
        amount = refund.amount.get(),
    );
    drive(engine, payment, refund).await
}

/// The order's tickets with their unit prices (from the order's lines).
fn priced_tickets(order: &Order, tickets: &[Ticket]) -> Vec<PricedTicket> {
    tickets
        .iter()
        .filter_map(|t| {
            let item = order
                .items
                .iter()
                .find(|i| i.ticket_type_id == t.ticket_type_id)?;
            Some(PricedTicket {
                id: t.id,
                price: item.unit_price,
                status: TicketStatus::parse(&t.status)?,
            })
        })
        .collect()
}

/// A refund that exists already, answered as it stands now: a final one as it ended, a
/// PROCESSING one after asking the gateway (and resending under the same number when the
/// gateway never got it).
async fn resume(engine: &Engine, refund: Refund) -> Result<Refund, ActorError> {
    if refund.status.is_final() {
        return answer(refund);
    }
    check(engine, refund.id).await?;
    let now = engine
        .store
        .refund(refund.id)
        .await?
        .unwrap_or_else(|| refund.clone());
    answer(now)
}

/// Sends a refund the store planned with a payment (late or double): once now, then the
/// poller's until final. Its failures are the poller's too: the refund is durable already.
pub async fn send_planned_refund(engine: &Engine, refund: Refund) {
    tracing::info!(
        event = "wallyt.refund.requested",
        order_id = refund.order_id,
        out_refund_no = %refund.out_refund_no,
        amount = refund.amount.get(),
        kind = refund.kind.as_str(),
    );
    watch(engine, &refund);
    let payment = match engine.store.payments(refund.order_id).await {
        Ok(payments) => payments.into_iter().find(|p| p.id == refund.payment_id),
        Err(error) => {
            tracing::warn!(event = "wallyt.refund.unknown", order_id = refund.order_id, %error);
            return;
        }
    };
    if let Some(payment) = payment {
        if let Err(error) = drive(engine, &payment, refund.clone()).await {
            tracing::warn!(event = "wallyt.refund.unknown", order_id = refund.order_id, %error);
        }
    }
}

/// Asks the gateway where the refund stands (the inner error is the gateway's, to retry).
async fn progress(
    engine: &Engine,
    refund: &Refund,
) -> Result<Result<RefundProgress, GatewayFailure>, ActorError> {
    engine
        .gateway
        .send(QueryRefund(refund.out_refund_no.clone()))
        .await
        .map_err(mailbox)
}

/// Sends (or resends) the refund, then asks briefly for its outcome.
async fn drive(engine: &Engine, payment: &Payment, refund: Refund) -> Result<Refund, ActorError> {
    send(engine, payment, &refund).await?;
    for attempt in 0..BRIEF_QUERIES {
        if attempt > 0 {
            tokio::time::sleep(BRIEF_SPACING).await;
        }
        match progress(engine, &refund).await? {
            Ok(RefundProgress::NotSure) | Ok(RefundProgress::Unknown) => {
                send(engine, payment, &refund).await?
            }
            Ok(RefundProgress::Processing) | Err(_) => {}
            Ok(final_progress) => {
                let settled = settle(engine, &refund, final_progress).await?;
                return answer(settled);
            }
        }
    }
    watch(engine, &refund);
    Ok(refund)
}

/// Asks the gateway for the refund. A refusal ends it as FAIL (its amount is free again);
/// an unknown outcome keeps it PROCESSING for the poller.
async fn send(engine: &Engine, payment: &Payment, refund: &Refund) -> Result<(), ActorError> {
    let request = RefundRequest {
        out_trade_no: payment.out_trade_no.clone(),
        out_refund_no: refund.out_refund_no.clone(),
        total: payment.amount,
        amount: refund.amount,
    };
    let sent = engine
        .gateway
        .send(AskRefund(request))
        .await
        .map_err(mailbox)?;
    let now = engine.clock.now();
    match sent {
        Ok(accepted) => {
            let id = accepted.refund_id.as_deref();
            engine.store.note_refund_attempt(refund.id, id, now).await?;
            Ok(())
        }
        Err(GatewayFailure::Refused(reason)) => {
            engine
                .store
                .note_refund_attempt(refund.id, None, now)
                .await?;
            finish(engine, refund, RefundResult::Fail, &reason).await?;
            Err(ActorError::RefundRejected(format!(
                "the gateway refused the refund: {reason}"
            )))
        }
        Err(failure) => {
            engine
                .store
                .note_refund_attempt(refund.id, None, now)
                .await?;
            tracing::warn!(
                event = "wallyt.refund.unknown",
                order_id = refund.order_id,
                out_refund_no = %refund.out_refund_no,
                error = %failure,
            );
            engine.observer.refund("unknown");
            watch(engine, refund);
            Err(failure.into())
        }
    }
}

fn watch(engine: &Engine, refund: &Refund) {
    engine.refund_poller.do_send(Watch {
        refund_id: refund.id,
        order_id: refund.order_id,
    });
}

/// The answer to the refund's requester once it is final.
fn answer(refund: Refund) -> Result<Refund, ActorError> {
    match refund.status {
        RefundStatus::Success | RefundStatus::Processing => Ok(refund),
        RefundStatus::Fail => Err(ActorError::RefundRejected(format!(
            "refund {} FAILED at the gateway; nothing was refunded",
            refund.out_refund_no
        ))),
        RefundStatus::Change => Err(ActorError::RefundRejected(format!(
            "refund {} went to the merchant account (CHANGE) and needs manual handling",
            refund.out_refund_no
        ))),
    }
}

/// Applies a final outcome the gateway reported, and answers the refund as it now stands.
async fn settle(
    engine: &Engine,
    refund: &Refund,
    progress: RefundProgress,
) -> Result<Refund, ActorError> {
    let result = match progress {
        RefundProgress::Success { refund_id, at } => RefundResult::Success {
            refund_id,
            at: at.unwrap_or_else(|| engine.clock.now()),
        },
        RefundProgress::Fail => RefundResult::Fail,
        RefundProgress::Change => RefundResult::Change,
        RefundProgress::Processing | RefundProgress::NotSure | RefundProgress::Unknown => {
            return Ok(refund.clone())
        }
    };
    finish(engine, refund, result, "").await?;
    let now = engine.store.refund(refund.id).await?;
    Ok(now.unwrap_or_else(|| refund.clone()))
}

async fn finish(
    engine: &Engine,
    refund: &Refund,
    result: RefundResult,
    detail: &str,
) -> Result<(), ActorError> {
    let outcome = engine
        .store
        .finish_refund(refund.id, &result, engine.fence, engine.clock.now())
        .await?;
    if let FinishOutcome::Finished { order_cancelled } = outcome {
        let (order_id, no) = (refund.order_id, refund.out_refund_no.as_str());
        let verdict = match result {
            RefundResult::Success { .. } => {
                tracing::info!(
                    event = "wallyt.refund.succeeded",
                    order_id,
                    out_refund_no = no,
                    order_cancelled
                );
                "succeeded"
            }
            RefundResult::Fail => {
                tracing::warn!(
                    event = "wallyt.refund.failed",
                    order_id,
                    out_refund_no = no,
                    detail
                );
                "failed"
            }
            RefundResult::Change => {
                tracing::error!(
                    event = "wallyt.refund.change",
                    order_id,
                    out_refund_no = no,
                    "needs manual handling"
                );
                "change"
            }
        };
        engine.observer.refund(verdict);
        let event = NewPaymentEvent {
            kind: "refund".into(),
            order_id: Some(order_id),
            out_trade_no: Some(no.to_owned()),
            verdict: verdict.into(),
            raw: detail.to_owned(),
        };
        engine
            .store
            .append_event(&event, engine.clock.now())
            .await?;
    }
    Ok(())
}

/// The poller's visit: ask the gateway once, resend on NOTSURE or when it never arrived.
pub async fn check(engine: &Engine, refund_id: i64) -> Result<RefundStatus, ActorError> {
    let Some(refund) = engine.store.refund(refund_id).await? else {
        return Err(ActorError::OrderNotFound);
    };
    if refund.status.is_final() {
        return Ok(refund.status);
    }
    match progress(engine, &refund).await? {
        Ok(RefundProgress::NotSure) | Ok(RefundProgress::Unknown) => {
            let payments = engine.store.payments(refund.order_id).await?;
            let payment = payments.iter().find(|p| p.id == refund.payment_id);
            if let Some(payment) = payment {
                // A refusal here ends it as FAIL; an uncertain resend stays PROCESSING.
                let _ = send(engine, payment, &refund).await;
            }
            Ok(engine
                .store
                .refund(refund_id)
                .await?
                .map_or(refund.status, |r| r.status))
        }
        Ok(progress) => Ok(settle(engine, &refund, progress).await?.status),
        Err(_) => Ok(RefundStatus::Processing),
    }
}
