//! The one error type of the HTTP edge. Its variants are the contract's error codes; every
//! failure of every layer is mapped into it here, and rendered once into the envelope.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use wallyt_pay_actors::engine::EngineError;
use wallyt_pay_actors::StoreError;

use super::envelope::failure_body;
use crate::gateway::wechat::WechatError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 malformed JSON, missing/invalid field, bad amount. Also carries the transport-level
    /// refusals (405 method, 413 body too large, 415 content type) with their own status:
    /// they are the request's fault in the same way.
    #[error("{message}")]
    Validation { status: StatusCode, message: String },
    #[error("{0}")]
    InvalidOrderStatus(String),
    #[error("{0}")]
    RefundAmountExceeded(String),
    #[error("openid does not belong to the logged-in user")]
    OpenidMismatch,
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Also for orders of other users: never reveal which.
    #[error("order not found")]
    OrderNotFound,
    /// Unknown routes and unknown catalogue entries.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InsufficientStock(String),
    #[error("{0}")]
    TooManyPendingOrders(String),
    #[error("{0}")]
    Conflict(String),
    /// 429: a rate limit's bucket is empty; `retry_after` whole seconds (≥ 1) refill a cell.
    #[error("too many requests; retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("{0}")]
    GatewayError(String),
    #[error("Wallyt is not configured on this server")]
    WallytNotConfigured,
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    GatewayTimeout(String),
}

impl ApiError {
    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::Validation {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Validation { .. } => "VALIDATION_ERROR",
            ApiError::InvalidOrderStatus(_) => "INVALID_ORDER_STATUS",
            ApiError::RefundAmountExceeded(_) => "REFUND_AMOUNT_EXCEEDED",
            ApiError::OpenidMismatch => "OPENID_MISMATCH",
            ApiError::Unauthorized(_) => "UNAUTHORIZED",
            ApiError::OrderNotFound => "ORDER_NOT_FOUND",
            ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::InsufficientStock(_) => "INSUFFICIENT_STOCK",
            ApiError::TooManyPendingOrders(_) => "TOO_MANY_PENDING_ORDERS",
            ApiError::Conflict(_) => "CONFLICT",
            ApiError::RateLimited { .. } => "RATE_LIMITED",
            ApiError::GatewayError(_) => "GATEWAY_ERROR",
            ApiError::WallytNotConfigured => "WALLYT_NOT_CONFIGURED",
            ApiError::Unavailable(_) => "UNAVAILABLE",
            ApiError::GatewayTimeout(_) => "GATEWAY_TIMEOUT",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Validation { status, .. } => *status,
            ApiError::InvalidOrderStatus(_)
            | ApiError::RefundAmountExceeded(_)
            | ApiError::OpenidMismatch => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::OrderNotFound | ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::InsufficientStock(_) | ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooManyPendingOrders(_) | ApiError::RateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::GatewayError(_) => StatusCode::BAD_GATEWAY,
            ApiError::WallytNotConfigured | ApiError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthorized(_)) {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if let ApiError::RateLimited { retry_after } = self {
            response.insert_header(("Retry-After", retry_after.to_string()));
        }
        response.json(failure_body(self.code(), &self.to_string()))
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        // The detail goes to the log, not to the caller: it may name tables and constraints.
        tracing::error!(event = "storage.error", error = %error);
        ApiError::Unavailable("the database is unavailable, try again later".into())
    }
}

impl From<WechatError> for ApiError {
    fn from(error: WechatError) -> ApiError {
        match error {
            WechatError::Rejected { errcode, .. } => {
                tracing::info!(event = "wechat.login.rejected", errcode);
                ApiError::Unauthorized("the login code was rejected by WeChat")
            }
            WechatError::NotConfigured => {
                ApiError::Unavailable("WeChat login is not configured on this server".into())
            }
            WechatError::Timeout => {
                tracing::warn!(event = "wechat.login.timeout");
                ApiError::GatewayTimeout("WeChat did not answer in time".into())
            }
            WechatError::Unreachable(detail) | WechatError::Garbage(detail) => {
                tracing::warn!(event = "wechat.login.error", detail = %detail);
                ApiError::GatewayError("WeChat answered with an error".into())
            }
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> ApiError {
        match error {
            EngineError::OrderNotFound => ApiError::OrderNotFound,
            EngineError::InvalidOrderStatus(message) => ApiError::InvalidOrderStatus(message),
            EngineError::InvalidRequest(message) => ApiError::validation(message),
            EngineError::GatewayNotConfigured => ApiError::WallytNotConfigured,
            EngineError::GatewayTimeout => {
                ApiError::GatewayTimeout("the payment gateway did not answer in time".into())
            }
            EngineError::Gateway(detail) => {
                // The gateway's own words (codes, Chinese error text, field names) are for
                // operators; the buyer learns only that the gateway failed.
                tracing::warn!(event = "gateway.error", detail = %detail);
                ApiError::GatewayError("the payment gateway answered with an error".into())
            }
            EngineError::Busy(detail) => {
                tracing::warn!(event = "order.busy", detail = %detail);
                ApiError::Unavailable("the order is busy, try again".into())
            }
            EngineError::RefundAmountExceeded { refundable } => {
                ApiError::RefundAmountExceeded(format!(
                    "only {} yuan is still refundable",
                    refundable.to_yuan_string()
                ))
            }
            EngineError::RefundRejected(detail) => {
                // `detail` may quote the gateway's refusal (err_code, err_msg): logged for the
                // operator, never answered. The order's refunds show the buyer FAIL or CHANGE.
                tracing::warn!(event = "refund.rejected", detail = %detail);
                ApiError::GatewayError(
                    "the payment gateway did not complete the refund; the order's refunds \
                     show its status"
                        .into(),
                )
            }
            EngineError::Store(error) => error.into(),
        }
    }
}
