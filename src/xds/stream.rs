//! What every ADS stream has, SotW or Delta: the proxy's node (only sent on the first
//! request, so remembered here), the resources generated for it in the current generation,
//! nonces, its age limit, the response size limit, its log span and its entry in the
//! status registry; and the stream loop both protocols share.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::Node;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tonic::{Code, Status};
use tracing::{debug, info, info_span, warn, Instrument};

use super::admission::{jittered, Ticket};
use super::caller::Caller;
use super::convergence;
use super::generator::{GenerationWatch, ProxyContext};
use super::push_permits::PushClass;
use super::requests::Requests;
use super::shared::Shared;
use super::status::{StreamStatus, TypeView};
use crate::envoy::resource::{type_url, ProxyResources, ResourceMap};

pub(crate) struct Conn {
    pub(crate) shared: Arc<Shared>,
    pub(crate) id: u64,
    pub(crate) delta: bool,
    /// Shared with the generation task, so a regeneration does not copy it.
    node: Option<Arc<Node>>,
    /// The node id, for logs and the status registry.
    pub(crate) proxy: String,
    pub(crate) resources: ProxyResources,
    pub(crate) generations: GenerationWatch,
    /// Cleared when the application drops its end of the watch (shutdown).
    pub(crate) watching: bool,
    nonces: u64,
    /// When the stream is closed so that the proxy reconnects (maybe elsewhere).
    pub(crate) deadline: Option<Instant>,
    /// For `pilot_proxy_convergence_time` (admission).
    pub(crate) convergence: convergence::Clock,
    /// The stream's admission ticket, until its first configuration is queued (admission).
    pub(crate) admitted: Option<Ticket>,
    /// Whether generated secrets (gateways') may go to this stream (allowed by option).
    secrets_allowed: bool,
    /// The authenticated caller's own secrets (secure port only), pushed again on change.
    caller_secrets: Option<watch::Receiver<Arc<ResourceMap>>>,
    /// What the generator learns of the stream (the caller's identity).
    context: Arc<ProxyContext>,
    /// This stream's entry in the status registry, from its first request on.
    status: Option<Arc<StreamStatus>>,
    /// Set by the protocol when a request breaks a limit: the stream ends with it.
    pub(crate) failure: Option<Status>,
}

/// Most names one stream may subscribe to for one type. Far above any real mesh (a sidecar
/// of a 10,000-service mesh subscribes to about 10,000 endpoint names), it keeps what one
/// client can make meshd hold bounded.
pub(crate) const MAX_SUBSCRIBED_NAMES: usize = 200_000;

impl Conn {
    pub(crate) fn new(shared: Arc<Shared>, delta: bool, caller: Option<Caller>) -> Self {
        let id = shared.next_stream_id.fetch_add(1, Ordering::Relaxed);
        let deadline = shared.options.max_connection_age.map(|age| {
            Instant::now() + jittered(age, shared.options.max_connection_age_jitter, id)
        });
        let generations = shared.generations.clone();
        let secrets_allowed = shared.options.allow_unauthenticated_secrets;
        Conn {
            shared,
            id,
            delta,
            node: None,
            proxy: String::new(),
            resources: ProxyResources::default(),
            generations,
            watching: true,
            nonces: 0,
            deadline,
            convergence: convergence::Clock::default(),
            admitted: None,
            secrets_allowed,
            context: Arc::new(ProxyContext {
                identity: caller.as_ref().map(|c| Arc::from(c.name.as_str())),
            }),
            caller_secrets: caller.map(|c| c.secrets),
            status: None,
            failure: None,
        }
    }

    pub(crate) fn has_node(&self) -> bool {
        self.node.is_some()
    }

    /// Takes the node from the first request and generates the proxy's configuration.
    pub(crate) async fn connect(&mut self, node: Option<Node>) -> Result<(), Status> {
        let node =
            node.ok_or_else(|| Status::invalid_argument("the first request must carry a node"))?;
        self.proxy = node.id.clone();
        tracing::Span::current().record("proxy", self.proxy.as_str());
        self.node = Some(Arc::new(node));
        self.status = Some(self.shared.status.register(
            self.id,
            &self.proxy,
            self.delta,
            self.secrets_allowed,
        ));
        info!("xds stream connected");
        self.regenerate().await
    }

    /// Asks the generator for the proxy's resources in the latest generation, within the
    /// server's bound on concurrent pushes.
    pub(crate) async fn regenerate(&mut self) -> Result<(), Status> {
        let generation = *self.generations.borrow_and_update();
        self.converge_generated(generation); // admission: convergence clock, fan-out round
                                             // A new stream's first configuration yields to connected proxies' updates (admission).
        let class = if self.admitted.is_some() {
            PushClass::Initial
        } else {
            PushClass::Update
        };
        let shared = self.shared.clone();
        let _permit = shared
            .push_permits
            .acquire(class)
            .await
            .map_err(|_| Status::unavailable("server shutting down"))?;
        let generator = self.shared.generator.clone();
        let node = self.node.clone().expect("regenerate after connect");
        let context = self.context.clone();
        let result = match generator.generate_cached(&node, &context) {
            // Already translated for another proxy of the same scope: a few look-ups.
            Some(result) => result,
            // Translation can take a while for a large mesh: keep it off the async workers.
            None => tokio::task::spawn_blocking(move || generator.generate_for(&node, &context))
                .await
                .map_err(|e| Status::internal(format!("generating configuration: {e}")))?,
        };
        match result {
            Ok(resources) => {
                if let Some(status) = &self.status {
                    // A few `Arc`s: the resources themselves are shared.
                    status.set_resources(generation, resources.clone());
                }
                self.resources = resources;
                Ok(())
            }
            Err(message) => {
                warn!(proxy = %self.proxy, generation, %message, "cannot generate configuration for proxy");
                Err(Status::invalid_argument(message))
            }
        }
    }

