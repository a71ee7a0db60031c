//! Idempotency keys (`Idempotency-Key` on prepay and refund), scoped to the user and the
//! endpoint and kept 24 hours. Claiming is one INSERT on the primary key, so two requests with
//! the same key cannot both run.

use wallyt_pay_actors::{StoreError, UnixMillis};

use super::{store_error, Database};

const KEEP_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// First use: go ahead, then complete or release it.
    Fresh,
    /// Done before with the same request: answer this again.
    Replay { status: u16, body: String },
    /// The key belongs to another request, or its first request is still running.
    Conflict(&'static str),
}

pub struct KeyRef<'a> {
    pub user_id: i64,
    pub endpoint: &'a str,
    pub key: &'a str,
}

impl Database {
    pub async fn claim_idempotency_key(
        &self,
        key: &KeyRef<'_>,
        request_hash: &str,
        now: UnixMillis,
    ) -> Result<Claim, StoreError> {
        sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(now.0 - KEEP_MS)
            .execute(self.pool())
            .await
            .map_err(store_error)?;
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (user_id, endpoint, idem_key, request_hash, state, created_at) \
             VALUES ($1, $2, $3, $4, 'IN_FLIGHT', $5) \
             ON CONFLICT (user_id, endpoint, idem_key) DO NOTHING",
        )
        .bind(key.user_id)
        .bind(key.endpoint)
        .bind(key.key)
        .bind(request_hash)
        .bind(now.0)
        .execute(self.pool())
        .await
        .map_err(store_error)?;
        if inserted.rows_affected() == 1 {
            return Ok(Claim::Fresh);
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

    pub async fn complete_idempotency_key(
        &self,
        key: &KeyRef<'_>,
        status: u16,
        body: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE idempotency_keys SET state = 'DONE', response_status = $1, response_body = $2 \
             WHERE user_id = $3 AND endpoint = $4 AND idem_key = $5",
        )
        .bind(i64::from(status))
        .bind(body)
        .bind(key.user_id)
        .bind(key.endpoint)
        .bind(key.key)
        .execute(self.pool())
        .await
        .map_err(store_error)?;
        Ok(())
    }

    /// Forgets a claim whose outcome was uncertain, so that a retry runs again.
    pub async fn release_idempotency_key(&self, key: &KeyRef<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE user_id = $1 AND endpoint = $2 AND idem_key = $3",
        )
        .bind(key.user_id)
        .bind(key.endpoint)
        .bind(key.key)
        .execute(self.pool())
        .await
        .map_err(store_error)?;
        Ok(())
    }
}
