//! The daily run: at `RECONCILE_AT` (GMT+8, the gateway's day) every node wakes and tries to
//! reconcile the previous day; the claim row lets exactly one of them do it. A node that was
//! down at that moment does not catch up by itself: an operator runs the date on demand
//! (the claim would otherwise race a still-running run of another node).

use chrono::{DateTime, Duration as Days, NaiveTime, TimeZone};
use std::time::Duration;
use wallyt_pay_actors::UnixMillis;

use super::{gateway_zone, ReconcileError, Reconciler};

/// The next instant at `at` (GMT+8) strictly after `now`, and the bill date it runs for (the
/// day before).
pub fn next_run(now: UnixMillis, at: NaiveTime) -> (UnixMillis, chrono::NaiveDate) {
    let zone = gateway_zone();
    let local = DateTime::from_timestamp_millis(now.0)
        .unwrap_or_default()
        .with_timezone(&zone);
    let mut day = local.date_naive();
    loop {
        let candidate = zone
            .from_local_datetime(&day.and_time(at))
            .single()
            .expect("a fixed offset has no gaps");
        if candidate.timestamp_millis() > now.0 {
            let bill_date = day - Days::days(1);
            return (UnixMillis(candidate.timestamp_millis()), bill_date);
        }
        day += Days::days(1);
    }
}

/// Runs the daily reconciliation forever; abort the task to stop it.
pub fn spawn_daily(reconciler: Reconciler, at: NaiveTime) -> tokio::task::AbortHandle {
    tokio::spawn(async move {
        loop {
            let now = reconciler.clock.now();
            let (when, bill_date) = next_run(now, at);
            let wait = Duration::from_millis((when.0 - now.0).max(0) as u64);
            tokio::time::sleep(wait).await;
            match reconciler.run(bill_date, "daily", false).await {
                Ok(_) => {}
                Err(ReconcileError::Claimed(date)) => {
                    tracing::info!(event = "reconcile.skipped", bill_date = %date, "another node has this date")
                }
                // Logged (and stored as FAILED) by the run itself; an operator reruns it.
                Err(_) => {}
            }
        }
    })
    .abort_handle()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn the_next_run_is_at_beijing_time_for_the_day_before() {
        let ten = NaiveTime::from_hms_opt(10, 0, 0).unwrap();
        // 2024-06-01 09:00 +08:00 → today 10:00, for 2024-05-31.
        let before = UnixMillis(1_717_203_600_000);
        let (when, date) = next_run(before, ten);
        assert_eq!(when, UnixMillis(1_717_207_200_000));
        assert_eq!(date, NaiveDate::from_ymd_opt(2024, 5, 31).unwrap());
        // At 10:00 exactly it is the next day's turn.
        let (when, date) = next_run(UnixMillis(1_717_207_200_000), ten);
        assert_eq!(when, UnixMillis(1_717_207_200_000 + 86_400_000));
        assert_eq!(date, NaiveDate::from_ymd_opt(2024, 6, 1).unwrap());
    }
}
