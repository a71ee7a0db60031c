//! actix-web's own refusals (unparsable JSON, body too large, wrong content type, bad path
//! parameters, unknown routes, wrong methods) turned into [`ApiError`]s so they leave in the
//! envelope like everything else.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::error::ApiError;

/// Request bodies over this are refused with 413 before they are read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_BODY_BYTES)
        .error_handler(|error, _req| json_rejection(error).into())
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|error: PathError, _req| {
        ApiError::validation(format!("bad path: {error}")).into()
    })
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error: QueryPayloadError, _req| {
        ApiError::validation(format!("bad query string: {error}")).into()
    })
}

fn json_rejection(error: JsonPayloadError) -> ApiError {
    let (status, message) = match &error {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than {MAX_BODY_BYTES} bytes"),
        ),
        JsonPayloadError::Payload(e) if super::slow_clients::is_body_timeout(e) => (
            StatusCode::REQUEST_TIMEOUT,
            "request body not received in time".to_owned(),
        ),
        JsonPayloadError::ContentType => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json".to_owned(),
        ),
        JsonPayloadError::Deserialize(e) if e.is_data() => {
            (StatusCode::BAD_REQUEST, format!("invalid field: {e}"))
        }
        JsonPayloadError::Deserialize(e) => {
            (StatusCode::BAD_REQUEST, format!("malformed JSON: {e}"))
        }
        other => (StatusCode::BAD_REQUEST, format!("unreadable body: {other}")),
    };
    ApiError::Validation { status, message }
}

pub async fn route_not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}

pub async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::Validation {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: format!("{} is not allowed on {}", req.method(), req.path()),
    })
}

/// A resource whose unmatched methods answer 405 in the envelope.
pub fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}
