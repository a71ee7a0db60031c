//! What the engine reports for metrics. The application counts; the engine only tells.

pub trait Observer: Send + Sync {
    /// A refund reached a final state (or an uncertain one): `succeeded`, `failed`,
    /// `change`, `unknown`.
    fn refund(&self, _outcome: &'static str) {}
}

/// Reports nowhere.
pub struct Silent;

impl Observer for Silent {}
