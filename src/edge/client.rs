//! Who the client is: the TCP peer, or, when the peer is a trusted reverse proxy, the address
//! that proxy (and any trusted proxies before it) says it forwarded for.
//!
//! `X-Forwarded-For` is read from the right: each trusted hop appended the address it received
//! from, so the first address from the right that is not a trusted proxy is the client; a
//! client cannot spoof its way past that by sending a header of its own (its entries sit to the
//! left). From an untrusted peer the header is ignored.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The client as the edge resolved it; in every request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress {
    /// The client's address.
    pub ip: IpAddr,
    /// Whether the client reached the proxy over HTTPS (`X-Forwarded-Proto` of a trusted
    /// proxy).
    pub https: bool,
}

/// A proxy given as an address or a CIDR range.
pub fn parse_proxy(text: &str) -> Option<IpNet> {
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    proxies.iter().any(|net| net.contains(&ip))
}

/// The client behind `peer`, given the request's headers and the trusted proxies.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, proxies: &[IpNet]) -> ClientAddress {
    let peer = peer.to_canonical();
    if !trusted(peer, proxies) {
        return ClientAddress {
            ip: peer,
            https: false,
        };
    }
    let mut client = peer;
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in hops.iter().rev() {
        // A malformed entry ends what can be believed: the last hop read stands.
        let Some(ip) = hop_address(hop) else {
            break;
        };
        client = ip;
        if !trusted(ip, proxies) {
            break;
        }
    }
    // The protocol the nearest trusted proxy saw: the last value, across every line.
    let https = headers
        .get_all("x-forwarded-proto")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back()
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
    ClientAddress { ip: client, https }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`) or in brackets, as some load balancers write them.
fn hop_address(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            hop.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .and_then(|h| h.parse().ok())
        })
        .map(|ip: IpAddr| ip.to_canonical())
}

/// The key per-address limits count under: IPv4 as is, IPv6 by its /64 (one subscriber's
/// usual allocation, so an attacker with a /64 does not get 2^64 buckets).
pub fn address_bucket(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(
            u128::from(v6) & !((1u128 << 64) - 1),
        )),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                value.parse().expect("value"),
            );
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let proxies = [parse_proxy("10.0.0.0/8").expect("range")];
        let said = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "https"),
        ]);
        let client = resolve(ip("203.0.113.9"), &said, &proxies);
        assert_eq!(client.ip, ip("203.0.113.9"));
        assert!(!client.https);
    }

    #[test]
    fn behind_trusted_proxies_the_first_untrusted_hop_from_the_right_is_the_client() {
        let proxies = [
            parse_proxy("10.0.0.0/8").expect("range"),
            parse_proxy("192.0.2.7").expect("address"),
        ];
        // The client forged "6.6.6.6"; the edge proxy appended the real address, then an
        // inner proxy appended the edge's.
        let said = headers(&[
            ("x-forwarded-for", "6.6.6.6, 198.51.100.20"),
            ("x-forwarded-for", "192.0.2.7"),
            ("x-forwarded-proto", "https"),
        ]);
        let client = resolve(ip("10.1.2.3"), &said, &proxies);
        assert_eq!(client.ip, ip("198.51.100.20"));
        assert!(client.https);
        // Without the header, the proxy itself.
        assert_eq!(
            resolve(ip("10.1.2.3"), &HeaderMap::new(), &proxies).ip,
            ip("10.1.2.3")
        );
        // Ports and brackets, as some load balancers write them.
        let ported = headers(&[("x-forwarded-for", "[2001:db8::7]:4711, 198.51.100.20:80")]);
        assert_eq!(
            resolve(ip("10.1.2.3"), &ported, &proxies).ip,
            ip("198.51.100.20")
        );
        let bracketed = headers(&[("x-forwarded-for", "[2001:db8::7]")]);
        assert_eq!(
            resolve(ip("10.1.2.3"), &bracketed, &proxies).ip,
            ip("2001:db8::7")
        );
        // A malformed hop: the last believable one stands.
        let odd = headers(&[("x-forwarded-for", "198.51.100.20, not-an-ip")]);
        assert_eq!(resolve(ip("10.1.2.3"), &odd, &proxies).ip, ip("10.1.2.3"));
    }

    #[test]
    fn ipv6_addresses_share_a_bucket_per_64_and_mapped_ipv4_is_ipv4() {
        assert_eq!(
            address_bucket(ip("2001:db8:1:2:aaaa::1")),
            address_bucket(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            address_bucket(ip("2001:db8:1:2::1")),
            address_bucket(ip("2001:db8:1:3::1"))
        );
        assert_eq!(address_bucket(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }
}
