//! `unified.trade.refund` (a request the gateway *accepts*; `out_refund_no` is its
//! idempotency key) and `unified.trade.refundquery` (the outcome, as `_$n` indexed fields).

use wallyt_pay_actors::{Fen, UnixMillis};

use super::error::GatewayError;
use super::fields::Fields;
use super::jspay::valid_trade_no;
use super::time::parse_gmt8;
use super::trade::parse_fen;

pub struct RefundRequest<'a> {
    pub out_trade_no: &'a str,
    pub out_refund_no: &'a str,
    /// The original trade's total.
    pub total_fee: Fen,
    /// This refund.
    pub refund_fee: Fen,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundReply {
    pub out_refund_no: String,
    pub refund_id: Option<String>,
    pub refund_fee: Option<Fen>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefundStatus {
    Success,
    Fail,
    Processing,
    /// Unknown at the gateway: resend the refund with the same out_refund_no.
    NotSure,
    /// The money went back to the merchant account instead: needs a person.
    Change,
}

impl RefundStatus {
    pub fn parse(value: &str) -> Result<RefundStatus, GatewayError> {
        Ok(match value {
            "SUCCESS" => RefundStatus::Success,
            "FAIL" => RefundStatus::Fail,
            "PROCESSING" => RefundStatus::Processing,
            "NOTSURE" => RefundStatus::NotSure,
            "CHANGE" => RefundStatus::Change,
            other => {
                return Err(GatewayError::Garbage(format!(
                    "unknown refund_status {other:?}"
                )))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Success => "SUCCESS",
            RefundStatus::Fail => "FAIL",
            RefundStatus::Processing => "PROCESSING",
            RefundStatus::NotSure => "NOTSURE",
            RefundStatus::Change => "CHANGE",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundItem {
    pub out_refund_no: String,
    pub refund_id: Option<String>,
    pub refund_fee: Fen,
    pub status: RefundStatus,
    pub refund_time: Option<UnixMillis>,
}

/// Which refunds to ask about; the gateway's priority is this order.
pub enum RefundQueryBy<'a> {
    RefundId(&'a str),
    OutRefundNo(&'a str),
    TransactionId(&'a str),
    OutTradeNo(&'a str),
}

impl RefundRequest<'_> {
    pub fn to_fields(&self, op_user_id: &str) -> Result<Fields, GatewayError> {
        if !valid_trade_no(self.out_refund_no) || !valid_trade_no(self.out_trade_no) {
            return Err(GatewayError::InvalidRequest(
                "out_trade_no and out_refund_no must be 5-32 of [A-Za-z0-9_]".into(),
            ));
        }
        if !self.refund_fee.is_positive() || self.refund_fee > self.total_fee {
            return Err(GatewayError::InvalidRequest(
                "refund_fee must be > 0 and at most total_fee".into(),
            ));
        }
        Ok(Fields::new()
            .with("service", "unified.trade.refund")
            .with("out_trade_no", self.out_trade_no)
            .with("out_refund_no", self.out_refund_no)
            .with("total_fee", self.total_fee.get().to_string())
            .with("refund_fee", self.refund_fee.get().to_string())
            .with("op_user_id", op_user_id))
    }
}

pub fn parse_refund_reply(fields: &Fields) -> Result<RefundReply, GatewayError> {
    Ok(RefundReply {
        out_refund_no: fields
            .get("out_refund_no")
            .ok_or_else(|| GatewayError::Garbage("refund reply without out_refund_no".into()))?
            .to_owned(),
        refund_id: fields.get("refund_id").map(str::to_owned),
        refund_fee: fields.get("refund_fee").map(parse_fen).transpose()?,
    })
}

pub fn refund_query_fields(by: RefundQueryBy<'_>) -> Fields {
    let (name, value) = match by {
        RefundQueryBy::RefundId(v) => ("refund_id", v),
        RefundQueryBy::OutRefundNo(v) => ("out_refund_no", v),
        RefundQueryBy::TransactionId(v) => ("transaction_id", v),
        RefundQueryBy::OutTradeNo(v) => ("out_trade_no", v),
    };
    Fields::new()
        .with("service", "unified.trade.refundquery")
        .with(name, value)
}

pub fn parse_refund_query_reply(fields: &Fields) -> Result<Vec<RefundItem>, GatewayError> {
    let count: usize = fields
        .get("refund_count")
        .and_then(|c| c.parse().ok())
        .filter(|c| *c <= 50)
        .ok_or_else(|| GatewayError::Garbage("refundquery reply without refund_count".into()))?;
    (0..count)
        .map(|n| {
            let field = |name: &str| fields.get(&format!("{name}_{n}"));
            let required = |name: &str| {
                field(name).ok_or_else(|| GatewayError::Garbage(format!("missing {name}_{n}")))
            };
            Ok(RefundItem {
                out_refund_no: required("out_refund_no")?.to_owned(),
                refund_id: field("refund_id").map(str::to_owned),
                refund_fee: parse_fen(required("refund_fee")?)?,
                status: RefundStatus::parse(required("refund_status")?)?,
                refund_time: field("refund_time").and_then(parse_gmt8),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexed_fields_become_items() {
        let fields: Fields = [
            ("refund_count", "2"),
            ("out_refund_no_0", "RF1_1"),
            ("refund_id_0", "R1"),
            ("refund_fee_0", "5000"),
            ("refund_status_0", "SUCCESS"),
            ("refund_time_0", "20240601120512"),
            ("out_refund_no_1", "RF1_2"),
            ("refund_fee_1", "100"),
            ("refund_status_1", "NOTSURE"),
        ]
        .into_iter()
        .collect();
        let items = parse_refund_query_reply(&fields).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].status, RefundStatus::Success);
        assert_eq!(items[0].refund_fee, Fen::new(5000));
        assert_eq!(items[1].status, RefundStatus::NotSure);
        assert_eq!(items[1].refund_id, None);
        let broken = fields.clone().with("refund_count", "3");
        assert!(parse_refund_query_reply(&broken).is_err());
        let unknown = fields.with("refund_status_1", "DONE");
        assert!(parse_refund_query_reply(&unknown).is_err());
    }

    #[test]
    fn refunds_never_exceed_the_trade() {
        let request = RefundRequest {
            out_trade_no: "MP1_1717214712000",
            out_refund_no: "RF1_1717214712000",
            total_fee: Fen::new(100),
            refund_fee: Fen::new(101),
        };
        assert!(request.to_fields("7551000001").is_err());
    }
}
