//! Settings, layered as the contract says: `config/default.toml` → `config/{APP_ENV}.toml` →
//! `.env` → environment variables, all under the contract's flat names (`DATABASE_URL`,
//! `ORDER_TTL=15m`, ...). Secrets are [`SecretString`]s: they print as `[REDACTED]` and are
//! exposed only where a key is used.

use rand::RngCore;

use crate::gateway::wallyt::SignType;
use secrecy::SecretString;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    pub database: DatabaseSettings,
    pub redis_url: Option<String>,
    pub jwt_secret: SecretString,
    pub jwt_ttl: Duration,
    pub admin_token: SecretString,
    pub wechat: WechatSettings,
    /// `None` when no Wallyt variable is set: payment endpoints then answer 503 — unless
    /// the built-in sandbox stands in.
    pub wallyt: Option<WallytSettings>,
    /// Development with no Wallyt and no WeChat credentials: the server mounts its sandbox
    /// under `/sandbox` and points its own clients at it. Never in production.
    pub builtin_sandbox: bool,
    /// The sandbox's notify retry schedule multiplier (1.0 = the gateway's real one).
    pub sandbox_notify_time_scale: f64,
    pub order_ttl: Duration,
    pub prepay_ttl: Duration,
    /// An order actor with nothing to do for this long stops (and is respawned on demand).
    pub order_actor_idle: Duration,
    /// The refund poller's first wait; later waits back off from it.
    pub refund_poll_interval: Duration,
    /// When an open prepay is queried after its creation, in case its notify was lost.
    pub query_schedule: Vec<Duration>,
    /// How long past a deadline to wait before acting on it.
    pub expiry_grace: Duration,
    /// How often the database is swept for deadlines the timers do not know.
    pub expiry_sweep_interval: Duration,
    pub outbound: OutboundHttp,
    pub log_format: LogFormat,
    /// What start-up should warn about once logging is up (generated secrets, SQLite in
    /// production, ...). Never contains a secret.
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
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
    pub secret_key: SecretString,
    pub sign_type: SignType,
    pub notify_url: String,
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

/// The shape of the merged sources, before validation.
#[derive(Deserialize)]
struct Raw {
    http_addr: String,
    http_workers: usize,
    database_url: String,
    database_max_connections: u32,
    #[serde(with = "humantime_serde")]
    database_acquire_timeout: Duration,
    redis_url: Option<String>,
    jwt_secret: Option<String>,
    #[serde(with = "humantime_serde")]
    jwt_ttl: Duration,
    admin_token: Option<String>,
    wechat_mini_appid: Option<String>,
    wechat_mini_secret: Option<String>,
    wechat_api_base: String,
    wallyt_api_url: Option<String>,
    wallyt_mch_id: Option<String>,
    wallyt_secret_key: Option<String>,
    wallyt_sign_type: String,
    wallyt_notify_url: Option<String>,
    #[serde(with = "humantime_serde")]
    order_ttl: Duration,
    #[serde(with = "humantime_serde")]
    prepay_ttl: Duration,
    #[serde(with = "humantime_serde")]
    order_actor_idle: Duration,
    #[serde(with = "humantime_serde")]
    refund_poll_interval: Duration,
    query_schedule: String,
    #[serde(with = "humantime_serde")]
    expiry_grace: Duration,
    #[serde(with = "humantime_serde")]
    expiry_sweep_interval: Duration,
    #[serde(with = "humantime_serde")]
    http_connect_timeout: Duration,
    #[serde(with = "humantime_serde")]
    http_timeout: Duration,
    log_format: Option<String>,
    sandbox_notify_time_scale: f64,
}

/// Where development keeps what it generates (the SQLite file lives there too by default).
pub const DEV_DATA_DIR: &str = "data";

