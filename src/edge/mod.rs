//! The server's edge, where it meets the open internet: who the client is behind proxies,
//! rate limits, CORS and security headers, connection timeouts and caps, graceful shutdown.
//!
//! - [`client`]: the client's address, from `X-Forwarded-For` only when the peer is a trusted
//!   proxy (it feeds every per-address limit and the login throttle).
//! - [`limits`]: requests per credential and per address on the API, per address on the
//!   webhook endpoint; 429 with `Retry-After`; every keyed table bounded.
//! - [`deadline`]: a whole request (body included) within a time limit, 408 after.
//! - [`headers`]: CORS for configured origins (none by default: same origin only) and the
//!   security headers of every answer.
//! - [`listen`]: the accept loop: a header read timeout (which is also the idle keep-alive
//!   timeout), a cap on open connections, and shutdown within a deadline.

pub mod client;
pub mod deadline;
pub mod headers;
pub mod limits;
pub mod listen;

use std::time::Duration;

use ipnet::IpNet;

/// What the edge enforces; 0 turns a limit off.
#[derive(Debug, Clone)]
pub struct EdgeSettings {
    /// Origins allowed to call the API from a browser (`https://app.example.com`); empty: the
    /// console's own origin only (no CORS headers at all).
    pub cors_origins: Vec<String>,
    /// Proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Send `Strict-Transport-Security` on answers to requests that came over HTTPS (a trusted
    /// proxy's `X-Forwarded-Proto: https`).
    pub hsts: bool,
    /// API requests per second per credential (token's agent or API key), and the burst.
    pub api_per_credential: Rate,
    /// API requests per second per client address, and the burst.
    pub api_per_address: Rate,
    /// Webhook deliveries per second per client address, and the burst (Meta's bursts are
    /// far below the default).
    pub webhooks_per_address: Rate,
    /// Live sockets one agent may hold on one instance.
    pub sockets_per_agent: usize,
    /// How long a client may take to send a request's headers, and how long a kept-alive
    /// connection may sit idle before the next request.
    pub header_read_timeout: Duration,
    /// The longest pause while a client sends a request's body.
    pub body_timeout: Duration,
    /// The longest a request may take from its headers to its answer (a body dribbled a byte
    /// at a time, a handler stuck): 408 `request_timeout`. Socket.IO's transport is exempt.
    pub request_timeout: Duration,
    /// Open connections at most (sockets included); beyond them new ones wait to be accepted.
    pub max_connections: usize,
    /// How long a shutdown waits for requests in flight before it closes what remains.
    pub shutdown_deadline: Duration,
}

/// A rate: one request more every `every`, at most `burst` at once; `every` zero is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// How long one request's allowance takes to come back.
    pub every: Duration,
    /// Requests allowed at once.
    pub burst: u32,
}

impl Rate {
    /// No limit.
    pub const OFF: Rate = Rate {
        every: Duration::ZERO,
        burst: 0,
    };

    /// `per_second` requests a second (0: no limit), `burst` at once.
    pub fn per_second(per_second: u32, burst: u32) -> Self {
        match per_second {
            0 => Self::OFF,
            n => Self {
                every: Duration::from_secs(1) / n,
                burst: burst.max(1),
            },
        }
    }
}

impl Default for EdgeSettings {
    fn default() -> Self {
        Self {
            cors_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            hsts: true,
            api_per_credential: Rate::per_second(50, 500),
            api_per_address: Rate::per_second(200, 2_000),
            webhooks_per_address: Rate::per_second(2_000, 20_000),
            sockets_per_agent: 20,
            header_read_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(120),
            max_connections: 25_000,
            shutdown_deadline: Duration::from_secs(20),
        }
    }
}

