//! Notify audit storage (contract: "Notify audit storage"). The notify endpoint is open to the
//! internet and not rate limited, so what it stores must be bounded by what only the gateway
//! can send:
//! - a notify that verifies (our key, our merchant) is stored whole in the append-only
//!   `payment_events`, once per notify: copies and retries become verdict events that carry
//!   the body's SHA-256 instead of a second copy. A notify that is applied has its body and
//!   verdict written in the transaction that applies it (one commit per accepted notify);
//!   any other verified notify is recorded by one statement;
//! - a notify refused before it verifies is anyone's: only its digest, length, first 256
//!   bytes and verdict go to `notify_rejections`, which a periodic purge empties after
//!   `NOTIFY_REJECTED_RETENTION`.

use sha2::{Digest, Sha256};
use sqlx::{Any, Transaction};
use std::sync::Arc;
use std::time::Duration;
use wallyt_pay_actors::ports::{ApplyOutcome, PaymentApplication, PaymentAudit};
use wallyt_pay_actors::{Clock, StoreError, UnixMillis};

use super::{store_error, Database};

/// How much of a refused body is kept: enough to tell what was sent, bounded per row.
pub const REJECTED_PREFIX_BYTES: usize = 256;

/// The most a purge waits between runs: a long retention still gets purged hourly, so that
/// rows never outlive it by more than an hour.
const MAX_PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// Lower-case hex SHA-256 of a body.
pub fn sha256_hex(body: &[u8]) -> String {
    Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A verified notify, as stored whole.
pub struct VerifiedNotify<'a> {
    pub body: &'a [u8],
    pub body_sha256: &'a str,
    pub out_trade_no: Option<&'a str>,
    /// Names what the notify reports (trade, outcome, transaction): one whole body per key.
    /// `None` stores it unconditionally.
    pub notify_key: Option<&'a str>,
    /// The id of the HTTP request that delivered it (`http::request_id`).
    pub request_id: &'a str,
}

/// The outcome of one notify, recorded after it was judged.
pub struct NotifyVerdict<'a> {
    pub order_id: Option<i64>,
    pub out_trade_no: Option<&'a str>,
    pub verdict: &'a str,
    pub body_sha256: &'a str,
    /// The request that delivered the notify, or the operator's replay request.
    pub request_id: &'a str,
}

impl Database {
    /// Records a verified notify that was not applied (refused, not paid, or a duplicate of
    /// one already applied): its body whole unless a notify with the same key is stored, and
    /// its verdict, in one statement (one commit). A duplicate so costs one small row.
    pub async fn record_notify(
        &self,
        notify: &VerifiedNotify<'_>,
        verdict: &NotifyVerdict<'_>,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        // One INSERT against the unique index: of concurrent copies exactly one body is kept.
        sqlx::query(
            "INSERT INTO payment_events \
             (kind, order_id, out_trade_no, verdict, raw, created_at, body_sha256, notify_key, \
             request_id) \
             VALUES ('notify', NULL, $1, 'received', $2, $3, $4, $5, $6), \
                    ('notify.verdict', $7, $8, $9, '', $10, $11, NULL, $12) \
             ON CONFLICT DO NOTHING",
        )
        .bind(notify.out_trade_no)
        .bind(String::from_utf8_lossy(notify.body).into_owned())
        .bind(now.0)
        .bind(notify.body_sha256)
        .bind(notify.notify_key)
        .bind(notify.request_id)
        .bind(verdict.order_id)
        .bind(verdict.out_trade_no)
        .bind(verdict.verdict)
        .bind(now.0)
        .bind(verdict.body_sha256)
        .bind(verdict.request_id)
        .execute(self.pool())
        .await
        .map(drop)
        .map_err(store_error)
    }

