//! The RefundPoller keeps asking about refunds the gateway has not finished, with backoff,
//! through each order's actor (so a poll never races a client's refund of the same order, and
//! under the order's lease, so one node at a time asks). It is a cache of the PROCESSING rows,
//! never the only record: it reloads them at start and again every sweep, so a refund begun
//! by a node that died — or planned with a late payment — is finished by whichever node lives.

use actix::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use super::error::ActorError;
use super::messages::CheckRefund;
use super::registry::{Lookup, OrderRegistry};
use crate::ports::{Observer, OrderStore};

/// Multiples of the base interval between polls; the last one repeats.
const BACKOFF: [u32; 8] = [1, 2, 5, 10, 30, 60, 120, 300];

fn backoff(base: Duration, attempt: usize) -> Duration {
    base * BACKOFF[attempt.min(BACKOFF.len() - 1)]
}

struct Due {
    order_id: i64,
    attempt: usize,
    at: Instant,
    in_flight: bool,
}

pub struct RefundPoller {
    store: Arc<dyn OrderStore>,
    registry: Option<Addr<OrderRegistry>>,
    observer: Arc<dyn Observer>,
    base: Duration,
    sweep: Duration,
    /// Ordered by refund id, so that a seeded simulation polls in the same order every run.
    due: BTreeMap<i64, Due>,
    /// The one timer, armed for the earliest refund due (none while nothing is): no wake-ups
    /// while there is nothing to ask.
    timer: Option<(Instant, SpawnHandle)>,
}

impl RefundPoller {
    pub fn new(
        store: Arc<dyn OrderStore>,
        observer: Arc<dyn Observer>,
        base: Duration,
        sweep: Duration,
    ) -> RefundPoller {
        RefundPoller {
            store,
            observer,
            registry: None,
            base,
            sweep,
            due: BTreeMap::new(),
            timer: None,
        }
    }

    /// Arms the timer for the earliest refund due that is not being asked about already.
    fn rearm(&mut self, ctx: &mut Context<Self>) {
        let next = if self.registry.is_none() && !self.due.is_empty() {
            // Nobody to ask through yet: look again shortly.
            Some(Instant::now() + Duration::from_millis(50))
        } else {
            self.due
                .values()
                .filter(|d| !d.in_flight)
                .map(|d| d.at)
                .min()
        };
        if self.timer.as_ref().map(|(at, _)| *at) == next {
            return;
        }
        if let Some((_, handle)) = self.timer.take() {
            ctx.cancel_future(handle);
        }
        if let Some(at) = next {
            let wait = at.saturating_duration_since(Instant::now());
            let handle = ctx.run_later(wait, |act, ctx| {
                act.timer = None;
                act.tick(ctx);
                act.rearm(ctx);
            });
            self.timer = Some((at, handle));
        }
    }

    /// Adds the PROCESSING refunds of the store that are not watched yet.
    fn reload(&mut self, ctx: &mut Context<Self>) {
        let store = self.store.clone();
        ctx.spawn(
            async move { store.processing_refunds().await }
                .into_actor(self)
                .map(|loaded, act, ctx| {
                    match loaded {
                        Ok(refunds) => {
                            for refund in refunds {
                                act.due.entry(refund.id).or_insert(Due {
                                    order_id: refund.order_id,
                                    attempt: 0,
                                    at: Instant::now(),
                                    in_flight: false,
                                });
                            }
                        }
                        Err(error) => tracing::error!(event = "refund.poller.load_failed", %error),
                    }
                    act.rearm(ctx);
                }),
        );
    }

    fn delay(&self, attempt: usize) -> Duration {
        backoff(self.base, attempt)
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let Some(registry) = self.registry.clone() else {
            return;
        };
        let now = Instant::now();
        let ready: Vec<(i64, i64)> = self
            .due
            .iter_mut()
            .filter(|(_, due)| !due.in_flight && due.at <= now)
            .map(|(&refund_id, due)| {
                due.in_flight = true;
                (refund_id, due.order_id)
            })
            .collect();
        for (refund_id, order_id) in ready {
            let registry = registry.clone();
            let check = async move {
                let actor = registry.send(Lookup(order_id)).await.map_err(busy)?;
                actor.send(CheckRefund { refund_id }).await.map_err(busy)?
            };
            ctx.spawn(check.into_actor(self).map(move |checked, act, ctx| {
                let Some(due) = act.due.get_mut(&refund_id) else {
                    return;
                };
                match checked {
                    Ok(status) if status.is_final() => {
                        act.due.remove(&refund_id);
                        act.rearm(ctx);
                        return;
                    }
                    // The order was busy (its lease held elsewhere, or the lock service down):
                    // nothing was asked, so the backoff is not used up — look again soon.
                    Err(ActorError::Busy(_)) => act.observer.followup_retried("refund"),
                    _ => {
                        act.observer.followup_retried("refund");
                        due.attempt += 1
                    }
                }
                due.in_flight = false;
                due.at = Instant::now() + backoff(act.base, due.attempt);
                act.rearm(ctx);
            }));
        }
    }
}

fn busy(error: MailboxError) -> ActorError {
    ActorError::Busy(format!("refund poller: {error}"))
}

impl Actor for RefundPoller {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.reload(ctx);
        ctx.run_interval(self.sweep, |act, ctx| act.reload(ctx));
    }
}

/// Keep asking about this refund until it is final.
pub struct Watch {
    pub refund_id: i64,
    pub order_id: i64,
}

impl Message for Watch {
    type Result = ();
}

impl Handler<Watch> for RefundPoller {
    type Result = ();

    fn handle(&mut self, msg: Watch, ctx: &mut Context<Self>) {
        let at = Instant::now() + self.delay(0);
        self.due.entry(msg.refund_id).or_insert(Due {
            order_id: msg.order_id,
            attempt: 0,
            at,
            in_flight: false,
        });
        self.rearm(ctx);
    }
}

/// The registry to reach order actors through (it is started after the poller).
pub struct Attach(pub Addr<OrderRegistry>);

impl Message for Attach {
    type Result = ();
}

impl Handler<Attach> for RefundPoller {
    type Result = ();

    fn handle(&mut self, Attach(registry): Attach, ctx: &mut Context<Self>) {
        self.registry = Some(registry);
        self.rearm(ctx);
    }
}

/// How many refunds are being watched.
pub struct Watching;

impl Message for Watching {
    type Result = usize;
}

impl Handler<Watching> for RefundPoller {
    type Result = usize;

    fn handle(&mut self, _: Watching, _: &mut Context<Self>) -> usize {
        self.due.len()
    }
}
