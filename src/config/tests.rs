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

#[test]
fn a_zero_inflight_timeout_is_refused() {
    let error = load(AppEnv::Test, &[("IDEMPOTENCY_INFLIGHT_TIMEOUT", "0s")]).unwrap_err();
    assert!(
        error.to_string().contains("IDEMPOTENCY_INFLIGHT_TIMEOUT"),
        "{error}"
    );
}
