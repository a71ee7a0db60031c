//! Storage ports. Each method is one transaction; the guarded updates behind them are what
//! keep money and stock right even when an actor or a lock fails.

use crate::catalog::{NewTicketType, TicketType};
use crate::money::Fen;
use crate::order::{Order, OrderLine};
use crate::payment::{Payment, Ticket};
use crate::refund::{Refund, RefundStatus};
use crate::time::UnixMillis;
use crate::user::User;
use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or timed out: the caller may retry later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A unique key or a guarded update refused the write: someone else got there first.
    #[error("storage conflict: {0}")]
    Conflict(String),
    /// A newer lease holder has written this order: our lease is gone, so is our right to
    /// write (fencing). Nothing was changed.
    #[error("the order was taken over by a newer lease (fence {0})")]
    Fenced(i64),
    /// Anything else: a bug or a schema mismatch, never the caller's fault.
    #[error("storage failure: {0}")]
    Other(String),
}

/// The fencing token of the lease a write is made under. Every transition of an order checks
/// it against the highest token that has written the order (and records its own): a holder
/// whose lease expired and was taken by another node cannot commit after that node did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fence(pub i64);

/// The rules a payment is applied with (from the configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaymentRules {
    /// How long after its expiry an order may still be revived by a late payment.
    pub revive_within: std::time::Duration,
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates the user on first login, refreshes `last_login_at` (and a newly learnt unionid)
    /// afterwards. Safe under concurrent logins of the same openid.
    async fn upsert_user(
        &self,
        openid: &str,
        unionid: Option<&str>,
        now: UnixMillis,
    ) -> Result<User, StoreError>;

    async fn find_user(&self, id: i64) -> Result<Option<User>, StoreError>;
}

#[async_trait]
pub trait CatalogStore: Send + Sync {
    async fn create_ticket_type(
        &self,
        new: &NewTicketType,
        now: UnixMillis,
    ) -> Result<TicketType, StoreError>;

    async fn ticket_type(&self, id: i64) -> Result<Option<TicketType>, StoreError>;

    /// All ticket types, oldest first.
    async fn ticket_types(&self) -> Result<Vec<TicketType>, StoreError>;
}

/// How much one user may hold unpaid at once; 0 turns a limit off. Checked inside the
/// transaction that reserves, so concurrent requests of one user cannot slip past it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PendingLimits {
    pub max_orders: u32,
    pub max_units: u32,
}

impl PendingLimits {
    pub const OFF: PendingLimits = PendingLimits {
        max_orders: 0,
        max_units: 0,
    };

