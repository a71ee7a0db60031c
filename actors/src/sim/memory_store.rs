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

/// The store's guards, all on by default. Each is one `WHERE` clause or unique index of the
/// SQL store; switching one off is a mutation the simulator must catch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Guards {
    /// Writes of an order under a fence older than the highest that wrote it are refused.
    pub fencing: bool,
    /// A payment is made PAID once: NOTPAY/CLOSED → PAID only; a transaction id pays once.
    pub pay_once: bool,
    /// Unique out_trade_no, out_refund_no and refund request keys.
    pub unique_keys: bool,
    /// A prepay is recorded only while its order is PENDING.
    pub prepay_pending_only: bool,
    /// Only NOTPAY payments are closed.
    pub close_notpay_only: bool,
    /// Only a PENDING order with no NOTPAY payment expires.
    pub expire_guard: bool,
    /// Stock counters never go negative; an order's moves are all or nothing.
    pub stock: bool,
    /// `refund_committed + amount <= amount`, on PAID/PARTIALLY_REFUNDED payments, and a
    /// buyer's refund only of a CONFIRMED order.
    pub refund_cap: bool,
    /// A refund is finished once (only from PROCESSING).
    pub finish_once: bool,
    /// A refund takes only VALID tickets of its order (each ticket given back once).
    pub tickets: bool,
}

impl Default for Guards {
    fn default() -> Guards {
        Guards {
            fencing: true,
            pay_once: true,
            unique_keys: true,
            prepay_pending_only: true,
            close_notpay_only: true,
            expire_guard: true,
            stock: true,
            refund_cap: true,
            finish_once: true,
            tickets: true,
        }
    }
}

impl Guards {
    /// Every guard by name, with a setter turning it off (for the mutation tests).
    pub fn names() -> &'static [&'static str] {
        &[
            "fencing",
            "pay_once",
            "unique_keys",
            "prepay_pending_only",
            "close_notpay_only",
            "expire_guard",
            "stock",
            "refund_cap",
            "finish_once",
            "tickets",
        ]
    }

    /// All guards on except `name`.
    pub fn without(name: &str) -> Guards {
        Guards::default().and_without(name)
    }

    /// These guards, and `name` off too.
    pub fn and_without(self, name: &str) -> Guards {
        let mut g = self;
        let flag = match name {
            "fencing" => &mut g.fencing,
            "pay_once" => &mut g.pay_once,
            "unique_keys" => &mut g.unique_keys,
            "prepay_pending_only" => &mut g.prepay_pending_only,
            "close_notpay_only" => &mut g.close_notpay_only,
            "expire_guard" => &mut g.expire_guard,
            "stock" => &mut g.stock,
            "refund_cap" => &mut g.refund_cap,
            "finish_once" => &mut g.finish_once,
            "tickets" => &mut g.tickets,
            other => panic!("no guard named {other}"),
        };
        *flag = false;
        g
    }
}

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

impl State {
    fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    /// Fencing: a write of `order_id` under `fence` is refused when a newer fence wrote it.
    fn fence(&mut self, guards: &Guards, order_id: i64, fence: Fence) -> Result<(), StoreError> {
        let highest = self.fences.entry(order_id).or_insert(i64::MIN);
        if guards.fencing && fence.0 < *highest {
            return Err(StoreError::Fenced(*highest));
        }
        *highest = (*highest).max(fence.0);
        Ok(())
    }

    fn set_order(&mut self, order_id: i64, change: impl FnOnce(&mut Order)) {
        let order = self
            .orders
            .get_mut(&order_id)
            .expect("checked by the caller");
        let from = order_label(order);
        change(order);
        let to = order_label(order);
        if from != to {
            self.transitions.push(Transition {
                entity: "order",
                id: order_id,
                from,
                to,
            });
        }
    }

    fn set_payment_status(&mut self, payment_id: i64, status: PaymentStatus) {
        let payment = self.payments.get_mut(&payment_id).expect("checked");
        if payment.status != status {
            self.transitions.push(Transition {
                entity: "payment",
                id: payment_id,
                from: payment.status.as_str().into(),
                to: status.as_str().into(),
            });
            payment.status = status;
        }
    }

