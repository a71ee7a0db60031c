//! The built-in sandbox's RSA_1_256 key pairs (development, `SANDBOX_SIGN_TYPE=RSA_1_256`):
//! the merchant's and the platform's, made at first start and kept under `data/` so that a
//! restart (and the standalone sandbox, pointed at the same files) keeps working with them.
//!
//! Why the `rsa` crate generates them: ring signs and verifies RSA but cannot generate RSA
//! keys, and shelling out to `openssl` would make a product path depend on a tool that may be
//! missing. RustCrypto's `rsa` is only used here, to *generate*; its advisory
//! (RUSTSEC-2023-0071) is a timing leak in private-key *operations* observed by an attacker
//! over many requests. Generation runs once, locally, for a development sandbox; every
//! signature is made by ring from the stored PKCS#8.

use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use std::path::{Path, PathBuf};

use crate::config::write_private;
use crate::gateway::wallyt::keys::{parse_private_key, RsaPrivateKey};
use crate::gateway::wallyt::sign::RsaKeys;

/// The engine's side (merchant private, platform public) and the sandbox's (platform
/// private, merchant public).
pub struct DevRsaKeys {
    pub engine: RsaKeys,
    pub sandbox: RsaKeys,
}

pub fn merchant_key_path(dir: &Path) -> PathBuf {
    dir.join("sandbox-merchant-private.pem")
}

pub fn platform_key_path(dir: &Path) -> PathBuf {
    dir.join("sandbox-platform-private.pem")
}

/// Loads both private keys from `dir`, making the missing ones (PKCS#8 PEM, 0600).
pub fn dev_rsa_keys(dir: &Path) -> anyhow::Result<DevRsaKeys> {
    let merchant = load_or_generate(&merchant_key_path(dir))?;
    let platform = load_or_generate(&platform_key_path(dir))?;
    Ok(DevRsaKeys {
        engine: RsaKeys {
            own: merchant.clone(),
            peer: platform.public_key(),
        },
        sandbox: RsaKeys {
            own: platform,
            peer: merchant.public_key(),
        },
    })
}

fn load_or_generate(path: &Path) -> anyhow::Result<RsaPrivateKey> {
    match std::fs::read_to_string(path) {
        // A damaged file is reported, not replaced: someone may have put a key there on
        // purpose (to share it with a standalone sandbox).
        Ok(text) => parse_private_key(&text, "sandbox key file")
            .map_err(|e| anyhow::anyhow!("{}: {e}; delete it to make a new one", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let pem = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)?
                .to_pkcs8_pem(LineEnding::LF)?;
            // Two applications starting at once each make a key and the last rename wins;
            // each holds a consistent pair in memory, and the file is whole either way.
            write_private(path, &pem)
                .map_err(|e| anyhow::anyhow!("could not keep {}: {e}", path.display()))?;
            tracing::info!(event = "sandbox.rsa_key_created", path = %path.display());
            parse_private_key(&pem, "generated sandbox key").map_err(|e| anyhow::anyhow!("{e}"))
        }
        Err(error) => Err(anyhow::anyhow!("cannot read {}: {error}", path.display())),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::gateway::wallyt::fields::Fields;
    use crate::gateway::wallyt::sign::SignKeys;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn key_pairs_are_made_once_owner_only_and_wired_crosswise() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = dev_rsa_keys(&data).unwrap();
        for path in [merchant_key_path(&data), platform_key_path(&data)] {
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
        }
        assert_eq!(std::fs::read_dir(&data).unwrap().count(), 2, "no leftovers");

        // What the engine signs the sandbox verifies, and the other way round.
        let fields = Fields::new().with("a", "1").with("sign_type", "RSA_1_256");
        let engine = SignKeys::Rsa(first.engine.clone());
        let sandbox = SignKeys::Rsa(first.sandbox.clone());
        assert!(sandbox.verify(&fields.clone().with("sign", engine.sign(&fields))));
        assert!(engine.verify(&fields.clone().with("sign", sandbox.sign(&fields))));
        assert!(!engine.verify(&fields.clone().with("sign", engine.sign(&fields))));

        let again = dev_rsa_keys(&data).unwrap();
        assert_eq!(again.engine.peer, first.engine.peer, "kept across restarts");
        assert_eq!(again.sandbox.peer, first.sandbox.peer);
    }

    #[test]
    fn a_damaged_key_file_is_reported_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(merchant_key_path(dir.path()), "garbage").unwrap();
        let err = dev_rsa_keys(dir.path()).err().unwrap().to_string();
        assert!(err.contains("delete it"), "{err}");
        let kept = std::fs::read_to_string(merchant_key_path(dir.path())).unwrap();
        assert_eq!(kept, "garbage");
    }
}
