//! Start-up: `Application::build(settings)` connects the database (applying migrations),
//! binds its own listener (port 0 in tests) and exposes the real port before it serves. In
//! development without credentials it also mounts the sandbox and points its own Wallyt and
//! WeChat clients at it.

use actix_web::dev::Server;
use actix_web::dev::Service;
use actix_web::http::{ConnectionType, KeepAlive};
use actix_web::{web, App, HttpServer};
use secrecy::SecretString;
use std::net::TcpListener;
use std::sync::Arc;
use tracing_actix_web::TracingLogger;
use wallyt_pay_actors::{Clock, SystemClock};

use wallyt_pay_actors::engine::local_locks::LocalLocks;
use wallyt_pay_actors::engine::EngineConfig;
use wallyt_pay_actors::ports::{LockManager, PaymentGateway};

use crate::auth::JwtKeys;
use crate::config::AppEnv;
use crate::config::Settings;
use crate::engine::EngineHandle;
use crate::gateway::wallyt::adapter::WallytGateway;
use crate::gateway::wallyt::bill::BillClient;
use crate::gateway::wallyt::{ClientPolicy, WallytClient, WallytConfig};
use crate::gateway::{http_client, wechat::WechatClient};
use crate::http::client_ip::ClientIps;
use crate::http::ratelimit::RateLimits;
use crate::http::request_id::{self, RequestSpan};
use crate::http::{rejections, routes, slow_clients};
use crate::metrics::Metrics;
use crate::reconcile::{schedule, Reconciler};
use crate::redis::RedisLocks;
use crate::sandbox::Sandbox;
use crate::storage::notify_audit::spawn_rejection_purge;
use crate::storage::Database;

mod builtin_sandbox;
mod handle;

use builtin_sandbox::{builtin_sandbox, sandbox_clients};
pub use handle::AppHandle;

/// What every handler can reach. Cheap to clone: everything inside is shared.
pub struct AppState {
    pub db: Database,
    pub jwt: JwtKeys,
    pub admin_token: SecretString,
    /// When set, `/metrics` wants it as a bearer token.
    pub metrics_token: Option<SecretString>,
    pub wechat: WechatClient,
    /// `None` when Wallyt is not configured: payment endpoints answer 503.
    pub wallyt: Option<Payments>,
    pub metrics: Metrics,
    pub clock: Arc<dyn Clock>,
    pub engine: EngineHandle,
    pub order_ttl: std::time::Duration,
    pub pending_limits: wallyt_pay_actors::ports::PendingLimits,
    /// How long an unfinished request holds its `Idempotency-Key`.
    pub idempotency_inflight_timeout: std::time::Duration,
    /// The zone of the admin API's times and dates (`CONSOLE_TZ`).
    pub console_tz: chrono::FixedOffset,
    /// Set when REDIS_URL is: readiness checks it.
    pub redis: Option<RedisLocks>,
    /// Who the client is (`TRUSTED_PROXIES`): what rate limits key on and `mch_create_ip`.
    pub client_ips: ClientIps,
    pub limits: Arc<RateLimits>,
    /// The daily bill reconciliation; `None` without a bill URL.
    pub reconciler: Option<Reconciler>,
    /// The operations console's signed-in sessions (this node's memory; see console::session).
    pub console: crate::console::session::Sessions,
}

impl AppState {
    /// The client's address: the TCP peer, or what a trusted proxy says it is.
    pub fn client_ip(&self, req: &actix_web::HttpRequest) -> std::net::IpAddr {
        self.client_ips.resolve(req.peer_addr(), req.headers())
    }
}

/// The Wallyt client with the settings a payment needs besides it.
pub struct Payments {
    pub client: WallytClient,
    pub notify_url: String,
}

