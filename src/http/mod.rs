//! The HTTP edge: routes, extractors, the envelope and the one `ApiError`.

pub mod client_ip;
pub mod envelope;
pub mod error;
pub mod extractors;
pub mod idempotency;
pub mod openapi;
pub mod ratelimit;
pub mod rejections;
pub mod request_id;
pub mod routes;
pub mod slow_clients;
pub mod time;
pub mod views;

pub use error::ApiError;
