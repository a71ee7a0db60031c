//! The daily reconciliation against the gateway's bill (issue 13, part 2): for a date (a day
//! of GMT+8, the gateway's day), download the bill, compare it line by line with the database
//! ([`compare`]), apply every payment the gateway has and we do not — through the order's
//! actor, exactly as a notify would, so the late-payment horizon and every other rule of the
//! store apply — and store every difference. [`schedule`] runs it once a day; an operator runs
//! it on demand (`POST /admin/reconciliation/{date}/run`). A claim row per date makes one node
//! run a date.

pub mod compare;
pub mod schedule;

use chrono::{FixedOffset, NaiveDate};
use std::collections::HashMap;
use std::sync::Arc;
use wallyt_pay_actors::engine::ApplyPaid;
use wallyt_pay_actors::ports::{ApplyOutcome, NewPaymentEvent, OrderStore, PaymentApplication};
use wallyt_pay_actors::{Clock, Fen, StoreError, UnixMillis};

use crate::engine::EngineHandle;
use crate::gateway::wallyt::bill::{BillClient, BillError, BillType};
use crate::gateway::wallyt::bill_format::{format_amount, Bill};
use crate::metrics::Metrics;
use crate::storage::reconciliation::NewDifference;
use crate::storage::Database;
use compare::{compare, OurDay, ToApply, TradeHere};

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Another run of this date is in progress (or, for the daily run, the date was taken).
    #[error("a reconciliation of {0} is already running or done")]
    Claimed(String),
    #[error("the bill could not be had: {0}")]
    Bill(#[from] BillError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub bill_lines: usize,
    pub differences: usize,
    pub applied: usize,
}

#[derive(Clone)]
pub struct Reconciler {
    pub db: Database,
    pub engine: EngineHandle,
    pub bill: BillClient,
    pub metrics: Metrics,
    pub clock: Arc<dyn Clock>,
}

/// The gateway's day: GMT+8, whatever the console's zone.
pub fn gateway_zone() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset")
}

/// `[start, end)` of a day of GMT+8.
pub fn day_bounds(date: NaiveDate) -> (UnixMillis, UnixMillis) {
    let start = date
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_local_timezone(gateway_zone())
        .single()
        .expect("a fixed offset has no gaps");
    let start = start.timestamp_millis();
    (UnixMillis(start), UnixMillis(start + 24 * 3600 * 1000))
}

impl Reconciler {
    /// Reconciles `date` if this node gets its claim. `take_over`: an operator's run, which
    /// may redo a finished date.
    pub async fn run(
        &self,
        date: NaiveDate,
        trigger_by: &str,
        take_over: bool,
    ) -> Result<RunSummary, ReconcileError> {
        let key = date.format("%Y-%m-%d").to_string();
        let now = self.clock.now();
        if !self
            .db
            .claim_reconciliation(&key, trigger_by, take_over, now)
            .await?
        {
            return Err(ReconcileError::Claimed(key));
        }
        tracing::info!(event = "reconcile.started", bill_date = %key, trigger_by);
        let result = self.reconcile(date, &key).await;
        let outcome = match &result {
            Ok(summary) => Ok((summary.bill_lines, summary.differences)),
            Err(error) => Err(error.to_string()),
        };
        let finished = self
            .db
            .finish_reconciliation(
                &key,
                outcome.as_ref().copied().map_err(String::as_str),
                self.clock.now(),
            )
            .await;
        let label = if result.is_ok() { "done" } else { "failed" };
        self.metrics
            .reconciliation_runs
            .with_label_values(&[label])
            .inc();
        match &result {
            Ok(s) => {
                tracing::info!(event = "reconcile.done", bill_date = %key, lines = s.bill_lines, differences = s.differences, applied = s.applied)
            }
            Err(error) => tracing::error!(event = "reconcile.failed", bill_date = %key, %error),
        }
        finished?;
        result
    }

    async fn reconcile(&self, date: NaiveDate, key: &str) -> Result<RunSummary, ReconcileError> {
        let bill = self.bill.download(date, BillType::All).await?;
        let ours = self.our_day(date, &bill).await?;
        let comparison = compare(&bill, &ours);
        let mut differences = comparison.differences;
        let mut applied_total = Fen::ZERO;
        let mut applied = 0;
        for payment in &comparison.to_apply {
            let (difference, counted) = self.apply(payment).await;
            if counted {
                applied += 1;
                applied_total = Fen::new(applied_total.get() + payment.amount.get());
            }
            differences.push(difference);
        }
        let our_trades: i64 =
            ours.paid.values().map(|p| p.amount.get()).sum::<i64>() + applied_total.get();
        let our_refunds: i64 = ours.refunds.values().map(|r| r.amount.get()).sum();
        if bill.totals.trades.get() != our_trades || bill.totals.refunds.get() != our_refunds {
            differences.push(NewDifference {
                kind: compare::TOTALS_MISMATCH,
                order_id: None,
                out_trade_no: None,
                out_refund_no: None,
                bill_value: Some(totals_text(
                    bill.totals.trades.get(),
                    bill.totals.refunds.get(),
                )),
                our_value: Some(totals_text(our_trades, our_refunds)),
                amount: Fen::new((bill.totals.trades.get() - our_trades).abs()),
                action: None,
            });
        }
        self.db
            .store_differences(key, &differences, self.clock.now())
            .await?;
        for d in &differences {
            self.metrics
                .reconciliation_differences
                .with_label_values(&[d.kind])
                .inc();
        }
        Ok(RunSummary {
            bill_lines: bill.lines.len(),
            differences: differences.len(),
            applied,
        })
    }

