//! The engine's `PaymentGateway` port, spoken in Wallyt: builds the jspay request (with our
//! notify URL and mini-program AppID), and maps replies into the engine's terms.

use async_trait::async_trait;
use wallyt_pay_actors::ports::{
    GatewayFailure, PaymentGateway, PrepayCreated, PrepayRequest, RefundAccepted, RefundProgress,
    RefundRequest, TradeStatus,
};
use wallyt_pay_actors::{Clock, SystemClock};

use super::client::WallytClient;
use super::error::GatewayError;
use super::jspay::JspayRequest;
use super::refund::{RefundQueryBy, RefundRequest as WallytRefund, RefundStatus};
use super::trade::TradeState;

pub struct WallytGateway {
    pub client: WallytClient,
    pub notify_url: String,
    /// The mini-program AppID (`sub_appid`).
    pub sub_appid: String,
}

fn failure(error: GatewayError) -> GatewayFailure {
    match error {
        GatewayError::Timeout => GatewayFailure::Timeout,
        GatewayError::Business { ref code, .. } if !error.outcome_unknown() => {
            GatewayFailure::Refused(format!("{code}: {error}"))
        }
        GatewayError::InvalidRequest(message) => GatewayFailure::Refused(message),
        other => GatewayFailure::Unavailable(other.to_string()),
    }
}

fn is_already_paid(error: &GatewayError) -> bool {
    matches!(error, GatewayError::Business { code, message }
        if code == "ORDERPAID" || message.eq_ignore_ascii_case("order paid"))
}

/// The gateway had closed the trade already (by time_expire, an earlier close whose answer was
/// lost, or on its own): what the close wanted is true, so it is success, never a retry.
fn is_already_closed(error: &GatewayError) -> bool {
    matches!(error, GatewayError::Business { code, message }
        if code == "ORDERCLOSED" || message.eq_ignore_ascii_case("order closed"))
}

#[async_trait]
impl PaymentGateway for WallytGateway {
    async fn create_prepay(
        &self,
        request: &PrepayRequest,
    ) -> Result<PrepayCreated, GatewayFailure> {
        let reply = self
            .client
            .jspay(&JspayRequest {
                out_trade_no: &request.out_trade_no,
                body: &request.description,
                total_fee: request.amount,
                mch_create_ip: &request.client_ip,
                sub_appid: &self.sub_appid,
                sub_openid: &request.openid,
                notify_url: &self.notify_url,
                attach: Some(&request.attach),
                time_start: request.time_start,
                time_expire: request.time_expire,
            })
            .await
            .map_err(failure)?;
        let pay_params = serde_json::to_string(&reply.pay_params)
            .map_err(|e| GatewayFailure::Unavailable(e.to_string()))?;
        Ok(PrepayCreated { pay_params })
    }

    async fn query_trade(&self, out_trade_no: &str) -> Result<TradeStatus, GatewayFailure> {
        let reply = match self.client.query(out_trade_no).await {
            Ok(reply) => reply,
            Err(GatewayError::Business { code, .. }) if code == "ORDERNOTEXIST" => {
                return Ok(TradeStatus::Unknown)
            }
            Err(error) => return Err(failure(error)),
        };
        if reply
            .out_trade_no
            .as_deref()
            .is_some_and(|no| no != out_trade_no)
        {
            return Err(GatewayFailure::Unavailable(
                "query answered another trade".into(),
            ));
        }
        Ok(match reply.trade_state {
            TradeState::Success | TradeState::Refund => TradeStatus::Paid {
                // parse_query_reply guarantees both for paid trades.
                transaction_id: reply.transaction_id.unwrap_or_default(),
                amount: reply.total_fee.unwrap_or_default(),
                paid_at: reply.time_end.unwrap_or_else(|| SystemClock.now()),
            },
            TradeState::NotPay | TradeState::UserPaying => TradeStatus::Open,
            TradeState::Closed
            | TradeState::Revoked
            | TradeState::Reverse
            | TradeState::PayError => TradeStatus::Closed,
        })
    }

    async fn close_trade(&self, out_trade_no: &str) -> Result<(), GatewayFailure> {
        match self.client.close(out_trade_no).await {
            Ok(()) => Ok(()),
            Err(error) if is_already_closed(&error) => Ok(()),
            Err(error) if is_already_paid(&error) => Err(GatewayFailure::AlreadyPaid),
            Err(error) => Err(failure(error)),
        }
    }

    async fn refund(&self, request: &RefundRequest) -> Result<RefundAccepted, GatewayFailure> {
        let reply = self
            .client
            .refund(&WallytRefund {
                out_trade_no: &request.out_trade_no,
                out_refund_no: &request.out_refund_no,
                total_fee: request.total,
                refund_fee: request.amount,
            })
            .await
            .map_err(failure)?;
        Ok(RefundAccepted {
            refund_id: reply.refund_id,
        })
    }

    async fn refund_progress(&self, out_refund_no: &str) -> Result<RefundProgress, GatewayFailure> {
        let items = match self
            .client
            .refund_query(RefundQueryBy::OutRefundNo(out_refund_no))
            .await
        {
            Ok(items) => items,
            Err(GatewayError::Business { code, .. }) if code == "REFUNDNOTEXIST" => {
                return Ok(RefundProgress::Unknown)
            }
            Err(error) => return Err(failure(error)),
        };
        let Some(item) = items.into_iter().find(|i| i.out_refund_no == out_refund_no) else {
            return Ok(RefundProgress::Unknown);
        };
        Ok(match item.status {
            RefundStatus::Success => RefundProgress::Success {
                refund_id: item.refund_id,
                at: item.refund_time,
            },
            RefundStatus::Fail => RefundProgress::Fail,
            RefundStatus::Processing => RefundProgress::Processing,
            RefundStatus::NotSure => RefundProgress::NotSure,
            RefundStatus::Change => RefundProgress::Change,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn business(code: &str, message: &str) -> GatewayError {
        GatewayError::Business {
            code: code.into(),
            message: message.into(),
        }
    }

    #[test]
    fn a_close_refusal_says_closed_or_paid_by_code_or_by_text() {
        assert!(is_already_closed(&business("ORDERCLOSED", "")));
        assert!(is_already_closed(&business("", "Order closed")));
        assert!(!is_already_closed(&business("ORDERPAID", "Order paid")));
        assert!(!is_already_closed(&business("SYSTEMERROR", "")));
        assert!(is_already_paid(&business("ORDERPAID", "")));
        assert!(is_already_paid(&business("", "order paid")));
        assert!(!is_already_paid(&business("ORDERCLOSED", "Order closed")));
        assert!(!is_already_closed(&GatewayError::Timeout));
    }
}
