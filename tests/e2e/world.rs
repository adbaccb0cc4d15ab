//! A small mesh for traffic tests: meshd, server pods and one client pod (app `client`),
//! every pod with its sidecar; waiting for them to be in sync, and their logs on failure.

use std::time::Duration;

use super::envoy;
use super::meshd::Meshd;
use super::netns::Lab;
use super::objects;
use super::pod::Pod;
use super::process::wait_for;
use super::syncz;

/// Fields in drop order: the pods' processes stop before meshd, and both before the lab.
pub struct World {
    pub client: Pod,
    pub servers: Vec<Pod>,
    pub meshd: Meshd,
    pub lab: Lab,
}

impl World {
    /// Adds the client pod in `namespace` to meshd's config (the servers' Pods and the
    /// rest of the config are the caller's), starts meshd, then the servers' sidecars
    /// and the client's.
    pub fn start(mut lab: Lab, mut meshd: Meshd, servers: Vec<Pod>, namespace: &str) -> World {
        let client = Pod::new(&mut lab, "client", namespace);
        meshd.write(
            "pod-client.yaml",
            &objects::pod("client", namespace, &client.ip, "client", &[]),
        );
        meshd.start();
        let mut world = World {
            client,
            servers,
            meshd,
            lab,
        };
        for i in 0..world.servers.len() {
            let bootstrap = world.meshd.bootstrap(&world.servers[i].node_id(), false);
            world.servers[i].start_envoy(&world.lab, &bootstrap);
        }
        let bootstrap = world.meshd.bootstrap(&world.client.node_id(), false);
        world.client.start_envoy(&world.lab, &bootstrap);
        world
    }

    /// The client, then the servers.
    pub fn pods(&self) -> impl Iterator<Item = &Pod> {
        std::iter::once(&self.client).chain(&self.servers)
    }

    /// Waits until meshd's syncz shows every proxy acked by `syncz::acked`, and asserts
    /// that no sidecar rejected anything.
    pub fn assert_in_sync(&self) {
        self.assert_in_sync_by(syncz::acked);
    }

    /// As `assert_in_sync`, with `acked` saying whether a proxy's syncz entry is acked.
    pub fn assert_in_sync_by(&self, acked: fn(&serde_json::Value, &str) -> bool) {
        wait_for(
            "every proxy to be acked in meshd's syncz",
            Duration::from_secs(45),
            || {
                let state = self.meshd.syncz()?;
                self.pods()
                    .all(|p| acked(&state, &p.node_id()))
                    .then_some(())
            },
        );
        for pod in self.pods() {
            let rejected = envoy::rejected_updates(&pod.ns);
            assert!(
                rejected.is_empty(),
                "{} rejected config: {rejected:?}",
                pod.name
            );
        }
    }

    /// Log tails of meshd and every pod, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = format!("--- meshd\n{}\n", self.meshd.log_tail());
        for pod in self.pods() {
            out.push_str(&pod.logs());
        }
        out
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "=== logs in {} (kept when MESHD_E2E_KEEP=1) ===",
                self.lab.dir.display()
            );
            eprint!("{}", self.logs());
        }
    }
}
