//! An order's timeline: what the rows say happened (created, prepaid, paid, closed, refund
//! asked and finished, cancelled or expired) merged with what the event log recorded (each
//! verified notify as received and its verdict, query and sync results, the decisions on late
//! and double payments, each refund outcome, each failed gateway call) and the operators'
//! actions from the audit, in time order. The rows carry the instants the
//! event log does not (a close, an expiry), the log carries what the gateway said.

use chrono::FixedOffset;
use serde::Serialize;
use utoipa::ToSchema;
use wallyt_pay_actors::{CancelReason, Fen, Order, Payment, Refund, UnixMillis};

use super::local_time;
use crate::storage::admin::StoredEvent;
use crate::storage::request_ids::{AuditedAction, RequestIds};

/// The most of a stored body a timeline shows; the whole body stays in the database.
const MAX_DETAIL_CHARS: usize = 4000;

#[derive(Serialize, ToSchema, Debug)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntry {
    /// In the console's zone.
    pub at: String,
    /// order.created, payment.created, payment.paid, payment.closed, notify.received,
    /// notify.verdict, notify.apply, query.apply, sync.query, refund.requested,
    /// refund.outcome, refund.finished, order.expired, order.cancelled, gateway.error,
    /// admin.sync, admin.refund, admin.replay, …
    pub kind: String,
    /// What came of it: a verdict (confirmed, duplicate, late_payment_refunding, …) or a
    /// status (SUCCESS, CHANGE, …).
    pub verdict: Option<String>,
    pub out_trade_no: Option<String>,
    pub out_refund_no: Option<String>,
    #[schema(value_type = Option<f64>, example = 100.00)]
    pub amount: Option<Fen>,
    /// The stored event it comes from: a `notify.received` one can be replayed.
    pub event_id: Option<i64>,
    /// Who asked (operator refunds).
    pub operator: Option<String>,
    pub ticket_ids: Option<Vec<i64>>,
    /// The gateway's own words, or the stored body (cut at 4,000 characters).
    pub detail: Option<String>,
    /// The HTTP request that caused it (the `X-Request-Id` it answered and the `request_id`
    /// of its log lines); absent for what timers and pollers did, and for older rows.
    pub request_id: Option<String>,
    #[serde(skip)]
    instant: UnixMillis,
}

fn entry(instant: UnixMillis, kind: &str) -> TimelineEntry {
    TimelineEntry {
        at: String::new(),
        kind: kind.to_owned(),
        verdict: None,
        out_trade_no: None,
        out_refund_no: None,
        amount: None,
        event_id: None,
        operator: None,
        ticket_ids: None,
        detail: None,
        request_id: None,
        instant,
    }
}

fn cut(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.chars().take(MAX_DETAIL_CHARS).collect())
}

/// Everything an order's timeline is made of.
pub struct Sources<'a> {
    pub order: &'a Order,
    pub payments: &'a [Payment],
    pub refunds: &'a [Refund],
    pub closures: &'a [(String, UnixMillis)],
    pub events: &'a [StoredEvent],
    pub request_ids: &'a RequestIds,
    pub actions: &'a [AuditedAction],
}

pub fn timeline(zone: FixedOffset, sources: &Sources<'_>) -> Vec<TimelineEntry> {
    let Sources {
        order,
        payments,
        refunds,
        closures,
        events,
        request_ids,
        actions,
    } = *sources;
    let mut entries = Vec::new();
    let mut created = entry(order.created_at, "order.created");
    created.amount = Some(order.total);
    entries.push(created);
    for payment in payments {
        let mut prepay = entry(payment.created_at, "payment.created");
        prepay.out_trade_no = Some(payment.out_trade_no.clone());
        prepay.amount = Some(payment.amount);
        prepay.request_id = request_ids.payments.get(&payment.id).cloned();
        entries.push(prepay);
        if let Some(paid_at) = payment.paid_at {
            let mut paid = entry(paid_at, "payment.paid");
            paid.out_trade_no = Some(payment.out_trade_no.clone());
            paid.amount = Some(payment.amount);
            paid.detail = payment.transaction_id.clone();
            entries.push(paid);
        }
    }
    for (out_trade_no, closed_at) in closures {
        let mut closed = entry(*closed_at, "payment.closed");
        closed.out_trade_no = Some(out_trade_no.clone());
        entries.push(closed);
    }
    for refund in refunds {
        let mut asked = entry(refund.created_at, "refund.requested");
        asked.verdict = Some(refund.kind.as_str().to_owned());
        asked.out_refund_no = Some(refund.out_refund_no.clone());
        asked.amount = Some(refund.amount);
        asked.operator = refund.operator.clone();
        asked.ticket_ids = Some(refund.ticket_ids.clone());
        asked.detail = refund.reason.clone();
        asked.request_id = request_ids.refunds.get(&refund.id).cloned();
        entries.push(asked);
        if let Some(finished_at) = refund.finished_at {
            let mut finished = entry(finished_at, "refund.finished");
            finished.verdict = Some(refund.status.as_str().to_owned());
            finished.out_refund_no = Some(refund.out_refund_no.clone());
            finished.amount = Some(refund.amount);
            entries.push(finished);
        }
    }
    if let Some(cancelled_at) = order.cancelled_at {
        let kind = match order.cancel_reason {
            Some(CancelReason::Expired) => "order.expired",
            _ => "order.cancelled",
        };
        let mut cancelled = entry(cancelled_at, kind);
        cancelled.verdict = order.cancel_reason.map(|r| r.as_str().to_owned());
        entries.push(cancelled);
    }
    for event in events {
        let kind = match event.kind.as_str() {
            "notify" => "notify.received".to_owned(),
            "refund" => "refund.outcome".to_owned(),
            other => other.to_owned(),
        };
        let mut logged = entry(event.created_at, &kind);
        logged.verdict = Some(event.verdict.clone());
        logged.event_id = Some(event.id);
        // The engine records a refund's outcome under its out_refund_no.
        if event.kind == "refund" {
            logged.out_refund_no = event.out_trade_no.clone();
        } else {
            logged.out_trade_no = event.out_trade_no.clone();
        }
        logged.detail = cut(&event.raw);
        logged.request_id = event.request_id.clone();
        entries.push(logged);
    }
    for action in actions {
        // admin.sync, admin.refund, admin.replay: who acted, how it ended, under which request.
        let mut acted = entry(action.created_at, &format!("admin.{}", action.action));
        acted.verdict = Some(format!("{} ({})", action.outcome, action.status));
        acted.operator = Some(action.operator.clone());
        acted.detail = action.target.clone();
        acted.request_id = action.request_id.clone();
        entries.push(acted);
    }
    // Stable: what happened in the same millisecond keeps the order it was pushed in
    // (rows before the events they caused).
    entries.sort_by_key(|e| e.instant);
    for e in &mut entries {
        e.at = local_time(zone, e.instant);
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_are_cut() {
        assert_eq!(cut(&"x".repeat(5000)).unwrap().len(), MAX_DETAIL_CHARS);
        assert_eq!(cut("  "), None);
    }
}
