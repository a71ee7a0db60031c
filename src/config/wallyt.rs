//! The Wallyt settings: all of them or none. "All" is the URL, the merchant id, the notify URL
//! and the key material of the chosen sign type — `WALLYT_SECRET_KEY` for MD5/SHA256, the
//! merchant's private key and the platform's public key for RSA_1_256 (each inline or as a
//! `*_FILE` path). Keys are parsed here, so a malformed one stops the start-up instead of every
//! payment; no error quotes key material.

use secrecy::{ExposeSecret, SecretString};

use super::{ConfigError, WallytSettings};
use crate::gateway::wallyt::keys::{parse_private_key, parse_public_key};
use crate::gateway::wallyt::sign::{RsaKeys, SignKeys, SignType};

/// The raw `WALLYT_*` values, before validation.
#[derive(Default)]
pub(super) struct WallytRaw {
    pub api_url: Option<String>,
    pub mch_id: Option<String>,
    pub secret_key: Option<String>,
    pub sign_type: Option<String>,
    pub notify_url: Option<String>,
    pub private_key: Option<String>,
    pub private_key_file: Option<String>,
    pub public_key: Option<String>,
    pub public_key_file: Option<String>,
    pub bill_url: Option<String>,
}

/// What was set, for the production rule "a sign type without its keys".
pub(super) fn key_names(sign_type: SignType) -> &'static str {
    match sign_type {
        SignType::Md5 | SignType::Sha256 => "WALLYT_SECRET_KEY",
        SignType::Rsa256 => {
            "WALLYT_PRIVATE_KEY (or WALLYT_PRIVATE_KEY_FILE) and WALLYT_PUBLIC_KEY (or \
             WALLYT_PUBLIC_KEY_FILE)"
        }
    }
}

pub(super) fn parse_sign_type(name: &str, value: &str) -> Result<SignType, ConfigError> {
    SignType::parse(value.trim().to_ascii_uppercase().as_str())
        .map_err(|e| ConfigError::Invalid(format!("{name}: {e}")))
}

pub(super) fn wallyt_settings(raw: WallytRaw) -> Result<Option<WallytSettings>, ConfigError> {
    let sign_type = parse_sign_type(
        "WALLYT_SIGN_TYPE",
        raw.sign_type.as_deref().unwrap_or("MD5"),
    )?;
    let private = inline_or_file("WALLYT_PRIVATE_KEY", raw.private_key, raw.private_key_file)?;
    let public = inline_or_file("WALLYT_PUBLIC_KEY", raw.public_key, raw.public_key_file)?;
    // Key material of the other sign type is a sign of a half-finished switch: the engine
    // would silently sign with something else than the operator believes.
    let stray = match sign_type {
        SignType::Md5 | SignType::Sha256 => (private.is_some() || public.is_some())
            .then_some("WALLYT_PRIVATE_KEY / WALLYT_PUBLIC_KEY are set"),
        SignType::Rsa256 => raw
            .secret_key
            .is_some()
            .then_some("WALLYT_SECRET_KEY is set"),
    };
    if let Some(stray) = stray {
        return Err(ConfigError::Invalid(format!(
            "{stray} but WALLYT_SIGN_TYPE is {}; set only the keys of the sign type in use",
            sign_type.as_str()
        )));
    }
    let mut present = vec![
        ("WALLYT_API_URL", raw.api_url.is_some()),
        ("WALLYT_MCH_ID", raw.mch_id.is_some()),
        ("WALLYT_NOTIFY_URL", raw.notify_url.is_some()),
    ];
    match sign_type {
        SignType::Md5 | SignType::Sha256 => {
            present.push(("WALLYT_SECRET_KEY", raw.secret_key.is_some()))
        }
        SignType::Rsa256 => {
            present.push(("WALLYT_PRIVATE_KEY", private.is_some()));
            present.push(("WALLYT_PUBLIC_KEY", public.is_some()));
        }
    }
    // A key given is parsed even when other settings are missing: a malformed key is worth
    // reporting first.
    let keys = match (sign_type, raw.secret_key, private, public) {
        (SignType::Md5, Some(key), ..) => Some(SignKeys::Md5(SecretString::from(key))),
        (SignType::Sha256, Some(key), ..) => Some(SignKeys::Sha256(SecretString::from(key))),
        (SignType::Rsa256, _, Some(private), Some(public)) => Some(SignKeys::Rsa(RsaKeys {
            own: parse_private_key(private.expose_secret(), "WALLYT_PRIVATE_KEY")
                .map_err(|e| ConfigError::Invalid(e.to_string()))?,
            peer: parse_public_key(public.expose_secret(), "WALLYT_PUBLIC_KEY")
                .map_err(|e| ConfigError::Invalid(e.to_string()))?,
        })),
        _ => None,
    };
    match (raw.api_url, raw.mch_id, raw.notify_url, keys) {
        (Some(api_url), Some(mch_id), Some(notify_url), Some(keys)) => {
            for (name, value) in [
                ("WALLYT_API_URL", &api_url),
                ("WALLYT_NOTIFY_URL", &notify_url),
            ] {
                url::Url::parse(value)
                    .map_err(|e| ConfigError::Invalid(format!("{name} is not a URL: {e}")))?;
            }
            // Optional: the bill is only needed for the daily reconciliation.
            if let Some(bill_url) = &raw.bill_url {
                url::Url::parse(bill_url).map_err(|e| {
                    ConfigError::Invalid(format!("WALLYT_BILL_URL is not a URL: {e}"))
                })?;
            }
            Ok(Some(WallytSettings {
                api_url,
                mch_id,
                keys,
                notify_url,
                bill_url: raw.bill_url,
            }))
        }
        _ if present.iter().all(|(_, set)| !set) => Ok(None),
        _ => {
            let missing: Vec<&str> = present
                .iter()
                .filter_map(|(name, set)| (!set).then_some(*name))
                .collect();
            Err(ConfigError::Invalid(format!(
                "Wallyt is partly configured; also set {}",
                missing.join(", ")
            )))
        }
    }
}

/// `NAME` or `NAME_FILE` (a path), not both. Only the path and the I/O error kind are ever
/// reported, never the content.
fn inline_or_file(
    name: &'static str,
    inline: Option<String>,
    file: Option<String>,
) -> Result<Option<SecretString>, ConfigError> {
    match (inline, file) {
        (None, None) => Ok(None),
        (Some(text), None) => Ok(Some(SecretString::from(text))),
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map(|text| Some(SecretString::from(text)))
            .map_err(|e| {
                ConfigError::Invalid(format!("{name}_FILE: cannot read {path}: {}", e.kind()))
            }),
        (Some(_), Some(_)) => Err(ConfigError::Invalid(format!(
            "set {name} or {name}_FILE, not both"
        ))),
    }
}
