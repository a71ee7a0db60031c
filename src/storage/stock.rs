//! Every move of stock between a ticket type's counters, in one place. A move is one guarded
//! UPDATE (`… AND from >= quantity`), so a counter never goes negative and the CHECK
//! `available + reserved + sold = total` holds by construction.

use sqlx::{Any, Transaction};
use wallyt_pay_actors::{OrderItem, StoreError, UnixMillis};

use super::orders::rows;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Counter {
    Available,
    Reserved,
    Sold,
}

impl Counter {
    fn column(self) -> &'static str {
        match self {
            Counter::Available => "available",
            Counter::Reserved => "reserved",
            Counter::Sold => "sold",
        }
    }
}

/// Moves `quantity` units from one counter to another; answers whether there were enough.
pub async fn shift(
    tx: &mut Transaction<'_, Any>,
    ticket_type_id: i64,
    quantity: i64,
    from: Counter,
    to: Counter,
    now: UnixMillis,
) -> Result<bool, StoreError> {
    let (from, to) = (from.column(), to.column());
    let sql = format!(
        "UPDATE ticket_types SET {from} = {from} - $1, {to} = {to} + $2, updated_at = $3 \
         WHERE id = $4 AND {from} >= $5"
    );
    let query = sqlx::query(&sql)
        .bind(quantity)
        .bind(quantity)
        .bind(now.0)
        .bind(ticket_type_id)
        .bind(quantity);
    Ok(rows(tx, query).await? == 1)
}

/// Moves every line of an order, all or nothing: on a short line it moves the lines it had
/// moved back and answers false, leaving the transaction as it found it.
pub async fn shift_all_or_none(
    tx: &mut Transaction<'_, Any>,
    items: &[OrderItem],
    from: Counter,
    to: Counter,
    now: UnixMillis,
) -> Result<bool, StoreError> {
    for (moved, item) in items.iter().enumerate() {
        if !shift(tx, item.ticket_type_id, item.quantity, from, to, now).await? {
            for undo in &items[..moved] {
                if !shift(tx, undo.ticket_type_id, undo.quantity, to, from, now).await? {
                    return Err(StoreError::Other("stock moved back failed".into()));
                }
            }
            return Ok(false);
        }
    }
    Ok(true)
}

/// Moves every line of an order; answers false at the first short line (the caller drops
/// the transaction).
async fn shift_items(
    tx: &mut Transaction<'_, Any>,
    items: &[OrderItem],
    from: Counter,
    to: Counter,
    now: UnixMillis,
) -> Result<bool, StoreError> {
    for item in items {
        if !shift(tx, item.ticket_type_id, item.quantity, from, to, now).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A move the order's own history guarantees (its reservation, its sale): failing it means
/// the data is inconsistent, never a race to report to a buyer.
pub async fn shift_owned(
    tx: &mut Transaction<'_, Any>,
    order_id: i64,
    items: &[OrderItem],
    from: Counter,
    to: Counter,
    now: UnixMillis,
) -> Result<(), StoreError> {
    if shift_items(tx, items, from, to, now).await? {
        Ok(())
    } else {
        Err(StoreError::Other(format!(
            "order {order_id} does not hold the {} stock it should",
            from.column()
        )))
    }
}

/// A move an order's own history guarantees (a confirmation's reservation sold), owed by a
/// transaction and made at its very end: the ticket type's row is the one every payment of
/// that type updates, so it is locked for the last statement and the commit only — and in a
/// group-committed batch, once for all its members ([`settle`]).
#[derive(Clone, Debug)]
pub struct OwedMove {
    pub order_id: i64,
    pub items: Vec<OrderItem>,
    pub from: Counter,
    pub to: Counter,
    /// When the transition that owes it was decided (the row's `updated_at`).
    pub now: UnixMillis,
}

/// Makes the owed moves, summed per ticket type and direction, in ticket type order (the
/// order every writer locks stock rows in): one UPDATE per ticket type however many orders.
/// Failing means the data is inconsistent (an order without the stock it should hold).
pub async fn settle(tx: &mut Transaction<'_, Any>, moves: &[OwedMove]) -> Result<(), StoreError> {
    let Some(now) = moves.iter().map(|m| m.now).max() else {
        return Ok(());
    };
    let mut sums: std::collections::BTreeMap<(i64, Counter, Counter), i64> =
        std::collections::BTreeMap::new();
    for owed in moves {
        for item in &owed.items {
            *sums
                .entry((item.ticket_type_id, owed.from, owed.to))
                .or_default() += item.quantity;
        }
    }
    for ((ticket_type_id, from, to), quantity) in sums {
        if !shift(tx, ticket_type_id, quantity, from, to, now).await? {
            let orders: Vec<i64> = moves.iter().map(|m| m.order_id).collect();
            return Err(StoreError::Other(format!(
                "ticket type {ticket_type_id} does not hold the {} stock of orders {orders:?}",
                from.column()
            )));
        }
    }
    Ok(())
}