impl Settings {
    /// Reads `.env` and the process environment, as the server binary does.
    pub fn load() -> Result<Settings, ConfigError> {
        // A missing .env is normal; a broken one is not worth refusing to start over.
        let _ = dotenvy::dotenv();
        let vars: HashMap<String, String> = std::env::vars().collect();
        let app_env = AppEnv::parse(vars.get("APP_ENV").map(String::as_str).unwrap_or(""))?;
        let config_dir = vars
            .get("CONFIG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("config"));
        Settings::from_sources(app_env, &config_dir, vars)
    }

    /// Builds settings from the files under `config_dir` and the given variables, which stand
    /// in for the environment (tests pass their own).
    pub fn from_sources(
        app_env: AppEnv,
        config_dir: &Path,
        vars: HashMap<String, String>,
    ) -> Result<Settings, ConfigError> {
        // Empty variables mean "unset", as in a shell's `WALLYT_MCH_ID=`.
        let vars = vars
            .into_iter()
            .filter(|(key, value)| !value.trim().is_empty() && key != "APP_ENV")
            .collect();
        let raw: Raw = config::Config::builder()
            .add_source(config::File::from(config_dir.join("default.toml")))
            .add_source(
                config::File::from(config_dir.join(format!("{}.toml", app_env.as_str())))
                    .required(false),
            )
            .add_source(config::Environment::default().source(Some(vars)))
            .build()?
            .try_deserialize()?;
        Settings::validate(app_env, raw)
    }

    fn validate(app_env: AppEnv, raw: Raw) -> Result<Settings, ConfigError> {
        let mut warnings = Vec::new();
        let production = app_env == AppEnv::Production;

        let jwt_secret = match raw.jwt_secret {
            Some(secret) if secret.len() < 32 && production => {
                return Err(ConfigError::Invalid(
                    "JWT_SECRET must be at least 32 characters in production".into(),
                ))
            }
            Some(secret) => SecretString::from(secret),
            None if production => {
                return Err(ConfigError::MissingInProduction { name: "JWT_SECRET" })
            }
            None => {
                warnings.push(
                    "JWT_SECRET is not set: using a random one, so tokens die with this process"
                        .into(),
                );
                SecretString::from(random_hex(32))
            }
        };
        let admin_token = match raw.admin_token {
            Some(token) => SecretString::from(token),
            None if production => {
                return Err(ConfigError::MissingInProduction {
                    name: "ADMIN_TOKEN",
                })
            }
            None if app_env == AppEnv::Development => {
                let path = Path::new(DEV_DATA_DIR).join("dev-admin-token");
                let token = dev_admin_token(&path).map_err(|e| {
                    ConfigError::Invalid(format!("could not keep {}: {e}", path.display()))
                })?;
                warnings.push(format!(
                    "ADMIN_TOKEN is not set: using the development token kept in {} ({token})",
                    path.display()
                ));
                SecretString::from(token)
            }
            None => SecretString::from(random_hex(16)),
        };

        let wechat_credentials = match (raw.wechat_mini_appid, raw.wechat_mini_secret) {
            (Some(appid), Some(secret)) => Some((appid, SecretString::from(secret))),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid(
                    "set both WECHAT_MINI_APPID and WECHAT_MINI_SECRET, or neither".into(),
                ))
            }
        };
        let wechat_api_base = raw.wechat_api_base.trim_end_matches('/').to_owned();
        url::Url::parse(&wechat_api_base)
            .map_err(|e| ConfigError::Invalid(format!("WECHAT_API_BASE is not a URL: {e}")))?;

        let wallyt = wallyt_settings(
            raw.wallyt_api_url,
            raw.wallyt_mch_id,
            raw.wallyt_secret_key,
            raw.wallyt_sign_type,
            raw.wallyt_notify_url,
        )?;
        if wallyt.is_some() && wechat_credentials.is_none() {
            return Err(ConfigError::Invalid(
                "Wallyt needs the mini-program's WECHAT_MINI_APPID and WECHAT_MINI_SECRET too"
                    .into(),
            ));
        }
        if wallyt.is_none() && production {
            warnings.push(
                "Wallyt is not configured: prepay and refund answer 503 WALLYT_NOT_CONFIGURED"
                    .into(),
            );
        }

        if production && raw.database_url.starts_with("sqlite:") {
            warnings.push(
                "SQLite in production: fine for one node; use PostgreSQL to run several".into(),
            );
        }
        for (name, ttl) in [
            ("ORDER_TTL", raw.order_ttl),
            ("PREPAY_TTL", raw.prepay_ttl),
            ("JWT_TTL", raw.jwt_ttl),
        ] {
            if ttl.is_zero() {
                return Err(ConfigError::Invalid(format!("{name} must be more than 0")));
            }
        }
        let log_format = match raw.log_format.as_deref().unwrap_or("pretty") {
            "json" => LogFormat::Json,
            "pretty" | "text" => LogFormat::Pretty,
            other => {
                return Err(ConfigError::Invalid(format!(
                    "LOG_FORMAT must be json or pretty, not {other:?}"
                )))
            }
        };

