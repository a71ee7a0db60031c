//! One batch, from BEGIN to the answers: the reservation set, each member under its
//! savepoint, the owed stock moves, the commit — or, when it fails before the commit, every
//! member sent to run alone.

use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use wallyt_pay_actors::StoreError;

use super::members::{Member, Ran, Reservations, Reserved};
use super::{CloneError, Tx};
use crate::storage::stock::{self, OwedMove};
use crate::storage::{reserve, store_error, Database};

/// Runs one batch to its end and answers every member. Answers whether it committed.
pub(super) async fn run_batch(
    db: &Database,
    reservations: Reservations,
    batch: Vec<Box<dyn Member>>,
) -> bool {
    let mut tx = match db.begin_write().await {
        Ok(tx) => tx,
        Err(error) => {
            reservations.retry(&error);
            retry_all(batch, Vec::new(), error);
            return false;
        }
    };
    let mut ran: Vec<Box<dyn Ran>> = Vec::with_capacity(batch.len() + 1);
    if !reservations.requests.is_empty() {
        match reserve_set(&mut tx, db, reservations, !batch.is_empty()).await {
            Ok(reserved) => ran.push(reserved),
            Err(error) => {
                // Without a savepoint (nothing else in the batch) the transaction is lost.
                retry_all(batch, ran, error);
                return false;
            }
        }
    }
    let mut pending = batch.into_iter();
    while let Some(member) = pending.next() {
        if let Err(error) = exec(&mut tx, "SAVEPOINT member").await {
            member.retry(error.clone_error());
            retry_all(pending.collect(), ran, error);
            return false;
        }
        // A member that panics takes the transaction with it (rolled back; its caller told
        // so, the others retried alone); the lane goes on, so one bug cannot stop every later
        // transition of the node.
        let Ok((back, done)) = AssertUnwindSafe(member.run(tx)).catch_unwind().await else {
            let error = StoreError::Other("a group-committed transition panicked".into());
            retry_all(pending.collect(), ran, error);
            return false;
        };
        tx = back;
        let close = if done.succeeded() {
            exec(&mut tx, "RELEASE SAVEPOINT member").await
        } else {
            // A failed statement leaves PostgreSQL's transaction aborted until this.
            match exec(&mut tx, "ROLLBACK TO SAVEPOINT member").await {
                Ok(()) => exec(&mut tx, "RELEASE SAVEPOINT member").await,
                Err(error) => Err(error),
            }
        };
        ran.push(done);
        if let Err(error) = close {
            retry_all(pending.collect(), ran, error);
            return false;
        }
    }
    // The members' stock moves last: a hot ticket type's row is locked once per batch, for
    // one statement and the commit. One that fails (a row without the stock its orders hold)
    // leaves nothing of the batch standing; each member then runs alone, and only the orders
    // of that row fail.
    let owed: Vec<OwedMove> = ran.iter_mut().filter_map(|done| done.owed()).collect();
    if let Err(error) = stock::settle(&mut tx, &owed).await {
        retry_all(Vec::new(), ran, error);
        return false;
    }
    let committed = tx.commit().await.map_err(store_error);
    let ok = committed.is_ok();
    for done in ran {
        done.answer(committed.clone_error());
    }
    ok
}

/// Makes the batch's reservations as one set. With other members in the batch the set gets
/// a savepoint, so a failed statement sends the reservations to be retried alone and the
/// batch goes on; `Err` means the transaction cannot go on (the reservations are answered).
async fn reserve_set(
    tx: &mut Tx,
    db: &Database,
    reservations: Reservations,
    others: bool,
) -> Result<Box<dyn Ran>, StoreError> {
    if others {
        if let Err(error) = exec(tx, "SAVEPOINT reservations").await {
            reservations.retry(&error);
            return Err(error);
        }
    }
    let Reservations { requests, replies } = reservations;
    let made = AssertUnwindSafe(reserve::reserve_all(tx, db.backend(), &requests))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(StoreError::Other("a batch of reservations panicked".into())));
    let (answers, failed, close) = match made {
        Ok(answers) => (answers, None, "RELEASE SAVEPOINT reservations"),
        Err(error) if others => (
            Vec::new(),
            Some(error),
            "ROLLBACK TO SAVEPOINT reservations",
        ),
        Err(error) => {
            let set = Reservations {
                requests: Vec::new(),
                replies,
            };
            set.retry(&error);
            return Err(error);
        }
    };
    let reserved = Box::new(Reserved {
        answers,
        replies,
        failed,
    });
    if others {
        let mut closed = exec(tx, close).await;
        if closed.is_ok() && reserved.failed.is_some() {
            closed = exec(tx, "RELEASE SAVEPOINT reservations").await;
        }
        if let Err(error) = closed {
            reserved.retry(error.clone_error());
            return Err(error);
        }
    }
    Ok(reserved)
}

async fn exec(tx: &mut Tx, sql: &str) -> Result<(), StoreError> {
    sqlx::query(sql)
        .execute(&mut **tx)
        .await
        .map(drop)
        .map_err(store_error)
}

/// The batch failed before its commit: every member, run or not, is told to run alone; the
/// transaction (if any) is dropped: rolled back.
fn retry_all(waiting: Vec<Box<dyn Member>>, ran: Vec<Box<dyn Ran>>, error: StoreError) {
    for done in ran {
        done.retry(error.clone_error());
    }
    for member in waiting {
        member.retry(error.clone_error());
    }
}
