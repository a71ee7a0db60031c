//! `RSA_1_256` (protocol §2.3): SHA256withRSA, PKCS#1 v1.5, standard base64 in `sign`, over
//! the same string as MD5 but **without** `&key=` — there is no shared secret to append. Both
//! directions go through `ring`, whose RSA private-key operation is constant-time (RustCrypto's
//! `rsa` is not: RUSTSEC-2023-0071).

use base64::Engine;
use ring::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256};

use super::fields::Fields;
use super::keys::{RsaPrivateKey, RsaPublicKey};
use super::sign::string_to_sign;

/// The base64 signature of `fields` (all but `sign`) with `key`.
pub fn sign(fields: &Fields, key: &RsaPrivateKey) -> String {
    let pair = key.key_pair();
    let mut signature = vec![0u8; pair.public().modulus_len()];
    // PKCS#1 v1.5 padding is deterministic: the rng is not consulted for it. The only failure
    // is a buffer of the wrong length, which the line above rules out.
    pair.sign(
        &RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        string_to_sign(fields).as_bytes(),
        &mut signature,
    )
    .expect("the signature buffer is the modulus length");
    base64::engine::general_purpose::STANDARD.encode(signature)
}

/// Whether `fields` carries a valid `sign` under `key`. Missing or not base64: invalid.
pub fn verify(fields: &Fields, key: &RsaPublicKey) -> bool {
    let Some(received) = fields.get("sign") else {
        return false;
    };
    // Gateways and SDKs wrap long base64 lines; the signature itself has no whitespace.
    let compact: String = received.chars().filter(|c| !c.is_whitespace()).collect();
    let Ok(signature) = base64::engine::general_purpose::STANDARD.decode(compact) else {
        return false;
    };
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.der())
        .verify(string_to_sign(fields).as_bytes(), &signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::super::keys::tests::{
        MERCHANT_PKCS1, MERCHANT_PKCS8, MERCHANT_SPKI, PLATFORM_PKCS8, PLATFORM_SPKI,
    };
    use super::super::keys::{parse_private_key, parse_public_key};
    use super::*;

    const CANONICAL: &str = include_str!("../../../tests/fixtures/rsa/canonical.txt");
    /// Made by `openssl dgst -sha256 -sign` (tests/fixtures/rsa/README.md): an implementation
    /// independent of ring.
    const OPENSSL_MERCHANT_SIGNATURE: &str =
        include_str!("../../../tests/fixtures/rsa/merchant_signature.b64");
    const OPENSSL_PLATFORM_SIGNATURE: &str =
        include_str!("../../../tests/fixtures/rsa/platform_signature.b64");

    /// The fields whose string to sign is `canonical.txt`; `attach` is empty and must be
    /// skipped, `sign` is never signed.
    fn fields() -> Fields {
        Fields::new()
            .with("service", "pay.weixin.jspay")
            .with("version", "2.0")
            .with("charset", "UTF-8")
            .with("sign_type", "RSA_1_256")
            .with("mch_id", "7551000001")
            .with("out_trade_no", "ORD20240601000001")
            .with("total_fee", "1")
            .with("attach", "")
            .with("nonce_str", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS")
    }

    #[test]
    fn the_string_to_sign_has_no_key_and_matches_the_fixture() {
        assert_eq!(string_to_sign(&fields()), CANONICAL);
        assert!(!CANONICAL.contains("key="));
    }

    #[test]
    fn ring_signs_exactly_as_openssl_does() {
        for pem in [MERCHANT_PKCS8, MERCHANT_PKCS1] {
            let key = parse_private_key(pem, "k").unwrap();
            assert_eq!(sign(&fields(), &key), OPENSSL_MERCHANT_SIGNATURE.trim());
        }
    }

    #[test]
    fn an_openssl_signature_verifies_and_a_tampered_one_does_not() {
        let platform = parse_public_key(PLATFORM_SPKI, "k").unwrap();
        let signed = fields().with("sign", OPENSSL_PLATFORM_SIGNATURE.trim());
        assert!(verify(&signed, &platform));

        let changed_field = signed.clone().with("total_fee", "100");
        assert!(!verify(&changed_field, &platform), "a field changed");
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(OPENSSL_PLATFORM_SIGNATURE.trim())
            .unwrap();
        bytes[100] ^= 1;
        let flipped = base64::engine::general_purpose::STANDARD.encode(bytes);
        assert!(
            !verify(&fields().with("sign", flipped), &platform),
            "a bit flipped"
        );
        let merchant = parse_public_key(MERCHANT_SPKI, "k").unwrap();
        assert!(!verify(&signed, &merchant), "another key");
        assert!(!verify(&fields(), &platform), "no sign");
        assert!(
            !verify(&fields().with("sign", "%%%"), &platform),
            "not base64"
        );
    }

    #[test]
    fn what_we_sign_verifies_with_the_public_half() {
        let private = parse_private_key(PLATFORM_PKCS8, "k").unwrap();
        let signature = sign(&fields(), &private);
        assert!(verify(
            &fields().with("sign", signature),
            &private.public_key()
        ));
    }
}
