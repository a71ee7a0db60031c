//! Stopping a node's long-lived actors. Their timers (sweeps, renewals, the registry's prune)
//! keep an actix actor alive for ever; a node that shuts down — or, in the simulator, dies —
//! must stop them, or what it scheduled keeps running after it is gone.

use actix::prelude::*;

use super::expiry_scheduler::ExpiryScheduler;
use super::gateway_supervisor::GatewaySupervisor;
use super::lock_supervisor::LockSupervisor;
use super::refund_poller::RefundPoller;
use super::registry::OrderRegistry;

/// Stop now; work in flight is dropped (the store's state and the durable follow-ups say
/// what is left, and another node or the next start finishes it).
pub struct Halt;

impl Message for Halt {
    type Result = ();
}

macro_rules! halts {
    ($($actor:ty),*) => {$(
        impl Handler<Halt> for $actor {
            type Result = ();

            fn handle(&mut self, _: Halt, ctx: &mut Context<Self>) {
                ctx.stop();
            }
        }
    )*};
}

halts!(
    OrderRegistry,
    ExpiryScheduler,
    RefundPoller,
    LockSupervisor,
    GatewaySupervisor
);
