//! The messages an order actor serializes.

use actix::Message;

use super::error::ActorError;
use crate::money::Fen;
use crate::payment::Payment;
use crate::ports::{ApplyOutcome, NotifyBody, PaymentApplication};
use crate::refund::{Refund as RefundRecord, RefundStatus};

/// Create (or reuse) the order's prepay for the buyer.
#[derive(Debug, Clone)]
pub struct Prepay {
    pub openid: String,
    pub client_ip: String,
}

#[derive(Debug, Clone)]
pub struct PrepayAnswer {
    pub payment: Payment,
    /// An unexpired prepay was handed out again instead of creating a trade.
    pub reused: bool,
}

impl Message for Prepay {
    type Result = Result<PrepayAnswer, ActorError>;
}

/// The gateway says a trade of this order was paid (a verified notify).
#[derive(Debug, Clone)]
pub struct ApplyPaid(pub PaymentApplication);

impl Message for ApplyPaid {
    type Result = Result<ApplyOutcome, ActorError>;
}

/// A verified notify reports a trade paid: applied as [`ApplyPaid`], with the notify's body
/// and verdict recorded in the transaction that applies it (one commit per notify).
#[derive(Debug, Clone)]
pub struct ApplyNotified {
    pub application: PaymentApplication,
    pub notify: NotifyBody,
}

impl Message for ApplyNotified {
    type Result = Result<ApplyOutcome, ActorError>;
}

/// Someone is looking at the order: if it waits for money on an open prepay, ask the gateway
/// (at most once per `status_query_interval`) and apply a payment it reports.
#[derive(Debug, Clone, Copy)]
pub struct SyncWithGateway;

impl Message for SyncWithGateway {
    type Result = Result<(), ActorError>;
}

/// Refund some or all of a confirmed order: a buyer's by whole tickets, an operator's of any
/// amount.
#[derive(Debug, Clone)]
pub struct Refund {
    pub ask: RefundAsk,
    pub reason: Option<String>,
    /// The request's Idempotency-Key (scoped to user and endpoint): a retry of the same request
    /// answers the refund the first one made, whatever happened to it.
    pub request_key: Option<String>,
}

#[derive(Debug, Clone)]
pub enum RefundAsk {
    Buyer(crate::ticket_refund::BuyerAsk),
    Operator {
        operator: String,
        amount: Option<Fen>,
        ticket_ids: Vec<i64>,
        /// The payment to refund; `None`: the one that paid for the order.
        payment_id: Option<i64>,
    },
}

impl Message for Refund {
    type Result = Result<RefundRecord, ActorError>;
}

/// Look at a PROCESSING refund again (the refund poller's message).
#[derive(Debug, Clone, Copy)]
pub struct CheckRefund {
    pub refund_id: i64,
}

impl Message for CheckRefund {
    type Result = Result<RefundStatus, ActorError>;
}

/// A deadline of this order has come (the ExpiryScheduler's message, via the registry).
/// Answers the deadlines that follow from it (the next active query, a retry).
#[derive(Debug, Clone, Copy)]
pub struct Expire(pub crate::expiry::DeadlineKind);

impl Message for Expire {
    type Result = Result<Vec<crate::expiry::Deadline>, ActorError>;
}
