//! Message signatures (protocol §2). The string to sign is every non-empty field but `sign`,
//! sorted by name in byte order, joined as `k=v&k=v` with raw values (no URL or XML escaping,
//! no trimming). MD5 and SHA256 append `&key=<secret>` and take the digest of its UTF-8 bytes,
//! upper-case hex out; verification compares case-insensitively and in constant time.
//! `RSA_1_256` signs the string without a key ([`super::rsa`]). `sign_type` is signed like any
//! other field — leaving it out is a classic bug.
//!
//! [`SignKeys`] is what the engine and the sandbox hold: the sign type together with the key
//! material it needs, so that one cannot be configured without the other.

use md5::{Digest, Md5};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use zeroize::Zeroize;

use super::fields::Fields;
use super::keys::{RsaPrivateKey, RsaPublicKey};
use super::rsa;

/// The `sign_type` of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignType {
    Md5,
    Sha256,
    Rsa256,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported sign type {0:?} (MD5, SHA256 and RSA_1_256 are supported)")]
pub struct UnsupportedSignType(pub String);

impl SignType {
    pub fn parse(value: &str) -> Result<SignType, UnsupportedSignType> {
        match value {
            "MD5" => Ok(SignType::Md5),
            "SHA256" => Ok(SignType::Sha256),
            "RSA_1_256" => Ok(SignType::Rsa256),
            other => Err(UnsupportedSignType(other.chars().take(16).collect())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SignType::Md5 => "MD5",
            SignType::Sha256 => "SHA256",
            SignType::Rsa256 => "RSA_1_256",
        }
    }
}

/// The two sign types that digest the string with a shared key appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyedHash {
    Md5,
    Sha256,
}

/// A sign type with its keys. For RSA, `own` signs what this side sends and `peer` verifies
/// what the other side sends: the engine holds (merchant private, platform public), the sandbox
/// the mirror image. Debug never shows a secret (SecretString and RsaPrivateKey redact).
#[derive(Clone, Debug)]
pub enum SignKeys {
    Md5(SecretString),
    Sha256(SecretString),
    Rsa(RsaKeys),
}

/// RSA_1_256 keys seen from one side: `own` private key signs, `peer` public key verifies.
#[derive(Clone, Debug)]
pub struct RsaKeys {
    pub own: RsaPrivateKey,
    pub peer: RsaPublicKey,
}

impl SignKeys {
    pub fn sign_type(&self) -> SignType {
        match self {
            SignKeys::Md5(_) => SignType::Md5,
            SignKeys::Sha256(_) => SignType::Sha256,
            SignKeys::Rsa(_) => SignType::Rsa256,
        }
    }

    pub fn sign(&self, fields: &Fields) -> String {
        match self {
            SignKeys::Md5(key) => sign(fields, KeyedHash::Md5, key),
            SignKeys::Sha256(key) => sign(fields, KeyedHash::Sha256, key),
            SignKeys::Rsa(keys) => rsa::sign(fields, &keys.own),
        }
    }

    /// Whether `fields` carries a valid `sign` under these keys. Which algorithm is used is
    /// ours to decide, never the message's: see [`crate::gateway::wallyt::notify`].
    pub fn verify(&self, fields: &Fields) -> bool {
        match self {
            SignKeys::Md5(key) => verify(fields, KeyedHash::Md5, key),
            SignKeys::Sha256(key) => verify(fields, KeyedHash::Sha256, key),
            SignKeys::Rsa(keys) => rsa::verify(fields, &keys.peer),
        }
    }
}

/// The string the digest is taken over, without the key. Exposed for tests and debugging of
/// *our own* messages; it never contains the key, so it is safe to compare, not to log (it
/// still carries openids).
pub fn string_to_sign(fields: &Fields) -> String {
    let mut out = String::new();
    for (name, value) in fields.iter() {
        if name == "sign" || value.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// A keyed-hash signature (MD5 or SHA256).
pub fn sign(fields: &Fields, sign_type: KeyedHash, key: &SecretString) -> String {
    let mut text = string_to_sign(fields);
    text.push_str("&key=");
    text.push_str(key.expose_secret());
    let digest = match sign_type {
        KeyedHash::Md5 => hex_upper(&Md5::digest(text.as_bytes())),
        KeyedHash::Sha256 => hex_upper(&Sha256::digest(text.as_bytes())),
    };
    // The buffer held the key: clear it before it is freed.
    text.zeroize();
    digest
}

/// Whether `fields` carries a valid keyed-hash `sign`. A missing sign is invalid: fail closed.
pub fn verify(fields: &Fields, sign_type: KeyedHash, key: &SecretString) -> bool {
    let Some(received) = fields.get("sign") else {
        return false;
    };
    let expected = sign(fields, sign_type, key);
    let received = received.trim().to_ascii_uppercase();
    constant_time_eq::constant_time_eq(received.as_bytes(), expected.as_bytes())
}

/// The sign type a received message declares; absent means MD5 (the protocol's default).
pub fn declared_sign_type(fields: &Fields) -> Result<SignType, UnsupportedSignType> {
    SignType::parse(fields.get("sign_type").unwrap_or("MD5"))
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
#[path = "sign_vectors.rs"]
pub(super) mod vectors;
