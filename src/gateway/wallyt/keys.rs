//! RSA key material for `RSA_1_256` (protocol §2): the merchant's private key, which signs
//! what we send, and the platform's public key, which verifies what the gateway sends us.
//!
//! Keys arrive as PEM or as bare base64 of the DER (the form SwiftPass's merchant console
//! hands out). Private keys may be PKCS#1 (`RSA PRIVATE KEY`) or PKCS#8 (`PRIVATE KEY`), both
//! parsed by `ring` itself; public keys are SPKI (`PUBLIC KEY`), or PKCS#1 (`RSA PUBLIC KEY`).
//! Errors name what is wrong in fixed words: they never quote the input, which would put key
//! material in a start-up log.

use base64::Engine;
use pkcs1::der::Decode;
use ring::signature::RsaKeyPair;
use std::sync::Arc;

/// rsaEncryption (RFC 8017 A.1): the only SPKI algorithm an RSA_1_256 platform key can carry.
const RSA_ENCRYPTION: spki::ObjectIdentifier =
    spki::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// The modulus sizes ring's `RSA_PKCS1_2048_8192_SHA256` verifies: refusing others at start-up
/// beats refusing every notify later.
const MIN_BITS: usize = 2048;
const MAX_BITS: usize = 8192;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("{0} is neither PEM nor base64")]
    Encoding(&'static str),
    #[error("{0} has PEM label {1:?}; expected {2}")]
    Label(&'static str, String, &'static str),
    /// The reason is one of ring's or our fixed words (`InvalidEncoding`, ...), never input.
    #[error("{0} is not a valid RSA key ({1})")]
    Invalid(&'static str, String),
}

/// A private key ready to sign with ring. Debug never shows it.
#[derive(Clone)]
pub struct RsaPrivateKey(Arc<RsaKeyPair>);

impl std::fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RsaPrivateKey([REDACTED {} bits])", self.bits())
    }
}

impl RsaPrivateKey {
    pub fn key_pair(&self) -> &RsaKeyPair {
        &self.0
    }

    pub fn bits(&self) -> usize {
        self.0.public().modulus_len() * 8
    }

    /// The public half, for a peer that verifies what this key signs (the sandbox).
    pub fn public_key(&self) -> RsaPublicKey {
        use ring::signature::KeyPair;
        RsaPublicKey(Arc::new(self.0.public_key().as_ref().to_vec()))
    }
}

/// A public key as ring verifies it: the PKCS#1 `RSAPublicKey` DER.
#[derive(Clone, PartialEq, Eq)]
pub struct RsaPublicKey(Arc<Vec<u8>>);

impl std::fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Public, but nobody needs it in a log either: its size says which key it is not.
        write!(f, "RsaPublicKey({} bytes)", self.0.len())
    }
}

impl RsaPublicKey {
    pub fn der(&self) -> &[u8] {
        &self.0
    }
}

/// The merchant's (or, in the sandbox, the platform's) private key; `what` names the setting
/// in errors.
pub fn parse_private_key(text: &str, what: &'static str) -> Result<RsaPrivateKey, KeyError> {
    let (label, der) = decode_container(text, what)?;
    let parsed = match label.as_deref() {
        Some("PRIVATE KEY") => RsaKeyPair::from_pkcs8(&der),
        Some("RSA PRIVATE KEY") => RsaKeyPair::from_der(&der),
        Some(other) => {
            return Err(KeyError::Label(
                what,
                short(other),
                "PRIVATE KEY or RSA PRIVATE KEY",
            ))
        }
        // Bare base64: PKCS#8 is what Java-based consoles export, PKCS#1 what `openssl genrsa`
        // (1.x) writes; the two DER structures cannot be mistaken for one another.
        None => RsaKeyPair::from_pkcs8(&der).or_else(|_| RsaKeyPair::from_der(&der)),
    };
    let pair = parsed.map_err(|e| KeyError::Invalid(what, e.to_string()))?;
    let bits = pair.public().modulus_len() * 8;
    if !(MIN_BITS..=MAX_BITS).contains(&bits) {
        return Err(KeyError::Invalid(
            what,
            "modulus must be 2048 to 8192 bits".into(),
        ));
    }
    Ok(RsaPrivateKey(Arc::new(pair)))
}

/// The platform's (or, in the sandbox, the merchant's) public key.
pub fn parse_public_key(text: &str, what: &'static str) -> Result<RsaPublicKey, KeyError> {
    let (label, der) = decode_container(text, what)?;
    let pkcs1_der = match label.as_deref() {
        Some("PUBLIC KEY") => spki_to_pkcs1(&der, what)?,
        Some("RSA PUBLIC KEY") => der,
        Some(other) => {
            return Err(KeyError::Label(
                what,
                short(other),
                "PUBLIC KEY or RSA PUBLIC KEY",
            ))
        }
        None => spki_to_pkcs1(&der, what)?,
    };
    let key = pkcs1::RsaPublicKey::from_der(&pkcs1_der)
        .map_err(|_| KeyError::Invalid(what, "not an RSAPublicKey structure".into()))?;
    let modulus = key.modulus.as_bytes();
    let bits = modulus.len() * 8 - modulus.first().map_or(8, |b| b.leading_zeros() as usize);
    if !(MIN_BITS..=MAX_BITS).contains(&bits) {
        return Err(KeyError::Invalid(
            what,
            "modulus must be 2048 to 8192 bits".into(),
        ));
    }
    Ok(RsaPublicKey(Arc::new(pkcs1_der)))
}

