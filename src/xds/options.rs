//! Options of the xDS server: limits on concurrent work, new streams, connection age,
//! message sizes, keepalives and the drain on shutdown.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct XdsOptions {
    /// Streams regenerating their configuration at the same time.
    pub max_concurrent_pushes: usize,
    /// New streams accepted per second (0 disables the limit) and the burst allowed.
    pub new_stream_rate: f64,
    pub new_stream_burst: u32,
    /// The part (0 to 1) of the new-stream rate and burst one peer IP may use, so that a
    /// proxy reconnecting in a loop cannot starve the others.
    pub new_stream_peer_share: f64,
    /// How long a new stream may wait for the rate limit before it is refused.
    pub new_stream_max_wait: Duration,
    /// A stream is closed (gracefully, so the proxy reconnects, possibly to another
    /// replica) after this age, stretched by up to `max_connection_age_jitter` (a fraction).
    pub max_connection_age: Option<Duration>,
    pub max_connection_age_jitter: f64,
    /// Largest request message accepted. Requests are small except a Delta first request
    /// listing every resource the proxy holds (`initial_resource_versions`) or a SotW
    /// endpoint request naming every cluster: about 100 bytes a name, so 4 MiB is room for
    /// some 40,000 names, while a peer cannot make the server buffer much.
    pub max_request_message_size: usize,
    /// Largest response message sent (tonic's default of 4 MiB is too small for large
    /// meshes). A response over it is not sent; see `stream::Conn::fits`.
    pub max_response_message_size: usize,
    pub http2_keepalive_interval: Duration,
    pub http2_keepalive_timeout: Duration,
    /// On shutdown, how long streams have to end gracefully before the server stops.
    pub drain_duration: Duration,
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
            new_stream_peer_share: 0.1,
            new_stream_max_wait: Duration::from_secs(1),
            max_connection_age: Some(Duration::from_secs(30 * 60)),
            max_connection_age_jitter: 0.1,
            max_request_message_size: 4 * 1024 * 1024,
            max_response_message_size: 256 * 1024 * 1024,
            http2_keepalive_interval: Duration::from_secs(30),
            http2_keepalive_timeout: Duration::from_secs(10),
            drain_duration: Duration::from_secs(10),
            allow_unauthenticated_secrets: false,
        }
    }
}
