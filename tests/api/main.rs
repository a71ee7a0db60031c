//! Black-box tests: each test spawns the real application on port 0 with a fresh database and
//! talks to it over HTTP. Cases marked for both backends run on an SQLite temp file always and
//! on a fresh PostgreSQL database when TEST_DATABASE_URL is set (required when CI=true).

mod helpers;

mod abuse;
mod admin;
mod browser;
mod builtin_sandbox;
mod cashier;
mod catalog;
mod console;
mod crash;
mod engine;
mod errors;
mod expiry;
mod fencing;
mod gateway_state;
mod group_commit;
mod health;
mod idempotency;
mod late_payments;
mod login;
mod nodes;
mod notify;
mod notify_audit;
mod notify_flood;
mod openapi;
mod orders;
mod payments;
mod pending_limits;
mod reconciliation;
mod redis_outage;
mod refund_recovery;
mod refunds;
mod request_ids;
mod retries;
mod rsa_mode;
mod safe_defaults;
mod sandbox;
mod sandbox_faults;
mod sandbox_harness;
mod shop;
mod slow_clients;
mod startup;
mod status_reads;
mod store;
mod three_nodes;
mod ticket_refunds;
mod upstream_limits;
mod wallyt_client;
