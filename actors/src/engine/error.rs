//! What an order actor can answer instead of a result.

use crate::ports::{GatewayFailure, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ActorError {
    #[error("order not found")]
    OrderNotFound,
    #[error("{0}")]
    InvalidOrderStatus(String),
    /// The request itself cannot be honoured as asked (tickets, amounts): a 400.
    #[error("{0}")]
    InvalidRequest(String),
    #[error("the payment gateway is not configured")]
    GatewayNotConfigured,
    #[error("the payment gateway did not answer in time")]
    GatewayTimeout,
    #[error("the payment gateway failed: {0}")]
    Gateway(String),
    /// Another node holds the order, the lock service is down, or the actor is overloaded.
    #[error("the order is busy, try again: {0}")]
    Busy(String),
    #[error("refund amount exceeds the {refundable} still refundable")]
    RefundAmountExceeded { refundable: crate::money::Fen },
    /// The gateway ended the refund without paying it back (FAIL), or sent the money to the
    /// merchant account instead (CHANGE).
    #[error("{0}")]
    RefundRejected(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ActorError {
    /// Another node took the order over while we worked (our lease expired): the write was
    /// refused, the caller may retry and will see that node's result.
    pub fn is_fenced(&self) -> bool {
        matches!(self, ActorError::Store(StoreError::Fenced(_)))
    }
}

impl From<GatewayFailure> for ActorError {
    fn from(failure: GatewayFailure) -> ActorError {
        match failure {
            GatewayFailure::NotConfigured => ActorError::GatewayNotConfigured,
            GatewayFailure::Timeout => ActorError::GatewayTimeout,
            other => ActorError::Gateway(other.to_string()),
        }
    }
}