    /// Appends the verdict of a verified notify, linked to its body by the digest.
    pub async fn record_notify_verdict(
        &self,
        verdict: &NotifyVerdict<'_>,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO payment_events \
             (kind, order_id, out_trade_no, verdict, raw, created_at, body_sha256, request_id) \
             VALUES ('notify.verdict', $1, $2, $3, '', $4, $5, $6)",
        )
        .bind(verdict.order_id)
        .bind(verdict.out_trade_no)
        .bind(verdict.verdict)
        .bind(now.0)
        .bind(verdict.body_sha256)
        .bind(verdict.request_id)
        .execute(self.pool())
        .await
        .map(drop)
        .map_err(store_error)
    }

    /// Records a notify refused before it verified: digest, length, first bytes, verdict.
    pub async fn record_notify_rejection(
        &self,
        body: &[u8],
        verdict: &str,
        request_id: &str,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        // Raw bytes (BLOB/BYTEA), not text: the cut may split a UTF-8 character, and
        // PostgreSQL's TEXT refuses NUL and invalid UTF-8, which a forger is free to send.
        let prefix = body[..body.len().min(REJECTED_PREFIX_BYTES)].to_vec();
        sqlx::query(
            "INSERT INTO notify_rejections \
             (body_sha256, body_len, body_prefix, verdict, created_at, request_id) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(sha256_hex(body))
        .bind(i64::try_from(body.len()).unwrap_or(i64::MAX))
        .bind(prefix)
        .bind(verdict)
        .bind(now.0)
        .bind(request_id)
        .execute(self.pool())
        .await
        .map(drop)
        .map_err(store_error)
    }

    /// Deletes the rejections older than `retention` at `now`; answers how many.
    pub async fn purge_notify_rejections(
        &self,
        now: UnixMillis,
        retention: Duration,
    ) -> Result<u64, StoreError> {
        let keep_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let purged = sqlx::query("DELETE FROM notify_rejections WHERE created_at < $1")
            .bind(now.0.saturating_sub(keep_ms))
            .execute(self.pool())
            .await
            .map_err(store_error)?;
        Ok(purged.rows_affected())
    }
}

/// The lines of a payment applied in `tx`: the notify's body (once per key), the engine's
/// `{source}.apply` line, and the notify's verdict — in one statement of the transaction that
/// applies the payment, so an accepted notify costs one commit.
pub(super) async fn record_application(
    tx: &mut Transaction<'_, Any>,
    audit: &PaymentAudit,
    paid: &PaymentApplication,
    outcome: &ApplyOutcome,
    now: UnixMillis,
) -> Result<(), StoreError> {
    let apply = audit.apply_event(paid, outcome);
    let Some(notify) = &audit.notify else {
        return sqlx::query(
            "INSERT INTO payment_events \
             (kind, order_id, out_trade_no, verdict, raw, created_at, request_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&apply.kind)
        .bind(apply.order_id)
        .bind(apply.out_trade_no.as_deref())
        .bind(&apply.verdict)
        .bind(&apply.raw)
        .bind(now.0)
        .bind(audit.request_id.as_deref())
        .execute(&mut **tx)
        .await
        .map(drop)
        .map_err(store_error);
    };
    let (verdict, _) = outcome.notify_verdict();
    sqlx::query(
        "INSERT INTO payment_events \
         (kind, order_id, out_trade_no, verdict, raw, created_at, body_sha256, notify_key, \
         request_id) \
         VALUES ('notify', NULL, $1, 'received', $2, $3, $4, $5, $17), \
                ($6, $7, $8, $9, $10, $11, NULL, NULL, $17), \
                ('notify.verdict', $12, $13, $14, '', $15, $16, NULL, $17) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&paid.out_trade_no)
    .bind(&notify.body)
    .bind(now.0)
    .bind(&notify.body_sha256)
    .bind(notify.notify_key.as_deref())
    .bind(&apply.kind)
    .bind(apply.order_id)
    .bind(apply.out_trade_no.as_deref())
    .bind(&apply.verdict)
    .bind(&apply.raw)
    .bind(now.0)
    .bind(audit.order_id)
    .bind(&paid.out_trade_no)
    .bind(verdict)
    .bind(now.0)
    .bind(&notify.body_sha256)
    .bind(audit.request_id.as_deref())
    .execute(&mut **tx)
    .await
    .map(drop)
    .map_err(store_error)
}

/// How often the purge runs: hourly, or more often for a retention under an hour (so a row
/// outlives its retention by at most the retention again).
pub fn purge_interval(retention: Duration) -> Duration {
    retention
        .min(MAX_PURGE_INTERVAL)
        .max(Duration::from_millis(100))
}

/// Starts the periodic purge of `notify_rejections`: once now, then every
/// [`purge_interval`]. A failed run is logged and retried at the next tick.
pub fn spawn_rejection_purge(
    db: Database,
    clock: Arc<dyn Clock>,
    retention: Duration,
) -> tokio::task::AbortHandle {
    let interval = purge_interval(retention);
    let task = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // The first tick is immediate: a node that was down a week purges on start.
            ticks.tick().await;
            match db.purge_notify_rejections(clock.now(), retention).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(event = "wallyt.notify.rejections_purged", purged),
                Err(error) => {
                    tracing::warn!(event = "wallyt.notify.rejections_purge_failed", %error)
                }
            }
        }
    });
    task.abort_handle()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_lower_hex_sha256() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn long_retentions_purge_hourly() {
        assert_eq!(
            purge_interval(Duration::from_secs(7 * 86400)),
            MAX_PURGE_INTERVAL
        );
        assert_eq!(
            purge_interval(Duration::from_secs(2)),
            Duration::from_secs(2)
        );
    }
}