    /// Moves an order's units between counters, all lines or none (with the stock guard).
    fn shift(
        &mut self,
        guards: &Guards,
        items: &[OrderItem],
        from: fn(&mut Stock) -> &mut i64,
        to: fn(&mut Stock) -> &mut i64,
    ) -> bool {
        if guards.stock {
            let short = items.iter().any(|item| {
                self.ticket_types
                    .get_mut(&item.ticket_type_id)
                    .is_none_or(|t| *from(&mut t.stock) < item.quantity)
            });
            if short {
                return false;
            }
        }
        for item in items {
            if let Some(t) = self.ticket_types.get_mut(&item.ticket_type_id) {
                *from(&mut t.stock) -= item.quantity;
                *to(&mut t.stock) += item.quantity;
            }
        }
        true
    }

    fn issue_tickets(&mut self, order_id: i64, items: &[OrderItem]) -> usize {
        let mut issued = 0;
        for item in items {
            for _ in 0..item.quantity {
                let id = self.id();
                self.tickets.insert(
                    id,
                    Ticket {
                        id,
                        order_id,
                        ticket_type_id: item.ticket_type_id,
                        code: format!("T{id}"),
                        status: "VALID".into(),
                    },
                );
                issued += 1;
            }
        }
        issued
    }

    fn plan_refund(&mut self, payment: &Payment, kind: RefundKind, now: UnixMillis) -> Refund {
        let id = self.id();
        let refund = Refund {
            id,
            order_id: payment.order_id,
            payment_id: payment.id,
            out_refund_no: policy::automatic_refund_no(payment.order_id, payment.id),
            refund_id: None,
            amount: payment.amount,
            reason: Some(kind.as_str().to_lowercase()),
            status: RefundStatus::Processing,
            kind,
            attempts: 0,
            created_at: now,
            finished_at: None,
            ticket_ids: Vec::new(),
            operator: None,
        };
        self.refunds.insert(id, refund.clone());
        if let Some(p) = self.payments.get_mut(&payment.id) {
            p.refund_committed = p.refund_committed.checked_add(payment.amount).unwrap();
        }
        refund
    }

    fn apply_payment(
        &mut self,
        guards: &Guards,
        paid: &PaymentApplication,
        rules: PaymentRules,
        fence: Fence,
        now: UnixMillis,
    ) -> Result<ApplyOutcome, StoreError> {
        let Some(payment) = self
            .payments
            .values()
            .find(|p| p.out_trade_no == paid.out_trade_no)
            .cloned()
        else {
            return Ok(ApplyOutcome::UnknownTrade);
        };
        let txid_used = self.payments.values().any(|p| {
            p.id != payment.id && p.transaction_id.as_deref() == Some(&paid.transaction_id)
        });
        if guards.pay_once && (payment.status.money_received() || txid_used) {
            return Ok(ApplyOutcome::AlreadyApplied);
        }
        if paid.amount != payment.amount {
            return Ok(ApplyOutcome::AmountMismatch {
                expected: payment.amount,
            });
        }
        self.fence(guards, payment.order_id, fence)?;
        let order = self
            .orders
            .get(&payment.order_id)
            .cloned()
            .ok_or_else(|| lost("order"))?;
        let effect = policy::on_payment(
            order.status,
            order.cancel_reason,
            order.expires_at,
            now,
            rules.revive_within,
        );
        self.set_payment_status(payment.id, PaymentStatus::Paid);
        if let Some(p) = self.payments.get_mut(&payment.id) {
            p.transaction_id = Some(paid.transaction_id.clone());
            p.paid_at = Some(paid.paid_at);
        }
        let kind = match effect {
            PaymentEffect::Confirm => {
                if !self.shift(guards, &order.items, |s| &mut s.reserved, |s| &mut s.sold) {
                    return Err(StoreError::Other("reserved stock is missing".into()));
                }
                self.set_order(order.id, |o| {
                    o.status = OrderStatus::Confirmed;
                    o.paid_at = Some(now);
                });
                let tickets = self.issue_tickets(order.id, &order.items);
                return Ok(ApplyOutcome::Confirmed { tickets });
            }
            PaymentEffect::Revive => {
                if self.shift(guards, &order.items, |s| &mut s.available, |s| &mut s.sold) {
                    self.set_order(order.id, |o| {
                        o.status = OrderStatus::Confirmed;
                        o.cancel_reason = None;
                        o.cancelled_at = None;
                        o.paid_at = Some(now);
                    });
                    let tickets = self.issue_tickets(order.id, &order.items);
                    return Ok(ApplyOutcome::Revived { tickets });
                }
                RefundKind::LatePayment
            }
            PaymentEffect::Refund(kind) => kind,
        };
        let payment = self.payments[&payment.id].clone();
        let refund = self.plan_refund(&payment, kind, now);
        Ok(ApplyOutcome::RefundPlanned { refund })
    }

