//! Message signatures (protocol §2). The string to sign is every non-empty field but `sign`,
//! sorted by name in byte order, joined as `k=v&k=v` with raw values (no URL or XML escaping,
//! no trimming), then `&key=<secret>`. MD5 or SHA-256 over its UTF-8 bytes, upper-case hex out;
//! verification compares case-insensitively and in constant time. `sign_type` is signed like
//! any other field — leaving it out is a classic bug.

use md5::{Digest, Md5};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use zeroize::Zeroize;

use super::fields::Fields;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignType {
    Md5,
    Sha256,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported sign type {0:?} (MD5 and SHA256 are supported)")]
pub struct UnsupportedSignType(pub String);

impl SignType {
    pub fn parse(value: &str) -> Result<SignType, UnsupportedSignType> {
        match value {
            "MD5" => Ok(SignType::Md5),
            "SHA256" => Ok(SignType::Sha256),
            // RSA_1_256 needs the merchant's private key and the platform's public key,
            // which the configuration does not carry yet: refuse it by name.
            other => Err(UnsupportedSignType(other.to_owned())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SignType::Md5 => "MD5",
            SignType::Sha256 => "SHA256",
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

pub fn sign(fields: &Fields, sign_type: SignType, key: &SecretString) -> String {
    let mut text = string_to_sign(fields);
    text.push_str("&key=");
    text.push_str(key.expose_secret());
    let digest = match sign_type {
        SignType::Md5 => hex_upper(&Md5::digest(text.as_bytes())),
        SignType::Sha256 => hex_upper(&Sha256::digest(text.as_bytes())),
    };
    // The buffer held the key: clear it before it is freed.
    text.zeroize();
    digest
}

/// Whether `fields` carries a valid `sign`. A missing sign is invalid: fail closed.
pub fn verify(fields: &Fields, sign_type: SignType, key: &SecretString) -> bool {
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
