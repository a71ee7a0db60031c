//! The Wallyt (SwiftPass) protocol, written by hand because it is ours to get right:
//! [`fields`] (a flat message), [`sign`] (signatures: MD5/SHA256 there, RSA_1_256 in [`rsa`]
//! with its [`keys`]), [`xml`] (the wire format),
//! [`time`] (GMT+8 times), one module per service ([`jspay`], [`trade`] for query and close,
//! [`refund`] for refund and refundquery, [`notify`], [`bill`] for the daily bill with its
//! text in [`bill_format`]), and the [`client`] — the only part that
//! does I/O — with its [`breaker`].

pub mod adapter;
pub mod bill;
pub mod bill_format;
pub mod breaker;
pub mod client;
pub mod error;
pub mod failures;
pub mod fields;
pub mod jspay;
pub mod keys;
pub mod notify;
pub mod refund;
pub mod rsa;
pub mod sign;
pub mod time;
pub mod trade;
pub mod xml;

pub use client::{ClientPolicy, Service, WallytClient, WallytConfig};
pub use error::GatewayError;
pub use fields::Fields;
pub use sign::{RsaKeys, SignKeys, SignType};