        let builtin_sandbox =
            app_env == AppEnv::Development && wallyt.is_none() && wechat_credentials.is_none();
        if builtin_sandbox {
            warnings.push(
                "no WALLYT_* or WECHAT_* credentials: using the built-in sandbox at /sandbox \
                 (no real money moves)"
                    .into(),
            );
        }
        let scale = raw.sandbox_notify_time_scale;
        if scale.is_nan() || scale < 0.0 {
            return Err(ConfigError::Invalid(
                "SANDBOX_NOTIFY_TIME_SCALE must be a number >= 0".into(),
            ));
        }
        Ok(Settings {
            app_env,
            http_addr: raw.http_addr,
            http_workers: raw.http_workers,
            database: DatabaseSettings {
                url: raw.database_url,
                max_connections: raw.database_max_connections.max(1),
                acquire_timeout: raw.database_acquire_timeout,
            },
            redis_url: raw.redis_url,
            jwt_secret,
            jwt_ttl: raw.jwt_ttl,
            admin_token,
            wechat: WechatSettings {
                api_base: wechat_api_base,
                credentials: wechat_credentials,
            },
            wallyt,
            builtin_sandbox,
            sandbox_notify_time_scale: raw.sandbox_notify_time_scale,
            order_ttl: raw.order_ttl,
            prepay_ttl: raw.prepay_ttl,
            order_actor_idle: raw.order_actor_idle,
            refund_poll_interval: raw.refund_poll_interval,
            query_schedule: parse_schedule(&raw.query_schedule)?,
            expiry_grace: raw.expiry_grace,
            expiry_sweep_interval: raw.expiry_sweep_interval,
            outbound: OutboundHttp {
                connect_timeout: raw.http_connect_timeout,
                timeout: raw.http_timeout,
            },
            log_format,
            warnings,
        })
    }
}

/// All of the Wallyt settings or none of them; a partial set is a mistake worth stopping for.
fn wallyt_settings(
    api_url: Option<String>,
    mch_id: Option<String>,
    secret_key: Option<String>,
    sign_type: String,
    notify_url: Option<String>,
) -> Result<Option<WallytSettings>, ConfigError> {
    let sign_type = SignType::parse(sign_type.trim().to_ascii_uppercase().as_str())
        .map_err(|e| ConfigError::Invalid(format!("WALLYT_SIGN_TYPE: {e}")))?;
    match (api_url, mch_id, secret_key, notify_url) {
        (None, None, None, None) => Ok(None),
        (Some(api_url), Some(mch_id), Some(secret_key), Some(notify_url)) => {
            for (name, value) in [
                ("WALLYT_API_URL", &api_url),
                ("WALLYT_NOTIFY_URL", &notify_url),
            ] {
                url::Url::parse(value)
                    .map_err(|e| ConfigError::Invalid(format!("{name} is not a URL: {e}")))?;
            }
            Ok(Some(WallytSettings {
                api_url,
                mch_id,
                secret_key: SecretString::from(secret_key),
                sign_type,
                notify_url,
            }))
        }
        (api_url, mch_id, secret_key, notify_url) => {
            let missing: Vec<&str> = [
                ("WALLYT_API_URL", api_url.is_none()),
                ("WALLYT_MCH_ID", mch_id.is_none()),
                ("WALLYT_SECRET_KEY", secret_key.is_none()),
                ("WALLYT_NOTIFY_URL", notify_url.is_none()),
            ]
            .into_iter()
            .filter_map(|(name, missing)| missing.then_some(name))
            .collect();
            Err(ConfigError::Invalid(format!(
                "Wallyt is partly configured; also set {}",
                missing.join(", ")
            )))
        }
    }
}

