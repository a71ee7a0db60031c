//! The payment gateway as the engine needs it. The Wallyt specifics (XML, signatures,
//! `pay_info`) stay in the application's adapter.

use async_trait::async_trait;

use crate::money::Fen;
use crate::time::UnixMillis;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrepayRequest {
    pub out_trade_no: String,
    pub description: String,
    pub amount: Fen,
    pub client_ip: String,
    pub openid: String,
    /// Echoed back untouched by query and notify (a cross-check of the order).
    pub attach: String,
    pub time_start: UnixMillis,
    pub time_expire: UnixMillis,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrepayCreated {
    /// The six `wx.requestPayment` fields as a JSON object, passed through unchanged.
    pub pay_params: String,
}

/// What the gateway knows about a trade.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TradeStatus {
    Paid {
        transaction_id: String,
        amount: Fen,
        paid_at: UnixMillis,
    },
    /// Not paid and still payable (NOTPAY, USERPAYING).
    Open,
    /// Not paid and never will be (CLOSED, REVOKED, PAYERROR, ...).
    Closed,
    /// The gateway does not know this trade.
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GatewayFailure {
    #[error("the payment gateway is not configured")]
    NotConfigured,
    /// No answer in time: the outcome is unknown.
    #[error("the payment gateway did not answer in time")]
    Timeout,
    /// Unreachable, failing, or answering garbage or bad signatures.
    #[error("the payment gateway failed: {0}")]
    Unavailable(String),
    /// A clear refusal of this request.
    #[error("the payment gateway refused: {0}")]
    Refused(String),
    /// Closing was refused because the trade is paid.
    #[error("the trade is already paid")]
    AlreadyPaid,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundRequest {
    pub out_trade_no: String,
    /// The refund's idempotency key at the gateway: resending it is the same refund.
    pub out_refund_no: String,
    /// The trade's total.
    pub total: Fen,
    pub amount: Fen,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundAccepted {
    pub refund_id: Option<String>,
}

/// Where a refund stands at the gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefundProgress {
    Processing,
    Success {
        refund_id: Option<String>,
        at: Option<UnixMillis>,
    },
    Fail,
    /// Unknown at the gateway: resend the refund under the same number.
    NotSure,
    Change,
    /// The gateway has no refund under this number (it never arrived).
    Unknown,
}

#[async_trait]
pub trait PaymentGateway: Send + Sync {
    async fn create_prepay(&self, request: &PrepayRequest)
        -> Result<PrepayCreated, GatewayFailure>;

    async fn query_trade(&self, out_trade_no: &str) -> Result<TradeStatus, GatewayFailure>;

    /// Closes an unpaid trade; `AlreadyPaid` when the customer paid after all.
    async fn close_trade(&self, out_trade_no: &str) -> Result<(), GatewayFailure>;

    /// Asks for a refund; acceptance only, the outcome comes from `refund_progress`.
    async fn refund(&self, request: &RefundRequest) -> Result<RefundAccepted, GatewayFailure>;

    async fn refund_progress(&self, out_refund_no: &str) -> Result<RefundProgress, GatewayFailure>;
}
