//! The sandbox's controls make trades paid, close them and inject faults: whoever reaches them
//! decides what the engine believes about money. They answer only a TCP peer on this machine.
//! The peer is the socket's address, never `X-Forwarded-For` or `Forwarded`, which any client
//! can write; a request that arrives through a local reverse proxy therefore still counts as
//! local — do not put the development server behind one that faces a network.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::ResponseError;
use std::net::IpAddr;

use crate::http::ApiError;

/// `IpAddr::is_loopback`, also for IPv4 loopback written as IPv6 (`::ffff:127.0.0.1`, what a
/// dual-stack listener reports).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(v6.is_loopback(), |v4| v4.is_loopback()),
    }
}

/// Middleware for the control scopes: anyone else gets the answer of a route that does not
/// exist, so that a scan learns nothing about the sandbox.
pub async fn loopback_only(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if req.peer_addr().is_some_and(|peer| is_loopback(peer.ip())) {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    }
    tracing::warn!(
        event = "sandbox.control.refused",
        peer = ?req.peer_addr(),
        path = req.path(),
    );
    let refusal = ApiError::NotFound(format!("no route for {} {}", req.method(), req.path()));
    Ok(req.into_response(refusal.error_response()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::{Sandbox, SandboxConfig};
    use actix_web::test::{call_service, init_service, read_body_json, TestRequest};
    use actix_web::App;

    #[test]
    fn loopback_in_every_spelling() {
        for ip in ["127.0.0.1", "127.3.2.1", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["192.0.2.7", "10.0.0.1", "::ffff:10.0.0.1", "0.0.0.0", "::"] {
            assert!(!is_loopback(ip.parse().unwrap()), "{ip}");
        }
    }

    #[actix_web::test]
    async fn controls_answer_local_peers_only_whatever_the_headers_say() {
        let sandbox = Sandbox::new(SandboxConfig::generated());
        let app = init_service(App::new().service(sandbox.scope("/sandbox"))).await;
        let remote = "192.0.2.7:40000".parse().unwrap();
        let local = "127.0.0.1:40000".parse().unwrap();
        for (method, path) in [
            (actix_web::http::Method::GET, "/sandbox/trades"),
            (actix_web::http::Method::GET, "/sandbox/trades/T1"),
            (actix_web::http::Method::POST, "/sandbox/trades/T1/pay"),
            (actix_web::http::Method::POST, "/sandbox/trades/T1/close"),
            (actix_web::http::Method::POST, "/sandbox/trades/T1/fail"),
            (actix_web::http::Method::GET, "/sandbox/cashier/T1"),
            (actix_web::http::Method::POST, "/sandbox/cashier/T1"),
            (actix_web::http::Method::PUT, "/sandbox/faults"),
            (actix_web::http::Method::GET, "/sandbox/faults"),
        ] {
            let request = TestRequest::default()
                .method(method.clone())
                .uri(path)
                .peer_addr(remote)
                .insert_header(("X-Forwarded-For", "127.0.0.1"))
                .insert_header(("Forwarded", "for=127.0.0.1"))
                .set_json(serde_json::json!({}))
                .to_request();
            let response = call_service(&app, request).await;
            assert_eq!(response.status(), 404, "{method} {path}");
            let body: serde_json::Value = read_body_json(response).await;
            assert_eq!(body["error"]["code"], "NOT_FOUND", "{method} {path}");
        }
        let request = TestRequest::get()
            .uri("/sandbox/faults")
            .peer_addr(local)
            .to_request();
        assert_eq!(call_service(&app, request).await.status(), 200);
        // The protocol itself stays open: only the controls are local.
        let request = TestRequest::get()
            .uri("/sandbox/sns/jscode2session")
            .peer_addr(remote)
            .to_request();
        assert_ne!(call_service(&app, request).await.status(), 404);
    }
}
