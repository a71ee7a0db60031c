//! The audit lines that go with applying a payment. They are handed to the store together with
//! the payment so a store with transactions writes them in the transaction that applies it:
//! an accepted notify then costs one commit, not one for the body, one for the transition and
//! one per verdict line. The names of the verdicts live here so the store, the engine and the
//! notify endpoint cannot disagree on them.

use super::store::{ApplyOutcome, NewPaymentEvent, PaymentApplication};

/// A verified notify's body, stored whole once per `notify_key` (the contract's notify audit
/// rules): copies and retries of it leave only their verdict line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifyBody {
    pub body: String,
    pub body_sha256: String,
    /// `None` stores the body unconditionally.
    pub notify_key: Option<String>,
    /// The HTTP request that delivered it.
    pub request_id: Option<String>,
}

/// What is recorded beside a payment application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentAudit {
    pub order_id: i64,
    /// Who reported the payment: `notify`, `query`, `bill`.
    pub source: String,
    /// The notify that reported it, for a notify: its body and its verdict line go in too.
    pub notify: Option<NotifyBody>,
    /// The HTTP request that caused it (`X-Request-Id`), carried on each line so an operator
    /// can go from an event to the request's log lines; `None` for a timer's own work.
    pub request_id: Option<String>,
}

impl PaymentAudit {
    /// The engine's line for this application (`{source}.apply`).
    pub fn apply_event(
        &self,
        payment: &PaymentApplication,
        outcome: &ApplyOutcome,
    ) -> NewPaymentEvent {
        NewPaymentEvent {
            kind: format!("{}.apply", self.source),
            order_id: Some(self.order_id),
            out_trade_no: Some(payment.out_trade_no.clone()),
            verdict: outcome.apply_verdict().into(),
            raw: format!(
                "transaction_id={} amount={} paid_at={}",
                payment.transaction_id,
                payment.amount.get(),
                payment.paid_at.0
            ),
        }
    }
}

impl ApplyOutcome {
    /// The engine's name for what applying did (the `{source}.apply` line).
    pub fn apply_verdict(&self) -> &'static str {
        match self {
            ApplyOutcome::Confirmed { .. } => "confirmed",
            ApplyOutcome::Revived { .. } => "late_payment_reconfirmed",
            ApplyOutcome::RefundPlanned { refund }
                if refund.kind == crate::refund::RefundKind::DoublePayment =>
            {
                "double_payment_refunding"
            }
            ApplyOutcome::RefundPlanned { .. } => "late_payment_refunding",
            ApplyOutcome::AlreadyApplied => "duplicate",
            ApplyOutcome::AmountMismatch { .. } => "amount_mismatch",
            ApplyOutcome::UnknownTrade => "unknown_trade",
        }
    }

    /// The notify endpoint's verdict for it, and whether the notify is acknowledged
    /// (`success`): everything that recorded the money is, a mismatch is not.
    pub fn notify_verdict(&self) -> (&'static str, bool) {
        match self {
            ApplyOutcome::Confirmed { .. } => ("confirmed", true),
            ApplyOutcome::AlreadyApplied => ("duplicate", true),
            ApplyOutcome::Revived { .. } => ("late_payment_reconfirmed", true),
            // The refund is recorded with the payment: accepting the notify loses nothing.
            ApplyOutcome::RefundPlanned { .. } => ("paid_order_not_pending", true),
            ApplyOutcome::AmountMismatch { .. } => ("amount_mismatch", false),
            ApplyOutcome::UnknownTrade => ("missing_order_id", false),
        }
    }
}
