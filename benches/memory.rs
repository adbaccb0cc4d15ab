//! Rough memory per connected proxy: resident memory (VmRSS) of a process serving the
//! 1,000-service mesh of `xds_support` with the real `XdsServer`, before and after SotW
//! clients connect, subscribe to everything and ACK it. Prints figures; not criterion.
//!
//! The clients run in child processes (this same executable, `clients` mode), so the
//! figures are the server's alone. RSS is read twice: as is (glibc keeps freed memory,
//! so the transient buffers of the initial pushes show up) and after `malloc_trim(0)`,
//! which returns free heap pages and leaves roughly the live memory. A counting allocator
//! also reports the live heap, and how much of it sits in large blocks (64 KiB and up:
//! in practice I/O and codec buffers rather than per-stream state).

mod xds_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use meshd::xds::type_url;
use xds_support::{connect_clients, rss_kib, wait_for_acks, MeshConfig, Server};

/// Connected proxies at which memory is read.
const STEPS: [usize; 2] = [100, 1_000];
/// Under `cargo test --all-targets` (no `--bench` argument) a small smoke run only.
const SMOKE_STEPS: [usize; 1] = [10];
/// Clients per child process.
const PER_CHILD: usize = 250;

/// Blocks at least this large count as buffers in the breakdown.
const LARGE: usize = 64 * 1024;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static LIVE_LARGE: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting live bytes.
struct Counting;

fn count(size: usize, add: bool) {
    let op = |c: &AtomicUsize| {
        if add {
            c.fetch_add(size, Relaxed);
        } else {
            c.fetch_sub(size, Relaxed);
        }
    };
    op(&LIVE);
    if size >= LARGE {
        op(&LIVE_LARGE);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; only counters change.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            count(layout.size(), true);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            count(layout.size(), true);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        count(layout.size(), false);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            count(layout.size(), false);
            count(new_size, true);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Live heap in KiB: (all, in blocks of `LARGE` or more).
fn live_kib() -> (u64, u64) {
    (
        LIVE.load(Relaxed) as u64 / 1024,
        LIVE_LARGE.load(Relaxed) as u64 / 1024,
    )
}

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
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this without it.
    let steps: &[usize] = if args.iter().any(|a| a == "--bench") {
        &STEPS
    } else {
        &SMOKE_STEPS
    };
    serve_and_measure(steps);
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

fn serve_and_measure(steps: &[usize]) {
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
    let (base_live, base_large) = live_kib();
    println!(
        "server rss: {start_kib} KiB at start, {base_kib} KiB with the encoded mesh \
         ({total_bytes} bytes) built and the server listening, no proxies; live heap \
         {base_live} KiB"
    );
    let mut children = Vec::new();
    let mut connected = 0;
    for &step in steps {
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
        let (live, large) = live_kib();
        let per = |kib: u64, base: u64| kib.saturating_sub(base) / connected as u64;
        println!(
            "{connected} proxies in sync: server rss {raw} KiB ({} KiB per proxy); after \
             malloc_trim {trimmed} KiB ({} KiB per proxy); live heap {live} KiB ({} KiB \
             per proxy, of which {} KiB in blocks of 64 KiB or more)",
            per(raw, base_kib),
            per(trimmed, base_kib),
            per(live, base_live),
            per(large, base_large),
        );
    }
    for mut child in children {
        drop(child.stdin.take());
        let _ = child.wait();
    }
    drop(server);
}
