//! Where deliveries may go. An admin names an endpoint's URL, and the server then makes
//! requests to it: without a check, an endpoint on `127.0.0.1`, `169.254.169.254` or the
//! office network would let whoever registers it reach what only the server can (server-side
//! request forgery). So, unless private addresses are allowed:
//! - at registration, a URL that names such an address (in any spelling the URL standard
//!   accepts: `127.1`, `2130706433`, `[::ffff:7f00:1]`) or `localhost` is refused, with no
//!   connection made;
//! - at every connection, names are resolved by [`PublicOnly`], which drops private answers,
//!   so a name that resolves (or is re-pointed) to one is never reached;
//! - redirects are not followed.
//!
//! Rust's standard library has `IpAddr::is_global` only on nightly, hence [`is_public`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// Why a URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefused {
    /// Not a URL.
    #[error("not a valid URL")]
    Invalid,
    /// Not http or https.
    #[error("only http and https URLs are allowed")]
    Scheme,
    /// Credentials in the URL would be sent to the endpoint and shown in lists.
    #[error("a URL may not carry a user name or password")]
    Credentials,
    /// Loopback, private, link-local or otherwise not public.
    #[error(
        "{0} is not a public address (set SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE=true to allow it)"
    )]
    Private(String),
}

/// Checks an endpoint URL without connecting anywhere.
///
/// # Errors
/// Why it is refused.
pub fn check_url(text: &str, allow_private: bool) -> Result<Url, UrlRefused> {
    let url = Url::parse(text.trim()).map_err(|_| UrlRefused::Invalid)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlRefused::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRefused::Credentials);
    }
    let host = url.host().ok_or(UrlRefused::Invalid)?;
    if allow_private {
        return Ok(url);
    }
    let refused = || UrlRefused::Private(host.to_string());
    match host {
        url::Host::Ipv4(ip) if !is_public(IpAddr::V4(ip)) => Err(refused()),
        url::Host::Ipv6(ip) if !is_public(IpAddr::V6(ip)) => Err(refused()),
        url::Host::Domain(name) if is_local_name(name) => Err(refused()),
        _ => Ok(url),
    }
}

/// Names that mean this machine or its network whatever DNS says.
fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || [".localhost", ".local", ".internal", ".home.arpa"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
}

/// Whether a delivery may connect to `ip`: not loopback, private, link-local, shared (CGNAT),
/// unspecified, broadcast, multicast, documentation or reserved, including IPv4 addresses
/// embedded in IPv6 ones.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let segments = v6.segments();
            // NAT64 (64:ff9b::/96) and IPv4-compatible (::a.b.c.d) carry an IPv4 address.
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || segments[..6] == [0; 6] {
                let [.., a, b] = segments;
                let embedded = Ipv4Addr::from((u32::from(a) << 16) | u32::from(b));
                return !v6.is_unspecified() && !v6.is_loopback() && is_public_v4(embedded);
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (segments[0] & 0xfe00) == 0xfc00 // unique local
                || (segments[0] & 0xffc0) == 0xfe80 // link-local
                || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || segments[..2] == [0x2001, 0x0db8]) // documentation
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (b & 0xc0) == 64) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b & 0xfe) == 18) // benchmarking
        || a >= 240) // reserved
}

/// A resolver that answers only public addresses (all of them, when private ones are
/// allowed): reqwest asks it for every host name it connects to.
pub struct PublicOnly {
    /// Allow every address.
    pub allow_private: bool,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| allow_private || is_public(addr.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_refused_in_every_spelling() {
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f.0.0.1/",
            "http://localhost/",
            "http://api.localhost./",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.10/",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[64:ff9b::a00:1]/",
        ] {
            assert!(
                matches!(check_url(url, false), Err(UrlRefused::Private(_))),
                "{url} must be refused"
            );
            assert!(
                check_url(url, true).is_ok(),
                "{url} allowed when private is"
            );
        }
    }

    #[test]
    fn public_urls_pass_and_other_schemes_do_not() {
        assert!(check_url("https://crm.example.com/hooks/switchboard", false).is_ok());
        assert!(check_url("http://93.184.216.34/", false).is_ok());
        assert!(check_url("https://[2606:4700::1111]/", false).is_ok());
        assert_eq!(
            check_url("ftp://example.com/", true),
            Err(UrlRefused::Scheme)
        );
        assert_eq!(
            check_url("file:///etc/passwd", true),
            Err(UrlRefused::Scheme)
        );
        assert_eq!(check_url("not a url", true), Err(UrlRefused::Invalid));
        assert_eq!(
            check_url("https://user:pw@example.com/", true),
            Err(UrlRefused::Credentials)
        );
    }
}
