//! An in-memory `OrderStore` + `CatalogStore` + `UserStore` with exactly the guards of the SQL
//! store (storage/*.rs), each one switchable off through [`Guards`] so that a test can show the
//! simulator notices its absence. Every method is one "transaction": it runs under one mutex,
//! all or nothing. Faults ([`Faults`]) make a call fail before its effect, or after committing
//! it (the node died between the commit and the answer), drawn from a seeded generator.
//! Collections are BTreeMaps: iteration order never depends on hashing.

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;

use super::SimRng;
use crate::catalog::{NewTicketType, Stock, TicketType};
use crate::expiry::{Deadline, DeadlineKey, DeadlineKind};
use crate::money::Fen;
use crate::order::{CancelReason, Order, OrderItem, OrderLine, OrderStatus};
use crate::payment::{Payment, PaymentStatus, Ticket};
use crate::policy::{self, PaymentEffect};
use crate::ports::{
    ApplyOutcome, BeginRefundError, CatalogStore, CreateOrderError, Fence, FinishOutcome,
    NewPaymentEvent, NewPrepay, NewRefund, OrderStore, PaymentApplication, PaymentRules,
    PendingLimits, RefundResult, StoreError, UserStore,
};
use crate::refund::{Refund, RefundKind, RefundStatus};
use crate::ticket::TicketStatus;
use crate::time::UnixMillis;
use crate::user::User;

mod guards;
mod ports;
mod transitions;

pub use guards::Guards;

/// How often calls fail, per thousand: before their effect, or after committing it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultRates {
    pub before: u32,
    pub after: u32,
}

struct Faults {
    rates: FaultRates,
    rng: SimRng,
}

/// One status change, as the store made it (what the "never backwards" invariant reads).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub entity: &'static str,
    pub id: i64,
    pub from: String,
    pub to: String,
}

/// Everything the store holds; public for the invariant checker (read through `snapshot`).
#[derive(Clone, Debug, Default)]
pub struct State {
    pub users: BTreeMap<i64, User>,
    pub ticket_types: BTreeMap<i64, TicketType>,
    pub orders: BTreeMap<i64, Order>,
    pub payments: BTreeMap<i64, Payment>,
    pub tickets: BTreeMap<i64, Ticket>,
    pub refunds: BTreeMap<i64, Refund>,
    pub request_keys: BTreeMap<String, i64>,
    /// The highest fence that wrote each order.
    pub fences: BTreeMap<i64, i64>,
    pub events: usize,
    /// Writes a guard refused (or would have refused, when switched off): how often the
    /// simulation reaches the guard at all.
    pub unguarded: usize,
    pub transitions: Vec<Transition>,
    next_id: i64,
}

pub struct MemoryStore {
    guards: Guards,
    state: Mutex<State>,
    faults: Mutex<Option<Faults>>,
}

impl Default for MemoryStore {
    fn default() -> MemoryStore {
        MemoryStore::new(Guards::default())
    }
}

fn order_label(order: &Order) -> String {
    match order.cancel_reason {
        Some(reason) if order.status == OrderStatus::Cancelled => {
            format!("CANCELLED:{}", reason.as_str())
        }
        _ => order.status.as_str().to_owned(),
    }
}

fn lost(what: &str) -> StoreError {
    StoreError::Other(format!("{what} does not exist"))
}

impl MemoryStore {
    pub fn new(guards: Guards) -> MemoryStore {
        MemoryStore {
            guards,
            state: Mutex::new(State::default()),
            faults: Mutex::new(None),
        }
    }

    /// From now on calls fail at these rates, drawn from `rng`.
    pub fn inject_faults(&self, rates: FaultRates, rng: SimRng) {
        *self.faults.lock().unwrap() = Some(Faults { rates, rng });
    }

    pub fn stop_faults(&self) {
        *self.faults.lock().unwrap() = None;
    }

    pub fn guards(&self) -> Guards {
        self.guards
    }

    /// A copy of everything (for invariants; the simulator is single-threaded).
    pub fn snapshot(&self) -> State {
        self.state.lock().unwrap().clone()
    }

    /// Looks at everything without copying it.
    pub fn inspect<T>(&self, look: impl FnOnce(&State) -> T) -> T {
        look(&self.state.lock().unwrap())
    }

    /// Takes the transitions recorded since the last call.
    pub fn drain_transitions(&self) -> Vec<Transition> {
        std::mem::take(&mut self.state.lock().unwrap().transitions)
    }

    /// Runs one transaction, with the injected faults: `before` fails without effect,
    /// `after` keeps the effect and still fails (the answer was lost).
    fn tx<T, E: From<StoreError>>(
        &self,
        write: bool,
        work: impl FnOnce(&Guards, &mut State) -> Result<T, E>,
    ) -> Result<T, E> {
        let (before, after) = match self.faults.lock().unwrap().as_mut() {
            Some(f) => {
                let before = f.rng.chance(f.rates.before);
                (before, write && !before && f.rng.chance(f.rates.after))
            }
            None => (false, false),
        };
        if before {
            return Err(StoreError::Unavailable("injected: before the effect".into()).into());
        }
        let mut state = self.state.lock().unwrap();
        // A transaction that fails rolls back: work on a copy only when it could fail midway
        // is too costly, so each method checks everything before its first change.
        let result = work(&self.guards, &mut state);
        if after && result.is_ok() {
            return Err(StoreError::Unavailable("injected: after the commit".into()).into());
        }
        result
    }
}
