//! Ports: what the engine needs from the outside world, as traits. The application implements
//! them with sqlx, reqwest and redis; the engine only ever sees these.
//!
//! - [`store`]: users, the catalogue, orders and payments — each method one transaction.
//! - [`gateway`]: the payment gateway in domain terms (prepay, query, close).
//! - [`locks`]: per-order leases that make several nodes take turns.

pub mod gateway;
pub mod locks;
pub mod observer;
pub mod payment_audit;
pub mod store;

pub use gateway::{
    GatewayFailure, PaymentGateway, PrepayCreated, PrepayRequest, RefundAccepted, RefundProgress,
    RefundRequest, TradeStatus,
};
pub use locks::{Lease, LockManager};
pub use observer::{Observer, Silent};
pub use payment_audit::{NotifyBody, PaymentAudit};
pub use store::{
    ApplyOutcome, BeginRefundError, CatalogStore, CreateOrderError, Fence, FinishOutcome,
    NewPaymentEvent, NewPrepay, NewRefund, OrderStore, PaymentApplication, PaymentRules,
    PendingLimits, RefundResult, StoreError, UserStore,
};
