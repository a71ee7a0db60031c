//! The payment notify (protocol §4): the gateway's signed XML POST to our notify_url. Verified
//! over *every* field received, fail-closed, before anything in it is believed.

use wallyt_pay_actors::{Fen, UnixMillis};

use super::fields::Fields;
use super::sign::SignKeys;
use super::time::parse_gmt8;
use super::trade::parse_fen;
use super::xml::{decode, XmlError};

/// A notify whose signature and merchant check out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentNotify {
    pub out_trade_no: String,
    /// `status`, `result_code` and `pay_result` all `0`: the money moved.
    pub paid: bool,
    pub transaction_id: Option<String>,
    pub total_fee: Option<Fen>,
    pub time_end: Option<UnixMillis>,
    pub attach: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("notify is not protocol XML: {0}")]
    Malformed(#[from] XmlError),
    #[error("notify signature is missing or invalid")]
    InvalidSignature,
    /// The notify declares a sign type other than ours. Refused even when it would verify
    /// under the declared one: accepting it would let a sender pick the weakest algorithm.
    #[error("notify declares sign_type {declared:?}, ours is {ours}")]
    SignTypeMismatch {
        declared: String,
        ours: &'static str,
    },
    #[error("notify is for another merchant")]
    ForeignMerchant,
    #[error("notify has no out_trade_no")]
    MissingOutTradeNo,
    #[error("paid notify without a valid transaction_id, total_fee or time_end")]
    IncompletePayment,
}

impl NotifyError {
    /// Whether the notify was refused before its signature (with our key, for our merchant)
    /// was established: then nothing in it can be trusted, and anyone can send it in bulk.
    pub fn unverified(&self) -> bool {
        match self {
            NotifyError::Malformed(_)
            | NotifyError::InvalidSignature
            | NotifyError::SignTypeMismatch { .. }
            | NotifyError::ForeignMerchant => true,
            NotifyError::MissingOutTradeNo | NotifyError::IncompletePayment => false,
        }
    }
}

pub fn verify_notify(
    body: &[u8],
    mch_id: &str,
    keys: &SignKeys,
) -> Result<(PaymentNotify, Fields), NotifyError> {
    let ours = keys.sign_type();
    let fields = decode(body)?;
    // An absent sign_type means MD5 (protocol §1). Only our configured type is verified: no
    // downgrade to whatever the sender declares — with RSA_1_256 configured, an MD5 notify
    // (which anyone holding a leaked or guessed MD5 key could forge) is refused here.
    let declared = fields.get("sign_type").unwrap_or("MD5");
    if declared != ours.as_str() {
        return Err(NotifyError::SignTypeMismatch {
            declared: declared.chars().take(16).collect(),
            ours: ours.as_str(),
        });
    }
    if !keys.verify(&fields) {
        return Err(NotifyError::InvalidSignature);
    }
    if fields.get("mch_id") != Some(mch_id) {
        return Err(NotifyError::ForeignMerchant);
    }
    let out_trade_no = fields
        .get("out_trade_no")
        .ok_or(NotifyError::MissingOutTradeNo)?
        .to_owned();
    let zero = |name: &str| fields.get(name) == Some("0");
    let paid = zero("status") && zero("result_code") && zero("pay_result");
    let total_fee = fields.get("total_fee").map(parse_fen).transpose();
    let notify = PaymentNotify {
        out_trade_no,
        paid,
        transaction_id: fields.get("transaction_id").map(str::to_owned),
        total_fee: total_fee.map_err(|_| NotifyError::IncompletePayment)?,
        time_end: fields.get("time_end").and_then(parse_gmt8),
        attach: fields.get("attach").map(str::to_owned),
    };
    if paid
        && (notify.transaction_id.is_none()
            || notify.total_fee.is_none()
            || notify.time_end.is_none())
    {
        return Err(NotifyError::IncompletePayment);
    }
    Ok((notify, fields))
}

#[cfg(test)]
mod tests {
    use super::super::keys::tests::{MERCHANT_PKCS8, PLATFORM_PKCS8, PLATFORM_SPKI};
    use super::super::keys::{parse_private_key, parse_public_key};
    use super::super::sign::{sign, KeyedHash, RsaKeys};
    use super::super::xml::encode;
    use super::*;
    use secrecy::SecretString;

    const KEY: &str = "9d101c97133837e13dde2d32a5054abb";

    use super::super::sign::vectors::tv3;

