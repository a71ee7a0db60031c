//! Development without credentials: the sandbox mounted on our own port, and our own Wallyt
//! and WeChat clients pointed at it.

use crate::config::{Settings, WechatSettings, DEV_DATA_DIR};
use crate::gateway::wallyt::{SignKeys, SignType, WallytConfig};
use crate::sandbox::keys::dev_rsa_keys;
use crate::sandbox::{Sandbox, SandboxConfig};

/// The built-in sandbox and the keys our own client signs with to speak to it
/// (`SANDBOX_SIGN_TYPE`). For RSA_1_256 the two key pairs live under `data/`.
pub(super) fn builtin_sandbox(settings: &Settings) -> anyhow::Result<(Sandbox, SignKeys)> {
    let config = SandboxConfig {
        notify_time_scale: settings.sandbox_notify_time_scale,
        ..SandboxConfig::generated()
    };
    let (config, engine_keys) = match settings.sandbox_sign_type {
        SignType::Md5 => {
            let key = config.key.clone();
            (config, SignKeys::Md5(key))
        }
        SignType::Sha256 => {
            let key = config.key.clone();
            (config, SignKeys::Sha256(key))
        }
        SignType::Rsa256 => {
            let keys = dev_rsa_keys(std::path::Path::new(DEV_DATA_DIR))?;
            let config = SandboxConfig {
                rsa: Some(keys.sandbox),
                ..config
            };
            (config, SignKeys::Rsa(keys.engine))
        }
    };
    Ok((Sandbox::new(config), engine_keys))
}

/// Our own clients, pointed at the sandbox mounted on our own port.
pub(super) fn sandbox_clients(
    sandbox: &Sandbox,
    keys: SignKeys,
    own_base: &str,
) -> (Option<(WallytConfig, String)>, WechatSettings) {
    let config = sandbox.config();
    let wallyt = WallytConfig {
        api_url: format!("{own_base}/sandbox/pay/gateway"),
        mch_id: config.mch_id.clone(),
        keys,
    };
    let notify_url = format!("{own_base}/payments/wallyt/notify");
    let wechat = WechatSettings {
        api_base: format!("{own_base}/sandbox"),
        credentials: Some((config.appid.clone(), config.app_secret.clone())),
    };
    (Some((wallyt, notify_url)), wechat)
}
