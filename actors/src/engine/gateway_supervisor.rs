//! The GatewaySupervisor owns the payment gateway client (and with it the circuit breaker), so
//! order actors never hold one. Calls run concurrently: one slow trade does not queue the
//! others. A panic in a call is contained to that call's answer.

use actix::prelude::*;
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use crate::ports::{
    GatewayFailure, PaymentGateway, PrepayCreated, PrepayRequest, RefundAccepted, RefundProgress,
    RefundRequest, TradeStatus,
};

pub struct GatewaySupervisor {
    gateway: Option<Arc<dyn PaymentGateway>>,
}

impl GatewaySupervisor {
    pub fn new(gateway: Option<Arc<dyn PaymentGateway>>) -> GatewaySupervisor {
        GatewaySupervisor { gateway }
    }

    fn call<T, F>(
        &self,
        call: impl FnOnce(Arc<dyn PaymentGateway>) -> F,
    ) -> ResponseFuture<Result<T, GatewayFailure>>
    where
        F: std::future::Future<Output = Result<T, GatewayFailure>> + Send + 'static,
        T: 'static,
    {
        let Some(gateway) = self.gateway.clone() else {
            return Box::pin(async { Err(GatewayFailure::NotConfigured) });
        };
        let future = call(gateway);
        Box::pin(async move {
            AssertUnwindSafe(future)
                .catch_unwind()
                .await
                .unwrap_or_else(|_| {
                    Err(GatewayFailure::Unavailable(
                        "the gateway client panicked".into(),
                    ))
                })
        })
    }
}

impl Actor for GatewaySupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(1024);
    }
}

pub struct CreatePrepay(pub PrepayRequest);

impl Message for CreatePrepay {
    type Result = Result<PrepayCreated, GatewayFailure>;
}

pub struct QueryTrade(pub String);

impl Message for QueryTrade {
    type Result = Result<TradeStatus, GatewayFailure>;
}

pub struct CloseTrade(pub String);

impl Message for CloseTrade {
    type Result = Result<(), GatewayFailure>;
}

impl Handler<CreatePrepay> for GatewaySupervisor {
    type Result = ResponseFuture<Result<PrepayCreated, GatewayFailure>>;

    fn handle(
        &mut self,
        CreatePrepay(request): CreatePrepay,
        _: &mut Context<Self>,
    ) -> Self::Result {
        self.call(|g| async move { g.create_prepay(&request).await })
    }
}

impl Handler<QueryTrade> for GatewaySupervisor {
    type Result = ResponseFuture<Result<TradeStatus, GatewayFailure>>;

    fn handle(
        &mut self,
        QueryTrade(out_trade_no): QueryTrade,
        _: &mut Context<Self>,
    ) -> Self::Result {
        self.call(|g| async move { g.query_trade(&out_trade_no).await })
    }
}

impl Handler<CloseTrade> for GatewaySupervisor {
    type Result = ResponseFuture<Result<(), GatewayFailure>>;

    fn handle(
        &mut self,
        CloseTrade(out_trade_no): CloseTrade,
        _: &mut Context<Self>,
    ) -> Self::Result {
        self.call(|g| async move { g.close_trade(&out_trade_no).await })
    }
}

pub struct AskRefund(pub RefundRequest);

impl Message for AskRefund {
    type Result = Result<RefundAccepted, GatewayFailure>;
}

pub struct QueryRefund(pub String);

impl Message for QueryRefund {
    type Result = Result<RefundProgress, GatewayFailure>;
}

impl Handler<AskRefund> for GatewaySupervisor {
    type Result = ResponseFuture<Result<RefundAccepted, GatewayFailure>>;

    fn handle(&mut self, AskRefund(request): AskRefund, _: &mut Context<Self>) -> Self::Result {
        self.call(|g| async move { g.refund(&request).await })
    }
}

impl Handler<QueryRefund> for GatewaySupervisor {
    type Result = ResponseFuture<Result<RefundProgress, GatewayFailure>>;

    fn handle(
        &mut self,
        QueryRefund(out_refund_no): QueryRefund,
        _: &mut Context<Self>,
    ) -> Self::Result {
        self.call(|g| async move { g.refund_progress(&out_refund_no).await })
    }
}
