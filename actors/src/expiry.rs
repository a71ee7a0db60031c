//! Deadlines: every time-driven step of an order (a prepay's `time_expire`, the order's
//! `expiresAt`, the active queries that find a lost notify) as one ordered set, so one timer —
//! armed for the nearest — serves them all, instead of a sleeping task per order.

use std::collections::{BTreeSet, HashMap};

use crate::time::UnixMillis;

/// What is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeadlineKind {
    /// Ask the gateway whether this open prepay was paid (lost notifies).
    Reconcile { payment_id: i64, step: usize },
    /// The prepay's `time_expire`: query, then close.
    PrepayExpiry { payment_id: i64 },
    /// The order's `expiresAt`: settle its trades, then cancel it and release its stock.
    OrderExpiry,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeadlineKey {
    pub order_id: i64,
    pub kind: DeadlineKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    pub key: DeadlineKey,
    pub at: UnixMillis,
    /// Failed attempts so far (a gateway that does not answer is tried again later).
    pub attempt: u32,
}

/// The set of pending deadlines, ordered by time, at most one per key.
#[derive(Default)]
pub struct DeadlineQueue {
    by_time: BTreeSet<(UnixMillis, DeadlineKey)>,
    by_key: HashMap<DeadlineKey, (UnixMillis, u32)>,
}

impl DeadlineQueue {
    pub fn new() -> DeadlineQueue {
        DeadlineQueue::default()
    }

    /// Adds a deadline; one already pending for the same key is replaced.
    pub fn insert(&mut self, deadline: Deadline) {
        if let Some((at, _)) = self
            .by_key
            .insert(deadline.key, (deadline.at, deadline.attempt))
        {
            self.by_time.remove(&(at, deadline.key));
        }
        self.by_time.insert((deadline.at, deadline.key));
    }

    /// Adds a deadline unless the same key is already pending.
    pub fn insert_if_absent(&mut self, deadline: Deadline) -> bool {
        if self.by_key.contains_key(&deadline.key) {
            return false;
        }
        self.insert(deadline);
        true
    }

    pub fn next_at(&self) -> Option<UnixMillis> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Removes and answers everything due at `now`, earliest first.
    pub fn pop_due(&mut self, now: UnixMillis) -> Vec<Deadline> {
        let mut due = Vec::new();
        while let Some(&(at, key)) = self.by_time.first() {
            if at > now {
                break;
            }
            self.by_time.pop_first();
            let attempt = self.by_key.remove(&key).map_or(0, |(_, attempt)| attempt);
            due.push(Deadline { key, at, attempt });
        }
        due
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn deadline(order_id: i64, kind: DeadlineKind, at: i64) -> Deadline {
        Deadline {
            key: DeadlineKey { order_id, kind },
            at: UnixMillis(at),
            attempt: 0,
        }
    }

    #[test]
    fn one_deadline_per_key_the_latest_insert_wins() {
        let mut queue = DeadlineQueue::new();
        queue.insert(deadline(1, DeadlineKind::OrderExpiry, 50));
        queue.insert(deadline(1, DeadlineKind::OrderExpiry, 20));
        assert!(!queue.insert_if_absent(deadline(1, DeadlineKind::OrderExpiry, 5)));
        queue.insert(deadline(
            2,
            DeadlineKind::PrepayExpiry { payment_id: 9 },
            10,
        ));
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.next_at(), Some(UnixMillis(10)));
        assert!(queue.pop_due(UnixMillis(9)).is_empty());
        let due = queue.pop_due(UnixMillis(30));
        assert_eq!(due.iter().map(|d| d.at.0).collect::<Vec<_>>(), vec![10, 20]);
        assert!(queue.is_empty());
    }

    proptest! {
        /// Whatever is inserted, deadlines come out in time order, each key at most once, and
        /// nothing due is left behind.
        #[test]
        fn pops_in_order_without_losing_or_repeating(
            entries in proptest::collection::vec((0i64..20, 0i64..1000), 0..200),
            now in 0i64..1000,
        ) {
            let mut queue = DeadlineQueue::new();
            let mut latest = HashMap::new();
            for (order, at) in &entries {
                queue.insert(deadline(*order, DeadlineKind::OrderExpiry, *at));
                latest.insert(*order, *at);
            }
            let due = queue.pop_due(UnixMillis(now));
            prop_assert!(due.windows(2).all(|w| w[0].at <= w[1].at));
            let expected = latest.values().filter(|at| **at <= now).count();
            prop_assert_eq!(due.len(), expected);
            prop_assert_eq!(queue.len(), latest.len() - expected);
            prop_assert!(queue.next_at().is_none_or(|at| at.0 > now));
        }
    }
}
