//! Ticket types and their stock. Every unit of a ticket type is in exactly one of three
//! places — available, reserved by a pending order, or sold — so the counters always add up
//! to the total. The database enforces the same with CHECK constraints.

use crate::money::Fen;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stock {
    pub total: i64,
    pub available: i64,
    pub reserved: i64,
    pub sold: i64,
}

impl Stock {
    /// A fresh ticket type: everything available.
    pub fn new(total: i64) -> Stock {
        Stock {
            total,
            available: total,
            reserved: 0,
            sold: 0,
        }
    }

    pub fn is_consistent(&self) -> bool {
        self.available >= 0
            && self.reserved >= 0
            && self.sold >= 0
            && self.available + self.reserved + self.sold == self.total
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketType {
    pub id: i64,
    pub name: String,
    pub price: Fen,
    pub stock: Stock,
}

/// What an administrator asks for; validated before it reaches a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTicketType {
    pub name: String,
    pub price: Fen,
    pub total: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("name must be 1 to {max} characters")]
    BadName { max: usize },
    #[error("price must be more than 0")]
    FreeTicket,
    #[error("stock must be between 0 and {max}")]
    BadStock { max: i64 },
}

impl NewTicketType {
    pub const MAX_NAME_CHARS: usize = 100;
    pub const MAX_STOCK: i64 = 1_000_000;

    pub fn new(name: &str, price: Fen, total: i64) -> Result<NewTicketType, CatalogError> {
        let name = name.trim();
        let chars = name.chars().count();
        if chars == 0 || chars > Self::MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(CatalogError::BadName {
                max: Self::MAX_NAME_CHARS,
            });
        }
        if !price.is_positive() {
            return Err(CatalogError::FreeTicket);
        }
        if !(0..=Self::MAX_STOCK).contains(&total) {
            return Err(CatalogError::BadStock {
                max: Self::MAX_STOCK,
            });
        }
        Ok(NewTicketType {
            name: name.to_owned(),
            price,
            total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_what_an_admin_sends() {
        let ok = NewTicketType::new("  VIP ", Fen::new(10_000), 50).unwrap();
        assert_eq!(ok.name, "VIP");
        assert!(NewTicketType::new("", Fen::new(1), 1).is_err());
        assert!(NewTicketType::new(&"x".repeat(101), Fen::new(1), 1).is_err());
        assert!(NewTicketType::new("a\u{0}b", Fen::new(1), 1).is_err());
        assert_eq!(
            NewTicketType::new("VIP", Fen::ZERO, 1),
            Err(CatalogError::FreeTicket)
        );
        assert!(NewTicketType::new("VIP", Fen::new(1), -1).is_err());
        assert!(NewTicketType::new("VIP", Fen::new(1), 1_000_001).is_err());
    }

    #[test]
    fn fresh_stock_is_all_available() {
        let stock = Stock::new(7);
        assert!(stock.is_consistent());
        assert_eq!(stock.available, 7);
        assert!(!Stock { sold: 1, ..stock }.is_consistent());
    }
}
