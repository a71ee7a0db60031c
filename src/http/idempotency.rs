//! `Idempotency-Key` for prepay and refund: the same key with the same body answers the stored
//! answer without running again (no second gateway call); with another body, or while the
//! first is still running, 409 CONFLICT. Only definite answers (2xx, 4xx) are stored: after a
//! 5xx the outcome may still change, so a retry runs again — and the engine resumes rather than
//! repeats (the same out_refund_no).
//!
//! A request that never finishes — the process crashed, or the client went away and actix
//! dropped this future mid-way (the engine's actor still finishes a message it was sent) —
//! leaves its key IN_FLIGHT; after `IDEMPOTENCY_INFLIGHT_TIMEOUT` a retry takes the key over
//! and runs, and the engine resumes rather than repeats here too.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use sha2::{Digest, Sha256};
use std::future::Future;

use serde::Serialize;

use super::envelope::{self, failure_body};
use super::ApiError;
use crate::startup::AppState;
use crate::storage::idempotency::{Claim, KeyRef};

/// A finished answer as text, ready to store or send.
pub struct Answer {
    pub status: StatusCode,
    pub body: String,
}

impl From<ApiError> for Answer {
    fn from(error: ApiError) -> Answer {
        Answer {
            status: error.status_code(),
            body: failure_body(error.code(), &error.to_string()).to_string(),
        }
    }
}

fn send(answer: Answer) -> HttpResponse {
    HttpResponse::build(answer.status)
        .content_type("application/json")
        .body(answer.body)
}

/// The `Idempotency-Key` header as given (a header that is not text reads as empty: refused).
pub fn header_key(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get("Idempotency-Key")
        .map(|value| value.to_str().unwrap_or_default())
}

fn idempotency_key(given: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(value) = given else {
        return Ok(None);
    };
    let key = value.trim();
    if key.is_empty() || key.len() > 128 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::validation(
            "Idempotency-Key must be 1 to 128 printable ASCII characters",
        ));
    }
    Ok(Some(key.to_owned()))
}

/// [`once`] for a JSON request whose work answers data for the success envelope.
pub async fn once_json<B, T, F, Fut>(
    state: &AppState,
    req: &HttpRequest,
    user_id: i64,
    endpoint: &str,
    body: &B,
    work: F,
) -> HttpResponse
where
    B: Serialize,
    T: Serialize,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    once_json_keyed(state, header_key(req), user_id, endpoint, body, work).await
}

/// [`once_json`] under a key given by the caller rather than read from the request's header:
/// the console's forms carry theirs in a hidden field.
pub async fn once_json_keyed<B, T, F, Fut>(
    state: &AppState,
    key: Option<&str>,
    user_id: i64,
    endpoint: &str,
    body: &B,
    work: F,
) -> HttpResponse
where
    B: Serialize,
    T: Serialize,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    // The request re-serialized: key order and whitespace do not make it "different".
    let canonical = serde_json::to_string(body).unwrap_or_default();
    once_keyed(state, key, user_id, endpoint, &canonical, || async {
        match work().await {
            Ok(data) => Answer {
                status: StatusCode::OK,
                body: envelope::ok_text(data),
            },
            Err(error) => error.into(),
        }
    })
    .await
}

/// Runs `work` once per key; `canonical` is the request in a fixed form (its JSON).
pub async fn once<F, Fut>(
    state: &AppState,
    req: &HttpRequest,
    user_id: i64,
    endpoint: &str,
    canonical: &str,
    work: F,
) -> HttpResponse
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Answer>,
{
    once_keyed(state, header_key(req), user_id, endpoint, canonical, work).await
}

async fn once_keyed<F, Fut>(
    state: &AppState,
    given: Option<&str>,
    user_id: i64,
    endpoint: &str,
    canonical: &str,
    work: F,
) -> HttpResponse
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Answer>,
{
    let key = match idempotency_key(given) {
        Ok(Some(key)) => key,
        Ok(None) => return send(work().await),
        Err(error) => return send(error.into()),
    };
    let key = KeyRef {
        user_id,
        endpoint,
        key: &key,
    };
    let hash: String = Sha256::digest(canonical.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    match state
        .db
        .claim_idempotency_key(
            &key,
            &hash,
            state.clock.now(),
            state.idempotency_inflight_timeout,
        )
        .await
    {
        Err(error) => send(ApiError::from(error).into()),
        Ok(Claim::Conflict(reason)) => send(ApiError::Conflict(reason.into()).into()),
        Ok(Claim::Replay { status, body }) => send(Answer {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body,
        }),
        Ok(Claim::Fresh(token)) => {
            let answer = work().await;
            let stored = if answer.status.is_server_error() {
                state.db.release_idempotency_key(&key, &token).await
            } else {
                let status = answer.status.as_u16();
                state
                    .db
                    .complete_idempotency_key(&key, &token, status, &answer.body)
                    .await
            };
            match stored {
                Ok(true) => {}
                // This request outlived the in-flight timeout and a retry took the key over;
                // the retry's answer is the one that will be kept.
                Ok(false) => tracing::warn!(event = "idempotency.claim_lost", endpoint),
                Err(error) => tracing::error!(event = "idempotency.store_failed", %error),
            }
            send(answer)
        }
    }
}
