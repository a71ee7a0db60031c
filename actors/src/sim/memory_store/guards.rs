//! The in-memory store's guards, one switch per `WHERE` clause or unique index of the SQL
//! store.

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
