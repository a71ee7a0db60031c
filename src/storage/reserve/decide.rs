//! Which of a set of reservations the stock and the limits admit, decided in memory against
//! rows the transaction has locked. Arrival order is kept: each request is taken or refused
//! whole (all its lines or none) against what the earlier ones left, exactly as if each had
//! run alone, one after the other — so the batch changes how many round trips an order costs,
//! never who gets the last ticket.

use std::collections::{BTreeMap, HashMap};
use wallyt_pay_actors::order::validate_lines;
use wallyt_pay_actors::ports::{CreateOrderError, PendingLimits};
use wallyt_pay_actors::{Fen, OrderItem, OrderLine, StoreError, UnixMillis};

/// One `POST /orders` waiting for its reservation.
#[derive(Clone, Debug)]
pub struct Reservation {
    pub user_id: i64,
    pub lines: Vec<OrderLine>,
    pub limits: PendingLimits,
    pub expires_at: UnixMillis,
    pub now: UnixMillis,
}

impl Reservation {
    fn units(&self) -> i64 {
        self.lines.iter().map(|l| l.quantity).sum()
    }
}

/// A ticket type's row as locked: its price and what is left on sale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StockRow {
    pub price: Fen,
    pub available: i64,
}

/// What a user holds unpaid (orders, units), as the limits count it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Held {
    pub orders: i64,
    pub units: i64,
}

/// A reservation admitted: its total and its priced lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admitted {
    pub total: Fen,
    pub items: Vec<OrderItem>,
}

/// Decides every request in order, taking the admitted ones' units off `stock` and adding
/// them to `held`. The checks come in the contract's order: unknown ticket type, limits,
/// stock. `held` must hold every user whose request has limits on.
pub fn decide(
    requests: &[Reservation],
    stock: &mut BTreeMap<i64, StockRow>,
    held: &mut HashMap<i64, Held>,
) -> Vec<Result<Admitted, CreateOrderError>> {
    requests
        .iter()
        .map(|request| {
            let admitted = admit(request, stock, held.get(&request.user_id).copied())?;
            for item in &admitted.items {
                if let Some(row) = stock.get_mut(&item.ticket_type_id) {
                    row.available -= item.quantity;
                }
            }
            let user = held.entry(request.user_id).or_default();
            user.orders += 1;
            user.units += request.units();
            Ok(admitted)
        })
        .collect()
}

fn admit(
    request: &Reservation,
    stock: &BTreeMap<i64, StockRow>,
    held: Option<Held>,
) -> Result<Admitted, CreateOrderError> {
    // The engine validates and sorts the lines before it asks; a request that skipped that
    // would write rows the schema refuses and take the whole batch down with it.
    if validate_lines(&request.lines).as_deref() != Ok(request.lines.as_slice()) {
        return Err(StoreError::Other("order lines were not validated".into()).into());
    }
    let mut items = Vec::with_capacity(request.lines.len());
    let mut total = Fen::ZERO;
    for line in &request.lines {
        let row = stock
            .get(&line.ticket_type_id)
            .ok_or(CreateOrderError::UnknownTicketType(line.ticket_type_id))?;
        total = row
            .price
            .checked_mul(line.quantity)
            .and_then(|line_total| total.checked_add(line_total))
            .ok_or_else(|| StoreError::Other("order total overflows".into()))?;
        items.push(OrderItem {
            ticket_type_id: line.ticket_type_id,
            quantity: line.quantity,
            unit_price: row.price,
        });
    }
    if request.limits != PendingLimits::OFF {
        let Held { orders, units } = held.unwrap_or_default();
        if !request.limits.allows(orders, units, request.units()) {
            return Err(CreateOrderError::TooManyPending { orders, units });
        }
    }
    for item in &items {
        let left = stock
            .get(&item.ticket_type_id)
            .map_or(0, |row| row.available);
        if left < item.quantity {
            return Err(CreateOrderError::InsufficientStock(item.ticket_type_id));
        }
    }
    Ok(Admitted { total, items })
}

#[cfg(test)]
mod tests;
