//! Starting the order engine and talking to it from the HTTP edge. The engine's actors live on
//! their own actix system thread, shared by every HTTP worker; the edge reaches an order's
//! actor through the registry and waits a bounded time (a full mailbox or a stuck order
//! answers 503, never hangs a request).

use actix::dev::ToEnvelope;
use actix::{Actor, Addr, Handler, MailboxError, Message, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wallyt_pay_actors::engine::gateway_supervisor::GatewaySupervisor;
use wallyt_pay_actors::engine::lock_supervisor::LockSupervisor;
use wallyt_pay_actors::engine::refund_poller::{Attach, RefundPoller, Watching};
use wallyt_pay_actors::engine::{
    Engine, EngineConfig, EngineError, Lookup, OrderActor, OrderRegistry,
};
use wallyt_pay_actors::ports::{LockManager, Observer, OrderStore, PaymentGateway};
use wallyt_pay_actors::Clock;

#[derive(Clone)]
pub struct EngineHandle {
    registry: Addr<OrderRegistry>,
    refund_poller: Addr<RefundPoller>,
    live: Arc<AtomicUsize>,
    system: System,
    send_timeout: Duration,
}

impl EngineHandle {
    pub fn start(
        store: Arc<dyn OrderStore>,
        gateway: Option<Arc<dyn PaymentGateway>>,
        locks: Arc<dyn LockManager>,
        clock: Arc<dyn Clock>,
        observer: Arc<dyn Observer>,
        config: EngineConfig,
    ) -> EngineHandle {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("order-engine".into())
            .spawn(move || {
                let system = System::new();
                system.block_on(async move {
                    let (ttl, wait) = (config.lease_ttl, config.lease_wait);
                    // The poller resumes every PROCESSING refund it finds in the store.
                    let refund_poller =
                        RefundPoller::new(store.clone(), config.refund_poll_base).start();
                    let engine = Engine {
                        refund_poller: refund_poller.clone(),
                        observer,
                        store,
                        gateway: GatewaySupervisor::new(gateway).start(),
                        locks: LockSupervisor::new(locks, ttl, wait).start(),
                        clock,
                        config: Arc::new(config),
                    };
                    let live = Arc::new(AtomicUsize::new(0));
                    let registry = OrderRegistry::new(engine, live.clone()).start();
                    refund_poller.do_send(Attach(registry.clone()));
                    let _ = tx.send((registry, refund_poller, live, System::current()));
                });
                let _ = system.run();
            })
            .expect("the engine thread starts");
        let (registry, refund_poller, live, system) =
            rx.recv().expect("the engine reports its registry");
        EngineHandle {
            registry,
            refund_poller,
            live,
            system,
            send_timeout: Duration::from_secs(30),
        }
    }

    /// Sends a message to the order's actor and waits for its answer.
    pub async fn send<M, T>(&self, order_id: i64, msg: M) -> Result<T, EngineError>
    where
        M: Message<Result = Result<T, EngineError>> + Clone + Send + 'static,
        T: Send + 'static,
        OrderActor: Handler<M>,
        <OrderActor as Actor>::Context: ToEnvelope<OrderActor, M>,
    {
        // An actor that stopped for idleness just after the lookup is looked up once more.
        for attempt in 0..2 {
            let addr = self
                .registry
                .send(Lookup(order_id))
                .timeout(self.send_timeout)
                .await
                .map_err(busy)?;
            match addr.send(msg.clone()).timeout(self.send_timeout).await {
                Ok(answer) => return answer,
                Err(MailboxError::Closed) if attempt == 0 => continue,
                Err(error) => return Err(busy(error)),
            }
        }
        Err(EngineError::Busy("the order actor keeps stopping".into()))
    }

    /// Refunds the poller is still waiting on.
    pub async fn refunds_watched(&self) -> usize {
        self.refund_poller.send(Watching).await.unwrap_or(0)
    }

    pub fn live_actors(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    pub fn stop(&self) {
        self.system.stop();
    }
}

fn busy(error: MailboxError) -> EngineError {
    EngineError::Busy(format!("order engine: {error}"))
}
