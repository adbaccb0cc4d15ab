//! Options of the xDS server: limits on concurrent work, new streams, connection age,
//! message sizes and keepalives.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct XdsOptions {
    /// Streams regenerating their configuration at the same time.
    pub max_concurrent_pushes: usize,
    /// New streams accepted per second (0 disables the limit) and the burst allowed.
    pub new_stream_rate: f64,
    pub new_stream_burst: u32,
    /// How long a new stream may wait for the rate limit before it is refused.
    pub new_stream_max_wait: Duration,
    /// A stream is closed (gracefully, so the proxy reconnects, possibly to another
    /// replica) after this age, stretched by up to `max_connection_age_jitter` (a fraction).
    pub max_connection_age: Option<Duration>,
    pub max_connection_age_jitter: f64,
    /// gRPC message size limit, both ways (tonic's default of 4 MiB is too small for
    /// large meshes).
    pub max_message_size: usize,
    pub http2_keepalive_interval: Duration,
    pub http2_keepalive_timeout: Duration,
    /// Serve secrets on streams whose peer is not authenticated. Off by default: private
    /// keys only go to a verified workload over an encrypted stream, and the server does
    /// not authenticate peers yet, so secrets are withheld. Tests turn it on.
    pub allow_unauthenticated_secrets: bool,
}

impl Default for XdsOptions {
    fn default() -> Self {
        XdsOptions {
            max_concurrent_pushes: 100,
            new_stream_rate: 100.0,
            new_stream_burst: 100,
            new_stream_max_wait: Duration::from_secs(1),
            max_connection_age: Some(Duration::from_secs(30 * 60)),
            max_connection_age_jitter: 0.1,
            max_message_size: 256 * 1024 * 1024,
            http2_keepalive_interval: Duration::from_secs(30),
            http2_keepalive_timeout: Duration::from_secs(10),
            allow_unauthenticated_secrets: false,
        }
    }
}
