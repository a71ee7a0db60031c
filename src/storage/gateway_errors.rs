//! Failed gateway calls, durably (see `gateway::wallyt::failures`): each is appended to
//! `payment_events` as kind `gateway.error` (verdict the outcome, raw the service and the
//! error), so it joins its trade's order timeline, survives restarts and is counted per day
//! on the console's dashboard from one indexed query (`payment_events_by_kind`, 0010).

use wallyt_pay_actors::{StoreError, UnixMillis};

use super::{store_error, Database};
use crate::gateway::wallyt::failures::{CallFailure, FailureLog};

pub const KIND: &str = "gateway.error";

impl Database {
    pub async fn record_gateway_error(
        &self,
        failure: &CallFailure,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO payment_events (kind, order_id, out_trade_no, verdict, raw, created_at) \
             VALUES ($1, NULL, $2, $3, $4, $5)",
        )
        .bind(KIND)
        .bind(failure.out_trade_no.as_deref())
        .bind(failure.outcome)
        .bind(format!("{}: {}", failure.service, failure.detail))
        .bind(now.0)
        .execute(self.pool())
        .await
        .map(drop)
        .map_err(store_error)
    }

    /// How many gateway calls failed in `[from, before)`.
    pub async fn gateway_errors_between(
        &self,
        from: UnixMillis,
        before: UnixMillis,
    ) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM payment_events \
             WHERE kind = $1 AND created_at >= $2 AND created_at < $3",
        )
        .bind(KIND)
        .bind(from.0)
        .bind(before.0)
        .fetch_one(self.pool())
        .await
        .map_err(store_error)
    }
}

/// The client's failure log: written in the background so that a failing gateway and a slow
/// database do not add up on the caller's path. A write that fails is logged (the figure
/// then undercounts; the log line and the metrics still have it).
impl FailureLog for Database {
    fn record(&self, failure: CallFailure) {
        tracing::warn!(
            event = "wallyt.call.failed",
            service = failure.service,
            outcome = failure.outcome,
            out_trade_no = failure.out_trade_no.as_deref(),
            error = %failure.detail,
        );
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let db = self.clone();
        runtime.spawn(async move {
            let now = UnixMillis(chrono::Utc::now().timestamp_millis());
            if let Err(error) = db.record_gateway_error(&failure, now).await {
                tracing::error!(event = "wallyt.call.failure_not_stored", %error);
            }
        });
    }
}