fn spki_to_pkcs1(der: &[u8], what: &'static str) -> Result<Vec<u8>, KeyError> {
    let info = spki::SubjectPublicKeyInfoRef::from_der(der).map_err(|_| {
        KeyError::Invalid(what, "not a SubjectPublicKeyInfo (SPKI) structure".into())
    })?;
    if info.algorithm.oid != RSA_ENCRYPTION {
        return Err(KeyError::Invalid(what, "not an RSA public key".into()));
    }
    info.subject_public_key
        .as_bytes()
        .map(<[u8]>::to_vec)
        .ok_or(KeyError::Invalid(
            what,
            "malformed public key bit string".into(),
        ))
}

/// PEM (label and DER) or bare base64 (DER, no label). Whitespace and line breaks in the bare
/// form are ignored: settings files and consoles wrap it.
fn decode_container(text: &str, what: &'static str) -> Result<(Option<String>, Vec<u8>), KeyError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(KeyError::Invalid(what, "empty".into()));
    }
    if text.starts_with("-----BEGIN ") {
        // pem's own errors can quote the text they choke on: replaced by fixed words.
        let pem = pem::parse(text).map_err(|_| KeyError::Encoding(what))?;
        return Ok((Some(pem.tag().to_owned()), pem.into_contents()));
    }
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map(|der| (None, der))
        .map_err(|_| KeyError::Encoding(what))
}

/// A PEM label is not secret, but it is input: keep it short in an error.
fn short(label: &str) -> String {
    label.chars().take(32).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub const MERCHANT_PKCS8: &str = include_str!("../../../tests/fixtures/rsa/merchant_pkcs8.pem");
    pub const MERCHANT_PKCS1: &str = include_str!("../../../tests/fixtures/rsa/merchant_pkcs1.pem");
    pub const MERCHANT_SPKI: &str = include_str!("../../../tests/fixtures/rsa/merchant_spki.pem");
    pub const PLATFORM_PKCS8: &str = include_str!("../../../tests/fixtures/rsa/platform_pkcs8.pem");
    pub const PLATFORM_SPKI: &str = include_str!("../../../tests/fixtures/rsa/platform_spki.pem");

    /// The base64 body of a PEM, as a console would show it: one line, no armour.
    fn bare(pem: &str) -> String {
        pem.lines().filter(|l| !l.starts_with("-----")).collect()
    }

    #[test]
    fn private_keys_parse_in_all_four_forms_to_the_same_key() {
        let forms = [
            MERCHANT_PKCS8.to_owned(),
            MERCHANT_PKCS1.to_owned(),
            bare(MERCHANT_PKCS8),
            bare(MERCHANT_PKCS1),
        ];
        let expected = parse_public_key(MERCHANT_SPKI, "k").unwrap();
        for form in &forms {
            let key = parse_private_key(form, "WALLYT_PRIVATE_KEY").unwrap();
            assert_eq!(key.bits(), 2048);
            assert_eq!(key.public_key(), expected, "same key from {:.30}", form);
        }
    }

    #[test]
    fn public_keys_parse_as_pem_and_bare_base64() {
        let pem = parse_public_key(PLATFORM_SPKI, "k").unwrap();
        let bare = parse_public_key(&bare(PLATFORM_SPKI), "k").unwrap();
        assert_eq!(pem, bare);
        assert_eq!(
            pem,
            parse_private_key(PLATFORM_PKCS8, "k").unwrap().public_key()
        );
    }

    #[test]
    fn malformed_keys_are_refused_without_quoting_them() {
        let body = bare(MERCHANT_PKCS8);
        let truncated = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----",
            &body[..body.len() / 2]
        );
        let cases = [
            ("", "empty"),
            ("not a key at all!", "neither PEM nor base64"),
            (truncated.as_str(), "not a valid RSA key"),
            // Valid base64 (the fixture's half is a multiple of 4 long), not a whole key.
            (&body[..body.len() / 2], "not a valid RSA key"),
            ("MIIE!", "neither PEM nor base64"),
            (MERCHANT_SPKI, "label"),
        ];
        for (input, expected) in cases {
            let error = parse_private_key(input, "WALLYT_PRIVATE_KEY").unwrap_err();
            let message = error.to_string();
            assert!(message.contains(expected), "{message}");
            assert!(message.starts_with("WALLYT_PRIVATE_KEY"), "{message}");
            // No run of the key's base64 appears in what would be logged.
            for chunk in body.as_bytes().chunks(12) {
                let chunk = std::str::from_utf8(chunk).unwrap();
                assert!(!message.contains(chunk), "{message}");
            }
        }
        let error = parse_public_key(MERCHANT_PKCS8, "WALLYT_PUBLIC_KEY").unwrap_err();
        assert!(matches!(error, KeyError::Label(..)), "{error}");
        let error = parse_public_key(&bare(MERCHANT_PKCS8), "WALLYT_PUBLIC_KEY").unwrap_err();
        assert!(error.to_string().contains("SPKI"), "{error}");
    }

    #[test]
    fn debug_output_redacts_the_private_key() {
        let key = parse_private_key(MERCHANT_PKCS8, "k").unwrap();
        assert_eq!(format!("{key:?}"), "RsaPrivateKey([REDACTED 2048 bits])");
    }
}
