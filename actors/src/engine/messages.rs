//! The messages an order actor serializes.

use actix::Message;

use super::error::ActorError;
use crate::payment::Payment;
use crate::ports::{ApplyOutcome, PaymentApplication};

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

/// Someone is looking at the order: if it waits for money on an open prepay, ask the gateway
/// (at most once per `status_query_interval`) and apply a payment it reports.
#[derive(Debug, Clone, Copy)]
pub struct SyncWithGateway;

impl Message for SyncWithGateway {
    type Result = Result<(), ActorError>;
}
