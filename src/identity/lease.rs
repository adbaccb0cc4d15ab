//! Leader election on a coordination.k8s.io/v1 Lease (`meshd-leader` in the root namespace),
//! as client-go's leaderelection does it: the holder renews the lease every few seconds; the
//! others take it over once it has not changed for a whole lease duration, judged by their own
//! clock from when they last saw it change (so clock skew between replicas does not matter).
//! Every write carries the resourceVersion it read, so of two replicas racing for a free
//! lease exactly one wins; the loser's `409 Conflict` just means "not leader".
//!
//! The leader steps down on its own when it could not renew for `renew_deadline`, which is
//! shorter than the lease duration, so two replicas never both believe they lead. Only the
//! writes (root ConfigMaps, …) follow leadership; every replica serves xDS.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::api_error_is;

/// The Lease's name (deploy/meshd.yaml grants update on exactly this name).
pub const LEASE_NAME: &str = "meshd-leader";

/// Where the lease lives, who this replica is, and the timings.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// This replica's name in `spec.holderIdentity`.
    pub holder: String,
    /// How long a lease that stopped changing is still honoured.
    pub lease_duration: Duration,
    /// How often the leader renews.
    pub renew_period: Duration,
    /// How often the others try to acquire.
    pub retry_period: Duration,
    /// A leader that could not renew for this long steps down (< `lease_duration`).
    pub renew_deadline: Duration,
}

impl LeaseConfig {
    /// The defaults: a 15s lease renewed every 5s, given up after 10s without a renewal.
    pub fn new(namespace: &str, holder: String) -> LeaseConfig {
        LeaseConfig {
            namespace: namespace.to_string(),
            name: LEASE_NAME.to_string(),
            holder,
            lease_duration: Duration::from_secs(15),
            renew_period: Duration::from_secs(5),
            retry_period: Duration::from_secs(2),
            renew_deadline: Duration::from_secs(10),
        }
    }
}

/// This replica's holder identity: `POD_NAME` (the downward API in deploy/meshd.yaml), else
/// the host name with a random suffix, so two processes on one host never share it.
pub fn holder_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    holder_from(std::env::var("POD_NAME").ok().as_deref(), host.as_deref())
}

fn holder_from(pod_name: Option<&str>, host: Option<&str>) -> String {
    if let Some(pod) = pod_name.map(str::trim).filter(|p| !p.is_empty()) {
        return pod.to_string();
    }
    let host = host
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .unwrap_or("meshd");
    format!("{host}-{}", random_suffix())
}