    fn begin_refund(
        &mut self,
        guards: &Guards,
        new: &NewRefund,
        fence: Fence,
        now: UnixMillis,
    ) -> Result<Refund, BeginRefundError> {
        let order = self
            .orders
            .get(&new.order_id)
            .ok_or_else(|| lost("order"))?;
        if guards.refund_cap
            && new.kind == RefundKind::Requested
            && order.status != OrderStatus::Confirmed
        {
            return Err(BeginRefundError::NotConfirmed);
        }
        if guards.unique_keys {
            let existing = self.refunds.values().find(|r| {
                r.out_refund_no == new.out_refund_no
                    || new
                        .request_key
                        .as_ref()
                        .is_some_and(|k| self.request_keys.get(k) == Some(&r.id))
            });
            if let Some(existing) = existing {
                return Err(BeginRefundError::Exists(Box::new(existing.clone())));
            }
        }
        let payment = self
            .payments
            .get(&new.payment_id)
            .filter(|p| p.order_id == new.order_id)
            .ok_or_else(|| lost("payment"))?;
        let left = payment.amount.get() - payment.refund_committed.get();
        let refundable_status = matches!(
            payment.status,
            PaymentStatus::Paid | PaymentStatus::PartiallyRefunded
        );
        if !refundable_status || new.amount.get() > left {
            self.unguarded += 1;
        }
        if guards.refund_cap && (!refundable_status || new.amount.get() > left) {
            return Err(BeginRefundError::Exceeded {
                refundable: Fen::new(left.max(0)),
            });
        }
        self.fence(guards, new.order_id, fence)?;
        // The tickets it gives back: each a VALID ticket of the order (tickets guard of the
        // SQL store's `hold_tickets`), held REFUNDING — all or none.
        let holdable = new.ticket_ids.iter().all(|id| {
            self.tickets
                .get(id)
                .is_some_and(|t| t.order_id == new.order_id && t.status == "VALID")
        });
        if !holdable {
            self.unguarded += 1;
            if guards.tickets {
                return Err(BeginRefundError::TicketsNotRefundable);
            }
        }
        for ticket_id in &new.ticket_ids {
            if let Some(t) = self.tickets.get_mut(ticket_id) {
                t.status = TicketStatus::Refunding.as_str().into();
            }
        }
        let id = self.id();
        let refund = Refund {
            id,
            order_id: new.order_id,
            payment_id: new.payment_id,
            out_refund_no: new.out_refund_no.clone(),
            refund_id: None,
            amount: new.amount,
            reason: new.reason.clone(),
            status: RefundStatus::Processing,
            kind: new.kind,
            attempts: 0,
            created_at: now,
            finished_at: None,
            ticket_ids: new.ticket_ids.clone(),
            operator: new.operator.clone(),
        };
        self.refunds.insert(id, refund.clone());
        if let Some(key) = &new.request_key {
            self.request_keys.insert(key.clone(), id);
        }
        let p = self.payments.get_mut(&new.payment_id).expect("checked");
        p.refund_committed = p.refund_committed.checked_add(new.amount).unwrap();
        Ok(refund)
    }