/// `10s,30s,1m` → increasing delays; empty turns the active queries off.
fn parse_schedule(text: &str) -> Result<Vec<Duration>, ConfigError> {
    let schedule = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            humantime::parse_duration(s)
                .map_err(|e| ConfigError::Invalid(format!("QUERY_SCHEDULE: {s:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if schedule.windows(2).any(|w| w[0] >= w[1]) {
        return Err(ConfigError::Invalid(
            "QUERY_SCHEDULE must be increasing delays, e.g. 10s,30s,1m,3m,5m".into(),
        ));
    }
    Ok(schedule)
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// The development admin token survives restarts so that the README's curl lines keep
/// working; it is created once, readable by its owner only.
fn dev_admin_token(path: &Path) -> std::io::Result<String> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let existing = existing.trim();
        if !existing.is_empty() {
            return Ok(existing.to_owned());
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let token = format!("dev-{}", random_hex(16));
    std::fs::write(path, &token)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: AppEnv, vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let vars = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_sources(env, &dir, vars)
    }

    const PROD_SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn contract_defaults_apply() {
        let settings = load(AppEnv::Test, &[]).unwrap();
        assert_eq!(settings.order_ttl, Duration::from_secs(15 * 60));
        assert_eq!(settings.prepay_ttl, Duration::from_secs(5 * 60));
        assert_eq!(settings.jwt_ttl, Duration::from_secs(2 * 3600));
        assert_eq!(settings.database.url, "sqlite://data/pay.db");
        assert_eq!(settings.wechat.api_base, "https://api.weixin.qq.com");
        assert!(settings.wallyt.is_none());
    }

    #[test]
    fn environment_overrides_files_with_flat_names() {
        let settings = load(
            AppEnv::Test,
            &[
                ("ORDER_TTL", "90s"),
                ("DATABASE_URL", "postgres://x/y"),
                ("PREPAY_TTL", "2h"),
            ],
        )
        .unwrap();
        assert_eq!(settings.order_ttl, Duration::from_secs(90));
        assert_eq!(settings.prepay_ttl, Duration::from_secs(7200));
        assert_eq!(settings.database.url, "postgres://x/y");
    }

    #[test]
    fn production_refuses_to_start_without_its_secrets() {
        let err = load(AppEnv::Production, &[("ADMIN_TOKEN", "a")]).unwrap_err();
        assert!(err.to_string().contains("JWT_SECRET"), "{err}");
        let err = load(AppEnv::Production, &[("JWT_SECRET", PROD_SECRET)]).unwrap_err();
        assert!(err.to_string().contains("ADMIN_TOKEN"), "{err}");
        let err = load(
            AppEnv::Production,
            &[("JWT_SECRET", "short"), ("ADMIN_TOKEN", "a")],
        )
        .unwrap_err();
        assert!(err.to_string().contains("32"), "{err}");
        let ok = load(
            AppEnv::Production,
            &[("JWT_SECRET", PROD_SECRET), ("ADMIN_TOKEN", "a")],
        )
        .unwrap();
        assert!(ok.warnings.iter().any(|w| w.contains("SQLite")));
    }

    #[test]
    fn partial_wallyt_settings_name_what_is_missing() {
        let err = load(
            AppEnv::Test,
            &[("WALLYT_MCH_ID", "7551000001"), ("WALLYT_SECRET_KEY", "k")],
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("WALLYT_API_URL") && text.contains("WALLYT_NOTIFY_URL"));
        assert!(!text.contains("WALLYT_MCH_ID,"), "{text}");
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let settings = load(
            AppEnv::Test,
            &[
                ("JWT_SECRET", "jwt-secret-value"),
                ("ADMIN_TOKEN", "admin-token-value"),
                ("WECHAT_MINI_APPID", "wx1"),
                ("WECHAT_MINI_SECRET", "wechat-secret-value"),
            ],
        )
        .unwrap();
        let debug = format!("{settings:?}");
        for secret in [
            "jwt-secret-value",
            "admin-token-value",
            "wechat-secret-value",
        ] {
            assert!(!debug.contains(secret), "{secret} leaked");
        }
    }

    #[test]
    fn rsa_signing_is_refused_at_start_up_by_name() {
        let err = load(AppEnv::Test, &[("WALLYT_SIGN_TYPE", "RSA_1_256")]).unwrap_err();
        assert!(err.to_string().contains("unsupported sign type"), "{err}");
        let ok = load(AppEnv::Test, &[("WALLYT_SIGN_TYPE", "sha256")]).unwrap();
        assert!(ok.wallyt.is_none());
    }

    #[test]
    fn the_sandbox_stands_in_only_in_development_without_credentials() {
        // ADMIN_TOKEN given so that the test writes no development token file.
        assert!(
            load(AppEnv::Development, &[("ADMIN_TOKEN", "a")])
                .unwrap()
                .builtin_sandbox
        );
        let with_wechat = [
            ("ADMIN_TOKEN", "a"),
            ("WECHAT_MINI_APPID", "wx1"),
            ("WECHAT_MINI_SECRET", "s"),
        ];
        assert!(
            !load(AppEnv::Development, &with_wechat)
                .unwrap()
                .builtin_sandbox
        );
        assert!(!load(AppEnv::Test, &[]).unwrap().builtin_sandbox);
        let prod = [("JWT_SECRET", PROD_SECRET), ("ADMIN_TOKEN", "a")];
        assert!(!load(AppEnv::Production, &prod).unwrap().builtin_sandbox);
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let settings = load(AppEnv::Test, &[("WALLYT_MCH_ID", ""), ("REDIS_URL", " ")]).unwrap();
        assert!(settings.wallyt.is_none());
        assert!(settings.redis_url.is_none());
    }
}
