//! The OrderRegistry supervises the order actors: it spawns one on the first message for an
//! order, hands out its address, forgets it when it stops (idle, or after a panic killed it)
//! and spawns a fresh one on the next message. It never keeps an actor alive by itself.

use actix::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::error::ActorError;
use super::expiry_scheduler::{DeadlineDue, Schedule};
use super::messages::Expire;
use super::order_actor::OrderActor;
use super::Engine;
use crate::expiry::Deadline;

pub struct OrderRegistry {
    engine: Engine,
    actors: HashMap<i64, Addr<OrderActor>>,
    /// The number of live order actors, readable without a message (for `/metrics`).
    live: Arc<AtomicUsize>,
}

impl OrderRegistry {
    pub fn new(engine: Engine, live: Arc<AtomicUsize>) -> OrderRegistry {
        OrderRegistry {
            engine,
            actors: HashMap::new(),
            live,
        }
    }

    fn publish(&self) {
        self.live.store(self.actors.len(), Ordering::Relaxed);
    }

    fn actor_of(&mut self, order_id: i64, ctx: &mut Context<Self>) -> Addr<OrderActor> {
        if let Some(addr) = self.actors.get(&order_id).filter(|a| a.connected()) {
            return addr.clone();
        }
        let addr = OrderActor::new(order_id, self.engine.clone(), ctx.address()).start();
        self.actors.insert(order_id, addr.clone());
        self.publish();
        addr
    }

    /// Drops actors whose mailbox closed without telling us (a panic ends them that way).
    fn prune(&mut self) {
        self.actors.retain(|_, addr| addr.connected());
        self.publish();
    }
}

impl Actor for OrderRegistry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(4096);
        ctx.run_interval(Duration::from_secs(1), |act, _| act.prune());
    }
}

/// The address of the order's actor, spawning it if needed.
pub struct Lookup(pub i64);

impl Message for Lookup {
    type Result = Addr<OrderActor>;
}

impl Handler<Lookup> for OrderRegistry {
    type Result = MessageResult<Lookup>;

    fn handle(&mut self, Lookup(order_id): Lookup, ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.actor_of(order_id, ctx))
    }
}

pub struct ActorStopped {
    pub order_id: i64,
    pub addr: Addr<OrderActor>,
}

impl Message for ActorStopped {
    type Result = ();
}

impl Handler<ActorStopped> for OrderRegistry {
    type Result = ();

    fn handle(&mut self, msg: ActorStopped, _: &mut Context<Self>) {
        // Only forget it if it is still the registered one (a new one may have replaced it).
        if self.actors.get(&msg.order_id) == Some(&msg.addr) {
            self.actors.remove(&msg.order_id);
            self.publish();
        }
    }
}

/// How many order actors are alive.
pub struct LiveActors;

impl Message for LiveActors {
    type Result = usize;
}

impl Handler<LiveActors> for OrderRegistry {
    type Result = usize;

    fn handle(&mut self, _: LiveActors, _: &mut Context<Self>) -> usize {
        self.prune();
        self.actors.len()
    }
}

/// Waits before retrying a deadline whose work failed (most often: the gateway did not answer).
fn retry_after(attempt: u32) -> Duration {
    const SECONDS: [u64; 7] = [1, 2, 5, 10, 30, 60, 300];
    Duration::from_secs(SECONDS[(attempt as usize).min(SECONDS.len() - 1)])
}

/// A busy order (the lock service is down, another node holds the order, or its actor went
/// away) is retried after this, however often it failed before.
const BUSY_RETRY: Duration = Duration::from_secs(1);

/// When to retry a deadline whose work failed, and the attempt number it then carries.
/// The gateway's backoff (1 s … 5 min) is for the gateway: a busy order fails fast and
/// locally, so it is retried within a second without using that backoff up — after a lock
/// service outage the work goes on within seconds of its return, not minutes.
fn retry_plan(deadline: &Deadline, busy: bool) -> (Duration, u32) {
    if busy {
        (BUSY_RETRY, deadline.attempt)
    } else {
        (retry_after(deadline.attempt), deadline.attempt + 1)
    }
}

/// A deadline came: its order's actor does the work; what follows is scheduled, and a failure
/// is retried (the order keeps its stock until the gateway has answered).
impl Handler<DeadlineDue> for OrderRegistry {
    type Result = ();

    fn handle(&mut self, DeadlineDue(deadline): DeadlineDue, ctx: &mut Context<Self>) {
        let actor = self.actor_of(deadline.key.order_id, ctx);
        let (scheduler, clock) = (self.engine.expiry.clone(), self.engine.clock.clone());
        let observer = self.engine.observer.clone();
        ctx.spawn(
            async move {
                let (reason, busy) = match actor.send(Expire(deadline.key.kind)).await {
                    Ok(Ok(follow_ups)) => {
                        for next in follow_ups {
                            scheduler.do_send(Schedule(next));
                        }
                        return;
                    }
                    Ok(Err(error)) => {
                        let busy = matches!(error, ActorError::Busy(_));
                        (error.to_string(), busy)
                    }
                    Err(error) => (error.to_string(), true),
                };
                let (wait, attempt) = retry_plan(&deadline, busy);
                observer.followup_retried("expiry");
                tracing::warn!(event = "expiry.retry", order_id = deadline.key.order_id, attempt, %reason);
                scheduler.do_send(Schedule(Deadline {
                    at: clock.now().plus(wait),
                    attempt,
                    ..deadline
                }));
            }
            .into_actor(self),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expiry::{DeadlineKey, DeadlineKind};
    use crate::time::UnixMillis;

    fn failed(attempt: u32) -> Deadline {
        Deadline {
            key: DeadlineKey {
                order_id: 1,
                kind: DeadlineKind::OrderExpiry,
            },
            at: UnixMillis(0),
            attempt,
        }
    }

    #[test]
    fn a_busy_order_is_retried_within_a_second_however_often_it_failed() {
        for attempt in [0, 3, 6, 40] {
            assert_eq!(retry_plan(&failed(attempt), true), (BUSY_RETRY, attempt));
        }
    }

    #[test]
    fn other_failures_back_off_up_to_five_minutes() {
        let plans: Vec<(u64, u32)> = (0..9)
            .map(|attempt| retry_plan(&failed(attempt), false))
            .map(|(wait, next)| (wait.as_secs(), next))
            .collect();
        let waits: Vec<u64> = plans.iter().map(|(wait, _)| *wait).collect();
        assert_eq!(waits, [1, 2, 5, 10, 30, 60, 300, 300, 300]);
        let attempts: Vec<u32> = plans.iter().map(|(_, next)| *next).collect();
        assert_eq!(attempts, (1..10).collect::<Vec<u32>>());
    }
}
