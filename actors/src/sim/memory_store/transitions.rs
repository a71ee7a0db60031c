//! The store's transitions on its state, each one all or nothing under the store's mutex,
//! with the SQL store's guards (each switchable off).

use super::*;

impl State {
    pub(super) fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    /// Fencing: a write of `order_id` under `fence` is refused when a newer fence wrote it.
    pub(super) fn fence(
        &mut self,
        guards: &Guards,
        order_id: i64,
        fence: Fence,
    ) -> Result<(), StoreError> {
        let highest = self.fences.entry(order_id).or_insert(i64::MIN);
        if guards.fencing && fence.0 < *highest {
            return Err(StoreError::Fenced(*highest));
        }
        *highest = (*highest).max(fence.0);
        Ok(())
    }

    pub(super) fn set_order(&mut self, order_id: i64, change: impl FnOnce(&mut Order)) {
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

    pub(super) fn set_payment_status(&mut self, payment_id: i64, status: PaymentStatus) {
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
    pub(super) fn shift(
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

    pub(super) fn issue_tickets(&mut self, order_id: i64, items: &[OrderItem]) -> usize {
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

    pub(super) fn plan_refund(
        &mut self,
        payment: &Payment,
        kind: RefundKind,
        now: UnixMillis,
    ) -> Refund {
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

    pub(super) fn apply_payment(
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

    pub(super) fn begin_refund(
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

    pub(super) fn finish_refund(
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
    pub(super) fn record_success(
        &mut self,
        guards: &Guards,
        refund: &Refund,
        now: UnixMillis,
    ) -> bool {
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
    pub(super) fn cancel_ticket(&mut self, guards: &Guards, ticket_id: i64, from: TicketStatus) {
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

    pub(super) fn expire_order(
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
