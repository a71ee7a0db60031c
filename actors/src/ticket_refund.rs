//! Which tickets a refund takes, and for how much: the contract's "refunds by whole tickets".
//! A buyer's refund gives back whole tickets (money without tickets is an operator's decision);
//! an operator may refund any amount and cancels the tickets they name. Pure functions over
//! the order's tickets and what is still refundable of the payment.

use std::collections::BTreeSet;

use crate::money::Fen;
use crate::ticket::TicketStatus;

/// A ticket of the order with its unit price.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PricedTicket {
    pub id: i64,
    pub price: Fen,
    pub status: TicketStatus,
}

/// What a buyer asked to refund.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuyerAsk {
    /// These tickets; `amount`, when also given, must be their price.
    Tickets { ids: Vec<i64>, amount: Option<Fen> },
    /// This much, made of whole tickets.
    Amount(Fen),
    /// Every valid ticket not already being refunded.
    Rest,
}

/// The refund to make: its tickets and its money.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketRefund {
    pub ticket_ids: Vec<i64>,
    pub amount: Fen,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TicketRefundError {
    #[error("only {refundable} is still refundable")]
    Exceeded { refundable: Fen },
    /// Never says whether a ticket exists in another order.
    #[error("ticketIds must name valid tickets of this order, each once")]
    NotRefundableTickets,
    #[error("refundAmount {amount} is not the price {price} of the named tickets")]
    AmountMismatch { amount: Fen, price: Fen },
    #[error("refundAmount must be made of whole tickets; refundable unit prices: {}", list(.prices))]
    NotWholeTickets { prices: Vec<Fen> },
}

