//! The listening socket of an xDS port. tokio's `TcpListener::bind` (mio, as Rust's
//! standard library) asks the kernel for a backlog of 128 connections: when thousands of
//! proxies connect at once (a meshd restart), handshakes that complete while the accept
//! queue is full are dropped (the kernel's `ListenOverflows`), and the proxy's kernel tries
//! again only after a second or more, so the reconnect stalls, or the proxy sees a reset.
//! The backlog here is the system's maximum (`net.core.somaxconn`), as Go's listeners (and
//! so istiod's) use.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

/// The backlog when the system's maximum cannot be read.
const DEFAULT_BACKLOG: u32 = 4096;

/// Binds `addr` (address reuse on, as tokio's `bind`) with the system's largest backlog.
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog())
}

fn backlog() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(DEFAULT_BACKLOG)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn listens_where_asked_with_the_system_backlog() {
        let listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) =
            tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        assert_eq!(client.unwrap().local_addr().unwrap(), accepted.unwrap().1);
        assert!(backlog() >= 128);
    }
}
