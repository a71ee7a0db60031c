//! The RSA settings: key files or inline PEM, what production and the sandbox accept.

use super::*;
use crate::gateway::wallyt::keys::tests::{
    MERCHANT_PKCS1, MERCHANT_PKCS8, PLATFORM_PKCS8, PLATFORM_SPKI,
};

/// WALLYT with the two RSA keys instead of the secret key.
fn rsa_vars<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut vars: Vec<(&str, &str)> = WALLYT
        .iter()
        .copied()
        .filter(|(name, _)| *name != "WALLYT_SECRET_KEY")
        .collect();
    vars.push(("WALLYT_SIGN_TYPE", "RSA_1_256"));
    vars.extend_from_slice(extra);
    vars
}

fn body(pem: &str) -> String {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

fn refusal(vars: &[(&str, &str)]) -> String {
    load(AppEnv::Test, vars).unwrap_err().to_string()
}

#[test]
fn rsa_keys_are_taken_inline_or_from_files() {
    let pkcs1_bare = body(MERCHANT_PKCS1);
    let inline = load(
        AppEnv::Test,
        &rsa_vars(&[
            ("WALLYT_PRIVATE_KEY", &pkcs1_bare),
            ("WALLYT_PUBLIC_KEY", PLATFORM_SPKI),
        ]),
    )
    .unwrap();
    assert_eq!(inline.wallyt.unwrap().keys.sign_type(), SignType::Rsa256);

    let dir = tempfile::tempdir().unwrap();
    let (private, public) = (dir.path().join("m.pem"), dir.path().join("p.pem"));
    std::fs::write(&private, MERCHANT_PKCS8).unwrap();
    std::fs::write(&public, PLATFORM_SPKI).unwrap();
    let from_files = load(
        AppEnv::Test,
        &rsa_vars(&[
            ("WALLYT_PRIVATE_KEY_FILE", private.to_str().unwrap()),
            ("WALLYT_PUBLIC_KEY_FILE", public.to_str().unwrap()),
        ]),
    )
    .unwrap();
    let debug = format!("{from_files:?}");
    assert!(debug.contains("REDACTED"), "{debug}");
    for line in MERCHANT_PKCS8.lines().skip(1).take(5) {
        assert!(!debug.contains(line), "private key in Debug output");
    }
}

#[test]
fn each_missing_or_malformed_rsa_key_stops_the_start() {
    let err = refusal(&rsa_vars(&[("WALLYT_PUBLIC_KEY", PLATFORM_SPKI)]));
    assert!(err.contains("also set WALLYT_PRIVATE_KEY"), "{err}");
    let err = refusal(&rsa_vars(&[("WALLYT_PRIVATE_KEY", MERCHANT_PKCS8)]));
    assert!(err.contains("also set WALLYT_PUBLIC_KEY"), "{err}");

    let key_body = body(MERCHANT_PKCS8);
    let damaged = key_body.replace(&key_body[40..60], "AAAAAAAAAAAAAAAAAAAA");
    let err = refusal(&rsa_vars(&[
        ("WALLYT_PRIVATE_KEY", &damaged),
        ("WALLYT_PUBLIC_KEY", PLATFORM_SPKI),
    ]));
    assert!(
        err.starts_with("WALLYT_PRIVATE_KEY is not a valid RSA key"),
        "{err}"
    );
    assert!(!err.contains(&key_body[100..120]), "{err}");

    let err = refusal(&rsa_vars(&[
        ("WALLYT_PRIVATE_KEY", MERCHANT_PKCS8),
        ("WALLYT_PUBLIC_KEY", PLATFORM_PKCS8),
    ]));
    assert!(err.starts_with("WALLYT_PUBLIC_KEY has PEM label"), "{err}");

    let err = refusal(&rsa_vars(&[
        ("WALLYT_PRIVATE_KEY", MERCHANT_PKCS8),
        ("WALLYT_PRIVATE_KEY_FILE", "/etc/hostname"),
        ("WALLYT_PUBLIC_KEY", PLATFORM_SPKI),
    ]));
    assert!(err.contains("not both"), "{err}");

    let err = refusal(&rsa_vars(&[
        ("WALLYT_PRIVATE_KEY_FILE", "/nonexistent/merchant.pem"),
        ("WALLYT_PUBLIC_KEY", PLATFORM_SPKI),
    ]));
    assert!(
        err.contains("WALLYT_PRIVATE_KEY_FILE: cannot read"),
        "{err}"
    );
}

#[test]
fn keys_of_the_other_sign_type_are_refused() {
    let err = refusal(&rsa_vars(&[
        ("WALLYT_PRIVATE_KEY", MERCHANT_PKCS8),
        ("WALLYT_PUBLIC_KEY", PLATFORM_SPKI),
        ("WALLYT_SECRET_KEY", "k"),
    ]));
    assert!(err.contains("WALLYT_SECRET_KEY is set but WALLYT_SIGN_TYPE is RSA_1_256"));
    let mut md5 = WALLYT.to_vec();
    md5.push(("WALLYT_PUBLIC_KEY", PLATFORM_SPKI));
    let err = refusal(&md5);
    assert!(err.contains("but WALLYT_SIGN_TYPE is MD5"), "{err}");
}

#[test]
fn production_refuses_rsa_without_its_keys() {
    let err = production(&[("WALLYT_SIGN_TYPE", "RSA_1_256")]).unwrap_err();
    let err = err.to_string();
    assert!(err.contains("WALLYT_PRIVATE_KEY"), "{err}");
    assert!(err.contains("WALLYT_PUBLIC_KEY"), "{err}");
    let vars = rsa_vars(&[
        ("WALLYT_PRIVATE_KEY", MERCHANT_PKCS8),
        ("WALLYT_PUBLIC_KEY", PLATFORM_SPKI),
    ]);
    let ok = production(&vars).unwrap();
    assert_eq!(ok.wallyt.unwrap().keys.sign_type(), SignType::Rsa256);
}

#[test]
fn the_sandbox_sign_type_is_checked() {
    let settings = load(
        AppEnv::Development,
        &[
            ("SANDBOX_SIGN_TYPE", "rsa_1_256"),
            ("ADMIN_TOKEN", PROD_SECRET),
        ],
    );
    assert_eq!(settings.unwrap().sandbox_sign_type, SignType::Rsa256);
    let err = refusal(&[("SANDBOX_SIGN_TYPE", "RSA2")]);
    assert!(err.contains("SANDBOX_SIGN_TYPE"), "{err}");
}