    /// Our records of the day, and what we hold of every other trade or refund the bill names.
    async fn our_day(&self, date: NaiveDate, bill: &Bill) -> Result<OurDay, StoreError> {
        let (start, end) = day_bounds(date);
        let mut ours = OurDay {
            paid: self
                .db
                .payments_paid_between(start, end)
                .await?
                .into_iter()
                .map(|p| (p.out_trade_no.clone(), p))
                .collect(),
            refunds: self
                .db
                .refunds_succeeded_between(start, end)
                .await?
                .into_iter()
                .map(|r| (r.out_refund_no.clone(), r))
                .collect(),
            other_trades: HashMap::new(),
            other_refunds: HashMap::new(),
        };
        // Usually a handful: payments we missed, refunds that failed or are still running.
        for line in &bill.lines {
            match &line.refund {
                None if !ours.paid.contains_key(&line.out_trade_no) => {
                    let found = self.db.payment_by_out_trade_no(&line.out_trade_no).await?;
                    ours.other_trades.insert(
                        line.out_trade_no.clone(),
                        found.map(|p| TradeHere {
                            order_id: p.order_id,
                            amount: p.amount,
                            received: p.status.money_received(),
                        }),
                    );
                }
                Some(r) if !ours.refunds.contains_key(&r.out_refund_no) => {
                    let found = self.db.refund_by_out_refund_no(&r.out_refund_no).await?;
                    ours.other_refunds.insert(r.out_refund_no.clone(), found);
                }
                _ => {}
            }
        }
        Ok(ours)
    }

    /// Applies one payment through its order's actor, as the notify path does; answers the
    /// difference to record and whether the money now counts as ours for the day.
    async fn apply(&self, payment: &ToApply) -> (NewDifference, bool) {
        let application = PaymentApplication {
            out_trade_no: payment.out_trade_no.clone(),
            transaction_id: payment.transaction_id.clone(),
            amount: payment.amount,
            paid_at: payment.paid_at,
        };
        let answer = self
            .engine
            .send(payment.order_id, ApplyPaid(application))
            .await;
        let (action, counted) = match &answer {
            Ok(ApplyOutcome::Confirmed { .. }) => (Some("applied: order confirmed"), true),
            Ok(ApplyOutcome::Revived { .. }) => {
                (Some("applied: late payment, order revived"), true)
            }
            Ok(ApplyOutcome::RefundPlanned { .. }) => {
                (Some("applied: late payment, refunded in full"), true)
            }
            Ok(ApplyOutcome::AlreadyApplied) => (Some("already applied meanwhile"), true),
            // Said by the store although the comparison saw the same amount: a person looks.
            Ok(ApplyOutcome::AmountMismatch { .. }) | Ok(ApplyOutcome::UnknownTrade) => {
                (None, false)
            }
            Err(_) => (None, false),
        };
        let verdict = match &answer {
            Ok(outcome) => format!("{outcome:?}"),
            Err(error) => format!("error: {error}"),
        };
        let event = NewPaymentEvent {
            kind: "reconcile.apply".into(),
            order_id: Some(payment.order_id),
            out_trade_no: Some(payment.out_trade_no.clone()),
            verdict: action.unwrap_or("not applied").into(),
            raw: verdict.clone(),
        };
        if let Err(error) = self.db.append_event(&event, self.clock.now()).await {
            tracing::warn!(event = "payment_event.append_failed", order_id = payment.order_id, %error);
        }
        tracing::info!(event = "reconcile.apply", order_id = payment.order_id, out_trade_no = %payment.out_trade_no, outcome = %verdict);
        let difference = NewDifference {
            kind: compare::PAID_AT_GATEWAY_ONLY,
            order_id: Some(payment.order_id),
            out_trade_no: Some(payment.out_trade_no.clone()),
            out_refund_no: None,
            bill_value: Some(format!("SUCCESS {}", format_amount(payment.amount))),
            our_value: Some(if counted { "NOTPAY".into() } else { verdict }),
            amount: payment.amount,
            action: action.map(str::to_owned),
        };
        (difference, counted)
    }
}

fn totals_text(trades: i64, refunds: i64) -> String {
    format!(
        "paid {} refunded {}",
        format_amount(Fen::new(trades)),
        format_amount(Fen::new(refunds))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_is_beijing_midnight_to_midnight() {
        let (start, end) = day_bounds(NaiveDate::from_ymd_opt(2024, 12, 6).unwrap());
        // 2024-12-06 00:00 +08:00 is 2024-12-05 16:00 UTC.
        assert_eq!(start, UnixMillis(1_733_414_400_000));
        assert_eq!(end.0 - start.0, 86_400_000);
    }
}
