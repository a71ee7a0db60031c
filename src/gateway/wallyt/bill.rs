//! Downloading the daily merchant bill: `pay.bill.merchant`, `version` 1.0, sent to the bill
//! URL (`WALLYT_BILL_URL`; a download gateway distinct from the payment gateway). It is
//! signed like every request, but its answer is not a signed message: it is the bill text
//! itself, or an XML error — unsigned with `status≠0`, signed with `result_code≠0` — which is
//! read with the same rules as any reply. Only a GET-like read: retried by the caller (the
//! reconciler runs again), never here.

use chrono::NaiveDate;
use rand::RngCore;

use super::bill_format::{self, Bill, BillFormatError};
use super::error::GatewayError;
use super::fields::Fields;
use super::sign::SignKeys;
use super::xml::{decode, encode};
use crate::gateway::body::{read_capped, ReadError};

pub const SERVICE: &str = "pay.bill.merchant";
/// A day of a busy merchant is tens of thousands of lines of ~200 bytes: far under this.
pub const MAX_BILL_BYTES: usize = 64 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BillType {
    All,
    Success,
    Refund,
}

impl BillType {
    pub fn as_str(self) -> &'static str {
        match self {
            BillType::All => "ALL",
            BillType::Success => "SUCCESS",
            BillType::Refund => "REFUND",
        }
    }

    pub fn parse(text: &str) -> Option<BillType> {
        match text {
            "ALL" => Some(BillType::All),
            "SUCCESS" => Some(BillType::Success),
            "REFUND" => Some(BillType::Refund),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BillError {
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error("the bill does not read: {0}")]
    Format(#[from] BillFormatError),
}

#[derive(Clone)]
pub struct BillClient {
    http: reqwest::Client,
    url: String,
    mch_id: String,
    keys: SignKeys,
}

impl BillClient {
    pub fn new(http: reqwest::Client, url: String, mch_id: String, keys: SignKeys) -> BillClient {
        BillClient {
            http,
            url,
            mch_id,
            keys,
        }
    }

    /// The request's fields, signed (the key never leaves the signer).
    pub fn request(&self, date: NaiveDate, bill_type: BillType) -> Fields {
        let mut fields = Fields::new()
            .with("service", SERVICE)
            .with("version", "1.0")
            .with("charset", "UTF-8")
            .with("sign_type", self.keys.sign_type().as_str())
            .with("mch_id", self.mch_id.as_str())
            .with("bill_date", date.format("%Y%m%d").to_string())
            .with("bill_type", bill_type.as_str())
            .with("nonce_str", nonce());
        let signature = self.keys.sign(&fields);
        fields.set("sign", signature);
        fields
    }

    #[tracing::instrument(name = "wallyt.bill", skip_all, fields(bill_date = %date))]
    pub async fn download(&self, date: NaiveDate, bill_type: BillType) -> Result<Bill, BillError> {
        let body = encode(&self.request(date, bill_type));
        let response = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=UTF-8")
            .body(body)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        if !status.is_success() {
            return Err(GatewayError::Transport(format!("HTTP {status}")).into());
        }
        let bytes = match read_capped(response, MAX_BILL_BYTES).await {
            Ok(bytes) => bytes,
            Err(ReadError::TooLarge { limit }) => {
                return Err(GatewayError::Garbage(format!("bill larger than {limit} bytes")).into())
            }
            Err(ReadError::Transport(error)) => return Err(transport_error(error).into()),
        };
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| GatewayError::Garbage("the bill is not UTF-8".into()))?;
        if text.trim_start().starts_with('<') {
            return Err(self.xml_error(&bytes).into());
        }
        Ok(bill_format::parse(text)?)
    }

    /// An XML answer is always a failure (a bill is never XML): which one, with the same
    /// trust rules as any reply.
    fn xml_error(&self, bytes: &[u8]) -> GatewayError {
        let fields = match decode(bytes) {
            Ok(fields) => fields,
            Err(error) => return GatewayError::Garbage(error.to_string()),
        };
        match fields.get("status") {
            Some("0") => {}
            Some(status) => {
                return GatewayError::Refused {
                    status: status.to_owned(),
                    message: fields.get("message").unwrap_or("").to_owned(),
                }
            }
            None => return GatewayError::Garbage("XML answer without status".into()),
        }
        if !self.keys.verify(&fields) {
            tracing::warn!(event = "wallyt.bill.invalid_signature");
            return GatewayError::BadSignature;
        }
        match fields.get("result_code") {
            Some("0") | None => GatewayError::Garbage("an XML answer that is no bill".into()),
            Some(code) => GatewayError::Business {
                code: fields.get("err_code").unwrap_or(code).to_owned(),
                message: fields.get("err_msg").unwrap_or("").to_owned(),
            },
        }
    }
}

fn nonce() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn transport_error(error: reqwest::Error) -> GatewayError {
    if error.is_timeout() {
        GatewayError::Timeout
    } else {
        GatewayError::Transport(error.without_url().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    #[test]
    fn the_request_is_signed_over_its_bill_fields() {
        let keys = SignKeys::Md5(SecretString::from("9d101c97133837e13dde2d32a5054abb"));
        let client = BillClient::new(
            reqwest::Client::new(),
            "http://127.0.0.1:1/pay/bill".into(),
            "7551000001".into(),
            keys.clone(),
        );
        let date = NaiveDate::from_ymd_opt(2024, 6, 1).unwrap();
        let fields = client.request(date, BillType::All);
        assert_eq!(fields.get("bill_date"), Some("20240601"));
        assert_eq!(fields.get("version"), Some("1.0"));
        assert_eq!(fields.get("service"), Some(SERVICE));
        assert!(keys.verify(&fields));
        let changed = fields.clone().with("bill_date", "20240602");
        assert!(!keys.verify(&changed));
    }
}