    /// The proxy's resources of one type. Generated secrets are withheld from streams not
    /// allowed to receive them; an authenticated caller's own secrets are added (and win
    /// over a generated secret of the same name).
    pub(crate) fn resources_of(&self, type_url: &str) -> Arc<ResourceMap> {
        if type_url != type_url::SECRET {
            return self.resources.of_type(type_url);
        }
        let generated = if self.secrets_allowed {
            self.resources.of_type(type_url)
        } else {
            Arc::default()
        };
        let Some(own) = &self.caller_secrets else {
            return generated;
        };
        let own = own.borrow().clone();
        if generated.is_empty() {
            return own;
        }
        let mut all = (*generated).clone();
        all.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
        Arc::new(all)
    }

    /// A nonce unique on this server.
    pub(crate) fn next_nonce(&mut self) -> String {
        self.nonces += 1;
        format!("{:x}-{:x}", self.id, self.nonces)
    }

    /// Called when nothing is left to push: the stream has caught up with the generation.
    pub(crate) fn caught_up(&mut self) {
        // admission: the first configuration is queued, the stream no longer counts as new.
        self.admitted = None;
        self.converge_built();
    }

    /// Whether a response of `len` bytes may be sent. One over the limit would end the
    /// stream (and the proxy would reconnect and get it again): it is logged, counted, and
    /// the caller withholds it until the content changes.
    pub(crate) fn fits(&self, type_url: &'static str, len: usize) -> bool {
        if len <= self.response_limit() {
            return true;
        }
        self.oversized(type_url, "response", len);
        false
    }

    /// The largest response message the server sends.
    pub(crate) fn response_limit(&self) -> usize {
        self.shared.options.max_response_message_size
    }

    /// Logs and counts a response (or the resource `what`) left unsent for its size.
    pub(crate) fn oversized(&self, type_url: &'static str, what: &str, size: usize) {
        let limit = self.response_limit();
        warn!(proxy = %self.proxy, type_url, what, size, limit, "xds response over the message size limit, not sent; raise --max-response-message-size or reduce the configuration");
        self.shared.status.metrics().oversized(type_url);
    }

    /// Records a type's sync state for the debug views (copied into the stream's own
    /// status; the names are shared, not copied).
    pub(crate) fn publish(&mut self, type_url: &'static str, view: &TypeView) {
        if let Some(status) = &self.status {
            status.set_type(type_url, view);
        }
        self.converge_published(type_url, view); // admission: sent, ACK or NACK
    }
}

impl Conn {
    /// Ends the stream (after this request) when a type's subscription exceeds
    /// `MAX_SUBSCRIBED_NAMES`; `true` when it does.
    pub(crate) fn too_many_names(&mut self, type_url: &str, count: usize) -> bool {
        if count <= MAX_SUBSCRIBED_NAMES {
            return false;
        }
        self.failure = Some(Status::resource_exhausted(format!(
            "{count} names subscribed for {type_url}: at most {MAX_SUBSCRIBED_NAMES} per type"
        )));
        true
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.converge_gone(); // admission: fan-out round
        if let Some(status) = &self.status {
            self.shared.status.unregister(status);
            info!("xds stream disconnected");
        }
    }
}

/// The static type URL for a requested one, when meshd serves that type.
pub(crate) fn known_type(requested: &str) -> Option<&'static str> {
    type_url::PUSH_ORDER
        .iter()
        .copied()
        .find(|t| *t == requested)
}

/// Sleeps until `deadline`, or forever without one.
pub(crate) async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// What differs between the SotW and Delta protocols; the stream loop in `run` is shared.
pub(crate) trait StreamProtocol: Default {
    type Request: prost::Message + Default + Send + 'static;
    type Response: Send + 'static;
    const DELTA: bool;

    /// The node a request carries (only the first request of a stream must have it).
    fn node(request: &Self::Request) -> Option<Node>;
    /// Whether a type has a response waiting to be built.
    fn has_pending(&self) -> bool;
    fn on_request(&mut self, conn: &mut Conn, request: Self::Request);
    /// Marks what a new generation may have changed.
    fn on_generation(&mut self);
    /// Builds the next response, in push order, from the current state.
    fn next_response(&mut self, conn: &mut Conn) -> Option<Self::Response>;
}

