//! Who the client is, for rate limits and for the gateway's `mch_create_ip`.
//!
//! `X-Forwarded-For` is written by whoever sent the request, so it is read only when the TCP
//! peer is one of `TRUSTED_PROXIES`; otherwise anyone could pick the address they are limited
//! under (or that WeChat's risk checks see). Behind trusted proxies the client is the
//! right-most address that is not itself a trusted proxy: each proxy appends the address it
//! saw, so everything left of that is again the client's own claim.

use actix_web::http::header::HeaderMap;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const FORWARDED_FOR: &str = "x-forwarded-for";
/// A flood of spoofed headers must not become a flood of log lines.
const WARN_EVERY: Duration = Duration::from_secs(60);

pub struct ClientIps {
    trusted: Vec<IpNet>,
    /// Production only: a header from an untrusted peer there hints at a missing
    /// `TRUSTED_PROXIES` entry (or at spoofing) and is worth an operator's look.
    warn_untrusted: bool,
    last_warning: AtomicU64,
}

impl ClientIps {
    pub fn new(trusted: Vec<IpNet>, warn_untrusted: bool) -> ClientIps {
        ClientIps {
            trusted,
            warn_untrusted,
            last_warning: AtomicU64::new(0),
        }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// The client's address from the TCP peer and the request headers.
    pub fn resolve(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> IpAddr {
        // actix always knows the peer of a TCP connection; only unit-test requests lack one.
        let peer = peer.map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |p| canonical(p.ip()));
        let forwarded = headers.get_all(FORWARDED_FOR);
        if !self.is_trusted(peer) {
            if self.warn_untrusted && headers.contains_key(FORWARDED_FOR) {
                self.warn_spoofable(peer);
            }
            return peer;
        }
        // Several header lines are one list, in order.
        let hops: Vec<&str> = forwarded
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            // Garbage means the chain cannot be followed further: keep the last sure address.
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !self.is_trusted(ip) {
                break;
            }
        }
        client
    }

    fn warn_spoofable(&self, peer: IpAddr) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.last_warning.load(Ordering::Relaxed);
        if now.saturating_sub(last) < WARN_EVERY.as_secs() && last != 0 {
            return;
        }
        // One thread wins the minute; the others stay quiet.
        if self
            .last_warning
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            tracing::warn!(
                event = "http.forwarded_for.untrusted",
                %peer,
                "X-Forwarded-For from a peer outside TRUSTED_PROXIES is ignored \
                 (at most one such warning a minute)"
            );
        }
    }
}

/// `203.0.113.7`, `203.0.113.7:5678`, `2001:db8::1` or `[2001:db8::1]:443`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|a| a.ip()))
        .ok()
        .map(canonical)
}

/// An IPv4 client seen through an IPv6 socket (`::ffff:1.2.3.4`) is the same client.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in xff {
            map.append(
                HeaderName::from_static(FORWARDED_FOR),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn peer(ip: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().unwrap(), 4000))
    }

    fn ips(trusted: &str) -> ClientIps {
        let nets = trusted
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        ClientIps::new(nets, false)
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let ips = ips("");
        let ip = ips.resolve(peer("198.51.100.1"), &headers(&["203.0.113.9"]));
        assert_eq!(ip.to_string(), "198.51.100.1");
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let ips = ips("10.0.0.0/8");
        let chain = headers(&["1.1.1.1, 203.0.113.9", "10.0.0.7"]);
        assert_eq!(
            ips.resolve(peer("10.0.0.2"), &chain).to_string(),
            "203.0.113.9"
        );
        // Every hop trusted: the left-most is as far as the chain goes.
        let all_trusted = headers(&["10.1.1.1, 10.0.0.7"]);
        assert_eq!(
            ips.resolve(peer("10.0.0.2"), &all_trusted).to_string(),
            "10.1.1.1"
        );
        // Garbage stops the walk at the last address a trusted hop vouched for.
        let garbage = headers(&["203.0.113.9, not-an-ip, 10.0.0.7"]);
        assert_eq!(
            ips.resolve(peer("10.0.0.2"), &garbage).to_string(),
            "10.0.0.7"
        );
        assert_eq!(
            ips.resolve(peer("10.0.0.2"), &headers(&[])).to_string(),
            "10.0.0.2"
        );
    }

    #[test]
    fn mapped_ipv4_and_ports_are_understood() {
        let ips = ips("127.0.0.1/32");
        let ip = ips.resolve(peer("::ffff:127.0.0.1"), &headers(&["[2001:db8::5]:443"]));
        assert_eq!(ip.to_string(), "2001:db8::5");
    }
}
