//! Payments: one per gateway trade (`out_trade_no`). NOTPAY (prepay created) → PAID →
//! PARTIALLY_REFUNDED / REFUNDED; NOTPAY → CLOSED (expired or replaced). A CLOSED trade the
//! customer still managed to pay becomes PAID: the money moved, and that wins.

use crate::money::Fen;
use crate::time::UnixMillis;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    NotPay,
    Paid,
    PartiallyRefunded,
    Refunded,
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PaymentRefusal {
    #[error("the payment was already made")]
    AlreadyPaid,
    #[error("the payment is not paid")]
    NotPaid,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::NotPay => "NOTPAY",
            PaymentStatus::Paid => "PAID",
            PaymentStatus::PartiallyRefunded => "PARTIALLY_REFUNDED",
            PaymentStatus::Refunded => "REFUNDED",
            PaymentStatus::Closed => "CLOSED",
        }
    }

    pub fn parse(value: &str) -> Option<PaymentStatus> {
        match value {
            "NOTPAY" => Some(PaymentStatus::NotPay),
            "PAID" => Some(PaymentStatus::Paid),
            "PARTIALLY_REFUNDED" => Some(PaymentStatus::PartiallyRefunded),
            "REFUNDED" => Some(PaymentStatus::Refunded),
            "CLOSED" => Some(PaymentStatus::Closed),
            _ => None,
        }
    }

    /// Whether money was received on this trade (refunded or not).
    pub fn money_received(self) -> bool {
        match self {
            PaymentStatus::Paid | PaymentStatus::PartiallyRefunded | PaymentStatus::Refunded => {
                true
            }
            PaymentStatus::NotPay | PaymentStatus::Closed => false,
        }
    }

    /// The gateway says the customer paid.
    pub fn pay(self) -> Result<PaymentStatus, PaymentRefusal> {
        match self {
            PaymentStatus::NotPay | PaymentStatus::Closed => Ok(PaymentStatus::Paid),
            PaymentStatus::Paid | PaymentStatus::PartiallyRefunded | PaymentStatus::Refunded => {
                Err(PaymentRefusal::AlreadyPaid)
            }
        }
    }

    /// The trade was closed unpaid. Closing twice is fine.
    pub fn close(self) -> Result<PaymentStatus, PaymentRefusal> {
        match self {
            PaymentStatus::NotPay | PaymentStatus::Closed => Ok(PaymentStatus::Closed),
            PaymentStatus::Paid | PaymentStatus::PartiallyRefunded | PaymentStatus::Refunded => {
                Err(PaymentRefusal::AlreadyPaid)
            }
        }
    }

    /// After a refund succeeded, given the cumulative refunded amount.
    pub fn refund(self, refunded: Fen, amount: Fen) -> Result<PaymentStatus, PaymentRefusal> {
        if !self.money_received() {
            return Err(PaymentRefusal::NotPaid);
        }
        Ok(if refunded >= amount {
            PaymentStatus::Refunded
        } else if refunded.is_positive() {
            PaymentStatus::PartiallyRefunded
        } else {
            PaymentStatus::Paid
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    pub id: i64,
    pub order_id: i64,
    pub out_trade_no: String,
    pub transaction_id: Option<String>,
    pub status: PaymentStatus,
    pub amount: Fen,
    /// Refunded and confirmed by the gateway.
    pub refunded: Fen,
    /// Held by refunds that succeeded, are still processing, or need a person (CHANGE).
    pub refund_committed: Fen,
    pub openid: String,
    /// The six `wx.requestPayment` fields as JSON, exactly as the gateway gave them.
    pub pay_params: Option<String>,
    pub prepay_expires_at: UnixMillis,
    pub created_at: UnixMillis,
    pub paid_at: Option<UnixMillis>,
}

impl Payment {
    /// An open prepay the buyer can still pay with.
    pub fn reusable(&self, now: UnixMillis) -> bool {
        self.status == PaymentStatus::NotPay && now < self.prepay_expires_at
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    pub id: i64,
    pub order_id: i64,
    pub ticket_type_id: i64,
    pub code: String,
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payments_are_paid_once_and_closing_a_paid_one_is_refused() {
        assert_eq!(PaymentStatus::NotPay.pay(), Ok(PaymentStatus::Paid));
        assert_eq!(PaymentStatus::Closed.pay(), Ok(PaymentStatus::Paid));
        assert_eq!(PaymentStatus::Paid.pay(), Err(PaymentRefusal::AlreadyPaid));
        assert_eq!(PaymentStatus::Closed.close(), Ok(PaymentStatus::Closed));
        assert_eq!(
            PaymentStatus::Paid.close(),
            Err(PaymentRefusal::AlreadyPaid)
        );
    }

    #[test]
    fn refunds_move_paid_payments_by_cumulative_amount() {
        let amount = Fen::new(10_000);
        let paid = PaymentStatus::Paid;
        assert_eq!(
            paid.refund(Fen::new(5_000), amount),
            Ok(PaymentStatus::PartiallyRefunded)
        );
        assert_eq!(paid.refund(amount, amount), Ok(PaymentStatus::Refunded));
        assert_eq!(
            PaymentStatus::NotPay.refund(amount, amount),
            Err(PaymentRefusal::NotPaid)
        );
        for s in ["NOTPAY", "PAID", "PARTIALLY_REFUNDED", "REFUNDED", "CLOSED"] {
            assert_eq!(PaymentStatus::parse(s).unwrap().as_str(), s);
        }
    }
}
