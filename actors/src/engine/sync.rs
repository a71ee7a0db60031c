//! An operator's "sync now" (`POST /admin/orders/{id}/sync`): every trade of the order is
//! queried and every unfinished refund checked, at once, through the same functions the
//! timers and the refund poller use — a payment found is applied exactly as a query-found
//! payment always is, a refund is settled exactly as the poller settles it. Only the *when*
//! differs, so nothing here decides anything the engine would not decide by itself later.

use actix::Message;

use super::error::ActorError;
use super::flows::{apply_reported, query_trade};
use super::refunds;
use super::Engine;
use crate::ports::{NewPaymentEvent, TradeStatus};

/// Query every trade and check every unfinished refund of this order now.
#[derive(Debug, Clone, Copy)]
pub struct SyncAll;

impl Message for SyncAll {
    type Result = Result<SyncReport, ActorError>;
}

/// What the gateway said about each trade and refund, and what came of it.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    pub trades: Vec<TradeFinding>,
    pub refunds: Vec<RefundFinding>,
}

#[derive(Debug, Clone)]
pub struct TradeFinding {
    pub out_trade_no: String,
    /// PAID, OPEN, CLOSED, UNKNOWN, or ERROR (then `error` says why).
    pub gateway_status: &'static str,
    /// A payment the gateway reported was applied now.
    pub applied: bool,
    /// The gateway's own words when the query failed: operators need them.
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RefundFinding {
    pub out_refund_no: String,
    /// The refund's status after the check (unchanged for refunds already final).
    pub status: &'static str,
    pub checked: bool,
}

fn status_name(status: &TradeStatus) -> &'static str {
    match status {
        TradeStatus::Paid { .. } => "PAID",
        TradeStatus::Open => "OPEN",
        TradeStatus::Closed => "CLOSED",
        TradeStatus::Unknown => "UNKNOWN",
    }
}

pub async fn sync_all(engine: &Engine, order_id: i64) -> Result<SyncReport, ActorError> {
    if engine.store.order(order_id).await?.is_none() {
        return Err(ActorError::OrderNotFound);
    }
    let mut report = SyncReport::default();
    for payment in engine.store.payments(order_id).await? {
        let finding = match query_trade(engine, &payment).await {
            Ok(status) => {
                let name = status_name(&status);
                // What we already hold is not applied again (it would only say "duplicate").
                let applied = if payment.status.money_received() {
                    false
                } else {
                    apply_reported(engine, &payment, status).await?
                };
                TradeFinding {
                    out_trade_no: payment.out_trade_no.clone(),
                    gateway_status: name,
                    applied,
                    error: None,
                }
            }
            // One trade the gateway cannot answer for does not hide what it says of the others.
            Err(error) => TradeFinding {
                out_trade_no: payment.out_trade_no.clone(),
                gateway_status: "ERROR",
                applied: false,
                error: Some(error.to_string()),
            },
        };
        // The query result joins the order's timeline like the notifies and refunds do.
        let event = NewPaymentEvent {
            kind: "sync.query".into(),
            order_id: Some(order_id),
            out_trade_no: Some(payment.out_trade_no.clone()),
            verdict: finding.gateway_status.to_ascii_lowercase(),
            raw: finding.error.clone().unwrap_or_default(),
        };
        if let Err(error) = engine.store.append_event(&event, engine.clock.now()).await {
            tracing::warn!(event = "payment_event.append_failed", order_id, %error);
        }
        report.trades.push(finding);
    }
    for refund in engine.store.refunds(order_id).await? {
        let (status, checked) = if refund.status.is_final() {
            (refund.status, false)
        } else {
            (refunds::check(engine, refund.id).await?, true)
        };
        report.refunds.push(RefundFinding {
            out_refund_no: refund.out_refund_no,
            status: status.as_str(),
            checked,
        });
    }
    Ok(report)
}