/// Runs one stream until the proxy leaves, the stream ages out, the server drains or the
/// stream fails. Responses are built only when the outbox has room, so the latest
/// configuration and subscription always win.
pub(crate) async fn run<P: StreamProtocol>(
    shared: Arc<Shared>,
    peer: Option<SocketAddr>,
    caller: Option<Caller>,
    requests: Requests<P::Request>,
    tx: mpsc::Sender<Result<P::Response, Status>>,
    admitted: Ticket,
) {
    let caller_name = caller.as_ref().map(|c| c.name.clone()).unwrap_or_default();
    let mut conn = Conn::new(shared, P::DELTA, caller);
    conn.admitted = Some(admitted); // admission
    let span = info_span!(
        "xds_stream",
        stream = conn.id,
        protocol = if P::DELTA { "delta" } else { "sotw" },
        peer = peer.map(|p| p.to_string()).unwrap_or_default(),
        caller = caller_name,
        proxy = tracing::field::Empty,
    );
    serve_stream::<P>(conn, requests, tx).instrument(span).await;
}

async fn serve_stream<P: StreamProtocol>(
    mut conn: Conn,
    mut requests: Requests<P::Request>,
    tx: mpsc::Sender<Result<P::Response, Status>>,
) {
    let mut state = P::default();
    let deadline = conn.deadline;
    let mut own_secrets = conn.caller_secrets.clone();
    let drain = drained(
        conn.shared.draining.subscribe(),
        drain_spread(conn.shared.options.drain_duration, conn.id),
    );
    tokio::pin!(drain);
    loop {
        let pending = state.has_pending();
        let watch = conn.has_node() && conn.watching;
        tokio::select! {
            // Age and drain first: a client that keeps requests coming must not keep its
            // stream past either.
            biased;
            _ = until(deadline) => {
                info!("xds stream reached its maximum age, closing it");
                return;
            }
            () = &mut drain => {
                info!("server draining, closing the xds stream");
                return;
            }
            message = requests.message() => match message {
                Ok(Some(request)) => {
                    if !conn.has_node() {
                        if let Err(status) = conn.connect(P::node(&request)).await {
                            end_with(&tx, status).await;
                            return;
                        }
                    }
                    state.on_request(&mut conn, request);
                    if let Some(status) = conn.failure.take() {
                        warn!(message = status.message(), "xds request over a limit, ending the stream");
                        end_with(&tx, status).await;
                        return;
                    }
                }
                Ok(None) => return,
                Err(status) => {
                    // A request that does not decode or is over the size limit ends the
                    // stream with that status, so the proxy sees an error, not OK. When the
                    // proxy itself went away, nobody reads it.
                    if matches!(status.code(), Code::Cancelled | Code::Unknown) {
                        debug!(%status, "xds stream ended by the proxy");
                    } else {
                        warn!(code = ?status.code(), message = status.message(), "bad xds request, ending the stream");
                    }
                    end_with(&tx, status).await;
                    return;
                }
            },
            permit = tx.reserve(), if pending => match permit {
                Ok(permit) => {
                    if let Some(response) = state.next_response(&mut conn) {
                        permit.send(Ok(response));
                    }
                    if !state.has_pending() {
                        conn.caught_up();
                    }
                }
                Err(_) => return,
            },
            changed = conn.generations.changed(), if watch => {
                if changed.is_err() {
                    conn.watching = false;
                    continue;
                }
                if let Err(status) = conn.regenerate().await {
                    end_with(&tx, status).await;
                    return;
                }
                state.on_generation();
            },
            changed = changed_or_forever(&mut own_secrets) => {
                if changed.is_err() {
                    own_secrets = None;
                    continue;
                }
                // A renewed certificate: the secret type is re-examined (the others turn
                // out unchanged and are not sent).
                state.on_generation();
            },
        }
    }
}

/// Resolves when the caller's secrets change; never without a caller.
async fn changed_or_forever(
    secrets: &mut Option<watch::Receiver<Arc<ResourceMap>>>,
) -> Result<(), watch::error::RecvError> {
    match secrets {
        Some(rx) => rx.changed().await,
        None => std::future::pending().await,
    }
}

/// How long a stream waits for room to send its final error: a peer that stopped reading
/// must not keep the stream's task (and the configuration it holds) alive.
const FINAL_STATUS_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Ends the stream with `status` when the outbox takes it within `FINAL_STATUS_WAIT`.
async fn end_with<R>(tx: &mpsc::Sender<Result<R, Status>>, status: Status) {
    let _ = tokio::time::timeout(FINAL_STATUS_WAIT, tx.send(Err(status))).await;
}

/// When a draining server closes stream `id`: spread over the first half of the drain
/// duration, so that proxies do not all reconnect (elsewhere) at the same moment, and
/// streams are closed well before the server gives up on them.
fn drain_spread(drain: Duration, id: u64) -> Duration {
    let half = drain / 2;
    jittered(half, 1.0, id).saturating_sub(half)
}

/// Resolves `spread` after the server starts draining.
async fn drained(mut draining: watch::Receiver<bool>, spread: Duration) {
    if draining.wait_for(|d| *d).await.is_err() {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(spread).await;
}
