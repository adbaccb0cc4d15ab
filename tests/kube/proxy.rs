//! A TCP proxy between meshd and the API server that can drop every open connection at
//! once and refuse new ones for a while: a network fault as a client sees it (TLS passes
//! through untouched; the server certificate names 127.0.0.1).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The proxy, on its own runtime thread; stops on drop.
pub struct DropProxy {
    pub port: u16,
    /// Bumped to drop every open connection.
    drops: watch::Sender<u64>,
    /// While set, new connections are closed at once.
    refusing: Arc<AtomicBool>,
    _runtime: tokio::runtime::Runtime,
}

impl DropProxy {
    /// Listens on a free loopback port and forwards to 127.0.0.1:`upstream`.
    pub fn start(upstream: u16) -> DropProxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("proxy runtime");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let (drops, drop_rx) = watch::channel(0u64);
        let refusing = Arc::new(AtomicBool::new(false));
        let upstream: SocketAddr = ([127, 0, 0, 1], upstream).into();
        runtime.spawn(accept(listener, upstream, drop_rx, refusing.clone()));
        DropProxy {
            port,
            drops,
            refusing,
            _runtime: runtime,
        }
    }

    /// Closes every open connection (both directions) at once.
    pub fn drop_connections(&self) {
        self.drops.send_modify(|n| *n += 1);
    }

    /// Drops every connection and refuses new ones until `resume`.
    pub fn cut(&self) {
        self.refusing.store(true, Ordering::SeqCst);
        self.drop_connections();
    }

    pub fn resume(&self) {
        self.refusing.store(false, Ordering::SeqCst);
    }
}

async fn accept(
    listener: TcpListener,
    upstream: SocketAddr,
    drops: watch::Receiver<u64>,
    refusing: Arc<AtomicBool>,
) {
    while let Ok((client, _)) = listener.accept().await {
        if refusing.load(Ordering::SeqCst) {
            drop(client);
            continue;
        }
        let mut drops = drops.clone();
        drops.mark_unchanged();
        tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(upstream).await else {
                return;
            };
            let mut client = client;
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                _ = drops.changed() => {}
            }
            // Dropping both streams here closes them: the peers see the connection end.
        });
    }
}
