//! Refunds: each one its own record, keyed by `out_refund_no`, written PROCESSING *before* the
//! gateway is asked, so an uncertain outcome is always resent under the same number and never
//! paid twice. PROCESSING → SUCCESS | FAIL (its amount is free again) | CHANGE (the money went
//! back to the merchant account: a person must finish it).

use crate::money::Fen;
use crate::time::UnixMillis;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RefundStatus {
    Processing,
    Success,
    Fail,
    Change,
}

impl RefundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Processing => "PROCESSING",
            RefundStatus::Success => "SUCCESS",
            RefundStatus::Fail => "FAIL",
            RefundStatus::Change => "CHANGE",
        }
    }

    pub fn parse(value: &str) -> Option<RefundStatus> {
        match value {
            "PROCESSING" => Some(RefundStatus::Processing),
            "SUCCESS" => Some(RefundStatus::Success),
            "FAIL" => Some(RefundStatus::Fail),
            "CHANGE" => Some(RefundStatus::Change),
            _ => None,
        }
    }

    /// Whether its amount still counts against what can be refunded.
    pub fn holds_money(self) -> bool {
        match self {
            RefundStatus::Processing | RefundStatus::Success | RefundStatus::Change => true,
            RefundStatus::Fail => false,
        }
    }

    pub fn is_final(self) -> bool {
        self != RefundStatus::Processing
    }

    /// The gateway's final word on a PROCESSING refund. A final refund never changes again.
    pub fn finish(self, outcome: RefundStatus) -> Result<RefundStatus, RefundStatus> {
        match (self, outcome) {
            (RefundStatus::Processing, RefundStatus::Processing) => Err(self),
            (RefundStatus::Processing, outcome) => Ok(outcome),
            (done, _) => Err(done),
        }
    }
}

/// Why a refund exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RefundKind {
    /// The buyer asked for it.
    Requested,
    /// Paid after the order expired, with no stock left to honour it.
    LatePayment,
    /// A second trade paid for an order another trade had already confirmed.
    DoublePayment,
}

impl RefundKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundKind::Requested => "REQUESTED",
            RefundKind::LatePayment => "LATE_PAYMENT",
            RefundKind::DoublePayment => "DOUBLE_PAYMENT",
        }
    }

    pub fn parse(value: &str) -> Option<RefundKind> {
        match value {
            "REQUESTED" => Some(RefundKind::Requested),
            "LATE_PAYMENT" => Some(RefundKind::LatePayment),
            "DOUBLE_PAYMENT" => Some(RefundKind::DoublePayment),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refund {
    pub id: i64,
    pub order_id: i64,
    pub payment_id: i64,
    pub out_refund_no: String,
    /// The gateway's id, once it accepted the refund.
    pub refund_id: Option<String>,
    pub amount: Fen,
    pub reason: Option<String>,
    pub status: RefundStatus,
    pub kind: RefundKind,
    pub attempts: i64,
    pub created_at: UnixMillis,
    pub finished_at: Option<UnixMillis>,
    /// The tickets this refund gives back (REFUNDING while it runs).
    pub ticket_ids: Vec<i64>,
    /// Who asked, when it was an operator (`None`: the buyer, or the engine itself).
    pub operator: Option<String>,
}

/// What can still be refunded of a payment: paid minus what refunds already hold.
pub fn refundable(paid: Fen, committed: Fen) -> Fen {
    paid.checked_sub(committed)
        .filter(|f| f.get() > 0)
        .unwrap_or(Fen::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_final_refund_never_changes_again() {
        assert_eq!(
            RefundStatus::Processing.finish(RefundStatus::Success),
            Ok(RefundStatus::Success)
        );
        assert!(RefundStatus::Processing
            .finish(RefundStatus::Processing)
            .is_err());
        assert!(RefundStatus::Success.finish(RefundStatus::Fail).is_err());
        assert!(!RefundStatus::Fail.holds_money());
    }

    proptest! {
        /// However refunds are begun, and whichever fail, what is held never exceeds what
        /// was paid when each takes at most what is refundable.
        #[test]
        fn refunds_never_exceed_the_payment(
            paid in 1i64..1_000_000,
            requests in proptest::collection::vec((1i64..600_000, any::<bool>()), 0..30)
        ) {
            let paid = Fen::new(paid);
            let mut held = Fen::ZERO;
            for (asked, fails) in requests {
                let asked = Fen::new(asked);
                if asked <= refundable(paid, held) {
                    held = held.checked_add(asked).unwrap();
                    prop_assert!(held <= paid);
                    if fails {
                        held = held.checked_sub(asked).unwrap();
                    }
                }
            }
            prop_assert!(held <= paid);
        }
    }
}
