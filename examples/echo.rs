//! A tiny echo application for meshd's end-to-end tests, standard library only.
//!
//! Server: `echo serve --name POD [--http PORT]... [--tcp PORT]...`
//!   HTTP ports answer every request with `pod=POD method=M path=P host=H port=N`.
//!   TCP ports echo each line back prefixed with `POD: `.
//! Clients (so tests need no curl and can run a whole request loop in one process):
//!   `echo http-get --addr IP:PORT [--host H] [--path P] [--count N] [--interval-ms M]
//!    [--duration-ms D] [--timeout-ms T]` prints one line per request: `ok <body>` or `err <why>`.
//!   `echo tcp-send --addr IP:PORT --line TEXT [--timeout-ms T]` prints the echoed line.
//!
//! Every connection gets its own thread; every client socket has timeouts, so nothing hangs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!("usage: echo serve|http-get|tcp-send [options]");
        return ExitCode::from(2);
    };
    let opts = match Opts::parse(rest) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("echo: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match command.as_str() {
        "serve" => serve(&opts),
        "http-get" => http_get_loop(&opts),
        "tcp-send" => tcp_send(&opts),
        other => Err(format!("unknown command {other:?}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--key value` pairs; keys may repeat.
struct Opts(Vec<(String, String)>);

impl Opts {
    fn parse(args: &[String]) -> Result<Opts, String> {
        let mut out = Vec::new();
        let mut it = args.iter();
        while let Some(key) = it.next() {
            let key = key
                .strip_prefix("--")
                .ok_or_else(|| format!("expected --option, got {key:?}"))?;
            let value = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
            out.push((key.to_string(), value.clone()));
        }
        Ok(Opts(out))
    }

    fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.all(key).last().copied()
    }

    fn num(&self, key: &str, default: u64) -> Result<u64, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{key}: {v:?} is not a number")),
        }
    }

    fn addr(&self) -> Result<SocketAddr, String> {
        let v = self.get("addr").ok_or("--addr IP:PORT is required")?;
        v.parse()
            .map_err(|_| format!("--addr: {v:?} is not IP:PORT"))
    }
}

fn serve(opts: &Opts) -> Result<(), String> {
    let name = opts.get("name").ok_or("--name is required")?.to_string();
    let mut handles = Vec::new();
    for (kind, port) in opts
        .all("http")
        .into_iter()
        .map(|p| ("http", p))
        .chain(opts.all("tcp").into_iter().map(|p| ("tcp", p)))
    {
        let listener = TcpListener::bind(format!("0.0.0.0:{port}"))
            .map_err(|e| format!("binding {kind} port {port}: {e}"))?;
        let name = name.clone();
        let http = kind == "http";
        handles.push(std::thread::spawn(move || {
            accept_loop(listener, name, http)
        }));
    }
    if handles.is_empty() {
        return Err("give at least one --http or --tcp port".into());
    }
    println!("echo {name} listening");
    for h in handles {
        let _ = h.join();
    }
    Ok(())
}

fn accept_loop(listener: TcpListener, name: String, http: bool) {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    for stream in listener.incoming().flatten() {
        let name = name.clone();
        std::thread::spawn(move || {
            let _ = if http {
                serve_http(stream, &name, port)
            } else {
                serve_tcp(stream, &name)
            };
        });
    }
}

/// HTTP/1.1 with keep-alive, enough for Envoy as the client.
fn serve_http(stream: TcpStream, name: &str, port: u16) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("-").to_string();
        let path = parts.next().unwrap_or("-").to_string();
        let (mut host, mut length, mut close) = (String::from("-"), 0usize, false);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                let v = v.trim();
                match k.trim().to_ascii_lowercase().as_str() {
                    "host" => host = v.to_string(),
                    "content-length" => length = v.parse().unwrap_or(0),
                    "connection" => close = v.eq_ignore_ascii_case("close"),
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        let text = format!("pod={name} method={method} path={path} host={host} port={port}\n");
        write!(
            writer,
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nx-echo-pod: {name}\r\n{}\r\n{text}",
            text.len(),
            if close { "connection: close\r\n" } else { "" }
        )?;
        writer.flush()?;
        if close {
            return Ok(());
        }
    }
}

fn serve_tcp(stream: TcpStream, name: &str) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    for line in BufReader::new(stream).lines() {
        writeln!(writer, "{name}: {}", line?)?;
        writer.flush()?;
    }
    Ok(())
}

/// Sends requests, one connection each, and prints one result line per request.
fn http_get_loop(opts: &Opts) -> Result<(), String> {
    let addr = opts.addr()?;
    let host = opts.get("host").unwrap_or("echo").to_string();
    let path = opts.get("path").unwrap_or("/").to_string();
    let count = opts.num("count", 1)?;
    let interval = Duration::from_millis(opts.num("interval-ms", 0)?);
    let duration = opts.get("duration-ms").map(|_| opts.num("duration-ms", 0));
    let timeout = Duration::from_millis(opts.num("timeout-ms", 3000)?);
    let deadline = match duration {
        Some(d) => Some(Instant::now() + Duration::from_millis(d?)),
        None => None,
    };
    let mut sent = 0u64;
    let stdout = std::io::stdout();
    loop {
        match deadline {
            Some(d) if Instant::now() >= d => break,
            None if sent >= count => break,
            _ => {}
        }
        let line = match http_get(addr, &host, &path, timeout) {
            Ok(body) => format!("ok {}", body.trim_end()),
            Err(e) => format!("err {e}"),
        };
        {
            let mut out = stdout.lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
        sent += 1;
        std::thread::sleep(interval);
    }
    Ok(())
}

fn http_get(addr: SocketAddr, host: &str, path: &str, timeout: Duration) -> Result<String, String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {host}\r\nuser-agent: meshd-e2e\r\nconnection: close\r\n\r\n"
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| format!("read: {e}"))?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no complete response: {response:?}"))?;
    let status = head.lines().next().unwrap_or("");
    if !status.starts_with("HTTP/1.1 200") {
        return Err(format!("status {status:?} body {body:?}"));
    }
    Ok(body.to_string())
}

fn tcp_send(opts: &Opts) -> Result<(), String> {
    let addr = opts.addr()?;
    let text = opts.get("line").ok_or("--line is required")?;
    let timeout = Duration::from_millis(opts.num("timeout-ms", 3000)?);
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    writeln!(stream, "{text}").map_err(|e| format!("write: {e}"))?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut reply = String::new();
    reader
        .read_line(&mut reply)
        .map_err(|e| format!("read: {e}"))?;
    let _ = stream.shutdown(Shutdown::Both);
    if reply.is_empty() {
        return Err("connection closed without a reply".into());
    }
    print!("{reply}");
    Ok(())
}
