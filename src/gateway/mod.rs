//! Clients of the outside payment world. Each one alone touches reqwest; the rest of the
//! application sees typed answers and typed errors.

pub mod body;
pub mod wallyt;
pub mod wechat;

use crate::config::OutboundHttp;

/// The one outbound HTTP client shape: connect and total timeouts from configuration, no
/// redirects (a payment gateway that redirects is a misconfiguration, not a hint).
pub fn http_client(outbound: &OutboundHttp) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(outbound.connect_timeout)
        .timeout(outbound.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("wallyt-pay/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a client without custom TLS roots always builds")
}