    fn finish_refund(
        &mut self,
        guards: &Guards,
        refund_id: i64,
        result: &RefundResult,
        fence: Fence,
        now: UnixMillis,
    ) -> Result<FinishOutcome, StoreError> {
        let refund = self
            .refunds
            .get(&refund_id)
            .cloned()
            .ok_or_else(|| lost("refund"))?;
        if guards.finish_once && refund.status.is_final() {
            return Ok(FinishOutcome::AlreadyFinal(refund.status));
        }
        self.fence(guards, refund.order_id, fence)?;
        let (status, gateway_id) = match result {
            RefundResult::Success { refund_id, .. } => (RefundStatus::Success, refund_id.clone()),
            RefundResult::Fail => (RefundStatus::Fail, None),
            RefundResult::Change => (RefundStatus::Change, None),
        };
        self.transitions.push(Transition {
            entity: "refund",
            id: refund_id,
            from: refund.status.as_str().into(),
            to: status.as_str().into(),
        });
        let r = self.refunds.get_mut(&refund_id).expect("checked");
        r.status = status;
        r.finished_at = Some(now);
        if gateway_id.is_some() {
            r.refund_id = gateway_id;
        }
        let order_cancelled = match status {
            RefundStatus::Success => self.record_success(guards, &refund, now),
            RefundStatus::Fail => {
                let p = self.payments.get_mut(&refund.payment_id).expect("exists");
                p.refund_committed = p.refund_committed.checked_sub(refund.amount).unwrap();
                for ticket_id in &refund.ticket_ids {
                    if let Some(t) = self.tickets.get_mut(ticket_id) {
                        if t.status == TicketStatus::Refunding.as_str() {
                            t.status = TicketStatus::Valid.as_str().into();
                        }
                    }
                }
                false
            }
            RefundStatus::Change | RefundStatus::Processing => false,
        };
        Ok(FinishOutcome::Finished { order_cancelled })
    }

    /// What a SUCCESS does beyond the refund (storage/refunds.rs `record_success`, through
    /// `policy::on_refund_success`).
    fn record_success(&mut self, guards: &Guards, refund: &Refund, now: UnixMillis) -> bool {
        for ticket_id in &refund.ticket_ids {
            self.cancel_ticket(guards, *ticket_id, TicketStatus::Refunding);
        }
        let live = self
            .tickets
            .values()
            .filter(|t| {
                t.order_id == refund.order_id
                    && (t.status == TicketStatus::Valid.as_str()
                        || t.status == TicketStatus::Refunding.as_str())
            })
            .count();
        let p = self.payments.get_mut(&refund.payment_id).expect("exists");
        p.refunded = p.refunded.checked_add(refund.amount).unwrap();
        let effect = policy::on_refund_success(refund.kind, p.refunded, p.amount, live);
        self.set_payment_status(refund.payment_id, effect.payment_status);
        let order_id = refund.order_id;
        let status = self.orders.get(&order_id).map(|o| o.status);
        if effect.counts_for_order
            && (!effect.marks_late_refund || status == Some(OrderStatus::Cancelled))
        {
            self.set_order(order_id, |o| {
                o.refunded = o.refunded.checked_add(refund.amount).unwrap();
                if effect.marks_late_refund {
                    o.cancel_reason = Some(CancelReason::LatePaymentRefunded);
                }
            });
        }
        if !effect.cancels_order || status != Some(OrderStatus::Confirmed) {
            return false;
        }
        self.set_order(order_id, |o| {
            o.status = OrderStatus::Cancelled;
            o.cancel_reason = Some(CancelReason::Refunded);
            o.cancelled_at = Some(now);
        });
        // The order is gone: so are the tickets no refund named (an operator's full refund).
        let valid: Vec<i64> = self
            .tickets
            .values()
            .filter(|t| t.order_id == order_id && t.status == TicketStatus::Valid.as_str())
            .map(|t| t.id)
            .collect();
        for ticket_id in valid {
            self.cancel_ticket(guards, ticket_id, TicketStatus::Valid);
        }
        true
    }

