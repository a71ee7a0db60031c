//! Every move of stock between a ticket type's counters, in one place. A move is one guarded
//! UPDATE (`… AND from >= quantity`), so a counter never goes negative and the CHECK
//! `available + reserved + sold = total` holds by construction.

use sqlx::{Any, Transaction};
use wallyt_pay_actors::{OrderItem, StoreError, UnixMillis};

use super::orders::rows;

#[derive(Clone, Copy, Debug)]
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
