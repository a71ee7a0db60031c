//! The OpenAPI 3 document of the HTTP API, generated from the handlers' annotations (the route
//! table lives in `routes`, so does the list of paths). Served at `GET /openapi.json` and kept
//! in the repository as `docs/openapi.json`; a test fails when the two drift apart.

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, ToSchema};

/// `{"success": true, "data": …}` — every successful JSON answer.
#[derive(Serialize, ToSchema)]
pub struct Envelope<T: ToSchema> {
    pub success: bool,
    pub data: T,
}

/// `{"success": false, "error": {"code", "message"}}` — every 4xx/5xx JSON answer.
#[derive(Serialize, ToSchema)]
pub struct Failure {
    /// Always false.
    pub success: bool,
    pub error: FailureDetail,
}

#[derive(Serialize, ToSchema)]
pub struct FailureDetail {
    /// VALIDATION_ERROR, INVALID_ORDER_STATUS, REFUND_AMOUNT_EXCEEDED, OPENID_MISMATCH,
    /// UNAUTHORIZED, ORDER_NOT_FOUND, NOT_FOUND, INSUFFICIENT_STOCK, CONFLICT, GATEWAY_ERROR,
    /// WALLYT_NOT_CONFIGURED, UNAVAILABLE, GATEWAY_TIMEOUT.
    pub code: String,
    pub message: String,
}

/// The two bearer schemes: a user's login token and the admin token.
pub struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |format: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format(format)
                    .build(),
            )
        };
        components.add_security_scheme("bearer", bearer("JWT"));
        components.add_security_scheme("admin", bearer("ADMIN_TOKEN"));
    }
}