    /// A ticket in `from` is cancelled and its unit goes back on sale (sold → available).
    fn cancel_ticket(&mut self, guards: &Guards, ticket_id: i64, from: TicketStatus) {
        let Some(ticket) = self.tickets.get_mut(&ticket_id) else {
            return;
        };
        if ticket.status != from.as_str() {
            return;
        }
        ticket.status = TicketStatus::Cancelled.as_str().into();
        let item = OrderItem {
            ticket_type_id: ticket.ticket_type_id,
            quantity: 1,
            unit_price: Fen::ZERO,
        };
        self.shift(guards, &[item], |s| &mut s.sold, |s| &mut s.available);
    }

    fn expire_order(
        &mut self,
        guards: &Guards,
        order_id: i64,
        fence: Fence,
        now: UnixMillis,
    ) -> Result<bool, StoreError> {
        let order = self
            .orders
            .get(&order_id)
            .cloned()
            .ok_or_else(|| lost("order"))?;
        let open_trade = self
            .payments
            .values()
            .any(|p| p.order_id == order_id && p.status == PaymentStatus::NotPay);
        if guards.expire_guard && (order.status != OrderStatus::Pending || open_trade) {
            return Ok(false);
        }
        self.fence(guards, order_id, fence)?;
        if !self.shift(
            guards,
            &order.items,
            |s| &mut s.reserved,
            |s| &mut s.available,
        ) {
            return Err(StoreError::Other("reserved stock is missing".into()));
        }
        self.set_order(order_id, |o| {
            o.status = OrderStatus::Cancelled;
            o.cancel_reason = Some(CancelReason::Expired);
            o.cancelled_at = Some(now);
        });
        Ok(true)
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn upsert_user(
        &self,
        openid: &str,
        unionid: Option<&str>,
        _now: UnixMillis,
    ) -> Result<User, StoreError> {
        self.tx(true, |_, s| {
            if let Some(user) = s.users.values_mut().find(|u| u.openid == openid) {
                if unionid.is_some() {
                    user.unionid = unionid.map(str::to_owned);
                }
                return Ok(user.clone());
            }
            let id = s.id();
            let user = User {
                id,
                openid: openid.to_owned(),
                unionid: unionid.map(str::to_owned),
            };
            s.users.insert(id, user.clone());
            Ok(user)
        })
    }

    async fn find_user(&self, id: i64) -> Result<Option<User>, StoreError> {
        self.tx(false, |_, s| Ok(s.users.get(&id).cloned()))
    }
}

#[async_trait]
impl CatalogStore for MemoryStore {
    async fn create_ticket_type(
        &self,
        new: &NewTicketType,
        _now: UnixMillis,
    ) -> Result<TicketType, StoreError> {
        self.tx(true, |_, s| {
            let id = s.id();
            let ticket_type = TicketType {
                id,
                name: new.name.clone(),
                price: new.price,
                stock: Stock::new(new.total),
            };
            s.ticket_types.insert(id, ticket_type.clone());
            Ok(ticket_type)
        })
    }

    async fn ticket_type(&self, id: i64) -> Result<Option<TicketType>, StoreError> {
        self.tx(false, |_, s| Ok(s.ticket_types.get(&id).cloned()))
    }