fn random_suffix() -> String {
    let mut bytes = [0u8; 4];
    // Without a random source the pid and clock still tell processes apart.
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        bytes = (nanos ^ std::process::id()).to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A running election; `leader()` says whether this replica leads right now.
pub struct LeaderElector {
    leader: watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl LeaderElector {
    /// Starts campaigning on the current tokio runtime.
    pub fn start(client: kube::Client, config: LeaseConfig) -> LeaderElector {
        let (tx, rx) = watch::channel(false);
        let (stop_tx, stop_rx) = oneshot::channel();
        let api = Api::<Lease>::namespaced(client, &config.namespace);
        let task = tokio::spawn(campaign(api, config, tx, stop_rx));
        LeaderElector {
            leader: rx,
            stop: Some(stop_tx),
            task,
        }
    }

    /// True while this replica holds the lease.
    pub fn leader(&self) -> watch::Receiver<bool> {
        self.leader.clone()
    }

    /// Stops campaigning and, if this replica holds the lease, hands it back so another
    /// replica takes over at its next try instead of after a lease duration.
    pub async fn release(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for LeaderElector {
    fn drop(&mut self) {
        // Dropped without `release`: stop at once; the lease then expires on its own.
        if self.stop.is_some() {
            self.task.abort();
        }
    }
}

/// The part of the lease whose change shows the holder is alive.
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    duration: Option<i32>,
}

/// What one attempt should do with the lease as read.
#[derive(Debug, PartialEq)]
enum Step {
    /// No lease yet: create it.
    Create,
    /// This replica holds it: renew.
    Renew,
    /// Free or expired: take it over.
    TakeOver,
    /// Another replica holds it and renewed it recently enough.
    Wait,
}

/// Decides an attempt from the lease read (`None`: no lease), when its content last changed
/// as seen by this replica, and now.
fn decide(
    spec: Option<&LeaseSpec>,
    me: &str,
    changed_at: Instant,
    now: Instant,
    default_duration: Duration,
) -> Step {
    let Some(spec) = spec else {
        return Step::Create;
    };
    match spec.holder_identity.as_deref().filter(|h| !h.is_empty()) {
        Some(holder) if holder == me => Step::Renew,
        None => Step::TakeOver,
        Some(_) => {
            let duration = spec
                .lease_duration_seconds
                .filter(|s| *s > 0)
                .map(|s| Duration::from_secs(s as u64))
                .unwrap_or(default_duration);
            if now.duration_since(changed_at) >= duration {
                Step::TakeOver
            } else {
                Step::Wait
            }
        }
    }
}

async fn campaign(
    api: Api<Lease>,
    config: LeaseConfig,
    leader: watch::Sender<bool>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut seen: Option<(Seen, Instant)> = None;
    let mut last_renewal: Option<Instant> = None;
    loop {
        match attempt(&api, &config, &mut seen).await {
            Ok(true) => last_renewal = Some(Instant::now()),
            Ok(false) => last_renewal = None,
            Err(error) => {
                warn!(lease = %config.name, %error, "leader election: lease not read or written");
                if last_renewal.is_some_and(|at| at.elapsed() >= config.renew_deadline) {
                    last_renewal = None;
                }
            }
        }
        let leading = last_renewal.is_some();
        leader.send_if_modified(|current| {
            if *current == leading {
                return false;
            }
            if leading {
                info!(holder = %config.holder, lease = %config.name, "became the leader");
            } else {
                info!(holder = %config.holder, lease = %config.name, "no longer the leader");
            }
            *current = leading;
            true
        });
        let wait = if leading {
            config.renew_period
        } else {
            config.retry_period
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut stop => break,
        }
    }
    let was_leading = *leader.borrow();
    leader.send_replace(false);
    if was_leading {
        match release(&api, &config).await {
            Ok(()) => info!(holder = %config.holder, lease = %config.name, "lease released"),
            Err(error) => warn!(lease = %config.name, %error, "lease not released; it expires"),
        }
    }
}

/// One try to acquire or renew; `Ok(true)` when this replica holds the lease afterwards.
async fn attempt(
    api: &Api<Lease>,
    config: &LeaseConfig,
    seen: &mut Option<(Seen, Instant)>,
) -> kube::Result<bool> {
    let current = api.get_opt(&config.name).await?;
    let now = Instant::now();
    if let Some(lease) = &current {
        let spec = lease.spec.clone().unwrap_or_default();
        let observed = Seen {
            holder: spec.holder_identity,
            renew_time: spec.renew_time,
            duration: spec.lease_duration_seconds,
        };
        if seen.as_ref().map(|(s, _)| s) != Some(&observed) {
            *seen = Some((observed, now));
        }
    }
    let changed_at = seen.as_ref().map_or(now, |(_, at)| *at);
    let step = decide(
        current.as_ref().and_then(|l| l.spec.as_ref()),
        &config.holder,
        changed_at,
        now,
        config.lease_duration,
    );
    let stamp = MicroTime(Timestamp::now());
    let duration = i32::try_from(config.lease_duration.as_secs()).unwrap_or(i32::MAX);
    let written = match (step, current) {
        (Step::Wait, _) => return Ok(false),
        (Step::Create, _) | (_, None) => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(config.name.clone()),
                    namespace: Some(config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(config.holder.clone()),
                    lease_duration_seconds: Some(duration),
                    acquire_time: Some(stamp.clone()),
                    renew_time: Some(stamp),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            api.create(&PostParams::default(), &lease).await
        }
        (Step::Renew, Some(mut lease)) => {
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            spec.renew_time = Some(stamp);
            spec.lease_duration_seconds = Some(duration);
            api.replace(&config.name, &PostParams::default(), &lease)
                .await
        }
        (Step::TakeOver, Some(mut lease)) => {
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            let previous = spec.holder_identity.clone().unwrap_or_default();
            spec.holder_identity = Some(config.holder.clone());
            spec.lease_duration_seconds = Some(duration);
            spec.acquire_time = Some(stamp.clone());
            spec.renew_time = Some(stamp);
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
            debug!(lease = %config.name, %previous, "taking over the lease");
            api.replace(&config.name, &PostParams::default(), &lease)
                .await
        }
    };
    match written {
        Ok(_) => Ok(true),
        // Another replica wrote first: it leads (or renewed); read again next round.
        Err(error) if api_error_is(&error, |s| s.is_conflict() || s.is_already_exists()) => {
            debug!(lease = %config.name, "lost a race for the lease");
            Ok(false)
        }
        Err(error) => Err(error),
    }
}

/// Empties the holder (what client-go does on release) so the others need not wait.
async fn release(api: &Api<Lease>, config: &LeaseConfig) -> kube::Result<()> {
    let Some(mut lease) = api.get_opt(&config.name).await? else {
        return Ok(());
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if spec.holder_identity.as_deref() != Some(config.holder.as_str()) {
        return Ok(());
    }
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.renew_time = Some(MicroTime(Timestamp::now()));
    api.replace(&config.name, &PostParams::default(), &lease)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(holder: &str, seconds: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.to_string()),
            lease_duration_seconds: Some(seconds),
            ..LeaseSpec::default()
        }
    }

    const DEFAULT: Duration = Duration::from_secs(15);

    #[test]
    fn no_lease_is_created() {
        let now = Instant::now();
        assert_eq!(decide(None, "a", now, now, DEFAULT), Step::Create);
    }

    #[test]
    fn own_lease_is_renewed_even_when_old() {
        let then = Instant::now();
        let now = then + Duration::from_secs(60);
        let spec = held_by("a", 15);
        assert_eq!(decide(Some(&spec), "a", then, now, DEFAULT), Step::Renew);
    }

    #[test]
    fn anothers_lease_is_honoured_until_it_stops_changing_for_its_duration() {
        let then = Instant::now();
        let spec = held_by("b", 15);
        let soon = then + Duration::from_secs(14);
        assert_eq!(decide(Some(&spec), "a", then, soon, DEFAULT), Step::Wait);
        let later = then + Duration::from_secs(15);
        assert_eq!(
            decide(Some(&spec), "a", then, later, DEFAULT),
            Step::TakeOver
        );
    }

    #[test]
    fn the_leases_own_duration_wins_over_the_default() {
        let then = Instant::now();
        let spec = held_by("b", 3);
        let now = then + Duration::from_secs(4);
        assert_eq!(decide(Some(&spec), "a", then, now, DEFAULT), Step::TakeOver);
        let unset = LeaseSpec {
            lease_duration_seconds: None,
            ..held_by("b", 0)
        };
        assert_eq!(decide(Some(&unset), "a", then, now, DEFAULT), Step::Wait);
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        let now = Instant::now();
        let released = LeaseSpec {
            holder_identity: Some(String::new()),
            ..LeaseSpec::default()
        };
        assert_eq!(
            decide(Some(&released), "a", now, now, DEFAULT),
            Step::TakeOver
        );
        let absent = LeaseSpec::default();
        assert_eq!(
            decide(Some(&absent), "a", now, now, DEFAULT),
            Step::TakeOver
        );
    }

    #[test]
    fn holder_identity_is_the_pod_name_else_a_unique_host_name() {
        assert_eq!(
            holder_from(Some("meshd-7f9c-x2"), Some("node")),
            "meshd-7f9c-x2"
        );
        let (a, b) = (
            holder_from(None, Some("node\n")),
            holder_from(Some(""), Some("node")),
        );
        assert!(
            a.starts_with("node-") && a.len() == "node-".len() + 8,
            "{a}"
        );
        assert_ne!(a, b, "two processes on one host must differ");
        assert!(holder_from(None, None).starts_with("meshd-"));
    }
}
