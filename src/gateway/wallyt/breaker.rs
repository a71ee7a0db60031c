//! A circuit breaker: after `threshold` consecutive gateway faults it opens and calls fail fast
//! for `cooldown`; then one probe is let through, and its result closes or re-opens it. This
//! keeps a dead gateway from holding every order actor for a full timeout.
//!
//! The probe's result may never come back (its caller was cancelled — a client hung up, an
//! actor stopped — or it panicked): half-open therefore has a deadline, `cooldown` again, after
//! which the next caller becomes the probe. Without it one lost probe would keep the breaker
//! half-open, failing every call, until the process restarts.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is out; everyone else still fails fast until `until`, when the probe is
    /// presumed lost.
    HalfOpen {
        until: Instant,
    },
}

#[derive(Debug)]
pub struct CircuitBreaker {
    state: Mutex<State>,
    threshold: u32,
    cooldown: Duration,
}

impl CircuitBreaker {
    pub fn new(threshold: u32, cooldown: Duration) -> CircuitBreaker {
        CircuitBreaker {
            state: Mutex::new(State::Closed { failures: 0 }),
            threshold: threshold.max(1),
            cooldown,
        }
    }

    /// Whether a call may go out now.
    pub fn allow(&self) -> bool {
        self.allow_at(Instant::now())
    }

    /// [`allow`](Self::allow) on a given clock, so that tests need not sleep.
    fn allow_at(&self, now: Instant) -> bool {
        let mut state = self.state.lock().expect("breaker lock");
        match *state {
            State::Closed { .. } => true,
            State::Open { until } | State::HalfOpen { until } if now >= until => {
                *state = State::HalfOpen {
                    until: now + self.cooldown,
                };
                true
            }
            State::Open { .. } | State::HalfOpen { .. } => false,
        }
    }

    pub fn record_success(&self) {
        *self.state.lock().expect("breaker lock") = State::Closed { failures: 0 };
    }

    pub fn record_failure(&self) {
        self.record_failure_at(Instant::now())
    }

    fn record_failure_at(&self, now: Instant) {
        let mut state = self.state.lock().expect("breaker lock");
        let open = State::Open {
            until: now + self.cooldown,
        };
        *state = match *state {
            State::Closed { failures } if failures + 1 < self.threshold => State::Closed {
                failures: failures + 1,
            },
            State::Closed { .. } | State::HalfOpen { .. } | State::Open { .. } => open,
        };
    }

    pub fn is_open(&self) -> bool {
        !matches!(
            *self.state.lock().expect("breaker lock"),
            State::Closed { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOLDOWN: Duration = Duration::from_secs(30);

    #[test]
    fn opens_after_threshold_and_recovers_through_one_probe() {
        let breaker = CircuitBreaker::new(3, COOLDOWN);
        let t0 = Instant::now();
        for _ in 0..2 {
            assert!(breaker.allow_at(t0));
            breaker.record_failure_at(t0);
        }
        assert!(!breaker.is_open());
        breaker.record_failure_at(t0);
        assert!(breaker.is_open() && !breaker.allow_at(t0));
        let t1 = t0 + COOLDOWN;
        assert!(breaker.allow_at(t1), "the probe goes out");
        assert!(!breaker.allow_at(t1), "only one probe at a time");
        breaker.record_failure_at(t1);
        assert!(!breaker.allow_at(t1), "a failed probe re-opens");
        let t2 = t1 + COOLDOWN;
        assert!(breaker.allow_at(t2));
        breaker.record_success();
        assert!(!breaker.is_open() && breaker.allow_at(t2));
    }

    #[test]
    fn a_lost_probe_does_not_keep_it_half_open_forever() {
        let breaker = CircuitBreaker::new(1, COOLDOWN);
        let t0 = Instant::now();
        breaker.record_failure_at(t0);
        let probe_sent = t0 + COOLDOWN;
        assert!(
            breaker.allow_at(probe_sent),
            "the probe goes out, and never reports"
        );
        let almost = probe_sent + COOLDOWN - Duration::from_millis(1);
        assert!(!breaker.allow_at(almost), "others still wait for it");
        let late = probe_sent + COOLDOWN;
        assert!(
            breaker.allow_at(late),
            "after its deadline, another probe goes"
        );
        assert!(!breaker.allow_at(late), "one at a time still");
        breaker.record_success();
        assert!(breaker.allow_at(late) && !breaker.is_open());
    }
}
