//! One actor per live order. It is a serializer, not a cache: each message reloads the order
//! from the store, under the order's lease, and its handlers return `AtomicResponse` so the
//! next message waits until the previous one — awaits included — is finished. Without that an
//! actix actor would interleave a prepay's gateway call with a notify's confirmation.

use actix::prelude::*;
use tokio::time::Instant;

use super::deadlines;
use super::error::ActorError;
use super::flows;
use super::messages::{
    ApplyNotified, ApplyPaid, CheckRefund, Expire, Prepay, PrepayAnswer, Refund, SyncWithGateway,
};
use super::refunds;
use super::registry::{ActorStopped, OrderRegistry};
use super::sync::{self, SyncAll, SyncReport};
use super::Engine;
use crate::expiry::Deadline;
use crate::ports::ApplyOutcome;
use crate::refund::{Refund as RefundRecord, RefundStatus};

pub struct OrderActor {
    order_id: i64,
    engine: Engine,
    registry: Addr<OrderRegistry>,
    last_gateway_query: Option<Instant>,
    idle_timer: Option<SpawnHandle>,
}

impl OrderActor {
    pub fn new(order_id: i64, engine: Engine, registry: Addr<OrderRegistry>) -> OrderActor {
        OrderActor {
            order_id,
            engine,
            registry,
            last_gateway_query: None,
            idle_timer: None,
        }
    }

    /// Every message re-arms the idle timer; an actor nobody talks to stops itself. The timer
    /// cannot fire mid-message: actix does not run spawned futures while an atomic one waits.
    fn touch(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.idle_timer.take() {
            ctx.cancel_future(handle);
        }
        let idle = self.engine.config.idle_timeout;
        self.idle_timer = Some(ctx.run_later(idle, |_, ctx| ctx.stop()));
    }
}

impl Actor for OrderActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.engine.config.mailbox_capacity);
        self.touch(ctx);
    }

    fn stopped(&mut self, ctx: &mut Context<Self>) {
        self.registry.do_send(ActorStopped {
            order_id: self.order_id,
            addr: ctx.address(),
        });
    }
}

impl Handler<Prepay> for OrderActor {
    type Result = AtomicResponse<Self, Result<PrepayAnswer, ActorError>>;

    fn handle(&mut self, msg: Prepay, ctx: &mut Context<Self>) -> Self::Result {
        self.touch(ctx);
        let (engine, order_id) = (self.engine.clone(), self.order_id);
        AtomicResponse::new(Box::pin(
            async move {
                let work =
                    |engine: Engine| async move { flows::prepay(&engine, order_id, msg).await };
                engine.with_lease(order_id, work).await
            }
            .into_actor(self),
        ))
    }
}

impl Handler<ApplyPaid> for OrderActor {
    type Result = AtomicResponse<Self, Result<ApplyOutcome, ActorError>>;

    fn handle(
        &mut self,
        ApplyPaid(application): ApplyPaid,
        ctx: &mut Context<Self>,
    ) -> Self::Result {
        self.touch(ctx);
        let (engine, order_id) = (self.engine.clone(), self.order_id);
        AtomicResponse::new(Box::pin(
            async move {
                let work = |engine: Engine| async move {
                    flows::apply_paid(&engine, order_id, application, "notify", None).await
                };
                engine.with_lease(order_id, work).await
            }
            .into_actor(self),
        ))
    }
}

impl Handler<ApplyNotified> for OrderActor {
    type Result = AtomicResponse<Self, Result<ApplyOutcome, ActorError>>;

    fn handle(&mut self, msg: ApplyNotified, ctx: &mut Context<Self>) -> Self::Result {
        self.touch(ctx);
        let (engine, order_id) = (self.engine.clone(), self.order_id);
        AtomicResponse::new(Box::pin(
            async move {
                let work = |engine: Engine| async move {
                    let notify = Some(msg.notify);
                    flows::apply_paid(&engine, order_id, msg.application, "notify", notify).await
                };
                engine.with_lease(order_id, work).await
            }
            .into_actor(self),
        ))
    }
}

impl Handler<SyncWithGateway> for OrderActor {
    type Result = AtomicResponse<Self, Result<(), ActorError>>;

    fn handle(&mut self, _: SyncWithGateway, ctx: &mut Context<Self>) -> Self::Result {
        self.touch(ctx);
        let interval = self.engine.config.status_query_interval;
        if self
            .last_gateway_query
            .is_some_and(|at| at.elapsed() < interval)
        {
            return AtomicResponse::new(Box::pin(fut::ready(Ok(()))));
        }
        self.last_gateway_query = Some(Instant::now());
        let (engine, order_id) = (self.engine.clone(), self.order_id);
        AtomicResponse::new(Box::pin(
            async move {
                let work = |engine: Engine| async move {
                    flows::sync_with_gateway(&engine, order_id).await
                };
                engine.with_lease(order_id, work).await
            }
            .into_actor(self),
        ))
    }
}

impl Handler<Refund> for OrderActor {
    type Result = AtomicResponse<Self, Result<RefundRecord, ActorError>>;

    fn handle(&mut self, msg: Refund, ctx: &mut Context<Self>) -> Self::Result {
        self.touch(ctx);
        let (engine, order_id) = (self.engine.clone(), self.order_id);
        AtomicResponse::new(Box::pin(
            async move {
                let work =
                    |engine: Engine| async move { refunds::refund(&engine, order_id, msg).await };
                engine.with_lease(order_id, work).await
            }
            .into_actor(self),
        ))
    }
}

impl Handler<CheckRefund> for OrderActor {
    type Result = AtomicResponse<Self, Result<RefundStatus, ActorError>>;

    fn handle(&mut self, msg: CheckRefund, ctx: &mut Context<Self>) -> Self::Result {
        self.touch(ctx);
        let (engine, order_id) = (self.engine.clone(), self.order_id);
        AtomicResponse::new(Box::pin(
            async move {
                let work =
                    |engine: Engine| async move { refunds::check(&engine, msg.refund_id).await };
                engine.with_lease(order_id, work).await
            }
            .into_actor(self),
        ))
    }
}

impl Handler<Expire> for OrderActor {
    type Result = AtomicResponse<Self, Result<Vec<Deadline>, ActorError>>;

    fn handle(&mut self, Expire(kind): Expire, ctx: &mut Context<Self>) -> Self::Result {
        self.touch(ctx);
        let (engine, order_id) = (self.engine.clone(), self.order_id);
        AtomicResponse::new(Box::pin(
            async move {
                let work = |engine: Engine| async move {
                    deadlines::expire(&engine, order_id, kind).await
                };
                engine.with_lease(order_id, work).await
            }
            .into_actor(self),
        ))
    }
}

impl Handler<SyncAll> for OrderActor {
    type Result = AtomicResponse<Self, Result<SyncReport, ActorError>>;

    fn handle(&mut self, _: SyncAll, ctx: &mut Context<Self>) -> Self::Result {
        self.touch(ctx);
        let (engine, order_id) = (self.engine.clone(), self.order_id);
        AtomicResponse::new(Box::pin(
            async move {
                let work = |engine: Engine| async move { sync::sync_all(&engine, order_id).await };
                engine.with_lease(order_id, work).await
            }
            .into_actor(self),
        ))
    }
}
