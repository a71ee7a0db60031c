//! Settings, layered as the contract says: `config/default.toml` → `config/{APP_ENV}.toml` →
//! `.env` → environment variables, all under the contract's flat names (`DATABASE_URL`,
//! `ORDER_TTL=15m`, ...). Secrets are [`SecretString`]s: they print as `[REDACTED]` and are
//! exposed only where a key is used.

use crate::gateway::wallyt::{SignKeys, SignType};
use secrecy::SecretString;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use wallyt_pay_actors::ports::PendingLimits;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppEnv {
    Development,
    Test,
    Production,
}

impl AppEnv {
    pub fn parse(value: &str) -> Result<AppEnv, ConfigError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "development" | "dev" => Ok(AppEnv::Development),
            "test" => Ok(AppEnv::Test),
            "production" | "prod" => Ok(AppEnv::Production),
            other => Err(ConfigError::Invalid(format!(
                "APP_ENV must be development, test or production, not {other:?}"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AppEnv::Development => "development",
            AppEnv::Test => "test",
            AppEnv::Production => "production",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Invalid(String),
    #[error("{name} is required in production; set it in the environment")]
    MissingInProduction { name: &'static str },
    #[error("could not read configuration: {0}")]
    Load(#[from] config::ConfigError),
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub app_env: AppEnv,
    pub http_addr: String,
    pub http_workers: usize,
    /// How the server bounds slow and numerous clients.
    pub http_server: ServerLimits,
    pub database: DatabaseSettings,
    /// May carry a password: redacted when printed.
    pub redis_url: Option<SecretUrl>,
    pub jwt_secret: SecretString,
    pub jwt_ttl: Duration,
    pub admin_token: SecretString,
    /// When set, `/metrics` wants it as a bearer token; unset leaves `/metrics` open.
    pub metrics_token: Option<SecretString>,
    pub wechat: WechatSettings,
    /// `None` when no Wallyt variable is set: payment endpoints then answer 503 — unless
    /// the built-in sandbox stands in.
    pub wallyt: Option<WallytSettings>,
    /// Development with no Wallyt and no WeChat credentials: the server mounts its sandbox
    /// under `/sandbox` and points its own clients at it. Never in production.
    pub builtin_sandbox: bool,
    /// The sandbox's notify retry schedule multiplier (1.0 = the gateway's real one).
    pub sandbox_notify_time_scale: f64,
    /// What the built-in sandbox and the engine sign with (`SANDBOX_SIGN_TYPE`, default MD5);
    /// RSA_1_256 makes both key pairs under `data/` at first start.
    pub sandbox_sign_type: SignType,
    pub order_ttl: Duration,
    pub prepay_ttl: Duration,
    /// Unpaid orders and reserved units one user may hold (`MAX_PENDING_ORDERS`,
    /// `MAX_PENDING_UNITS`; 0 turns a limit off).
    pub pending_limits: PendingLimits,
    /// An order actor with nothing to do for this long stops (and is respawned on demand).
    pub order_actor_idle: Duration,
    /// The refund poller's first wait; later waits back off from it.
    pub refund_poll_interval: Duration,
    /// When an open prepay is queried after its creation, in case its notify was lost.
    pub query_schedule: Vec<Duration>,
    /// How long past a deadline to wait before acting on it.
    pub expiry_grace: Duration,
    /// A late payment revives its expired order only this long after the expiry; later it is
    /// refunded in full (`LATE_PAYMENT_REVIVE_WITHIN`).
    pub late_payment_revive_within: Duration,
    /// How often the database is swept for deadlines the timers do not know.
    pub expiry_sweep_interval: Duration,
    /// How long an `Idempotency-Key` whose first request never finished (crash, disconnect)
    /// refuses retries before one may take it over.
    pub idempotency_inflight_timeout: Duration,
    /// How long a notify refused before its signature verified is kept (digest, length,
    /// first bytes) before the periodic purge deletes it (`NOTIFY_REJECTED_RETENTION`).
    pub notify_rejected_retention: Duration,
    /// The zone the admin API and console show times in and read dates in (`CONSOLE_TZ`).
    pub console_tz: chrono::FixedOffset,
    /// When the daily reconciliation runs, in GMT+8 (`RECONCILE_AT`); `None`: never by itself.
    pub reconcile_at: Option<chrono::NaiveTime>,
    pub outbound: OutboundHttp,
    /// Token buckets per node (`RATE_LIMIT`, `RATE_LIMIT_IP`, `RATE_LIMIT_USER`).
    pub rate_limit: RateLimitSettings,
    /// Peers whose `X-Forwarded-For` names the client (`TRUSTED_PROXIES`); empty trusts none.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub log_format: LogFormat,
    /// What start-up should warn about once logging is up (generated secrets, SQLite in
    /// production, ...). Never contains a secret.
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct DatabaseSettings {
    /// May carry a password: redacted when printed.
    pub url: SecretUrl,
    pub max_connections: u32,
    /// `DATABASE_READ_CONNECTIONS`: PostgreSQL connections kept apart for the status read
    /// (`storage::read_pool`); 0 reads through the main pool.
    pub read_connections: u32,
    pub acquire_timeout: Duration,
    /// `STORE_GROUP_COMMIT`: which transitions that arrive together share one transaction
    /// (a savepoint each) and one commit.
    pub group_commit: GroupCommit,
    /// `STORE_GROUP_COMMIT_LANES`: how many payment batches run at once on PostgreSQL, each
    /// on a connection of the pool; 0 = half the pool.
    pub group_commit_lanes: u32,
}

#[derive(Clone, Debug)]
pub struct WechatSettings {
    pub api_base: String,
    /// Both or neither: login answers 503 without them.
    pub credentials: Option<(String, SecretString)>,
}

#[derive(Clone, Debug)]
pub struct WallytSettings {
    pub api_url: String,
    pub mch_id: String,
    /// The sign type with its key material (secret key, or the two RSA keys).
    pub keys: SignKeys,
    pub notify_url: String,
    /// Where the daily bill is downloaded (`WALLYT_BILL_URL`); without it there is no
    /// reconciliation.
    pub bill_url: Option<String>,
}

/// Limits on inbound connections (a slow or greedy client must not take the server's
/// connections or workers). Connection counts are per worker, as actix-web counts them.
#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    /// From accepting a connection (or the end of the previous request) to a complete head.
    pub head_timeout: Duration,
    /// From a complete head to the last byte of the body.
    pub body_timeout: Duration,
    /// How long an idle keep-alive connection is kept.
    pub keep_alive: Duration,
    /// How long a closing connection may take to shut down.
    pub disconnect_timeout: Duration,
    pub max_connections: usize,
}

#[derive(Clone, Copy, Debug)]
pub struct OutboundHttp {
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Where development keeps what it generates (the SQLite file lives there too by default).
pub const DEV_DATA_DIR: &str = "data";

mod group_commit;
mod limits;
mod load;
mod parts;
mod production;
mod secret_url;
mod wallyt;

pub use group_commit::GroupCommit;
pub use secret_url::SecretUrl;

use limits::{parse_proxies, parse_rate, parse_switch};
pub use limits::{Rate, RateLimitSettings};

pub(crate) use parts::write_private;
use parts::{dev_admin_token, parse_schedule, parse_time_of_day, parse_zone, random_hex};

#[cfg(test)]
mod tests;