/// `switchboard serve` flags of the edge; each falls back to the environment variable named.
#[derive(Debug, Clone, clap::Args)]
pub struct EdgeArgs {
    /// Origins allowed to call the API from other sites, comma-separated (default: none, the
    /// console's own origin only).
    #[arg(long, env = "SWITCHBOARD_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Reverse proxies (addresses or CIDR ranges, comma-separated) whose `X-Forwarded-For`
    /// and `X-Forwarded-Proto` are believed; requests from anyone else are taken at their
    /// TCP peer address.
    #[arg(long, env = "SWITCHBOARD_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// Send `Strict-Transport-Security` on answers to HTTPS requests (behind a trusted proxy).
    #[arg(long, env = "SWITCHBOARD_HSTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub hsts: bool,
    /// API requests per second per credential (0: no limit).
    #[arg(
        long,
        env = "SWITCHBOARD_API_RATE_PER_CREDENTIAL",
        default_value_t = 50
    )]
    pub api_rate_per_credential: u32,
    /// API requests per second per client address (0: no limit).
    #[arg(long, env = "SWITCHBOARD_API_RATE_PER_ADDRESS", default_value_t = 200)]
    pub api_rate_per_address: u32,
    /// Webhook deliveries per second per client address (0: no limit).
    #[arg(
        long,
        env = "SWITCHBOARD_WEBHOOK_RATE_PER_ADDRESS",
        default_value_t = 2_000
    )]
    pub webhook_rate_per_address: u32,
    /// Each rate's burst, in seconds of it.
    #[arg(long, env = "SWITCHBOARD_RATE_BURST_SECONDS", default_value_t = 10)]
    pub rate_burst_seconds: u32,
    /// Live sockets per agent on one instance (0: no limit).
    #[arg(long, env = "SWITCHBOARD_SOCKETS_PER_AGENT", default_value_t = 20)]
    pub sockets_per_agent: usize,
    /// Seconds a client may take to send a request's headers (and a kept-alive connection may
    /// sit idle).
    #[arg(
        long,
        env = "SWITCHBOARD_HEADER_READ_TIMEOUT_SECONDS",
        default_value_t = 10
    )]
    pub header_read_timeout_seconds: u64,
    /// Longest pause, in seconds, while a client sends a request's body.
    #[arg(long, env = "SWITCHBOARD_BODY_TIMEOUT_SECONDS", default_value_t = 30)]
    pub body_timeout_seconds: u64,
    /// Seconds a request may take from its headers to its answer (uploads included).
    #[arg(
        long,
        env = "SWITCHBOARD_REQUEST_TIMEOUT_SECONDS",
        default_value_t = 120
    )]
    pub request_timeout_seconds: u64,
    /// Open connections at most.
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS", default_value_t = 25_000)]
    pub max_connections: usize,
    /// Seconds a shutdown (SIGTERM) waits for requests in flight.
    #[arg(long, env = "SWITCHBOARD_SHUTDOWN_SECONDS", default_value_t = 20)]
    pub shutdown_seconds: u64,
}

/// A flag that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("SWITCHBOARD_TRUSTED_PROXIES: `{0}` is not an address or CIDR range")]
pub struct BadProxy(String);

impl EdgeArgs {
    /// The settings these flags describe.
    ///
    /// # Errors
    /// A trusted proxy that is neither an address nor a range.
    pub fn settings(&self) -> Result<EdgeSettings, BadProxy> {
        let rate = |per_second: u32| {
            Rate::per_second(
                per_second,
                per_second.saturating_mul(self.rate_burst_seconds.max(1)),
            )
        };
        Ok(EdgeSettings {
            cors_origins: self
                .cors_origins
                .iter()
                .map(|o| o.trim().trim_end_matches('/').to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
            trusted_proxies: self
                .trusted_proxies
                .iter()
                .map(|p| p.trim())
                .filter(|p| !p.is_empty())
                .map(|p| client::parse_proxy(p).ok_or_else(|| BadProxy(p.to_owned())))
                .collect::<Result<_, _>>()?,
            hsts: self.hsts,
            api_per_credential: rate(self.api_rate_per_credential),
            api_per_address: rate(self.api_rate_per_address),
            webhooks_per_address: rate(self.webhook_rate_per_address),
            sockets_per_agent: self.sockets_per_agent,
            header_read_timeout: Duration::from_secs(self.header_read_timeout_seconds.max(1)),
            body_timeout: Duration::from_secs(self.body_timeout_seconds.max(1)),
            request_timeout: Duration::from_secs(self.request_timeout_seconds.max(1)),
            max_connections: self.max_connections.max(16),
            shutdown_deadline: Duration::from_secs(self.shutdown_seconds),
        })
    }
}
