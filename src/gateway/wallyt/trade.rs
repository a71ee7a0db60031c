//! `unified.trade.query` and `unified.trade.close`: what happened to a trade, and ending an
//! unpaid one.

use wallyt_pay_actors::{Fen, UnixMillis};

use super::error::GatewayError;
use super::fields::Fields;
use super::time::parse_gmt8;

/// The gateway's trade states. Parsing refuses anything else, so a new state is a loud error,
/// not a silent default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TradeState {
    Success,
    /// Paid, and at least one refund exists.
    Refund,
    NotPay,
    Closed,
    Reverse,
    Revoked,
    UserPaying,
    PayError,
}

impl TradeState {
    pub fn parse(value: &str) -> Result<TradeState, GatewayError> {
        Ok(match value {
            "SUCCESS" => TradeState::Success,
            "REFUND" => TradeState::Refund,
            "NOTPAY" => TradeState::NotPay,
            "CLOSED" => TradeState::Closed,
            "REVERSE" => TradeState::Reverse,
            "REVOKED" => TradeState::Revoked,
            "USERPAYING" => TradeState::UserPaying,
            "PAYERROR" => TradeState::PayError,
            other => {
                return Err(GatewayError::Garbage(format!(
                    "unknown trade_state {other:?}"
                )))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TradeState::Success => "SUCCESS",
            TradeState::Refund => "REFUND",
            TradeState::NotPay => "NOTPAY",
            TradeState::Closed => "CLOSED",
            TradeState::Reverse => "REVERSE",
            TradeState::Revoked => "REVOKED",
            TradeState::UserPaying => "USERPAYING",
            TradeState::PayError => "PAYERROR",
        }
    }

    /// Whether the customer's money reached the merchant.
    pub fn is_paid(self) -> bool {
        match self {
            TradeState::Success | TradeState::Refund => true,
            TradeState::NotPay
            | TradeState::Closed
            | TradeState::Reverse
            | TradeState::Revoked
            | TradeState::UserPaying
            | TradeState::PayError => false,
        }
    }
}

/// What a query tells about a trade. The payment fields are present when it was paid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TradeQueryReply {
    pub trade_state: TradeState,
    pub out_trade_no: Option<String>,
    pub transaction_id: Option<String>,
    pub total_fee: Option<Fen>,
    pub time_end: Option<UnixMillis>,
    pub attach: Option<String>,
}

pub fn query_fields(out_trade_no: &str) -> Fields {
    Fields::new()
        .with("service", "unified.trade.query")
        .with("out_trade_no", out_trade_no)
}

pub fn close_fields(out_trade_no: &str) -> Fields {
    Fields::new()
        .with("service", "unified.trade.close")
        .with("out_trade_no", out_trade_no)
}

pub fn parse_query_reply(fields: &Fields) -> Result<TradeQueryReply, GatewayError> {
    let state = fields
        .get("trade_state")
        .ok_or_else(|| GatewayError::Garbage("query reply without trade_state".into()))?;
    let trade_state = TradeState::parse(state)?;
    let total_fee = fields.get("total_fee").map(parse_fen).transpose()?;
    let reply = TradeQueryReply {
        trade_state,
        out_trade_no: fields.get("out_trade_no").map(str::to_owned),
        transaction_id: fields.get("transaction_id").map(str::to_owned),
        total_fee,
        time_end: fields.get("time_end").and_then(parse_gmt8),
        attach: fields.get("attach").map(str::to_owned),
    };
    if trade_state.is_paid() && (reply.transaction_id.is_none() || reply.total_fee.is_none()) {
        return Err(GatewayError::Garbage(
            "a paid trade without transaction_id or total_fee".into(),
        ));
    }
    Ok(reply)
}

/// An integer amount of fen as the gateway writes it.
pub fn parse_fen(value: &str) -> Result<Fen, GatewayError> {
    let valid = !value.is_empty() && value.len() <= 15 && value.bytes().all(|b| b.is_ascii_digit());
    value
        .parse::<i64>()
        .ok()
        .filter(|_| valid)
        .map(Fen::new)
        .ok_or_else(|| GatewayError::Garbage(format!("{value:?} is not an amount in fen")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_state_parses_and_unknown_ones_do_not() {
        for s in [
            "SUCCESS",
            "REFUND",
            "NOTPAY",
            "CLOSED",
            "REVERSE",
            "REVOKED",
            "USERPAYING",
            "PAYERROR",
        ] {
            assert_eq!(TradeState::parse(s).unwrap().as_str(), s);
        }
        assert!(TradeState::parse("PAID").is_err());
        assert!(TradeState::parse("success").is_err());
    }

    #[test]
    fn paid_replies_must_carry_the_payment() {
        let paid: Fields = [("trade_state", "SUCCESS"), ("total_fee", "100")]
            .into_iter()
            .collect();
        assert!(parse_query_reply(&paid).is_err());
        let paid = paid
            .with("transaction_id", "T1")
            .with("time_end", "20240601120512");
        let reply = parse_query_reply(&paid).unwrap();
        assert_eq!(reply.total_fee, Some(Fen::new(100)));
        assert!(reply.time_end.is_some());
        for bad in ["-1", "1.5", "", "1e3", "99999999999999999"] {
            assert!(parse_fen(bad).is_err(), "{bad}");
        }
    }
}
