//! What the engine reports for metrics. The application counts; the engine only tells.

pub trait Observer: Send + Sync {
    /// A refund reached a final state (or an uncertain one): `succeeded`, `failed`,
    /// `change`, `unknown`.
    fn refund(&self, _outcome: &'static str) {}

    /// A deadline fired: `prepay`, `order`, `reconcile`.
    fn deadline_fired(&self, _kind: &'static str) {}

    /// An unpaid trade was closed at the gateway.
    fn trade_closed(&self) {}

    /// A payment arrived for an order no longer waiting for it: `reconfirmed`, `refunded`
    /// (late), `double_refunded`.
    fn late_payment(&self, _outcome: &'static str) {}

    /// An active query found a payment no notify had announced.
    fn reconciliation_hit(&self) {}

    /// A follow-up (a deadline: `expiry`; a refund poll: `refund`) did not finish and is
    /// scheduled again. A steady climb means work is stuck: the gateway, the lock service or
    /// the database is failing it.
    fn followup_retried(&self, _kind: &'static str) {}
}

/// Reports nowhere.
pub struct Silent;

impl Observer for Silent {}