pub struct Application {
    port: u16,
    /// Where our own clients reach us (loopback when listening on every interface).
    own_addr: std::net::SocketAddr,
    server: Server,
    db: Database,
    engine: EngineHandle,
    sandbox: Option<Sandbox>,
    /// The periodic purge of refused notifies; stopped with the application.
    purge: tokio::task::AbortHandle,
    /// The daily reconciliation's timer, when it runs by itself.
    daily: Option<tokio::task::AbortHandle>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        for warning in &settings.warnings {
            tracing::warn!(event = "config.warning", "{warning}");
        }
        let db = Database::connect(&settings.database).await?;
        let listener = TcpListener::bind(&settings.http_addr)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.http_addr))?;
        let local = listener.local_addr()?;
        let port = local.port();
        // Our own clients call the mounted sandbox: over loopback when we listen everywhere,
        // else at the one address we listen on.
        let own_ip = match local.ip() {
            ip if ip.is_unspecified() => std::net::IpAddr::from([127, 0, 0, 1]),
            ip => ip,
        };
        let own_base = format!("http://{}", std::net::SocketAddr::new(own_ip, port));

        let sandbox = if settings.builtin_sandbox {
            Some(builtin_sandbox(&settings)?)
        } else {
            None
        };
        let metrics = Metrics::new();
        let http = http_client(&settings.outbound);
        let (wallyt, wechat_settings) = match &sandbox {
            Some((sandbox, keys)) => sandbox_clients(sandbox, keys.clone(), &own_base),
            None => (
                settings.wallyt.as_ref().map(|w| {
                    let config = WallytConfig {
                        api_url: w.api_url.clone(),
                        mch_id: w.mch_id.clone(),
                        keys: w.keys.clone(),
                    };
                    (config, w.notify_url.clone())
                }),
                settings.wechat.clone(),
            ),
        };
        // The bill comes from the download gateway, or from the sandbox's /pay/bill.
        let bill = match (&sandbox, &wallyt) {
            (Some(_), Some((config, _))) => Some(BillClient::new(
                http.clone(),
                format!("{own_base}/sandbox/pay/bill"),
                config.mch_id.clone(),
                config.keys.clone(),
            )),
            (None, Some((config, _))) => settings
                .wallyt
                .as_ref()
                .and_then(|w| w.bill_url.clone())
                .map(|url| {
                    BillClient::new(
                        http.clone(),
                        url,
                        config.mch_id.clone(),
                        config.keys.clone(),
                    )
                }),
            (_, None) => None,
        };
        let wallyt = wallyt.map(|(config, notify_url)| Payments {
            client: WallytClient::new(
                config,
                http.clone(),
                ClientPolicy::default(),
                Some(metrics.gateway_calls.clone()),
            ),
            notify_url,
        });
        // Failed calls are kept durably for the dashboard and the timelines.
        if let Some(payments) = &wallyt {
            payments.client.log_failures_to(Arc::new(db.clone()));
        }
        let gateway = wallyt.as_ref().map(|payments| {
            Arc::new(WallytGateway {
                client: payments.client.clone(),
                notify_url: payments.notify_url.clone(),
                sub_appid: wechat_settings
                    .credentials
                    .as_ref()
                    .map(|(appid, _)| appid.clone())
                    .unwrap_or_default(),
            }) as Arc<dyn PaymentGateway>
        });
        let redis = match &settings.redis_url {
            Some(url) => Some(
                RedisLocks::connect(url.expose())
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot reach REDIS_URL: {e}"))?,
            ),
            None => None,
        };
        let locks: Arc<dyn LockManager> = match &redis {
            Some(redis) => Arc::new(redis.clone()),
            None => Arc::new(LocalLocks::new()),
        };
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let engine = EngineHandle::start(
            Arc::new(db.clone()),
            gateway,
            locks,
            clock.clone(),
            Arc::new(metrics.clone()),
            EngineConfig {
                prepay_ttl: settings.prepay_ttl,
                idle_timeout: settings.order_actor_idle,
                refund_poll_base: settings.refund_poll_interval,
                query_schedule: settings.query_schedule.clone(),
                expiry_grace: settings.expiry_grace,
                sweep_interval: settings.expiry_sweep_interval,
                refund_sweep_interval: settings.expiry_sweep_interval,
                late_payment_revive_within: settings.late_payment_revive_within,
                ..EngineConfig::default()
            },
        );
        let reconciler = bill.map(|bill| Reconciler {
            db: db.clone(),
            engine: engine.clone(),
            bill,
            metrics: metrics.clone(),
            clock: clock.clone(),
        });
        if reconciler.is_none() && settings.wallyt.is_some() {
            tracing::warn!(
                event = "config.warning",
                "WALLYT_BILL_URL is not set: no daily reconciliation against the gateway's bill"
            );
        }
        let daily = match (&reconciler, settings.reconcile_at) {
            (Some(reconciler), Some(at)) => Some(schedule::spawn_daily(reconciler.clone(), at)),
            _ => None,
        };
        let limits = Arc::new(RateLimits::new(&settings.rate_limit));
        RateLimits::spawn_housekeeping(&limits);
        let purge = spawn_rejection_purge(
            db.clone(),
            clock.clone(),
            settings.notify_rejected_retention,
        );
        let state = web::Data::new(AppState {
            db: db.clone(),
            jwt: JwtKeys::new(&settings.jwt_secret, settings.jwt_ttl),
            admin_token: settings.admin_token.clone(),
            metrics_token: settings.metrics_token.clone(),
            wechat: WechatClient::new(&wechat_settings, http),
            wallyt,
            metrics,
            clock,
            engine: engine.clone(),
            order_ttl: settings.order_ttl,
            pending_limits: settings.pending_limits,
            idempotency_inflight_timeout: settings.idempotency_inflight_timeout,
            console_tz: settings.console_tz,
            redis,
            client_ips: ClientIps::new(
                settings.trusted_proxies.clone(),
                settings.app_env == AppEnv::Production,
            ),
            limits,
            reconciler,
            console: crate::console::session::Sessions::new(settings.app_env == AppEnv::Production),
        });

        let sandbox = sandbox.map(|(sandbox, _)| sandbox);
        let mounted = sandbox.clone();
        let limits = settings.http_server;
        let mut server = HttpServer::new(move || {
            let metrics = state.metrics.clone();
            let app = App::new()
                .wrap_fn(move |mut req, srv| {
                    let started = std::time::Instant::now();
                    let method = req.method().to_string();
                    // The pattern, never the raw path: unknown URLs must not mint labels.
                    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
                    let metrics = metrics.clone();
                    let body = slow_clients::bound_body(&mut req, limits.body_timeout);
                    let answer = srv.call(req);
                    async move {
                        let mut response = answer.await?;
                        if body.is_some_and(|body| body.must_close()) {
                            response
                                .response_mut()
                                .head_mut()
                                .set_connection_type(ConnectionType::Close);
                        }
                        let status = response.status().as_u16();
                        let seconds = started.elapsed().as_secs_f64();
                        metrics.observe_request(&method, &route, status, seconds);
                        Ok(response)
                    }
                })
                .wrap(TracingLogger::<RequestSpan>::new())
                // Outermost: the id exists before the root span opens and is on every answer.
                .wrap(actix_web::middleware::from_fn(request_id::assign))
                .app_data(state.clone())
                .app_data(rejections::json_config())
                .app_data(rejections::path_config())
                .app_data(rejections::query_config())
                .app_data(web::PayloadConfig::new(rejections::MAX_BODY_BYTES));
            // The sandbox's routes go before ours so that our 404 fallback does not hide them.
            let app = match &mounted {
                Some(sandbox) => app.service(sandbox.clone().scope("/sandbox")),
                None => app,
            };
            app.configure(routes::configure)
        })
        .client_request_timeout(limits.head_timeout)
        .client_disconnect_timeout(limits.disconnect_timeout)
        .keep_alive(if limits.keep_alive.is_zero() {
            KeepAlive::Disabled
        } else {
            KeepAlive::Timeout(limits.keep_alive)
        })
        .max_connections(limits.max_connections)
        .listen(listener)?;
        if settings.http_workers > 0 {
            server = server.workers(settings.http_workers);
        }
        tracing::info!(
            event = "app.started",
            address = %local,
            env = settings.app_env.as_str(),
            backend = ?db.backend(),
            sandbox = settings.builtin_sandbox,
        );
        if settings.builtin_sandbox {
            // Said on its own line, in words: someone skimming the log of a server that
            // "takes payments" must not believe real ones happen.
            tracing::warn!(
                event = "app.sandbox_banner",
                "BUILT-IN SANDBOX: payments and logins go to a local imitation of Wallyt and \
                 WeChat at {own_base}/sandbox; no real money can move"
            );
        }
        Ok(Application {
            port,
            own_addr: std::net::SocketAddr::new(own_ip, port),
            server: server.run(),
            db,
            engine,
            sandbox,
            purge,
            daily,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// An address this server answers on: the one it listens on, or loopback when it listens
    /// on every interface.
    pub fn address(&self) -> std::net::SocketAddr {
        self.own_addr
    }

    /// A handle that stops this application (server, then engine) from elsewhere.
    pub fn handle(&self) -> AppHandle {
        AppHandle {
            server: self.server.handle(),
            engine: self.engine.clone(),
            purge: self.purge.clone(),
            daily: self.daily.clone(),
        }
    }

    /// The built-in sandbox, when this application mounted one (development only).
    pub fn sandbox(&self) -> Option<&Sandbox> {
        self.sandbox.as_ref()
    }

    /// Serves until the process is told to stop (SIGINT/SIGTERM), then drains and closes.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.purge.abort();
        if let Some(daily) = &self.daily {
            daily.abort();
        }
        self.engine.stop();
        self.db.close().await;
        result
    }
}
