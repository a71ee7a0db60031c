//! Fault injection: what the sandbox should get wrong, globally or for one trade. A trade's own
//! setting wins over the global one, field by field. Counted faults (`gateway_5xx`,
//! `gateway_garbage`, `late_answer`) are used up one call at a time.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tamper {
    /// The sign is replaced by a wrong one.
    BadSign,
    /// `total_fee` is one fen more, and the notify is signed over it (a valid signature on a
    /// wrong amount).
    WrongAmount,
    /// `total_fee` is changed after signing.
    FieldChanged,
}

/// What the daily bill gets wrong about a trade (and its refunds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillLineFault {
    /// The trade's lines are left out of the bill.
    Drop,
    /// The payment line's amount is one fen more (the totals follow the lines).
    AlterAmount,
}

/// How a refund ends once it stops being PROCESSING.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundOutcome {
    Success,
    Fail,
    Notsure,
    Change,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Each notify attempt is sent as this many concurrent copies.
    pub notify_copies: Option<u32>,
    /// Extra wait before the first notify attempt.
    pub notify_delay_ms: Option<u64>,
    /// Paid, but never notified.
    pub notify_drop: Option<bool>,
    pub notify_tamper: Option<Tamper>,
    /// Refund queries that still see PROCESSING before the outcome shows.
    pub refund_processing_queries: Option<u32>,
    pub refund_outcome: Option<RefundOutcome>,
    /// The next N gateway calls answer HTTP 500.
    pub gateway_5xx: Option<u32>,
    /// Every gateway call waits this long before answering.
    pub gateway_slow_ms: Option<u64>,
    /// The next N gateway calls answer something that is not the protocol.
    pub gateway_garbage: Option<u32>,
    /// The gateway does the work but answers too late: the caller times out not knowing
    /// that the prepay, close or refund happened.
    pub late_answer: Option<LateAnswer>,
    /// What the daily bill gets wrong about this trade.
    pub bill_line: Option<BillLineFault>,
}

/// `{"delay_ms": 1500, "count": 1, "service": "unified.trade.refund"}`: the next `count`
/// calls (of that service only, when one is named) are performed at once and answered after
/// `delay_ms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LateAnswer {
    pub delay_ms: u64,
    pub count: u32,
    #[serde(default)]
    pub service: Option<String>,
}

impl LateAnswer {
    /// Uses up one late answer for a call of `service`; answers the delay when it applies.
    pub fn take(&mut self, service: Option<&str>) -> Option<u64> {
        let concerned = match &self.service {
            Some(wanted) => service == Some(wanted.as_str()),
            None => true,
        };
        if !concerned || self.count == 0 {
            return None;
        }
        self.count -= 1;
        Some(self.delay_ms)
    }
}

impl Faults {
    /// This trade's faults over the global ones.
    pub fn over(&self, global: &Faults) -> Faults {
        Faults {
            notify_copies: self.notify_copies.or(global.notify_copies),
            notify_delay_ms: self.notify_delay_ms.or(global.notify_delay_ms),
            notify_drop: self.notify_drop.or(global.notify_drop),
            notify_tamper: self.notify_tamper.or(global.notify_tamper),
            refund_processing_queries: self
                .refund_processing_queries
                .or(global.refund_processing_queries),
            refund_outcome: self.refund_outcome.or(global.refund_outcome),
            gateway_5xx: self.gateway_5xx.or(global.gateway_5xx),
            gateway_slow_ms: self.gateway_slow_ms.or(global.gateway_slow_ms),
            gateway_garbage: self.gateway_garbage.or(global.gateway_garbage),
            late_answer: self.late_answer.clone().or(global.late_answer.clone()),
            bill_line: self.bill_line.or(global.bill_line),
        }
    }
}

/// Uses up one of a counted fault; answers whether it applied.
pub fn take(counter: &mut Option<u32>) -> bool {
    match counter {
        Some(n) if *n > 0 => {
            *n -= 1;
            true
        }
        _ => false,
    }
}

/// What one gateway call should suffer.
#[derive(Debug, Default, Clone, Copy)]
pub struct CallFault {
    pub slow_ms: u64,
    pub server_error: bool,
    pub garbage: bool,
    /// Perform the call, then wait this long before answering.
    pub late_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trade_settings_win_field_by_field() {
        let global = Faults {
            notify_copies: Some(3),
            refund_outcome: Some(RefundOutcome::Fail),
            ..Faults::default()
        };
        let trade = Faults {
            refund_outcome: Some(RefundOutcome::Change),
            ..Faults::default()
        };
        let merged = trade.over(&global);
        assert_eq!(merged.notify_copies, Some(3));
        assert_eq!(merged.refund_outcome, Some(RefundOutcome::Change));
    }

    #[test]
    fn counted_faults_run_out() {
        let mut counter = Some(2);
        assert!(take(&mut counter) && take(&mut counter));
        assert!(!take(&mut counter));
        assert!(!take(&mut None));
    }

    #[test]
    fn late_answers_are_counted_per_service() {
        let mut late = LateAnswer {
            delay_ms: 700,
            count: 2,
            service: Some("unified.trade.refund".into()),
        };
        assert_eq!(late.take(Some("unified.trade.query")), None);
        assert_eq!(late.take(None), None);
        assert_eq!(late.take(Some("unified.trade.refund")), Some(700));
        assert_eq!(late.take(Some("unified.trade.refund")), Some(700));
        assert_eq!(late.take(Some("unified.trade.refund")), None, "used up");

        let mut any = LateAnswer {
            delay_ms: 5,
            count: 1,
            service: None,
        };
        assert_eq!(any.take(Some("pay.weixin.jspay")), Some(5));
        assert_eq!(any.take(Some("pay.weixin.jspay")), None);
    }
}
