//! Loading and validating settings.
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
    assert_eq!(
        settings.idempotency_inflight_timeout,
        Duration::from_secs(60)
    );
    assert_eq!(
        settings.notify_rejected_retention,
        Duration::from_secs(7 * 86400)
    );
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
            ("IDEMPOTENCY_INFLIGHT_TIMEOUT", "1500ms"),
        ],
    )
    .unwrap();
    assert_eq!(settings.order_ttl, Duration::from_secs(90));
    assert_eq!(
        settings.idempotency_inflight_timeout,
        Duration::from_millis(1500)
    );
    assert_eq!(settings.prepay_ttl, Duration::from_secs(7200));
    assert_eq!(settings.database.url, "postgres://x/y");
}

#[test]
fn production_refuses_to_start_without_its_secrets() {
    let err = load(AppEnv::Production, &[("ADMIN_TOKEN", PROD_SECRET)]).unwrap_err();
    assert!(err.to_string().contains("JWT_SECRET"), "{err}");
    let err = load(AppEnv::Production, &[("JWT_SECRET", PROD_SECRET)]).unwrap_err();
    assert!(err.to_string().contains("ADMIN_TOKEN"), "{err}");
    let err = load(
        AppEnv::Production,
        &[("JWT_SECRET", "short"), ("ADMIN_TOKEN", PROD_SECRET)],
    )
    .unwrap_err();
    assert!(err.to_string().contains("32"), "{err}");
    let ok = load(
        AppEnv::Production,
        &[("JWT_SECRET", PROD_SECRET), ("ADMIN_TOKEN", PROD_SECRET)],
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
fn unknown_sign_types_are_refused_at_start_up_by_name() {
    let err = load(AppEnv::Test, &[("WALLYT_SIGN_TYPE", "RSA")]).unwrap_err();
    assert!(err.to_string().contains("unsupported sign type"), "{err}");
    for known in ["sha256", "RSA_1_256"] {
        let ok = load(AppEnv::Test, &[("WALLYT_SIGN_TYPE", known)]).unwrap();
        assert!(ok.wallyt.is_none(), "a sign type alone configures nothing");
    }
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
    let prod = [("JWT_SECRET", PROD_SECRET), ("ADMIN_TOKEN", PROD_SECRET)];
    assert!(!load(AppEnv::Production, &prod).unwrap().builtin_sandbox);
}

#[test]
fn empty_variables_count_as_unset() {
    let settings = load(AppEnv::Test, &[("WALLYT_MCH_ID", ""), ("REDIS_URL", " ")]).unwrap();
    assert!(settings.wallyt.is_none());
    assert!(settings.redis_url.is_none());
}

#[test]
fn a_zero_inflight_timeout_is_refused() {
    let error = load(AppEnv::Test, &[("IDEMPOTENCY_INFLIGHT_TIMEOUT", "0s")]).unwrap_err();
    assert!(
        error.to_string().contains("IDEMPOTENCY_INFLIGHT_TIMEOUT"),
        "{error}"
    );
}

#[test]
fn rate_limits_default_on_and_parse_their_syntax() {
    let settings = load(AppEnv::Test, &[]).unwrap();
    assert!(settings.rate_limit.enabled);
    assert_eq!(settings.rate_limit.ip.count.get(), 300);
    assert_eq!(settings.rate_limit.ip.period, Duration::from_secs(60));
    assert_eq!(settings.rate_limit.user.count.get(), 120);
    assert!(settings.trusted_proxies.is_empty());

    let settings = load(
        AppEnv::Test,
        &[
            ("RATE_LIMIT", "off"),
            ("RATE_LIMIT_IP", "10/s"),
            ("RATE_LIMIT_USER", "5000/h"),
            ("TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.1, fd00::/8"),
        ],
    )
    .unwrap();
    assert!(!settings.rate_limit.enabled);
    assert_eq!(settings.rate_limit.ip.count.get(), 10);
    assert_eq!(settings.rate_limit.ip.period, Duration::from_secs(1));
    assert_eq!(settings.rate_limit.user.period, Duration::from_secs(3600));
    assert_eq!(settings.trusted_proxies.len(), 3);
    assert_eq!(settings.trusted_proxies[1].to_string(), "192.168.1.1/32");
}

#[test]
fn bad_rate_limit_settings_are_refused_with_their_name() {
    for (name, value) in [
        ("RATE_LIMIT_IP", "300"),
        ("RATE_LIMIT_IP", "0/min"),
        ("RATE_LIMIT_USER", "120/fortnight"),
        ("RATE_LIMIT_USER", "-1/s"),
        ("RATE_LIMIT", "maybe"),
        ("TRUSTED_PROXIES", "10.0.0.0/33"),
        ("TRUSTED_PROXIES", "proxy.internal"),
    ] {
        let error = load(AppEnv::Test, &[(name, value)])
            .unwrap_err()
            .to_string();
        assert!(error.contains(name), "{name}={value}: {error}");
    }
}

const PROD: [(&str, &str); 2] = [("JWT_SECRET", PROD_SECRET), ("ADMIN_TOKEN", PROD_SECRET)];

/// Production's settings plus `extra` (later entries win).
fn production(extra: &[(&'static str, &'static str)]) -> Result<Settings, ConfigError> {
    let mut vars: Vec<(&str, &str)> = PROD.to_vec();
    vars.extend_from_slice(extra);
    let vars: HashMap<&str, &str> = vars.into_iter().collect();
    load(AppEnv::Production, &vars.into_iter().collect::<Vec<_>>())
}

const WALLYT: [(&str, &str); 6] = [
    ("WECHAT_MINI_APPID", "wx1"),
    ("WECHAT_MINI_SECRET", "s"),
    ("WALLYT_API_URL", "https://payuat.wepayez.com/pay/gateway"),
    ("WALLYT_MCH_ID", "7551000001"),
    ("WALLYT_SECRET_KEY", "k"),
    (
        "WALLYT_NOTIFY_URL",
        "https://pay.example.com/payments/wallyt/notify",
    ),
];

#[test]
fn development_listens_on_loopback_and_production_everywhere() {
    let dev = load(AppEnv::Development, &[("ADMIN_TOKEN", "a")]).unwrap();
    assert_eq!(dev.http_addr, "127.0.0.1:8080");
    assert_eq!(production(&[]).unwrap().http_addr, "0.0.0.0:8080");
}

#[test]
fn production_refuses_a_short_admin_token() {
    let err = production(&[("ADMIN_TOKEN", "0123456789abcdef0123456789abcde")]).unwrap_err();
    assert!(err.to_string().contains("ADMIN_TOKEN"), "{err}");
    assert!(
        !err.to_string().contains("0123456789abcdef"),
        "the token is not echoed"
    );
    // Development and test keep accepting short tokens (the tests' and the README's).
    assert!(load(AppEnv::Test, &[("ADMIN_TOKEN", "a")]).is_ok());
}

#[test]
fn production_refuses_plain_http_to_wechat_and_wallyt() {
    let mut with_wallyt = WALLYT.to_vec();
    assert!(production(&with_wallyt).is_ok());
    for (name, url) in [
        ("WECHAT_API_BASE", "http://api.weixin.qq.com"),
        ("WALLYT_API_URL", "http://payuat.wepayez.com/pay/gateway"),
        (
            "WALLYT_NOTIFY_URL",
            "http://pay.example.com/payments/wallyt/notify",
        ),
        ("WALLYT_BILL_URL", "http://download.swiftpass.cn/gateway"),
    ] {
        let mut vars = with_wallyt.clone();
        vars.push((name, url));
        let err = production(&vars).unwrap_err();
        assert!(err.to_string().contains(name), "{name}: {err}");
        // The same URL is fine outside production (a staging gateway, a local stand-in).
        assert!(load(AppEnv::Test, &vars).is_ok(), "{name}");
    }
    with_wallyt.push(("WALLYT_API_URL", "http://127.0.0.1:3128/pay/gateway"));
    with_wallyt.push(("WECHAT_API_BASE", "http://localhost:3128"));
    with_wallyt.push(("WALLYT_BILL_URL", "http://127.0.0.1:3128/gateway"));
    assert!(production(&with_wallyt).is_ok(), "a local proxy is allowed");
}

#[test]
fn the_daily_reconciliation_time_is_beijing_hh_mm_or_off() {
    let default = load(AppEnv::Test, &[]).unwrap();
    assert_eq!(
        default.reconcile_at,
        Some(chrono::NaiveTime::from_hms_opt(10, 0, 0).unwrap())
    );
    assert_eq!(
        load(AppEnv::Test, &[("RECONCILE_AT", "off")])
            .unwrap()
            .reconcile_at,
        None
    );
    let err = load(AppEnv::Test, &[("RECONCILE_AT", "25:00")]).unwrap_err();
    assert!(err.to_string().contains("RECONCILE_AT"), "{err}");
    let mut vars = WALLYT.to_vec();
    vars.push(("WALLYT_BILL_URL", "https://download.swiftpass.cn/gateway"));
    let wallyt = production(&vars).unwrap().wallyt.unwrap();
    assert_eq!(
        wallyt.bill_url.as_deref(),
        Some("https://download.swiftpass.cn/gateway")
    );
}

#[test]
fn production_refuses_a_sign_type_without_its_keys() {
    let err = production(&[("WALLYT_SIGN_TYPE", "SHA256")]).unwrap_err();
    assert!(err.to_string().contains("WALLYT_SECRET_KEY"), "{err}");
    let mut vars = WALLYT.to_vec();
    vars.push(("WALLYT_SIGN_TYPE", "SHA256"));
    let ok = production(&vars).unwrap();
    assert_eq!(ok.wallyt.unwrap().keys.sign_type(), SignType::Sha256);
    // Unset means MD5, the gateway's default.
    let md5 = load(AppEnv::Test, &WALLYT).unwrap();
    assert_eq!(md5.wallyt.unwrap().keys.sign_type(), SignType::Md5);
}

#[test]
fn connection_passwords_never_show_in_debug_output() {
    let settings = load(
        AppEnv::Test,
        &[
            (
                "DATABASE_URL",
                "postgres://app:db-password-value@db:5432/pay",
            ),
            ("REDIS_URL", "redis://:redis-password-value@cache:6379/0"),
        ],
    )
    .unwrap();
    let debug = format!("{settings:?}");
    assert!(!debug.contains("db-password-value"), "{debug}");
    assert!(!debug.contains("redis-password-value"), "{debug}");
    assert!(debug.contains("postgres://app:***@db:5432/pay"), "{debug}");
    assert_eq!(
        settings.database.url.expose(),
        "postgres://app:db-password-value@db:5432/pay"
    );
}

#[test]
fn server_limits_have_defaults_and_refuse_zero() {
    let settings = load(AppEnv::Test, &[]).unwrap();
    let limits = settings.http_server;
    assert_eq!(limits.head_timeout, Duration::from_secs(5));
    assert_eq!(limits.body_timeout, Duration::from_secs(10));
    assert_eq!(limits.keep_alive, Duration::from_secs(5));
    assert_eq!(limits.max_connections, 10_000);
    assert!(settings.metrics_token.is_none());
    for name in [
        "HTTP_REQUEST_HEAD_TIMEOUT",
        "HTTP_REQUEST_BODY_TIMEOUT",
        "HTTP_MAX_CONNECTIONS",
    ] {
        let err = load(AppEnv::Test, &[(name, "0")]).unwrap_err();
        assert!(err.to_string().contains(name), "{name}: {err}");
    }
}

mod rsa;

#[test]
fn group_commit_is_chosen_by_backend_by_default() {
    let settings = load(AppEnv::Test, &[]).unwrap();
    assert_eq!(settings.database.group_commit, GroupCommit::Auto);
    for (text, mode) in [
        ("on", GroupCommit::On),
        ("off", GroupCommit::Off),
        ("Reservations", GroupCommit::Reservations),
    ] {
        let settings = load(AppEnv::Test, &[("STORE_GROUP_COMMIT", text)]).unwrap();
        assert_eq!(settings.database.group_commit, mode);
    }
    assert!(load(AppEnv::Test, &[("STORE_GROUP_COMMIT", "sometimes")]).is_err());
}
