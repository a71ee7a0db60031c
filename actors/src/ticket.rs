//! Tickets: one per unit bought. VALID (admits its holder) → CANCELLED (refunded with its
//! order). A cancelled ticket never becomes valid again.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TicketStatus {
    Valid,
    Cancelled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TicketRefusal {
    #[error("the ticket is already cancelled")]
    AlreadyCancelled,
}

impl TicketStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Valid => "VALID",
            TicketStatus::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(value: &str) -> Option<TicketStatus> {
        match value {
            "VALID" => Some(TicketStatus::Valid),
            "CANCELLED" => Some(TicketStatus::Cancelled),
            _ => None,
        }
    }

    /// Its order was refunded: the ticket no longer admits anyone.
    pub fn cancel(self) -> Result<TicketStatus, TicketRefusal> {
        match self {
            TicketStatus::Valid => Ok(TicketStatus::Cancelled),
            TicketStatus::Cancelled => Err(TicketRefusal::AlreadyCancelled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_are_cancelled_once() {
        assert_eq!(TicketStatus::Valid.cancel(), Ok(TicketStatus::Cancelled));
        assert!(TicketStatus::Cancelled.cancel().is_err());
        for s in ["VALID", "CANCELLED"] {
            assert_eq!(TicketStatus::parse(s).unwrap().as_str(), s);
        }
    }
}
