//! The ExpiryScheduler: one timer service for every order. Deadlines sit in one ordered set
//! ([`DeadlineQueue`]); a single actix timer is armed for the nearest and re-armed whenever the
//! nearest changes — never a sleeping task per order. Memory dies with the process, so the set
//! is rebuilt from the store at start and topped up by a periodic sweep: a crash, a restart or
//! another node's work loses no expiry. What is due goes to the registry, which hands it to the
//! order's actor (under the order's lease, so with several nodes each expiry acts once).

use actix::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::expiry::{Deadline, DeadlineQueue};
use crate::ports::OrderStore;
use crate::time::{Clock, UnixMillis};

/// A deadline that has come.
pub struct DeadlineDue(pub Deadline);

impl Message for DeadlineDue {
    type Result = ();
}

pub struct ExpiryScheduler {
    queue: DeadlineQueue,
    store: Option<Arc<dyn OrderStore>>,
    clock: Arc<dyn Clock>,
    sink: Option<Recipient<DeadlineDue>>,
    sweep_interval: Duration,
    timer: Option<(UnixMillis, SpawnHandle)>,
    /// Pending deadlines, readable without a message (for `/metrics`).
    pending: Arc<AtomicUsize>,
}

impl ExpiryScheduler {
    /// `store` is where deadlines are rebuilt from (None: memory only, for benchmarks).
    pub fn new(
        store: Option<Arc<dyn OrderStore>>,
        clock: Arc<dyn Clock>,
        sweep_interval: Duration,
        pending: Arc<AtomicUsize>,
    ) -> ExpiryScheduler {
        ExpiryScheduler {
            queue: DeadlineQueue::new(),
            store,
            clock,
            sink: None,
            sweep_interval,
            timer: None,
            pending,
        }
    }

    /// Arms the one timer for the nearest deadline, if that changed.
    fn rearm(&mut self, ctx: &mut Context<Self>) {
        self.pending.store(self.queue.len(), Ordering::Relaxed);
        let next = self.queue.next_at();
        if self.timer.as_ref().map(|(at, _)| *at) == next {
            return;
        }
        if let Some((_, handle)) = self.timer.take() {
            ctx.cancel_future(handle);
        }
        if let Some(at) = next {
            let wait = u64::try_from(at.0 - self.clock.now().0).unwrap_or(0);
            let handle = ctx.run_later(Duration::from_millis(wait), |act, ctx| {
                act.timer = None;
                act.fire(ctx);
            });
            self.timer = Some((at, handle));
        }
    }

    fn fire(&mut self, ctx: &mut Context<Self>) {
        let Some(sink) = self.sink.clone() else {
            // Nobody to hand deadlines to yet: look again shortly.
            ctx.run_later(Duration::from_millis(50), |act, ctx| act.rearm(ctx));
            return;
        };
        for deadline in self.queue.pop_due(self.clock.now()) {
            sink.do_send(DeadlineDue(deadline));
        }
        self.rearm(ctx);
    }

    /// Adds the deadlines the store implies for the next two sweeps that are not pending here.
    fn sweep(&mut self, ctx: &mut Context<Self>) {
        let Some(store) = self.store.clone() else {
            return;
        };
        // Two sweeps ahead: whatever falls due before the next sweep is already held.
        let until = self.clock.now().plus(self.sweep_interval * 2);
        ctx.spawn(
            async move { store.open_deadlines(until).await }
                .into_actor(self)
                .map(|loaded, act, ctx| match loaded {
                    Ok(deadlines) => {
                        for deadline in deadlines {
                            act.queue.insert_if_absent(deadline);
                        }
                        act.rearm(ctx);
                    }
                    Err(error) => tracing::error!(event = "expiry.sweep_failed", %error),
                }),
        );
    }
}

impl Actor for ExpiryScheduler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(100_000);
        self.sweep(ctx);
        ctx.run_interval(self.sweep_interval, |act, ctx| act.sweep(ctx));
    }
}

/// Add (or move) a deadline.
pub struct Schedule(pub Deadline);

impl Message for Schedule {
    type Result = ();
}

impl Handler<Schedule> for ExpiryScheduler {
    type Result = ();

    fn handle(&mut self, Schedule(deadline): Schedule, ctx: &mut Context<Self>) {
        self.queue.insert(deadline);
        self.rearm(ctx);
    }
}

/// Where due deadlines go (the registry, started after the scheduler).
pub struct AttachSink(pub Recipient<DeadlineDue>);

impl Message for AttachSink {
    type Result = ();
}

impl Handler<AttachSink> for ExpiryScheduler {
    type Result = ();

    fn handle(&mut self, AttachSink(sink): AttachSink, ctx: &mut Context<Self>) {
        self.sink = Some(sink);
        self.rearm(ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expiry::{DeadlineKey, DeadlineKind};
    use std::sync::Mutex;

    /// The clock of paused tokio time, so deadlines and the timer agree.
    struct TokioClock(tokio::time::Instant);

    impl Clock for TokioClock {
        fn now(&self) -> UnixMillis {
            UnixMillis(self.0.elapsed().as_millis() as i64)
        }
    }

    struct Collect(Arc<Mutex<Vec<(i64, UnixMillis)>>>, Arc<dyn Clock>);

    impl Actor for Collect {
        type Context = Context<Self>;
    }

    impl Handler<DeadlineDue> for Collect {
        type Result = ();

        fn handle(&mut self, DeadlineDue(d): DeadlineDue, _: &mut Context<Self>) {
            self.0.lock().unwrap().push((d.key.order_id, self.1.now()));
        }
    }

    fn at(order_id: i64, millis: i64) -> Schedule {
        Schedule(Deadline {
            key: DeadlineKey {
                order_id,
                kind: DeadlineKind::OrderExpiry,
            },
            at: UnixMillis(millis),
            attempt: 0,
        })
    }

    #[actix::test]
    async fn fires_each_deadline_once_in_order_on_paused_time() {
        tokio::time::pause();
        let clock: Arc<dyn Clock> = Arc::new(TokioClock(tokio::time::Instant::now()));
        let fired = Arc::new(Mutex::new(Vec::new()));
        let pending = Arc::new(AtomicUsize::new(0));
        let scheduler = ExpiryScheduler::new(
            None,
            clock.clone(),
            Duration::from_secs(3600),
            pending.clone(),
        )
        .start();
        let sink = Collect(fired.clone(), clock.clone()).start();
        scheduler.send(AttachSink(sink.recipient())).await.unwrap();
        for (order, millis) in [(3, 3_000), (1, 1_000), (2, 2_000), (4, 60_000)] {
            scheduler.send(at(order, millis)).await.unwrap();
        }
        // A later deadline for order 4 replaces its first one.
        scheduler.send(at(4, 4_000)).await.unwrap();
        assert_eq!(pending.load(Ordering::Relaxed), 4);

        tokio::time::sleep(Duration::from_millis(2_500)).await;
        let seen: Vec<i64> = fired.lock().unwrap().iter().map(|(o, _)| *o).collect();
        assert_eq!(seen, vec![1, 2]);
        tokio::time::sleep(Duration::from_secs(120)).await;
        let fired = fired.lock().unwrap().clone();
        assert_eq!(
            fired.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        // On paused time each fires exactly at its deadline.
        let expected = [1_000, 2_000, 3_000, 4_000];
        for ((_, when), want) in fired.iter().zip(expected) {
            assert!((when.0 - want).abs() <= 5, "fired at {} for {want}", when.0);
        }
        assert_eq!(pending.load(Ordering::Relaxed), 0);
    }
}