    /// Whether a user holding `orders` PENDING orders with `units` reserved units may add an
    /// order of `more` units.
    pub fn allows(self, orders: i64, units: i64, more: i64) -> bool {
        let under = |max: u32, value: i64| max == 0 || value <= i64::from(max);
        under(self.max_orders, orders + 1) && under(self.max_units, units + more)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CreateOrderError {
    #[error("ticket type {0} does not exist")]
    UnknownTicketType(i64),
    #[error("the user already holds {orders} unpaid orders with {units} reserved units")]
    TooManyPending { orders: i64, units: i64 },
    #[error("not enough tickets of type {0} left")]
    InsufficientStock(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A prepay the gateway created, to be recorded as a NOTPAY payment.
#[derive(Clone, Debug)]
pub struct NewPrepay {
    pub order_id: i64,
    pub out_trade_no: String,
    pub amount: Fen,
    pub openid: String,
    pub pay_params: String,
    pub prepay_expires_at: UnixMillis,
}

/// A payment the gateway reported (notify or query), already verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentApplication {
    pub out_trade_no: String,
    pub transaction_id: String,
    pub amount: Fen,
    pub paid_at: UnixMillis,
}

/// What applying a payment did. Each is one transaction: the payment's PAID and what the
/// policy made of it commit together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Payment PAID, order CONFIRMED, stock reserved → sold, tickets issued.
    Confirmed { tickets: usize },
    /// A late payment for an order that had expired: its stock taken again (available →
    /// sold), the order CONFIRMED after all, tickets issued.
    Revived { tickets: usize },
    /// Payment PAID, and a PROCESSING refund of all of it recorded (a late payment with no
    /// stock left or past the revive horizon, or a second trade of a confirmed order): the
    /// refund is durable follow-up work, sent by whoever gets to it first.
    RefundPlanned { refund: Refund },
    /// This payment had already been applied: nothing changed.
    AlreadyApplied,
    /// The amount is not the trade's: nothing changed.
    AmountMismatch { expected: Fen },
    /// No payment has this out_trade_no.
    UnknownTrade,
}

/// One line of the append-only payment event log.
#[derive(Clone, Debug)]
pub struct NewPaymentEvent {
    pub kind: String,
    pub order_id: Option<i64>,
    pub out_trade_no: Option<String>,
    pub verdict: String,
    pub raw: String,
}

/// A refund about to be asked of the gateway.
#[derive(Clone, Debug)]
pub struct NewRefund {
    pub order_id: i64,
    pub payment_id: i64,
    pub out_refund_no: String,
    pub amount: Fen,
    pub reason: Option<String>,
    pub kind: crate::refund::RefundKind,
    /// The request this refund answers (the caller's Idempotency-Key, scoped): a retry of the
    /// same request finds this refund instead of making another.
    pub request_key: Option<String>,
    /// The tickets it gives back: VALID → REFUNDING with the refund, CANCELLED (units back on
    /// sale) when it succeeds, VALID again when it fails.
    pub ticket_ids: Vec<i64>,
    /// The operator who asked, for an operator's refund.
    pub operator: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BeginRefundError {
    #[error("only {refundable} is still refundable")]
    Exceeded { refundable: Fen },
    #[error("the order is not CONFIRMED")]
    NotConfirmed,
    /// A ticket named is not a VALID ticket of the order any more (another refund took it).
    #[error("a ticket is no longer refundable")]
    TicketsNotRefundable,
    /// A refund with this out_refund_no or request key exists already: here it is.
    #[error("refund {} exists already", .0.out_refund_no)]
    Exists(Box<Refund>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How a refund ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefundResult {
    Success {
        refund_id: Option<String>,
        at: UnixMillis,
    },
    Fail,
    Change,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FinishOutcome {
    /// This call finished it; `order_cancelled` when it completed a full refund.
    Finished { order_cancelled: bool },
    /// It was already final (another poll or node got there first).
    AlreadyFinal(RefundStatus),
}

#[async_trait]
pub trait OrderStore: Send + Sync {
    /// Reserves the stock of every line (available → reserved) and creates the PENDING order,
    /// all or nothing, if the user stays within `limits`. Lines come validated and sorted by
    /// ticket type. Checks in the contract's order: unknown ticket type, limits, stock.
    async fn create_order(
        &self,
        user_id: i64,
        lines: &[OrderLine],
        limits: PendingLimits,
        expires_at: UnixMillis,
        now: UnixMillis,
    ) -> Result<Order, CreateOrderError>;

    async fn order(&self, order_id: i64) -> Result<Option<Order>, StoreError>;

    /// The order's payments, oldest first.
    async fn payments(&self, order_id: i64) -> Result<Vec<Payment>, StoreError>;

    async fn payment_by_out_trade_no(
        &self,
        out_trade_no: &str,
    ) -> Result<Option<Payment>, StoreError>;

    async fn tickets(&self, order_id: i64) -> Result<Vec<Ticket>, StoreError>;

    /// Records a prepay, only while the order is PENDING (else `Conflict`).
    async fn insert_prepay(
        &self,
        prepay: &NewPrepay,
        fence: Fence,
        now: UnixMillis,
    ) -> Result<Payment, StoreError>;

    /// NOTPAY → CLOSED; answers whether this call closed it.
    async fn close_payment(
        &self,
        payment_id: i64,
        fence: Fence,
        now: UnixMillis,
    ) -> Result<bool, StoreError>;

    /// In one transaction: payment PAID and what [`crate::policy::on_payment`] decides —
    /// order CONFIRMED (stock reserved → sold, one ticket per unit), REVIVED (stock available →
    /// sold, tickets), or a PROCESSING refund of the whole payment. Idempotent by out_trade_no
    /// and transaction_id.
    async fn apply_payment(
        &self,
        payment: &PaymentApplication,
        rules: PaymentRules,
        fence: Fence,
        now: UnixMillis,
    ) -> Result<ApplyOutcome, StoreError>;

    /// [`OrderStore::apply_payment`] with its audit lines. A store with transactions writes
    /// them in the transaction that applies the payment (one commit); this default, for stores
    /// without commits to save, applies and then appends the engine's line, whose loss must
    /// not fail the payment.
    async fn apply_payment_audited(
        &self,
        payment: &PaymentApplication,
        rules: PaymentRules,
        fence: Fence,
        now: UnixMillis,
        audit: &super::PaymentAudit,
    ) -> Result<ApplyOutcome, StoreError> {
        let outcome = self.apply_payment(payment, rules, fence, now).await?;
        let event = audit.apply_event(payment, &outcome);
        if let Err(error) = self.append_event(&event, now).await {
            tracing::warn!(event = "payment_event.append_failed", order_id = audit.order_id, %error);
        }
        Ok(outcome)
    }

    async fn append_event(
        &self,
        event: &NewPaymentEvent,
        now: UnixMillis,
    ) -> Result<(), StoreError>;

    /// The order's refunds, oldest first.
    async fn refunds(&self, order_id: i64) -> Result<Vec<Refund>, StoreError>;

    async fn refund(&self, refund_id: i64) -> Result<Option<Refund>, StoreError>;

    /// The refund made for this request key, if any.
    async fn refund_for_request(&self, request_key: &str) -> Result<Option<Refund>, StoreError>;

    /// Every refund still PROCESSING (a durable to-do list: every node polls it, so a refund
    /// whose node died is finished by another).
    async fn processing_refunds(&self) -> Result<Vec<Refund>, StoreError>;

    /// Records a PROCESSING refund and commits its amount against the payment, in one
    /// guarded update that cannot exceed what was paid — even with other nodes racing.
    async fn begin_refund(
        &self,
        refund: &NewRefund,
        fence: Fence,
        now: UnixMillis,
    ) -> Result<Refund, BeginRefundError>;

    /// One more request sent to the gateway (and its refund id, once known).
    async fn note_refund_attempt(
        &self,
        refund_id: i64,
        gateway_refund_id: Option<&str>,
        now: UnixMillis,
    ) -> Result<(), StoreError>;

    /// In one transaction: the refund's final status; on SUCCESS the payment's refunded amount
    /// and status, its tickets CANCELLED with their units sold → available, and when the
    /// payment is complete or no ticket is left the order CANCELLED (REFUNDED) with the rest of
    /// its tickets; on FAIL its amount is freed and its tickets are VALID again.
    async fn finish_refund(
        &self,
        refund_id: i64,
        result: &RefundResult,
        fence: Fence,
        now: UnixMillis,
    ) -> Result<FinishOutcome, StoreError>;
    /// The open deadlines the store implies that fall before `until`: PENDING orders (their
    /// `expiresAt`) and NOTPAY payments (their prepay's `time_expire`). The timer service is
    /// rebuilt from these, a window at a time, so its memory follows what is due soon.
    async fn open_deadlines(
        &self,
        until: UnixMillis,
    ) -> Result<Vec<crate::expiry::Deadline>, StoreError>;

    /// In one transaction: a PENDING order with no open (NOTPAY) trade left becomes CANCELLED
    /// (EXPIRED) and its reservation goes back (reserved → available). Answers whether it did.
    async fn expire_order(
        &self,
        order_id: i64,
        fence: Fence,
        now: UnixMillis,
    ) -> Result<bool, StoreError>;
}