    async fn ticket_types(&self) -> Result<Vec<TicketType>, StoreError> {
        self.tx(false, |_, s| Ok(s.ticket_types.values().cloned().collect()))
    }
}

#[async_trait]
impl OrderStore for MemoryStore {
    async fn create_order(
        &self,
        user_id: i64,
        lines: &[OrderLine],
        limits: PendingLimits,
        expires_at: UnixMillis,
        now: UnixMillis,
    ) -> Result<Order, CreateOrderError> {
        self.tx(true, |g, s| {
            let mut items = Vec::new();
            for line in lines {
                let t = s
                    .ticket_types
                    .get(&line.ticket_type_id)
                    .ok_or(CreateOrderError::UnknownTicketType(line.ticket_type_id))?;
                items.push(OrderItem {
                    ticket_type_id: t.id,
                    quantity: line.quantity,
                    unit_price: t.price,
                });
            }
            let pending: Vec<&Order> = s
                .orders
                .values()
                .filter(|o| o.user_id == user_id && o.status == OrderStatus::Pending)
                .collect();
            let held: i64 = pending
                .iter()
                .flat_map(|o| o.items.iter().map(|i| i.quantity))
                .sum();
            let more: i64 = lines.iter().map(|l| l.quantity).sum();
            let orders = i64::try_from(pending.len()).unwrap_or(i64::MAX);
            if !limits.allows(orders, held, more) {
                return Err(CreateOrderError::TooManyPending {
                    orders,
                    units: held,
                });
            }
            if !s.shift(g, &items, |st| &mut st.available, |st| &mut st.reserved) {
                let short = items
                    .iter()
                    .find(|i| s.ticket_types[&i.ticket_type_id].stock.available < i.quantity)
                    .map_or(0, |i| i.ticket_type_id);
                return Err(CreateOrderError::InsufficientStock(short));
            }
            let total = items
                .iter()
                .map(|i| i.unit_price.get() * i.quantity)
                .sum::<i64>();
            let id = s.id();
            let order = Order {
                id,
                user_id,
                status: OrderStatus::Pending,
                total: Fen::new(total),
                refunded: Fen::ZERO,
                cancel_reason: None,
                expires_at,
                created_at: now,
                paid_at: None,
                cancelled_at: None,
                items,
            };
            s.orders.insert(id, order.clone());
            Ok(order)
        })
    }

    async fn order(&self, order_id: i64) -> Result<Option<Order>, StoreError> {
        self.tx(false, |_, s| Ok(s.orders.get(&order_id).cloned()))
    }

    async fn payments(&self, order_id: i64) -> Result<Vec<Payment>, StoreError> {
        self.tx(false, |_, s| {
            Ok(s.payments
                .values()
                .filter(|p| p.order_id == order_id)
                .cloned()
                .collect())
        })
    }

    async fn payment_by_out_trade_no(
        &self,
        out_trade_no: &str,
    ) -> Result<Option<Payment>, StoreError> {
        self.tx(false, |_, s| {
            Ok(s.payments
                .values()
                .find(|p| p.out_trade_no == out_trade_no)
                .cloned())
        })
    }

    async fn tickets(&self, order_id: i64) -> Result<Vec<Ticket>, StoreError> {
        self.tx(false, |_, s| {
            Ok(s.tickets
                .values()
                .filter(|t| t.order_id == order_id)
                .cloned()
                .collect())
        })
    }

    async fn insert_prepay(
        &self,
        prepay: &NewPrepay,
        fence: Fence,
        now: UnixMillis,
    ) -> Result<Payment, StoreError> {
        self.tx(true, |g, s| {
            let order = s
                .orders
                .get(&prepay.order_id)
                .ok_or_else(|| lost("order"))?;
            if g.prepay_pending_only && order.status != OrderStatus::Pending {
                return Err(StoreError::Conflict("the order is not PENDING".into()));
            }
            if g.unique_keys
                && s.payments
                    .values()
                    .any(|p| p.out_trade_no == prepay.out_trade_no)
            {
                return Err(StoreError::Conflict("out_trade_no exists".into()));
            }
            s.fence(g, prepay.order_id, fence)?;
            let id = s.id();
            let payment = Payment {
                id,
                order_id: prepay.order_id,
                out_trade_no: prepay.out_trade_no.clone(),
                transaction_id: None,
                status: PaymentStatus::NotPay,
                amount: prepay.amount,
                refunded: Fen::ZERO,
                refund_committed: Fen::ZERO,
                openid: prepay.openid.clone(),
                pay_params: Some(prepay.pay_params.clone()),
                prepay_expires_at: prepay.prepay_expires_at,
                created_at: now,
                paid_at: None,
            };
            s.payments.insert(id, payment.clone());
            Ok(payment)
        })
    }

    async fn close_payment(
        &self,
        payment_id: i64,
        fence: Fence,
        _now: UnixMillis,
    ) -> Result<bool, StoreError> {
        self.tx(true, |g, s| {
            let payment = s.payments.get(&payment_id).ok_or_else(|| lost("payment"))?;
            if payment.status == PaymentStatus::Closed
                || (g.close_notpay_only && payment.status != PaymentStatus::NotPay)
            {
                return Ok(false);
            }
            let order_id = payment.order_id;
            s.fence(g, order_id, fence)?;
            s.set_payment_status(payment_id, PaymentStatus::Closed);
            Ok(true)
        })
    }

