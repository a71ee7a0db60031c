//! The sandbox's memory: trades, their refunds and notify attempts, and the injected faults.
//! Everything here is synchronous and runs under one lock, never across an await.

use serde::{Serialize, Serializer};
use std::collections::{BTreeMap, HashMap};

use super::faults::{take, CallFault, Faults, RefundOutcome};
use crate::gateway::wallyt::refund::RefundStatus;
use crate::gateway::wallyt::trade::TradeState;

#[derive(Clone, Debug, Serialize)]
pub struct Trade {
    pub out_trade_no: String,
    #[serde(serialize_with = "trade_state")]
    pub state: TradeState,
    pub total_fee: i64,
    pub body: String,
    pub attach: Option<String>,
    pub sub_appid: String,
    pub sub_openid: String,
    pub notify_url: String,
    /// The payer's IP as the merchant reported it (tests check what the engine sends).
    pub mch_create_ip: String,
    pub time_start: Option<String>,
    pub time_expire: Option<String>,
    /// When a NOTPAY trade closes by itself (unix ms).
    pub expires_at: i64,
    pub token_id: String,
    pub pay_info: String,
    pub transaction_id: Option<String>,
    pub out_transaction_id: Option<String>,
    pub time_end: Option<String>,
    pub refunds: Vec<Refund>,
    pub notify_attempts: Vec<NotifyAttempt>,
    pub query_calls: u32,
    pub close_calls: u32,
    /// The business fields of the creating request, to tell a resend from a reuse.
    #[serde(skip)]
    pub fingerprint: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Refund {
    pub out_refund_no: String,
    pub refund_id: String,
    pub refund_fee: i64,
    #[serde(serialize_with = "refund_status")]
    pub status: RefundStatus,
    /// Queries that will still see PROCESSING.
    pub processing_queries_left: u32,
    #[serde(skip)]
    pub outcome: RefundOutcome,
    /// How many refund requests carried this out_refund_no.
    pub requests: u32,
    pub refund_time: Option<String>,
    /// When the refund was asked for (GMT+8): the bill's time for a refund that never
    /// succeeded.
    pub requested_at: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct NotifyAttempt {
    pub attempt: u32,
    pub copy: u32,
    /// Unix milliseconds when it was sent.
    pub sent_at: i64,
    pub http_status: Option<u16>,
    /// The start of what the merchant answered.
    pub answer: Option<String>,
    pub acknowledged: bool,
    pub error: Option<String>,
}

fn trade_state<S: Serializer>(state: &TradeState, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(state.as_str())
}

fn refund_status<S: Serializer>(status: &RefundStatus, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(status.as_str())
}

impl Trade {
    /// A NOTPAY trade past its time_expire is CLOSED, as at the gateway.
    pub fn refresh(&mut self, now: i64) {
        if self.state == TradeState::NotPay && now >= self.expires_at {
            self.state = TradeState::Closed;
        }
    }

    pub fn is_paid(&self) -> bool {
        matches!(self.state, TradeState::Success | TradeState::Refund)
    }

    /// Money already promised back: every refund except the failed ones.
    pub fn refunds_committed(&self) -> i64 {
        self.refunds
            .iter()
            .filter(|r| r.status != RefundStatus::Fail)
            .map(|r| r.refund_fee)
            .sum()
    }

    /// SUCCESS becomes REFUND once a refund exists that did not fail.
    pub fn sync_refund_state(&mut self) {
        if self.is_paid() {
            let refunded = self.refunds.iter().any(|r| r.status != RefundStatus::Fail);
            self.state = if refunded {
                TradeState::Refund
            } else {
                TradeState::Success
            };
        }
    }
}

impl Refund {
    /// One refundquery looks at this refund: PROCESSING for the planned number of queries,
    /// then the planned outcome.
    pub fn observe(&mut self, now_gmt8: &str) {
        if self.status != RefundStatus::Processing {
            return;
        }
        if self.processing_queries_left > 0 {
            self.processing_queries_left -= 1;
            return;
        }
        self.status = match self.outcome {
            RefundOutcome::Success => RefundStatus::Success,
            RefundOutcome::Fail => RefundStatus::Fail,
            RefundOutcome::Notsure => RefundStatus::NotSure,
            RefundOutcome::Change => RefundStatus::Change,
        };
        if self.status == RefundStatus::Success {
            self.refund_time = Some(now_gmt8.to_owned());
        }
    }
}

#[derive(Default)]
pub struct SandboxState {
    pub trades: BTreeMap<String, Trade>,
    pub global_faults: Faults,
    pub trade_faults: HashMap<String, Faults>,
    seq: u64,
}

impl SandboxState {
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub fn faults_for(&self, out_trade_no: Option<&str>) -> Faults {
        let own = out_trade_no.and_then(|no| self.trade_faults.get(no));
        own.cloned().unwrap_or_default().over(&self.global_faults)
    }

    /// Decides (and uses up) what the next gateway call of `service` about this trade suffers.
    pub fn take_call_fault(
        &mut self,
        out_trade_no: Option<&str>,
        service: Option<&str>,
    ) -> CallFault {
        let slow_ms = self.faults_for(out_trade_no).gateway_slow_ms.unwrap_or(0);
        let mut own = out_trade_no.and_then(|no| self.trade_faults.get_mut(no));
        let global = &mut self.global_faults;
        // The trade's own counter wins when it has one (even at zero).
        let mut counted = |pick: fn(&mut Faults) -> &mut Option<u32>| match own
            .as_deref_mut()
            .map(pick)
            .filter(|c| c.is_some())
        {
            Some(counter) => take(counter),
            None => take(pick(global)),
        };
        let server_error = counted(|f| &mut f.gateway_5xx);
        let garbage = !server_error && counted(|f| &mut f.gateway_garbage);
        // A call that fails outright does no work, so it cannot be answered late either.
        let late_ms = if server_error || garbage {
            None
        } else {
            match own.and_then(|f| f.late_answer.as_mut()) {
                Some(late) => late.take(service),
                None => global.late_answer.as_mut().and_then(|l| l.take(service)),
            }
        };
        CallFault {
            slow_ms,
            server_error,
            garbage,
            late_ms: late_ms.unwrap_or(0),
        }
    }

    pub fn trade_by_transaction(&mut self, transaction_id: &str) -> Option<&mut Trade> {
        self.trades
            .values_mut()
            .find(|t| t.transaction_id.as_deref() == Some(transaction_id))
    }
}
