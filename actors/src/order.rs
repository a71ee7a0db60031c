//! Orders: what a buyer reserved, and the life of the order. PENDING (stock reserved, waiting
//! for money) → CONFIRMED (paid, tickets issued) → CANCELLED (expired unpaid, or refunded).
//! Transitions are functions that answer the new state or a typed refusal; storage applies
//! them with guarded updates so the database agrees even across nodes.

use crate::money::Fen;
use crate::time::UnixMillis;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Cancelled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CancelReason {
    Expired,
    Refunded,
    LatePaymentRefunded,
}

/// Why a transition was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OrderRefusal {
    #[error("the order is already confirmed")]
    AlreadyConfirmed,
    #[error("the order is cancelled")]
    Cancelled,
    #[error("the order is still pending")]
    StillPending,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "PENDING",
            OrderStatus::Confirmed => "CONFIRMED",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(value: &str) -> Option<OrderStatus> {
        match value {
            "PENDING" => Some(OrderStatus::Pending),
            "CONFIRMED" => Some(OrderStatus::Confirmed),
            "CANCELLED" => Some(OrderStatus::Cancelled),
            _ => None,
        }
    }

    /// The money arrived.
    pub fn confirm(self) -> Result<OrderStatus, OrderRefusal> {
        match self {
            OrderStatus::Pending => Ok(OrderStatus::Confirmed),
            OrderStatus::Confirmed => Err(OrderRefusal::AlreadyConfirmed),
            OrderStatus::Cancelled => Err(OrderRefusal::Cancelled),
        }
    }

    /// Unpaid past its deadline; its reservation goes back.
    pub fn expire(self) -> Result<OrderStatus, OrderRefusal> {
        match self {
            OrderStatus::Pending => Ok(OrderStatus::Cancelled),
            OrderStatus::Confirmed => Err(OrderRefusal::AlreadyConfirmed),
            OrderStatus::Cancelled => Err(OrderRefusal::Cancelled),
        }
    }

    /// Fully refunded; its tickets and stock go back.
    pub fn refund_fully(self) -> Result<OrderStatus, OrderRefusal> {
        match self {
            OrderStatus::Confirmed => Ok(OrderStatus::Cancelled),
            OrderStatus::Pending => Err(OrderRefusal::StillPending),
            OrderStatus::Cancelled => Err(OrderRefusal::Cancelled),
        }
    }

    /// A late payment for an order that expired unpaid: confirmed after all (the contract's
    /// one named step backwards). Any other cancellation is final.
    pub fn revive(self, reason: Option<CancelReason>) -> Result<OrderStatus, OrderRefusal> {
        match (self, reason) {
            (OrderStatus::Cancelled, Some(CancelReason::Expired)) => Ok(OrderStatus::Confirmed),
            (OrderStatus::Cancelled, _) => Err(OrderRefusal::Cancelled),
            (OrderStatus::Confirmed, _) => Err(OrderRefusal::AlreadyConfirmed),
            (OrderStatus::Pending, _) => Err(OrderRefusal::StillPending),
        }
    }

    /// Whether a prepay may be created: pending and before its deadline.
    pub fn payable(self, expires_at: UnixMillis, now: UnixMillis) -> bool {
        self == OrderStatus::Pending && now < expires_at
    }
}

impl CancelReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CancelReason::Expired => "EXPIRED",
            CancelReason::Refunded => "REFUNDED",
            CancelReason::LatePaymentRefunded => "LATE_PAYMENT_REFUNDED",
        }
    }

    pub fn parse(value: &str) -> Option<CancelReason> {
        match value {
            "EXPIRED" => Some(CancelReason::Expired),
            "REFUNDED" => Some(CancelReason::Refunded),
            "LATE_PAYMENT_REFUNDED" => Some(CancelReason::LatePaymentRefunded),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderItem {
    pub ticket_type_id: i64,
    pub quantity: i64,
    pub unit_price: Fen,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    pub id: i64,
    pub user_id: i64,
    pub status: OrderStatus,
    pub total: Fen,
    pub refunded: Fen,
    pub cancel_reason: Option<CancelReason>,
    pub expires_at: UnixMillis,
    pub created_at: UnixMillis,
    pub paid_at: Option<UnixMillis>,
    pub cancelled_at: Option<UnixMillis>,
    pub items: Vec<OrderItem>,
}

/// One line of a new order, as the buyer asked for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderLine {
    pub ticket_type_id: i64,
    pub quantity: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderLinesError {
    #[error("an order needs 1 to {max} lines")]
    LineCount { max: usize },
    #[error("quantity must be an integer from 1 to {max}")]
    Quantity { max: i64 },
    #[error("ticket type {0} appears twice")]
    Duplicate(i64),
}

pub const MAX_LINES: usize = 20;
pub const MAX_QUANTITY: i64 = 20;

/// Checks the contract's limits; answers the lines sorted by ticket type, the order in which
/// stock rows are locked, so two orders never wait on each other in a cycle.
pub fn validate_lines(lines: &[OrderLine]) -> Result<Vec<OrderLine>, OrderLinesError> {
    if lines.is_empty() || lines.len() > MAX_LINES {
        return Err(OrderLinesError::LineCount { max: MAX_LINES });
    }
    if lines
        .iter()
        .any(|l| !(1..=MAX_QUANTITY).contains(&l.quantity))
    {
        return Err(OrderLinesError::Quantity { max: MAX_QUANTITY });
    }
    let mut sorted = lines.to_vec();
    sorted.sort_by_key(|l| l.ticket_type_id);
    if let Some(pair) = sorted
        .windows(2)
        .find(|w| w[0].ticket_type_id == w[1].ticket_type_id)
    {
        return Err(OrderLinesError::Duplicate(pair[0].ticket_type_id));
    }
    Ok(sorted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(id: i64, q: i64) -> OrderLine {
        OrderLine {
            ticket_type_id: id,
            quantity: q,
        }
    }

    #[test]
    fn lines_follow_the_contract() {
        assert_eq!(
            validate_lines(&[line(2, 1), line(1, 20)]).unwrap(),
            vec![line(1, 20), line(2, 1)]
        );
        assert!(validate_lines(&[]).is_err());
        assert!(validate_lines(&[line(1, 0)]).is_err());
        assert!(validate_lines(&[line(1, 21)]).is_err());
        assert_eq!(
            validate_lines(&[line(1, 1), line(1, 2)]),
            Err(OrderLinesError::Duplicate(1))
        );
        let many: Vec<_> = (0..21).map(|i| line(i, 1)).collect();
        assert!(validate_lines(&many).is_err());
    }

    #[derive(Clone, Copy, Debug)]
    enum Event {
        Confirm,
        Expire,
        RefundFully,
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            Just(Event::Confirm),
            Just(Event::Expire),
            Just(Event::RefundFully)
        ]
    }

    proptest! {
        /// Whatever happens, an order moves only forward, and a cancelled order stays so.
        #[test]
        fn orders_only_move_forward(events in proptest::collection::vec(event(), 0..20)) {
            let rank = |s: OrderStatus| match s {
                OrderStatus::Pending => 0,
                OrderStatus::Confirmed => 1,
                OrderStatus::Cancelled => 2,
            };
            let mut status = OrderStatus::Pending;
            for e in events {
                let next = match e {
                    Event::Confirm => status.confirm(),
                    Event::Expire => status.expire(),
                    Event::RefundFully => status.refund_fully(),
                };
                if let Ok(next) = next {
                    prop_assert!(rank(next) > rank(status));
                    status = next;
                }
            }
            prop_assert!(status.confirm().is_err() || status == OrderStatus::Pending);
        }
    }
}
