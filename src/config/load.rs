//! Reading the layered sources into [`Settings`] and validating them: what production
//! refuses, what development fills in, and the warnings printed at start.

use super::*;

/// The shape of the merged sources, before validation.
#[derive(Deserialize)]
struct Raw {
    http_addr: String,
    http_workers: usize,
    #[serde(with = "humantime_serde")]
    http_request_head_timeout: Duration,
    #[serde(with = "humantime_serde")]
    http_request_body_timeout: Duration,
    #[serde(with = "humantime_serde")]
    http_keep_alive: Duration,
    #[serde(with = "humantime_serde")]
    http_disconnect_timeout: Duration,
    http_max_connections: usize,
    metrics_token: Option<String>,
    database_url: String,
    database_max_connections: u32,
    database_read_connections: u32,
    #[serde(with = "humantime_serde")]
    database_acquire_timeout: Duration,
    store_group_commit: String,
    store_group_commit_lanes: u32,
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
    wallyt_sign_type: Option<String>,
    wallyt_notify_url: Option<String>,
    wallyt_private_key: Option<String>,
    wallyt_private_key_file: Option<String>,
    wallyt_public_key: Option<String>,
    wallyt_public_key_file: Option<String>,
    wallyt_bill_url: Option<String>,
    max_pending_orders: u32,
    max_pending_units: u32,
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
    late_payment_revive_within: Duration,
    #[serde(with = "humantime_serde")]
    expiry_sweep_interval: Duration,
    #[serde(with = "humantime_serde")]
    idempotency_inflight_timeout: Duration,
    #[serde(with = "humantime_serde")]
    notify_rejected_retention: Duration,
    console_tz: String,
    reconcile_at: String,
    #[serde(with = "humantime_serde")]
    http_connect_timeout: Duration,
    #[serde(with = "humantime_serde")]
    http_timeout: Duration,
    log_format: Option<String>,
    sandbox_notify_time_scale: f64,
    sandbox_sign_type: Option<String>,
    rate_limit: String,
    rate_limit_ip: String,
    rate_limit_user: String,
    trusted_proxies: String,
}

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
            Some(token) if production => {
                production::check_admin_token(&token)?;
                SecretString::from(token)
            }
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

        let sign_type_named = raw
            .wallyt_sign_type
            .as_deref()
            .map(|name| wallyt::parse_sign_type("WALLYT_SIGN_TYPE", name))
            .transpose()?;
        let wallyt = wallyt::wallyt_settings(wallyt::WallytRaw {
            api_url: raw.wallyt_api_url,
            mch_id: raw.wallyt_mch_id,
            secret_key: raw.wallyt_secret_key,
            sign_type: raw.wallyt_sign_type,
            notify_url: raw.wallyt_notify_url,
            private_key: raw.wallyt_private_key,
            private_key_file: raw.wallyt_private_key_file,
            public_key: raw.wallyt_public_key,
            public_key_file: raw.wallyt_public_key_file,
            bill_url: raw.wallyt_bill_url,
        })?;
        if production {
            production::check_https("WECHAT_API_BASE", &wechat_api_base)?;
            if let Some(wallyt) = &wallyt {
                production::check_https("WALLYT_API_URL", &wallyt.api_url)?;
                production::check_https("WALLYT_NOTIFY_URL", &wallyt.notify_url)?;
                if let Some(bill_url) = &wallyt.bill_url {
                    production::check_https("WALLYT_BILL_URL", bill_url)?;
                }
            } else if let Some(sign_type) = sign_type_named {
                // A sign type chosen for a gateway whose keys are missing: someone meant to
                // configure Wallyt and lost the key on the way; do not run without payments.
                return Err(ConfigError::Invalid(format!(
                    "WALLYT_SIGN_TYPE={} is set but its key material {} (and the other \
                     WALLYT_* settings) are not",
                    sign_type.as_str(),
                    wallyt::key_names(sign_type)
                )));
            }
        }
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
            // Zero would let a retry take over a request that is still running.
            (
                "IDEMPOTENCY_INFLIGHT_TIMEOUT",
                raw.idempotency_inflight_timeout,
            ),
            ("NOTIFY_REJECTED_RETENTION", raw.notify_rejected_retention),
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
        let sandbox_sign_type = wallyt::parse_sign_type(
            "SANDBOX_SIGN_TYPE",
            raw.sandbox_sign_type.as_deref().unwrap_or("MD5"),
        )?;
        let scale = raw.sandbox_notify_time_scale;
        if scale.is_nan() || scale < 0.0 {
            return Err(ConfigError::Invalid(
                "SANDBOX_NOTIFY_TIME_SCALE must be a number >= 0".into(),
            ));
        }
        let http_server = ServerLimits {
            head_timeout: raw.http_request_head_timeout,
            body_timeout: raw.http_request_body_timeout,
            keep_alive: raw.http_keep_alive,
            disconnect_timeout: raw.http_disconnect_timeout,
            max_connections: raw.http_max_connections,
        };
        for (name, limit) in [
            ("HTTP_REQUEST_HEAD_TIMEOUT", http_server.head_timeout),
            ("HTTP_REQUEST_BODY_TIMEOUT", http_server.body_timeout),
        ] {
            // Zero would mean "no limit" to actix-web: exactly the slow client's wish.
            if limit.is_zero() {
                return Err(ConfigError::Invalid(format!("{name} must be more than 0")));
            }
        }
        if http_server.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "HTTP_MAX_CONNECTIONS must be more than 0".into(),
            ));
        }
        Ok(Settings {
            app_env,
            http_addr: raw.http_addr,
            http_workers: raw.http_workers,
            http_server,
            database: DatabaseSettings {
                url: SecretUrl::new(raw.database_url),
                max_connections: raw.database_max_connections.max(1),
                read_connections: raw.database_read_connections,
                acquire_timeout: raw.database_acquire_timeout,
                group_commit: GroupCommit::parse(&raw.store_group_commit)?,
                group_commit_lanes: raw.store_group_commit_lanes,
            },
            redis_url: raw.redis_url.map(SecretUrl::new),
            jwt_secret,
            jwt_ttl: raw.jwt_ttl,
            admin_token,
            metrics_token: raw.metrics_token.map(SecretString::from),
            wechat: WechatSettings {
                api_base: wechat_api_base,
                credentials: wechat_credentials,
            },
            wallyt,
            builtin_sandbox,
            sandbox_notify_time_scale: raw.sandbox_notify_time_scale,
            sandbox_sign_type,
            order_ttl: raw.order_ttl,
            pending_limits: PendingLimits {
                max_orders: raw.max_pending_orders,
                max_units: raw.max_pending_units,
            },
            prepay_ttl: raw.prepay_ttl,
            order_actor_idle: raw.order_actor_idle,
            refund_poll_interval: raw.refund_poll_interval,
            query_schedule: parse_schedule(&raw.query_schedule)?,
            expiry_grace: raw.expiry_grace,
            late_payment_revive_within: raw.late_payment_revive_within,
            expiry_sweep_interval: raw.expiry_sweep_interval,
            idempotency_inflight_timeout: raw.idempotency_inflight_timeout,
            notify_rejected_retention: raw.notify_rejected_retention,
            console_tz: parse_zone(&raw.console_tz)?,
            reconcile_at: parse_time_of_day("RECONCILE_AT", &raw.reconcile_at)?,
            outbound: OutboundHttp {
                connect_timeout: raw.http_connect_timeout,
                timeout: raw.http_timeout,
            },
            rate_limit: RateLimitSettings {
                enabled: parse_switch("RATE_LIMIT", &raw.rate_limit)?,
                ip: parse_rate("RATE_LIMIT_IP", &raw.rate_limit_ip)?,
                user: parse_rate("RATE_LIMIT_USER", &raw.rate_limit_user)?,
            },
            trusted_proxies: parse_proxies(&raw.trusted_proxies)?,
            log_format,
            warnings,
        })
    }
}
