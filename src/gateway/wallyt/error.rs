//! What can go wrong talking to the gateway, sorted by what the caller must do about it.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// No answer in time. For a refund or a payment the outcome is unknown: ask again with the
    /// same out_trade_no / out_refund_no, never a new one.
    #[error("the gateway did not answer in time")]
    Timeout,
    /// The connection failed or the gateway answered HTTP 5xx/4xx.
    #[error("the gateway could not be reached: {0}")]
    Transport(String),
    /// `status≠0`: the gateway refused the call itself (format, signature, mch_id). Such
    /// replies are unsigned, so nothing in them is trusted beyond this.
    #[error("the gateway refused the call (status {status}): {message}")]
    Refused { status: String, message: String },
    /// `status=0`, `result_code≠0`: a signed business error (ORDERPAID, NOTENOUGH, ...).
    #[error("the gateway answered business error {code}: {message}")]
    Business { code: String, message: String },
    /// A reply whose signature does not verify: treat as an attack or a misconfiguration.
    #[error("the gateway reply has an invalid signature")]
    BadSignature,
    /// Not XML, not the protocol, or missing the fields a success must carry.
    #[error("the gateway answered garbage: {0}")]
    Garbage(String),
    /// We were about to send something the gateway would refuse (a bug on our side).
    #[error("invalid gateway request: {0}")]
    InvalidRequest(String),
    /// The circuit breaker is open after repeated failures: we did not call.
    #[error("the gateway is failing; calls are paused for a moment")]
    CircuitOpen,
}

impl GatewayError {
    /// Business codes after which the outcome is unknown: query again rather than give up.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            GatewayError::Timeout => true,
            GatewayError::Business { code, .. } => {
                matches!(code.as_str(), "SYSTEMERROR" | "BANKERROR" | "USERPAYING")
            }
            _ => false,
        }
    }

    /// Failures of the gateway itself (as opposed to answers about our request): these feed
    /// the circuit breaker and may be retried for idempotent services.
    pub fn is_gateway_fault(&self) -> bool {
        matches!(
            self,
            GatewayError::Timeout | GatewayError::Transport(_) | GatewayError::Garbage(_)
        )
    }
}
