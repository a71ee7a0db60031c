//! The pieces of validation: the Wallyt settings (all or none), the query schedule, and the
//! secrets development generates.

use rand::RngCore;
use secrecy::SecretString;
use std::path::Path;
use std::time::Duration;

use super::{ConfigError, WallytSettings};
use crate::gateway::wallyt::SignType;

/// All of the Wallyt settings or none of them; a partial set is a mistake worth stopping for.
pub(super) fn wallyt_settings(
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
pub(super) fn parse_schedule(text: &str) -> Result<Vec<Duration>, ConfigError> {
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

pub(super) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// The development admin token survives restarts so that the README's curl lines keep
/// working; it is created once, readable by its owner only.
pub(super) fn dev_admin_token(path: &Path) -> std::io::Result<String> {
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
