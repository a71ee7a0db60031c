//! `pay.weixin.jspay` in mini-program mode (`is_raw=1`, `is_minipg=1`): creates the gateway
//! trade and answers `pay_info`, the JSON the mini-program hands to `wx.requestPayment`.

use serde::Serialize;
use wallyt_pay_actors::{Fen, UnixMillis};

use super::error::GatewayError;
use super::fields::Fields;
use super::time::format_gmt8;

pub struct JspayRequest<'a> {
    pub out_trade_no: &'a str,
    /// Goods description; cut to the gateway's 127 characters.
    pub body: &'a str,
    pub total_fee: Fen,
    pub mch_create_ip: &'a str,
    pub sub_appid: &'a str,
    pub sub_openid: &'a str,
    pub notify_url: &'a str,
    /// Returned untouched in query and notify; at most 127 characters.
    pub attach: Option<&'a str>,
    pub time_start: UnixMillis,
    pub time_expire: UnixMillis,
}

/// The six `wx.requestPayment` fields, exactly as the gateway wrote them. Never re-signed or
/// reformatted: `timeStamp` may be milliseconds and `paySign` covers these strings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayParams {
    pub app_id: String,
    pub time_stamp: String,
    pub nonce_str: String,
    pub package: String,
    pub sign_type: String,
    pub pay_sign: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JspayReply {
    pub token_id: Option<String>,
    /// `pay_info` verbatim, for the audit log.
    pub pay_info: String,
    pub pay_params: PayParams,
}

/// Whether a string is an acceptable `out_trade_no` / `out_refund_no`: 5–32 of `[A-Za-z0-9_]`.
pub fn valid_trade_no(no: &str) -> bool {
    (5..=32).contains(&no.len()) && no.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl JspayRequest<'_> {
    pub fn to_fields(&self) -> Result<Fields, GatewayError> {
        if !valid_trade_no(self.out_trade_no) {
            return Err(GatewayError::InvalidRequest(format!(
                "out_trade_no {:?} is not 5-32 of [A-Za-z0-9_]",
                self.out_trade_no
            )));
        }
        if !self.total_fee.is_positive() {
            return Err(GatewayError::InvalidRequest("total_fee must be > 0".into()));
        }
        if self.attach.is_some_and(|a| a.chars().count() > 127) {
            return Err(GatewayError::InvalidRequest(
                "attach is over 127 characters".into(),
            ));
        }
        if self.notify_url.contains('?') || self.notify_url.len() > 255 {
            return Err(GatewayError::InvalidRequest(
                "notify_url must have no query string and at most 255 characters".into(),
            ));
        }
        let body: String = self.body.chars().take(127).collect();
        let mut fields = Fields::new()
            .with("service", "pay.weixin.jspay")
            .with("is_raw", "1")
            .with("is_minipg", "1")
            .with("out_trade_no", self.out_trade_no)
            .with("body", body)
            .with("total_fee", self.total_fee.get().to_string())
            .with("mch_create_ip", self.mch_create_ip)
            .with("sub_appid", self.sub_appid)
            .with("sub_openid", self.sub_openid)
            .with("notify_url", self.notify_url)
            // Both or neither: the gateway ignores one alone.
            .with("time_start", format_gmt8(self.time_start))
            .with("time_expire", format_gmt8(self.time_expire));
        if let Some(attach) = self.attach {
            fields.set("attach", attach);
        }
        Ok(fields)
    }
}

pub fn parse_reply(fields: &Fields) -> Result<JspayReply, GatewayError> {
    let pay_info = fields
        .get("pay_info")
        .ok_or_else(|| GatewayError::Garbage("jspay success without pay_info".into()))?;
    Ok(JspayReply {
        token_id: fields.get("token_id").map(str::to_owned),
        pay_info: pay_info.to_owned(),
        pay_params: parse_pay_info(pay_info)?,
    })
}

/// Picks the six fields out of `pay_info`, each required to be a string; other keys
/// (`status`, `callback_url`) are dropped.
pub fn parse_pay_info(pay_info: &str) -> Result<PayParams, GatewayError> {
    let value: serde_json::Value = serde_json::from_str(pay_info)
        .map_err(|e| GatewayError::Garbage(format!("pay_info is not JSON: {e}")))?;
    let field = |name: &str| -> Result<String, GatewayError> {
        value
            .get(name)
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| GatewayError::Garbage(format!("pay_info has no string {name}")))
    };
    Ok(PayParams {
        app_id: field("appId")?,
        time_stamp: field("timeStamp")?,
        nonce_str: field("nonceStr")?,
        package: field("package")?,
        sign_type: field("signType")?,
        pay_sign: field("paySign")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TV5_PAY_INFO: &str = r#"{"appId":"wx1f87d44db95cba7a","timeStamp":"1552016114182","status":"0","signType":"MD5","package":"prepay_id=wx081135141463112a346658964074872122","callback_url":null,"nonceStr":"1552016114182","paySign":"9A912AB1E8429926883D16172775A94C"}"#;

    #[test]
    fn pay_info_passes_through_unchanged() {
        let params = parse_pay_info(TV5_PAY_INFO).unwrap();
        assert_eq!(params.time_stamp, "1552016114182");
        assert_eq!(params.pay_sign, "9A912AB1E8429926883D16172775A94C");
        let json = serde_json::to_value(&params).unwrap();
        assert_eq!(json.as_object().unwrap().len(), 6);
        assert_eq!(
            json["package"],
            "prepay_id=wx081135141463112a346658964074872122"
        );
    }

    #[test]
    fn pay_info_missing_or_non_string_fields_are_garbage() {
        for bad in [
            r#"{"appId":"wx","timeStamp":1552016114,"nonceStr":"n","package":"p","signType":"MD5","paySign":"s"}"#,
            r#"{"appId":"wx","nonceStr":"n","package":"p","signType":"MD5","paySign":"s"}"#,
            "not json",
        ] {
            assert!(
                matches!(parse_pay_info(bad), Err(GatewayError::Garbage(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn request_carries_mini_program_mode_and_beijing_times() {
        let fields = JspayRequest {
            out_trade_no: "MP12_1717214712000",
            body: "VIP x2",
            total_fee: Fen::new(20_000),
            mch_create_ip: "203.0.113.7",
            sub_appid: "wx1234567890abcdef",
            sub_openid: "oUser",
            notify_url: "https://example.com/payments/wallyt/notify",
            attach: Some(r#"{"orderId":12,"userId":3}"#),
            time_start: UnixMillis(1_717_214_712_000),
            time_expire: UnixMillis(1_717_215_012_000),
        }
        .to_fields()
        .unwrap();
        assert_eq!(fields.get("is_raw"), Some("1"));
        assert_eq!(fields.get("is_minipg"), Some("1"));
        assert_eq!(fields.get("total_fee"), Some("20000"));
        assert_eq!(fields.get("time_start"), Some("20240601120512"));
        assert_eq!(fields.get("time_expire"), Some("20240601121012"));
    }

    #[test]
    fn trade_numbers_follow_the_gateway_format() {
        assert!(valid_trade_no("MP12_1717214712000"));
        for bad in ["MP1", "MP-12_1", "MP12 1", &"x".repeat(33)] {
            assert!(!valid_trade_no(bad), "{bad}");
        }
    }
}
