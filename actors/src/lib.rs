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
//! - [`ports`]: the traits the application implements with real I/O (storage today; the
//!   gateway, locks and timers join them as the order actors arrive).

pub mod catalog;
pub mod money;
pub mod ports;
pub mod time;
pub mod user;

pub use catalog::{NewTicketType, Stock, TicketType};
pub use money::{Fen, MoneyError};
pub use ports::{CatalogStore, StoreError, UserStore};
pub use time::{Clock, SystemClock, UnixMillis};
pub use user::User;
