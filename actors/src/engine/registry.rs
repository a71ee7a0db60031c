//! The OrderRegistry supervises the order actors: it spawns one on the first message for an
//! order, hands out its address, forgets it when it stops (idle, or after a panic killed it)
//! and spawns a fresh one on the next message. It never keeps an actor alive by itself.

use actix::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
fn retry_after(attempt: u32) -> std::time::Duration {
    const SECONDS: [u64; 7] = [1, 2, 5, 10, 30, 60, 300];
    std::time::Duration::from_secs(SECONDS[(attempt as usize).min(SECONDS.len() - 1)])
}

/// A deadline came: its order's actor does the work; what follows is scheduled, and a failure
/// is retried with backoff (the order keeps its stock until the gateway has answered).
impl Handler<DeadlineDue> for OrderRegistry {
    type Result = ();

    fn handle(&mut self, DeadlineDue(deadline): DeadlineDue, ctx: &mut Context<Self>) {
        let actor = self.actor_of(deadline.key.order_id, ctx);
        let (scheduler, clock) = (self.engine.expiry.clone(), self.engine.clock.clone());
        ctx.spawn(
            async move {
                match actor.send(Expire(deadline.key.kind)).await {
                    Ok(Ok(follow_ups)) => {
                        for next in follow_ups {
                            scheduler.do_send(Schedule(next));
                        }
                    }
                    failed => {
                        let reason = match failed {
                            Ok(Err(error)) => error.to_string(),
                            Err(error) => error.to_string(),
                            Ok(Ok(_)) => String::new(),
                        };
                        tracing::warn!(event = "expiry.retry", order_id = deadline.key.order_id, attempt = deadline.attempt, %reason);
                        scheduler.do_send(Schedule(Deadline {
                            at: clock.now().plus(retry_after(deadline.attempt)),
                            attempt: deadline.attempt + 1,
                            ..deadline
                        }));
                    }
                }
            }
            .into_actor(self),
        );
    }
}
