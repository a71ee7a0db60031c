//! The refusals only production makes: anything that would let money or credentials travel
//! in clear text, or let a guessable token through, stops the start-up instead of becoming a
//! warning nobody reads.

use std::net::IpAddr;

use super::ConfigError;

/// The admin token guards refunds and the catalogue: it must not be guessable.
pub(super) const MIN_ADMIN_TOKEN_CHARS: usize = 32;

pub(super) fn check_admin_token(token: &str) -> Result<(), ConfigError> {
    if token.chars().count() < MIN_ADMIN_TOKEN_CHARS {
        return Err(ConfigError::Invalid(format!(
            "ADMIN_TOKEN must be at least {MIN_ADMIN_TOKEN_CHARS} characters in production"
        )));
    }
    Ok(())
}

/// WeChat and Wallyt URLs carry the app secret, signed payment requests and notifies: https
/// only, except to this machine itself (a local forward proxy or a tunnel's end).
pub(super) fn check_https(name: &str, value: &str) -> Result<(), ConfigError> {
    let url = url::Url::parse(value)
        .map_err(|e| ConfigError::Invalid(format!("{name} is not a URL: {e}")))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if url.host().is_some_and(|host| is_loopback(&host)) => Ok(()),
        _ => Err(ConfigError::Invalid(format!(
            "{name} must be an https:// URL in production (plain http only to localhost or a \
             loopback address)"
        ))),
    }
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        url::Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_this_machine() {
        for ok in [
            "https://api.weixin.qq.com",
            "http://localhost:9090/pay/gateway",
            "http://LOCALHOST/x",
            "http://127.0.0.1:8080/payments/wallyt/notify",
            "http://127.8.9.1/x",
            "http://[::1]:9090/x",
        ] {
            assert!(check_https("X", ok).is_ok(), "{ok}");
        }
        for refused in [
            "http://api.weixin.qq.com",
            "http://10.0.0.5/pay/gateway",
            "http://localhost.evil.example/x",
            "http://0.0.0.0:8080/x",
            "ftp://localhost/x",
        ] {
            assert!(check_https("X", refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn admin_tokens_are_counted_in_characters() {
        assert!(check_admin_token(&"a".repeat(31)).is_err());
        assert!(check_admin_token(&"a".repeat(32)).is_ok());
    }
}
