//! Failed gateway calls, handed to a durable log (the database's `payment_events`, kind
//! `gateway.error`): the console's "gateway errors today" and an order's timeline read them
//! there, where the Prometheus counters (per node, reset by a restart) cannot answer "how
//! many failed today, and which trades".
//!
//! What counts: the gateway failed to do its job — no answer in time, no connection or an
//! HTTP error, a refused call (`status≠0`), a reply whose signature does not verify, garbage.
//! Not counted: signed business answers about the trade (ORDERCLOSED, ORDERNOTEXIST, …,
//! which are the gateway working), our own invalid requests, and calls the open circuit
//! breaker did not make. A retried call counts once, with its last error.

use super::error::GatewayError;

/// One failed call, after its retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFailure {
    /// The service, e.g. `unified.trade.query`.
    pub service: &'static str,
    /// timeout, transport, refused, bad_signature or garbage.
    pub outcome: &'static str,
    pub out_trade_no: Option<String>,
    /// The error as the logs say it (the gateway's own words for a refusal); never a key.
    pub detail: String,
}

/// Where failures go. `record` must not block the call path: an implementation that writes
/// somewhere slow does it in the background.
pub trait FailureLog: Send + Sync {
    fn record(&self, failure: CallFailure);
}

/// The outcome name of an error that counts as a gateway failure, `None` for the others.
pub fn failure_outcome(error: &GatewayError) -> Option<&'static str> {
    match error {
        GatewayError::Timeout => Some("timeout"),
        GatewayError::Transport(_) => Some("transport"),
        GatewayError::Refused { .. } => Some("refused"),
        GatewayError::BadSignature => Some("bad_signature"),
        GatewayError::Garbage(_) => Some("garbage"),
        GatewayError::Business { .. }
        | GatewayError::InvalidRequest(_)
        | GatewayError::CircuitOpen => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_answers_are_not_failures() {
        assert_eq!(failure_outcome(&GatewayError::Timeout), Some("timeout"));
        let closed = GatewayError::Business {
            code: "ORDERCLOSED".into(),
            message: String::new(),
        };
        assert_eq!(failure_outcome(&closed), None);
        assert_eq!(failure_outcome(&GatewayError::CircuitOpen), None);
    }
}