fn list(prices: &[Fen]) -> String {
    prices
        .iter()
        .map(|p| p.to_yuan_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn valid(tickets: &[PricedTicket]) -> impl Iterator<Item = &PricedTicket> {
    tickets.iter().filter(|t| t.status == TicketStatus::Valid)
}

/// Named tickets: each a VALID ticket of the order, none twice. Answers them and their price.
fn named(tickets: &[PricedTicket], ids: &[i64]) -> Result<(Vec<i64>, Fen), TicketRefundError> {
    let unique: BTreeSet<i64> = ids.iter().copied().collect();
    if unique.len() != ids.len() || ids.is_empty() {
        return Err(TicketRefundError::NotRefundableTickets);
    }
    let mut price = Fen::ZERO;
    for id in ids {
        let ticket = valid(tickets)
            .find(|t| t.id == *id)
            .ok_or(TicketRefundError::NotRefundableTickets)?;
        price = price
            .checked_add(ticket.price)
            .ok_or(TicketRefundError::NotRefundableTickets)?;
    }
    Ok((ids.to_vec(), price))
}

/// A buyer's refund. Amount checks come first (nothing left, or more than is left, is
/// `Exceeded`), then the whole-ticket rule; the money of a ticket refund is the tickets' price
/// capped at what is still refundable (an operator may have refunded part already).
pub fn buyer_refund(
    ask: &BuyerAsk,
    tickets: &[PricedTicket],
    refundable: Fen,
) -> Result<TicketRefund, TicketRefundError> {
    let exceeded = TicketRefundError::Exceeded { refundable };
    if !refundable.is_positive() {
        return Err(exceeded);
    }
    match ask {
        BuyerAsk::Tickets { ids, amount } => {
            if amount.is_some_and(|a| a > refundable) {
                return Err(exceeded);
            }
            let (ticket_ids, price) = named(tickets, ids)?;
            if let Some(amount) = amount.filter(|a| *a != price) {
                return Err(TicketRefundError::AmountMismatch { amount, price });
            }
            Ok(TicketRefund {
                ticket_ids,
                amount: price.min(refundable),
            })
        }
        BuyerAsk::Amount(amount) => {
            if *amount > refundable || !amount.is_positive() {
                return Err(exceeded);
            }
            let mut by_price: Vec<&PricedTicket> = valid(tickets).collect();
            by_price.sort_by(|a, b| b.price.cmp(&a.price).then(b.id.cmp(&a.id)));
            let (mut left, mut taken) = (*amount, Vec::new());
            for ticket in by_price {
                if ticket.price <= left {
                    left = left.checked_sub(ticket.price).unwrap_or(Fen::ZERO);
                    taken.push(ticket.id);
                }
            }
            if left != Fen::ZERO || taken.is_empty() {
                let prices: BTreeSet<Fen> = valid(tickets).map(|t| t.price).collect();
                return Err(TicketRefundError::NotWholeTickets {
                    prices: prices.into_iter().rev().collect(),
                });
            }
            Ok(TicketRefund {
                ticket_ids: taken,
                amount: *amount,
            })
        }
        BuyerAsk::Rest => {
            let ticket_ids: Vec<i64> = valid(tickets).map(|t| t.id).collect();
            if ticket_ids.is_empty() {
                return Err(exceeded);
            }
            let price = valid(tickets).try_fold(Fen::ZERO, |sum, t| sum.checked_add(t.price));
            Ok(TicketRefund {
                ticket_ids,
                amount: price.unwrap_or(refundable).min(refundable),
            })
        }
    }
}

/// An operator's refund: any amount up to what is refundable (goodwill, fees); it cancels the
/// tickets it names. No amount: the named tickets' price, or everything refundable.
pub fn operator_refund(
    amount: Option<Fen>,
    ticket_ids: &[i64],
    tickets: &[PricedTicket],
    refundable: Fen,
) -> Result<TicketRefund, TicketRefundError> {
    let exceeded = TicketRefundError::Exceeded { refundable };
    if !refundable.is_positive() {
        return Err(exceeded);
    }
    let (ticket_ids, price) = if ticket_ids.is_empty() {
        (Vec::new(), refundable)
    } else {
        named(tickets, ticket_ids)?
    };
    let amount = amount.unwrap_or(price.min(refundable));
    if amount > refundable || !amount.is_positive() {
        return Err(exceeded);
    }
    Ok(TicketRefund { ticket_ids, amount })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(id: i64, yuan: i64, status: TicketStatus) -> PricedTicket {
        PricedTicket {
            id,
            price: Fen::new(yuan * 100),
            status,
        }
    }

    fn order() -> Vec<PricedTicket> {
        vec![
            ticket(1, 100, TicketStatus::Valid),
            ticket(2, 100, TicketStatus::Valid),
            ticket(3, 50, TicketStatus::Valid),
            ticket(4, 50, TicketStatus::Refunding),
            ticket(5, 80, TicketStatus::Cancelled),
        ]
    }

    const ALL: Fen = Fen::new(38_000);

    #[test]
    fn an_amount_takes_the_dearest_tickets_that_fit() {
        let took = buyer_refund(&BuyerAsk::Amount(Fen::new(15_000)), &order(), ALL).unwrap();
        assert_eq!(took.ticket_ids, vec![2, 3], "price desc, then id desc");
        assert_eq!(took.amount, Fen::new(15_000));
        let odd = buyer_refund(&BuyerAsk::Amount(Fen::new(19_900)), &order(), ALL);
        assert_eq!(
            odd,
            Err(TicketRefundError::NotWholeTickets {
                prices: vec![Fen::new(10_000), Fen::new(5_000)]
            })
        );
        assert!(odd.unwrap_err().to_string().contains("100.00, 50.00"));
        assert_eq!(
            buyer_refund(&BuyerAsk::Amount(Fen::new(50_000)), &order(), ALL),
            Err(TicketRefundError::Exceeded { refundable: ALL }),
            "the amount check comes before the whole-ticket rule"
        );
    }

    #[test]
    fn named_tickets_must_be_valid_tickets_of_the_order_once() {
        let ask = |ids: Vec<i64>, amount: Option<i64>| BuyerAsk::Tickets {
            ids,
            amount: amount.map(Fen::new),
        };
        let took = buyer_refund(&ask(vec![3, 1], None), &order(), ALL).unwrap();
        assert_eq!(
            (took.ticket_ids, took.amount),
            (vec![3, 1], Fen::new(15_000))
        );
        for bad in [vec![4], vec![5], vec![99], vec![1, 1], vec![]] {
            assert_eq!(
                buyer_refund(&ask(bad.clone(), None), &order(), ALL),
                Err(TicketRefundError::NotRefundableTickets),
                "{bad:?}"
            );
        }
        assert!(matches!(
            buyer_refund(&ask(vec![1], Some(9_000)), &order(), ALL),
            Err(TicketRefundError::AmountMismatch { .. })
        ));
        // What an operator already refunded caps the money of the tickets.
        let capped = buyer_refund(&ask(vec![1], None), &order(), Fen::new(6_000)).unwrap();
        assert_eq!(capped.amount, Fen::new(6_000));
    }

    #[test]
    fn the_rest_is_every_valid_ticket_and_nothing_left_is_exceeded() {
        let rest = buyer_refund(&BuyerAsk::Rest, &order(), ALL).unwrap();
        assert_eq!(rest.ticket_ids, vec![1, 2, 3]);
        assert_eq!(rest.amount, Fen::new(25_000));
        let none: Vec<PricedTicket> = order()
            .into_iter()
            .filter(|t| t.status != TicketStatus::Valid)
            .collect();
        assert!(matches!(
            buyer_refund(&BuyerAsk::Rest, &none, ALL),
            Err(TicketRefundError::Exceeded { .. })
        ));
        assert!(matches!(
            buyer_refund(&BuyerAsk::Rest, &order(), Fen::ZERO),
            Err(TicketRefundError::Exceeded { .. })
        ));
    }

    #[test]
    fn operators_refund_any_amount_up_to_what_is_left() {
        let goodwill = operator_refund(Some(Fen::new(1)), &[], &order(), ALL).unwrap();
        assert_eq!(
            (goodwill.ticket_ids.len(), goodwill.amount),
            (0, Fen::new(1))
        );
        let everything = operator_refund(None, &[], &order(), ALL).unwrap();
        assert_eq!(everything.amount, ALL);
        let named = operator_refund(None, &[3], &order(), ALL).unwrap();
        assert_eq!((named.ticket_ids, named.amount), (vec![3], Fen::new(5_000)));
        assert!(operator_refund(Some(Fen::new(38_001)), &[], &order(), ALL).is_err());
        assert!(operator_refund(None, &[4], &order(), ALL).is_err());
    }
}
