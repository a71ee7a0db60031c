//! The sandbox: a local imitation of the Wallyt gateway and of WeChat's `jscode2session`,
//! strict where the real ones are strict, so the whole payment flow runs with no credentials
//! and no network — in tests, on a laptop (`cargo run` mounts it under `/sandbox`), or
//! standalone (`cargo run --bin wallyt-sandbox`).
//!
//! Layout: [`gateway`] (`POST /pay/gateway`, signature and dispatch), [`bill`] (`POST
//! /pay/bill`, the daily bill of its own trades), [`services`] (the five
//! services), [`state`] (trades, refunds, notify attempts), [`notify`] (delivery with the real
//! retry schedule), [`faults`] (what to get wrong), [`control`] (`/sandbox/trades…`,
//! `/sandbox/faults`), [`cashier`] (`/sandbox/cashier/{out_trade_no}`, a pay sheet for
//! people), [`wechat`] (`GET /sns/jscode2session`).

pub mod bill;
pub mod cashier;
pub mod control;
pub mod faults;
pub mod gateway;
pub mod keys;
pub mod loopback;
pub mod notify;
pub mod services;
pub mod state;
pub mod wechat;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use rand::RngCore;
use secrecy::SecretString;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wallyt_pay_actors::{Clock, SystemClock, UnixMillis};

use crate::gateway::wallyt::sign::{RsaKeys, SignKeys, SignType};
use faults::CallFault;
use state::SandboxState;

#[derive(Clone, Debug)]
pub struct SandboxConfig {
    pub mch_id: String,
    /// The merchant's MD5/SHA256 key, used when `rsa` is not set.
    pub key: SecretString,
    /// Set when the merchant is on RSA_1_256: `own` is the *platform's* private key (signs
    /// replies and notifies), `peer` the merchant's public key (verifies requests). Then only
    /// RSA_1_256 requests are accepted, as a gateway holds one sign type per merchant.
    pub rsa: Option<RsaKeys>,
    /// The mini-program AppID and secret jscode2session accepts.
    pub appid: String,
    pub app_secret: SecretString,
    /// Multiplies the notify retry schedule: 1.0 is the real one, 0.001 turns 15 s into 15 ms.
    pub notify_time_scale: f64,
    /// How long a notify waits for the merchant's answer.
    pub notify_timeout: Duration,
}

impl SandboxConfig {
    /// A sandbox with fresh random credentials, for development and tests.
    pub fn generated() -> SandboxConfig {
        SandboxConfig {
            mch_id: "7551000001".into(),
            key: SecretString::from(random_hex(16)),
            rsa: None,
            appid: "wxsandbox00000001".into(),
            app_secret: SecretString::from(random_hex(16)),
            notify_time_scale: 1.0,
            notify_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

struct Inner {
    config: SandboxConfig,
    state: Mutex<SandboxState>,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    /// The cashier page's form token (see `cashier`): random per process.
    cashier_token: String,
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> Sandbox {
        let http = reqwest::Client::builder()
            .timeout(config.notify_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a plain client always builds");
        Sandbox {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(SandboxState::default()),
                http,
                clock: Arc::new(SystemClock),
                cashier_token: random_hex(16),
            }),
        }
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.inner.config
    }

    /// The keys that verify a request declaring `declared` and sign its reply; `None` when
    /// this merchant does not use that sign type.
    pub fn keys_for(&self, declared: SignType) -> Option<SignKeys> {
        let config = &self.inner.config;
        match (&config.rsa, declared) {
            (Some(rsa), SignType::Rsa256) => Some(SignKeys::Rsa(rsa.clone())),
            (Some(_), _) | (None, SignType::Rsa256) => None,
            (None, SignType::Md5) => Some(SignKeys::Md5(config.key.clone())),
            (None, SignType::Sha256) => Some(SignKeys::Sha256(config.key.clone())),
        }
    }

    /// What notifies are signed with: the merchant's RSA keys, else MD5 (the default).
    pub fn notify_keys(&self) -> SignKeys {
        let config = &self.inner.config;
        match &config.rsa {
            Some(rsa) => SignKeys::Rsa(rsa.clone()),
            None => SignKeys::Md5(config.key.clone()),
        }
    }

    /// Runs `f` on the state under its lock; never hold it across an await.
    pub fn with_state<R>(&self, f: impl FnOnce(&mut SandboxState) -> R) -> R {
        let mut state = self.inner.state.lock().expect("sandbox state lock");
        f(&mut state)
    }

    pub fn cashier_token(&self) -> &str {
        &self.inner.cashier_token
    }

    pub fn now(&self) -> UnixMillis {
        self.inner.clock.now()
    }

    pub fn nonce(&self) -> String {
        random_hex(16)
    }

    fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    fn take_call_fault(&self, out_trade_no: Option<&str>, service: Option<&str>) -> CallFault {
        self.with_state(|s| s.take_call_fault(out_trade_no, service))
    }

    /// Serves the sandbox alone: the protocol at the root (`/pay/gateway`,
    /// `/sns/jscode2session`), its controls under `/sandbox`.
    pub fn serve(self, listener: TcpListener) -> std::io::Result<Server> {
        let data = web::Data::new(self);
        Ok(HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(
                    crate::gateway::wallyt::xml::MAX_XML_BYTES,
                ))
                .configure(protocol_routes)
                .service(web::scope("/sandbox").configure(control_routes))
        })
        .workers(1)
        .listen(listener)?
        .run())
    }

    /// Everything under one scope, for mounting inside the application at `/sandbox`.
    pub fn scope(self, path: &str) -> actix_web::Scope {
        web::scope(path)
            .app_data(web::Data::new(self))
            .configure(protocol_routes)
            .configure(control_routes)
    }
}

pub fn protocol_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/pay/gateway", web::post().to(gateway::gateway))
        .route("/pay/bill", web::post().to(bill::bill))
        .route("/sns/jscode2session", web::get().to(wechat::jscode2session));
}

/// The controls, each scope behind [`loopback::loopback_only`]: a new control route must go
/// inside one of these scopes to be reachable at all, so none can be left unguarded.
pub fn control_routes(cfg: &mut web::ServiceConfig) {
    let guard = || actix_web::middleware::from_fn(loopback::loopback_only);
    cfg.service(
        web::scope("/trades")
            .wrap(guard())
            .route("", web::get().to(control::list_trades))
            .route("/{out_trade_no}", web::get().to(control::get_trade))
            .route("/{out_trade_no}/pay", web::post().to(control::pay))
            .route("/{out_trade_no}/fail", web::post().to(control::fail))
            .route("/{out_trade_no}/close", web::post().to(control::close))
            .route("/{out_trade_no}/notify", web::post().to(control::redeliver))
            .route(
                "/{out_trade_no}/faults",
                web::put().to(control::set_trade_faults),
            ),
    )
    .service(
        web::scope("/cashier")
            .wrap(guard())
            .route("/{out_trade_no}", web::get().to(cashier::show))
            .route("/{out_trade_no}", web::post().to(cashier::act)),
    )
    .service(
        web::scope("/faults")
            .wrap(guard())
            .route("", web::get().to(control::get_faults))
            .route("", web::put().to(control::set_faults))
            .route("", web::delete().to(control::clear_faults)),
    );
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
