//! # wallyt-pay-actors — the payment engine
//!
//! Layout: this crate holds what the engine *means*, never how it talks to the world (no
//! sqlx, reqwest, redis, actix-web or quick-xml here; `cargo tree -p wallyt-pay-actors -e normal`
//! proves it).
//!
//! - [`money`]: [`Fen`], integer money, and the exact yuan ↔ fen conversion of the JSON API.
//! - [`time`]: [`UnixMillis`] and the [`Clock`] port, so timers and TTLs are test inputs.
//! - [`user`]: a mini-program user, known by the openid WeChat gives us.
//! - [`catalog`]: ticket types and their stock counters (`available + reserved + sold == total`).
//! - [`order`], [`payment`], [`refund`], [`ticket`]: the state machines as pure functions.
//! - [`ticket_refund`]: which tickets a refund takes (whole tickets for buyers).
//! - [`policy`]: the decisions (late payments, which payment a refund takes, what a refund
//!   does to its order), called by the stores inside the transaction that applies them.
//! - [`ports`]: the traits the application implements with real I/O (store, gateway, locks).
//! - [`engine`]: the order actors, their registry and the gateway and lock supervisors.

pub mod catalog;
pub mod engine;
pub mod expiry;
pub mod money;
pub mod order;
pub mod payment;
pub mod policy;
pub mod ports;
pub mod refund;
pub mod sim;
pub mod ticket;
pub mod ticket_refund;
pub mod time;
pub mod user;

pub use catalog::{NewTicketType, Stock, TicketType};
pub use money::{Fen, MoneyError};
pub use order::{CancelReason, Order, OrderItem, OrderLine, OrderStatus};
pub use payment::{Payment, PaymentStatus, Ticket};
pub use ports::{CatalogStore, StoreError, UserStore};
pub use refund::{Refund, RefundKind, RefundStatus};
pub use ticket::TicketStatus;
pub use time::{Clock, SystemClock, UnixMillis};
pub use user::User;