    async fn apply_payment(
        &self,
        payment: &PaymentApplication,
        rules: PaymentRules,
        fence: Fence,
        now: UnixMillis,
    ) -> Result<ApplyOutcome, StoreError> {
        self.tx(true, |g, s| s.apply_payment(g, payment, rules, fence, now))
    }

    async fn append_event(
        &self,
        _event: &NewPaymentEvent,
        _now: UnixMillis,
    ) -> Result<(), StoreError> {
        self.tx(true, |_, s| {
            s.events += 1;
            Ok(())
        })
    }

    async fn refunds(&self, order_id: i64) -> Result<Vec<Refund>, StoreError> {
        self.tx(false, |_, s| {
            Ok(s.refunds
                .values()
                .filter(|r| r.order_id == order_id)
                .cloned()
                .collect())
        })
    }

    async fn refund(&self, refund_id: i64) -> Result<Option<Refund>, StoreError> {
        self.tx(false, |_, s| Ok(s.refunds.get(&refund_id).cloned()))
    }

    async fn refund_for_request(&self, request_key: &str) -> Result<Option<Refund>, StoreError> {
        self.tx(false, |_, s| {
            Ok(s.request_keys
                .get(request_key)
                .and_then(|id| s.refunds.get(id))
                .cloned())
        })
    }

    async fn processing_refunds(&self) -> Result<Vec<Refund>, StoreError> {
        self.tx(false, |_, s| {
            Ok(s.refunds
                .values()
                .filter(|r| r.status == RefundStatus::Processing)
                .cloned()
                .collect())
        })
    }

    async fn begin_refund(
        &self,
        refund: &NewRefund,
        fence: Fence,
        now: UnixMillis,
    ) -> Result<Refund, BeginRefundError> {
        self.tx(true, |g, s| s.begin_refund(g, refund, fence, now))
    }

    async fn note_refund_attempt(
        &self,
        refund_id: i64,
        gateway_refund_id: Option<&str>,
        _now: UnixMillis,
    ) -> Result<(), StoreError> {
        self.tx(true, |_, s| {
            let r = s
                .refunds
                .get_mut(&refund_id)
                .ok_or_else(|| lost("refund"))?;
            r.attempts += 1;
            if let Some(id) = gateway_refund_id {
                r.refund_id = Some(id.to_owned());
            }
            Ok(())
        })
    }

    async fn finish_refund(
        &self,
        refund_id: i64,
        result: &RefundResult,
        fence: Fence,
        now: UnixMillis,
    ) -> Result<FinishOutcome, StoreError> {
        self.tx(true, |g, s| {
            s.finish_refund(g, refund_id, result, fence, now)
        })
    }

    async fn open_deadlines(&self, until: UnixMillis) -> Result<Vec<Deadline>, StoreError> {
        self.tx(false, |_, s| {
            let deadline = |order_id, kind, at| Deadline {
                key: DeadlineKey { order_id, kind },
                at,
                attempt: 0,
            };
            let orders = s
                .orders
                .values()
                .filter(|o| o.status == OrderStatus::Pending && o.expires_at <= until)
                .map(|o| deadline(o.id, DeadlineKind::OrderExpiry, o.expires_at));
            let payments = s
                .payments
                .values()
                .filter(|p| p.status == PaymentStatus::NotPay && p.prepay_expires_at <= until)
                .map(|p| {
                    let kind = DeadlineKind::PrepayExpiry { payment_id: p.id };
                    deadline(p.order_id, kind, p.prepay_expires_at)
                });
            Ok(orders.chain(payments).collect())
        })
    }

    async fn expire_order(
        &self,
        order_id: i64,
        fence: Fence,
        now: UnixMillis,
    ) -> Result<bool, StoreError> {
        self.tx(true, |g, s| s.expire_order(g, order_id, fence, now))
    }
}