    fn signed(fields: Fields) -> Vec<u8> {
        let key = SecretString::from(KEY);
        let sign = sign(&fields, KeyedHash::Md5, &key);
        encode(&fields.with("sign", sign)).into_bytes()
    }

    fn check(body: &[u8]) -> Result<PaymentNotify, NotifyError> {
        verify_notify(body, "7551000001", &SignKeys::Md5(SecretString::from(KEY))).map(|(n, _)| n)
    }

    #[test]
    fn the_tv3_notify_is_a_payment() {
        let notify = check(&signed(tv3())).unwrap();
        assert!(notify.paid);
        assert_eq!(notify.total_fee, Some(Fen::new(1)));
        assert_eq!(notify.attach.as_deref(), Some("order=42"));
        assert_eq!(notify.time_end, Some(UnixMillis(1_717_214_712_000)));
    }

    #[test]
    fn tampering_and_strangers_are_refused() {
        let body = String::from_utf8(signed(tv3())).unwrap();
        let changed = body.replace("<total_fee><![CDATA[1]]>", "<total_fee><![CDATA[100]]>");
        assert_eq!(
            check(changed.as_bytes()),
            Err(NotifyError::InvalidSignature)
        );
        assert_eq!(
            check(encode(&tv3()).as_bytes()),
            Err(NotifyError::InvalidSignature),
            "no sign"
        );
        let foreign = signed(tv3().with("mch_id", "7551000002"));
        assert_eq!(check(&foreign), Err(NotifyError::ForeignMerchant));
        assert!(matches!(check(b"<xml><a>"), Err(NotifyError::Malformed(_))));
    }

    #[test]
    fn only_our_sign_type_is_verified() {
        let key = SecretString::from(KEY);
        let fields = tv3().with("sign_type", "SHA256");
        let sha = sign(&fields, KeyedHash::Sha256, &key);
        let body = encode(&fields.with("sign", sha)).into_bytes();
        assert!(matches!(
            check(&body),
            Err(NotifyError::SignTypeMismatch { .. })
        ));
        // The same body verifies when SHA256 is the configured type.
        assert!(verify_notify(&body, "7551000001", &SignKeys::Sha256(key)).is_ok());
    }

    #[test]
    fn a_failed_payment_is_verified_but_not_paid() {
        let notify = check(&signed(tv3().with("pay_result", "1"))).unwrap();
        assert!(!notify.paid);
    }

    /// The engine's RSA keys: our merchant private key, the platform's public key.
    fn engine_rsa() -> SignKeys {
        SignKeys::Rsa(RsaKeys {
            own: parse_private_key(MERCHANT_PKCS8, "k").unwrap(),
            peer: parse_public_key(PLATFORM_SPKI, "k").unwrap(),
        })
    }

    #[test]
    fn with_rsa_configured_only_a_platform_rsa_signature_is_believed() {
        let ours = engine_rsa();
        let fields = tv3().with("sign_type", "RSA_1_256");
        let platform = parse_private_key(PLATFORM_PKCS8, "k").unwrap();
        let good = super::super::rsa::sign(&fields, &platform);
        let body = encode(&fields.clone().with("sign", good)).into_bytes();
        let (notify, _) = verify_notify(&body, "7551000001", &ours).unwrap();
        assert!(notify.paid);

        // MD5-signed, declaring MD5 (or nothing): refused before any key is tried.
        let md5 = signed(tv3());
        assert!(matches!(
            verify_notify(&md5, "7551000001", &ours),
            Err(NotifyError::SignTypeMismatch { .. })
        ));
        let mut undeclared = tv3();
        undeclared.remove("sign_type");
        assert!(matches!(
            verify_notify(&signed(undeclared), "7551000001", &ours),
            Err(NotifyError::SignTypeMismatch { .. })
        ));
        // An MD5 digest under an RSA label, and a notify signed with *our* private key (which
        // proves nothing about the platform): invalid.
        let md5_digest = sign(&fields, KeyedHash::Md5, &SecretString::from(KEY));
        let relabelled = encode(&fields.clone().with("sign", md5_digest)).into_bytes();
        assert_eq!(
            verify_notify(&relabelled, "7551000001", &ours),
            Err(NotifyError::InvalidSignature)
        );
        let merchant = parse_private_key(MERCHANT_PKCS8, "k").unwrap();
        let self_signed = super::super::rsa::sign(&fields, &merchant);
        let body = encode(&fields.with("sign", self_signed)).into_bytes();
        assert_eq!(
            verify_notify(&body, "7551000001", &ours),
            Err(NotifyError::InvalidSignature)
        );
    }
}
