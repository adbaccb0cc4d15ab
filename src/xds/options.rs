//! Options of the xDS server: limits on concurrent work, admission of new streams,
//! connection age, message sizes, keepalives and the drain on shutdown. The defaults of the
//! work limits follow the number of cores.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct XdsOptions {
    /// Streams regenerating their configuration at the same time (default: one per core;
    /// each is CPU work on the blocking pool).
    pub max_concurrent_pushes: usize,
    /// New streams in progress at once (admitted, first configuration not yet generated and
    /// queued); the others wait in the admission queue. 0 admits every stream at once.
    /// Default: four per core, enough to keep every core generating.
    pub new_streams_in_progress: usize,
    /// New streams that may wait for admission; one more is refused.
    pub new_stream_queue: usize,
    /// The part (0 to 1) of the admission queue one peer IP may hold, so that a proxy
    /// reconnecting in a loop cannot fill it.
    pub new_stream_peer_share: f64,
    /// How long a new stream may wait for admission before it is refused.
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
            max_concurrent_pushes: cores(),
            new_streams_in_progress: 4 * cores(),
            new_stream_queue: 10_000,
            new_stream_peer_share: 0.1,
            new_stream_max_wait: Duration::from_secs(30),
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

/// The cores this process may use (1 when unknown).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
