//! Liveness and readiness probes.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::extractors::MetricsReader;
use crate::http::openapi::{Envelope, Failure};
use crate::http::{envelope, ApiError};
use crate::startup::AppState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    status: &'static str,
    database: &'static str,
    /// `ok`, or `not configured` without REDIS_URL.
    redis: &'static str,
}

/// The process is up and serving.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = inline(Envelope<Health>))))]
pub async fn healthz() -> HttpResponse {
    envelope::ok(Health { status: "ok" })
}

/// The process can do its work: the database answers (and Redis, when configured).
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, body = inline(Envelope<Readiness>)),
    (status = 503, description = "UNAVAILABLE", body = Failure)))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.db.ping().await?;
    if let Some(redis) = &state.redis {
        redis.ping().await.map_err(|e| {
            tracing::error!(event = "redis.unreachable", error = %e);
            ApiError::Unavailable("Redis is unreachable".into())
        })?;
    }
    let redis = if state.redis.is_some() {
        "ok"
    } else {
        "not configured"
    };
    Ok(envelope::ok(Readiness {
        status: "ready",
        database: "ok",
        redis,
    }))
}

/// Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    security((), ("bearer" = [])),
    responses((status = 200, content_type = "text/plain", body = String),
        (status = 401, description = "UNAUTHORIZED (only when METRICS_TOKEN is set)", body = Failure)))]
pub async fn metrics(_reader: MetricsReader, state: web::Data<AppState>) -> HttpResponse {
    let live = i64::try_from(state.engine.live_actors()).unwrap_or(i64::MAX);
    state.metrics.live_order_actors.set(live);
    let pending = i64::try_from(state.engine.pending_deadlines()).unwrap_or(i64::MAX);
    state.metrics.pending_deadlines.set(pending);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
