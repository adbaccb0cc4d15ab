//! Rough memory per connected proxy: resident memory (VmRSS) of a process serving the
//! 1,000-service mesh of `xds_support` with the real `XdsServer`, before and after SotW
//! clients connect, subscribe to everything and ACK it. Prints figures; not criterion.
//!
//! The clients run in child processes (this same executable, `clients` mode), so the
//! figures are the server's alone. RSS is read twice: as is (glibc keeps freed memory,
//! so the transient buffers of the initial pushes show up) and after `malloc_trim(0)`,
//! which returns free heap pages and leaves roughly the live memory.

mod xds_support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use meshd::xds::type_url;
use xds_support::{connect_clients, rss_kib, wait_for_acks, MeshConfig, Server};

/// Connected proxies at which memory is read.
const STEPS: [usize; 2] = [100, 1_000];
/// Clients per child process.
const PER_CHILD: usize = 250;

fn wanted(config: &MeshConfig) -> Vec<(&'static str, String)> {
    [
        type_url::CLUSTER,
        type_url::ENDPOINT,
        type_url::LISTENER,
        type_url::ROUTE,
    ]
    .into_iter()
    .map(|t| (t, config.version(t)))
    .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("clients") {
        let addr = args[2].parse().expect("server address");
        let first = args[3].parse().expect("first client");
        let count = args[4].parse().expect("client count");
        run_clients(addr, first, count);
        return;
    }
    // Otherwise run by `cargo bench`, which passes `--bench`.
    serve_and_measure();
}

/// Child mode: connects `count` clients, says `synced` once all have ACKed everything,
/// and keeps them connected until stdin closes.
fn run_clients(addr: std::net::SocketAddr, first: usize, count: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let config = MeshConfig::full(1);
        let mut acks = connect_clients(addr, &config, first, count).await;
        wait_for_acks(&mut acks, count, &wanted(&config)).await;
        println!("synced");
        std::io::stdout().flush().ok();
        let _ = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        })
        .await;
    });
}

fn spawn_clients(addr: std::net::SocketAddr, first: usize, count: usize) -> Child {
    let mut child = Command::new(std::env::current_exe().expect("own executable"))
        .args([
            "clients",
            &addr.to_string(),
            &first.to_string(),
            &count.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn client process");
    let stdout = child.stdout.take().expect("child stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("child output");
    assert_eq!(line.trim(), "synced", "client process failed");
    child
}

#[cfg(target_env = "gnu")]
fn trim_heap() {
    extern "C" {
        fn malloc_trim(pad: usize) -> i32;
    }
    // SAFETY: glibc's malloc_trim only releases free memory; it takes no pointers.
    unsafe {
        malloc_trim(0);
    }
}

#[cfg(not(target_env = "gnu"))]
fn trim_heap() {}

fn serve_and_measure() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let start_kib = rss_kib();
    let config = MeshConfig::full(1);
    let mut total_bytes = 0;
    for t in type_url::PUSH_ORDER {
        let (count, bytes) = config.size(t);
        total_bytes += bytes;
        if count > 0 {
            println!(
                "{}: {count} resources, {bytes} encoded bytes",
                type_url::short_name(t)
            );
        }
    }
    let server = runtime.block_on(Server::start(&config));
    let addr = server.addr;
    trim_heap();
    let base_kib = rss_kib();
    println!(
        "server rss: {start_kib} KiB at start, {base_kib} KiB with the encoded mesh \
         ({total_bytes} bytes) built and the server listening, no proxies"
    );
    let mut children = Vec::new();
    let mut connected = 0;
    for step in STEPS {
        while connected < step {
            let count = PER_CHILD.min(step - connected);
            children.push(spawn_clients(addr, connected, count));
            connected += count;
        }
        // Let the last ACKs settle before reading.
        std::thread::sleep(Duration::from_millis(500));
        let raw = rss_kib();
        trim_heap();
        let trimmed = rss_kib();
        let per = |kib: u64| kib.saturating_sub(base_kib) / connected as u64;
        println!(
            "{connected} proxies in sync: server rss {raw} KiB ({} KiB per proxy); after \
             malloc_trim {trimmed} KiB ({} KiB per proxy)",
            per(raw),
            per(trimmed),
        );
    }
    for mut child in children {
        drop(child.stdin.take());
        let _ = child.wait();
    }
    drop(server);
}
