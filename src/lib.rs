//! # wallyt-pay — the application around the engine
//!
//! Layout: the engine itself (money, state machines, ports, order actors) lives in the
//! `wallyt-pay-actors` crate under `actors/`; this crate gives it I/O and an HTTP face.
//!
//! - [`config`]: layered settings under the contract's variable names; typed secrets.
//! - [`startup`]: `Application::build(settings)` — database, clients, listener, server.
//! - [`telemetry`]: the tracing subscriber (each request's lines carry its `request_id`,
//!   assigned by `http::request_id`).
//! - [`http`]: routes, authentication extractors, the JSON envelope and the one `ApiError`,
//!   request ids.
//! - [`console`]: the operations console's server-rendered pages at `/console`.
//! - [`sandbox`]: the local imitation of Wallyt and WeChat (development and tests), with its
//!   controls and the cashier page.
//! - [`auth`]: the HS256 login token.
//! - [`storage`]: sqlx adapters of the store ports, on SQLite or PostgreSQL, and migrations.
//! - [`gateway`]: outbound clients — WeChat's `jscode2session` today, Wallyt next.
//!
//! Dependency direction: tests → this crate → `wallyt-pay-actors`.

pub mod auth;
pub mod config;
pub mod console;
pub mod engine;
pub mod gateway;
pub mod http;
pub mod metrics;
pub mod reconcile;
pub mod redis;
pub mod sandbox;
pub mod startup;
pub mod storage;
pub mod telemetry;
