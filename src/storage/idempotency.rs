//! Idempotency keys (`Idempotency-Key` on prepay and refund), scoped to the user and the
//! endpoint and kept 24 hours. Claiming is one INSERT on the primary key, so two requests with
//! the same key cannot both run.
//!
//! A claim carries a random token and the time it was taken. A request that never finishes
//! (the process crashed, or actix dropped the handler when the client went away) would hold
//! its key IN_FLIGHT for the whole 24 hours; instead, once the claim is older than the
//! in-flight timeout, a retry with the same request takes it over by one conditional UPDATE —
//! of two concurrent retries only one matches. The token then makes the old request's late
//! complete or release touch nothing.

use rand::RngCore;
use std::time::Duration;
use wallyt_pay_actors::{StoreError, UnixMillis};

use super::{store_error, Database};

const KEEP_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// The request may run (first use, or a stale claim taken over); finish it with this
    /// token through complete or release.
    Fresh(ClaimToken),
    /// Done before with the same request: answer this again.
    Replay { status: u16, body: String },
    /// The key belongs to another request, or its first request is still running.
    Conflict(&'static str),
}

/// Proof of holding a claim: only its holder can complete or release it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimToken(String);

impl ClaimToken {
    fn generate() -> ClaimToken {
        let mut bytes = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut bytes);
        ClaimToken(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }
}

pub struct KeyRef<'a> {
    pub user_id: i64,
    pub endpoint: &'a str,
    pub key: &'a str,
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Database {
    /// Claims `key` for a request whose canonical form hashes to `request_hash`. A claim of
    /// the same request still IN_FLIGHT after `inflight_timeout` is taken over.
    pub async fn claim_idempotency_key(
        &self,
        key: &KeyRef<'_>,
        request_hash: &str,
        now: UnixMillis,
        inflight_timeout: Duration,
    ) -> Result<Claim, StoreError> {
        sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(now.0 - KEEP_MS)
            .execute(self.pool())
            .await
            .map_err(store_error)?;
        let token = ClaimToken::generate();
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys \
             (user_id, endpoint, idem_key, request_hash, state, created_at, claimed_at, claim_token) \
             VALUES ($1, $2, $3, $4, 'IN_FLIGHT', $5, $5, $6) \
             ON CONFLICT (user_id, endpoint, idem_key) DO NOTHING",
        )
        .bind(key.user_id)
        .bind(key.endpoint)
        .bind(key.key)
        .bind(request_hash)
        .bind(now.0)
        .bind(&token.0)
        .execute(self.pool())
        .await
        .map_err(store_error)?;
        if inserted.rows_affected() == 1 {
            return Ok(Claim::Fresh(token));
        }
        if self
            .take_over_stale_claim(key, request_hash, &token, now, inflight_timeout)
            .await?
        {
            tracing::warn!(
                event = "idempotency.takeover",
                endpoint = key.endpoint,
                user_id = key.user_id,
                "a request with this Idempotency-Key never finished; its retry runs"
            );
            return Ok(Claim::Fresh(token));
        }
        let row: Option<(String, String, Option<i64>, Option<String>)> = sqlx::query_as(
            "SELECT request_hash, state, response_status, response_body FROM idempotency_keys \
             WHERE user_id = $1 AND endpoint = $2 AND idem_key = $3",
        )
        .bind(key.user_id)
        .bind(key.endpoint)
        .bind(key.key)
        .fetch_optional(self.pool())
        .await
        .map_err(store_error)?;
        Ok(match row {
            // Released between our INSERT and SELECT: the caller may simply retry.
            None => Claim::Conflict("the request with this Idempotency-Key just finished; retry"),
            Some((hash, _, _, _)) if hash != request_hash => {
                Claim::Conflict("this Idempotency-Key was used with a different request")
            }
            Some((_, state, Some(status), Some(body))) if state == "DONE" => Claim::Replay {
                status: u16::try_from(status).unwrap_or(500),
                body,
            },
            Some(_) => Claim::Conflict("a request with this Idempotency-Key is still in flight"),
        })
    }

    /// One guarded UPDATE: the claim moves to `token` only if it is the same request, still
    /// IN_FLIGHT, and older than the timeout — re-checked under the row's lock, so a second
    /// concurrent retry finds it fresh and takes nothing.
    async fn take_over_stale_claim(
        &self,
        key: &KeyRef<'_>,
        request_hash: &str,
        token: &ClaimToken,
        now: UnixMillis,
        inflight_timeout: Duration,
    ) -> Result<bool, StoreError> {
        let taken = sqlx::query(
            "UPDATE idempotency_keys SET claimed_at = $1, claim_token = $2 \
             WHERE user_id = $3 AND endpoint = $4 AND idem_key = $5 AND request_hash = $6 \
             AND state = 'IN_FLIGHT' AND COALESCE(claimed_at, created_at) <= $7",
        )
        .bind(now.0)
        .bind(&token.0)
        .bind(key.user_id)
        .bind(key.endpoint)
        .bind(key.key)
        .bind(request_hash)
        .bind(now.0.saturating_sub(millis(inflight_timeout)))
        .execute(self.pool())
        .await
        .map_err(store_error)?;
        Ok(taken.rows_affected() == 1)
    }

    /// Stores the answer of the claim's request. Answers false when the claim was taken over
    /// meanwhile (the retry's answer is the one kept).
    pub async fn complete_idempotency_key(
        &self,
        key: &KeyRef<'_>,
        token: &ClaimToken,
        status: u16,
        body: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE idempotency_keys SET state = 'DONE', response_status = $1, response_body = $2 \
             WHERE user_id = $3 AND endpoint = $4 AND idem_key = $5 AND claim_token = $6 \
             AND state = 'IN_FLIGHT'",
        )
        .bind(i64::from(status))
        .bind(body)
        .bind(key.user_id)
        .bind(key.endpoint)
        .bind(key.key)
        .bind(&token.0)
        .execute(self.pool())
        .await
        .map_err(store_error)?;
        Ok(done.rows_affected() == 1)
    }

    /// Forgets a claim whose outcome was uncertain, so that a retry runs again. Answers false
    /// when the claim was taken over meanwhile (then it is not ours to forget).
    pub async fn release_idempotency_key(
        &self,
        key: &KeyRef<'_>,
        token: &ClaimToken,
    ) -> Result<bool, StoreError> {
        let released = sqlx::query(
            "DELETE FROM idempotency_keys WHERE user_id = $1 AND endpoint = $2 AND idem_key = $3 \
             AND claim_token = $4 AND state = 'IN_FLIGHT'",
        )
        .bind(key.user_id)
        .bind(key.endpoint)
        .bind(key.key)
        .bind(&token.0)
        .execute(self.pool())
        .await
        .map_err(store_error)?;
        Ok(released.rows_affected() == 1)
    }
}
