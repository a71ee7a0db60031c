//! Tickets: one per unit bought. VALID (admits its holder) → REFUNDING (in a refund the gateway
//! has not finished: not valid for entry, not refundable again) → CANCELLED when the refund
//! succeeds, or VALID again when it fails. A cancelled ticket never becomes valid again.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TicketStatus {
    Valid,
    Refunding,
    Cancelled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TicketRefusal {
    #[error("the ticket is already cancelled")]
    AlreadyCancelled,
    #[error("the ticket is in a refund already")]
    Refunding,
    #[error("the ticket is not in a refund")]
    NotRefunding,
}

impl TicketStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Valid => "VALID",
            TicketStatus::Refunding => "REFUNDING",
            TicketStatus::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(value: &str) -> Option<TicketStatus> {
        match value {
            "VALID" => Some(TicketStatus::Valid),
            "REFUNDING" => Some(TicketStatus::Refunding),
            "CANCELLED" => Some(TicketStatus::Cancelled),
            _ => None,
        }
    }

    /// A refund takes the ticket: it stops admitting anyone until the refund is final.
    pub fn hold(self) -> Result<TicketStatus, TicketRefusal> {
        match self {
            TicketStatus::Valid => Ok(TicketStatus::Refunding),
            TicketStatus::Refunding => Err(TicketRefusal::Refunding),
            TicketStatus::Cancelled => Err(TicketRefusal::AlreadyCancelled),
        }
    }

    /// Its refund succeeded (or its order was refunded in full): the ticket is gone and its
    /// unit goes back to sale.
    pub fn cancel(self) -> Result<TicketStatus, TicketRefusal> {
        match self {
            TicketStatus::Valid | TicketStatus::Refunding => Ok(TicketStatus::Cancelled),
            TicketStatus::Cancelled => Err(TicketRefusal::AlreadyCancelled),
        }
    }

    /// Its refund failed: the ticket admits its holder again.
    pub fn release(self) -> Result<TicketStatus, TicketRefusal> {
        match self {
            TicketStatus::Refunding => Ok(TicketStatus::Valid),
            TicketStatus::Valid => Err(TicketRefusal::NotRefunding),
            TicketStatus::Cancelled => Err(TicketRefusal::AlreadyCancelled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_are_held_by_a_refund_then_cancelled_or_released() {
        assert_eq!(TicketStatus::Valid.hold(), Ok(TicketStatus::Refunding));
        assert!(TicketStatus::Refunding.hold().is_err());
        assert_eq!(
            TicketStatus::Refunding.cancel(),
            Ok(TicketStatus::Cancelled)
        );
        assert_eq!(TicketStatus::Refunding.release(), Ok(TicketStatus::Valid));
        assert!(TicketStatus::Cancelled.cancel().is_err());
        assert!(TicketStatus::Cancelled.release().is_err());
        for s in ["VALID", "REFUNDING", "CANCELLED"] {
            assert_eq!(TicketStatus::parse(s).unwrap().as_str(), s);
        }
    }
}
