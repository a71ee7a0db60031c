//! Starting the order engine and talking to it from the HTTP edge. The engine's actors live on
//! their own actix system thread, shared by every HTTP worker; the edge reaches an order's
//! actor through the registry and waits a bounded time (a full mailbox or a stuck order
//! answers 503, never hangs a request).

use actix::dev::ToEnvelope;
use actix::{Actor, Addr, Handler, MailboxError, Message, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wallyt_pay_actors::engine::deadlines;
use wallyt_pay_actors::engine::expiry_scheduler::{AttachSink, ExpiryScheduler, Schedule};
use wallyt_pay_actors::engine::gateway_supervisor::GatewaySupervisor;
use wallyt_pay_actors::engine::lock_supervisor::LockSupervisor;
use wallyt_pay_actors::engine::refund_poller::{Attach, RefundPoller, Watching};
use wallyt_pay_actors::engine::{
    Engine, EngineConfig, EngineError, Lookup, OrderActor, OrderRegistry,
};
use wallyt_pay_actors::ports::{Fence, LockManager, Observer, OrderStore, PaymentGateway};
use wallyt_pay_actors::{Clock, UnixMillis};

#[derive(Clone)]
pub struct EngineHandle {
    registry: Addr<OrderRegistry>,
    refund_poller: Addr<RefundPoller>,
    expiry: Addr<ExpiryScheduler>,
    config: Arc<EngineConfig>,
    pending_deadlines: Arc<AtomicUsize>,
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
                    let refund_poller = RefundPoller::new(
                        store.clone(),
                        observer.clone(),
                        config.refund_poll_base,
                        config.refund_sweep_interval,
                    )
                    .start();
                    // The timers are rebuilt from the store too, and swept again periodically.
                    let pending = Arc::new(AtomicUsize::new(0));
                    let expiry = ExpiryScheduler::new(
                        Some(store.clone()),
                        clock.clone(),
                        config.sweep_interval,
                        pending.clone(),
                    )
                    .start();
                    let config = Arc::new(config);
                    let engine = Engine {
                        expiry: expiry.clone(),
                        refund_poller: refund_poller.clone(),
                        observer,
                        store,
                        gateway: GatewaySupervisor::new(gateway).start(),
                        locks: LockSupervisor::new(locks, ttl, wait).start(),
                        clock,
                        config: config.clone(),
                        fence: Fence(0),
                    };
                    let live = Arc::new(AtomicUsize::new(0));
                    let registry = OrderRegistry::new(engine, live.clone()).start();
                    refund_poller.do_send(Attach(registry.clone()));
                    expiry.do_send(AttachSink(registry.clone().recipient()));
                    let engine = (registry, refund_poller, expiry, config, pending);
                    let _ = tx.send((engine, live, System::current()));
                });
                let _ = system.run();
            })
            .expect("the engine thread starts");
        let ((registry, refund_poller, expiry, config, pending_deadlines), live, system) =
            rx.recv().expect("the engine reports its registry");
        EngineHandle {
            registry,
            refund_poller,
            expiry,
            config,
            pending_deadlines,
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

    /// A new order: its expiry joins the timers.
    pub fn watch_order(&self, order_id: i64, expires_at: UnixMillis) {
        let at = expires_at.plus(self.config.expiry_grace);
        self.expiry
            .do_send(Schedule(deadlines::order_deadline(order_id, at)));
    }

    pub fn pending_deadlines(&self) -> usize {
        self.pending_deadlines.load(Ordering::Relaxed)
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
