//! Liveness and readiness probes.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::http::{envelope, ApiError};
use crate::startup::AppState;

/// The process is up and serving.
pub async fn healthz() -> HttpResponse {
    envelope::ok(json!({ "status": "ok" }))
}

/// The process can do its work: the database answers.
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
    Ok(envelope::ok(
        json!({ "status": "ready", "database": "ok", "redis": redis }),
    ))
}

/// Prometheus text format.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let live = i64::try_from(state.engine.live_actors()).unwrap_or(i64::MAX);
    state.metrics.live_order_actors.set(live);
    let pending = i64::try_from(state.engine.pending_deadlines()).unwrap_or(i64::MAX);
    state.metrics.pending_deadlines.set(pending);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
