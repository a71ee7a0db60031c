//! The JSON envelope of every answer: `{"success": true, "data": …}` or
//! `{"success": false, "error": {"code": …, "message": …}}`.
//!
//! `data` is serialized straight into the body, never through `serde_json::Value`: a
//! `Value` would turn the exact yuan text of an amount (`100.00`) into a float (`100.0`).

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde::Serialize;
use serde_json::{json, Value};

#[derive(Serialize)]
struct Success<T> {
    success: bool,
    data: T,
}

pub fn ok<T: Serialize>(data: T) -> HttpResponse {
    with_status(StatusCode::OK, data)
}

pub fn created<T: Serialize>(data: T) -> HttpResponse {
    with_status(StatusCode::CREATED, data)
}

fn with_status<T: Serialize>(status: StatusCode, data: T) -> HttpResponse {
    HttpResponse::build(status).json(Success {
        success: true,
        data,
    })
}

/// The success envelope as text, for answers that are stored and replayed byte for byte.
pub fn ok_text<T: Serialize>(data: T) -> String {
    serde_json::to_string(&Success {
        success: true,
        data,
    })
    .expect("answers serialize")
}

pub fn failure_body(code: &str, message: &str) -> Value {
    json!({ "success": false, "error": { "code": code, "message": message } })
}
