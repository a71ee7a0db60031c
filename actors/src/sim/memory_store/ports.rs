//! The engine's store ports over the in-memory state: every call one "transaction", with
//! the seeded faults around it.

use super::*;

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
