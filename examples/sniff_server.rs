//! An application for tests/e2e_sniffing.rs that speaks HTTP/1.1 and a line protocol on
//! one port, as a Service port without a declared protocol invites. Standard library only.
//!
//! `sniff_server NAME PORT`: a connection whose first line is an HTTP/1.x request line gets
//! HTTP answers whose body names the pod and the request headers the sidecars add
//! (`pod=NAME kind=http x-request-id=... x-envoy-attempt-count=...`); any other connection
//! gets each line echoed back as `NAME: LINE`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [name, port] = args.as_slice() else {
        eprintln!("usage: sniff_server NAME PORT");
        return ExitCode::from(2);
    };
    let listener = match TcpListener::bind(format!("0.0.0.0:{port}")) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("sniff_server: binding port {port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("sniff_server {name} listening");
    for stream in listener.incoming().flatten() {
        let name = name.clone();
        std::thread::spawn(move || {
            let _ = serve(stream, &name);
        });
    }
    ExitCode::SUCCESS
}

fn serve(stream: TcpStream, name: &str) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut first = String::new();
    if reader.read_line(&mut first)? == 0 {
        return Ok(());
    }
    let words: Vec<&str> = first.split_whitespace().collect();
    if words.len() == 3 && words[2].starts_with("HTTP/1.") {
        return serve_http(reader, writer, name);
    }
    let mut line = first;
    loop {
        write!(writer, "{name}: {line}")?;
        writer.flush()?;
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
    }
}

/// The request line is read; answers it and any further requests on the connection.
fn serve_http(
    mut reader: BufReader<TcpStream>,
    mut writer: TcpStream,
    name: &str,
) -> std::io::Result<()> {
    loop {
        let mut headers = BTreeMap::new();
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
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        let header = |k: &str| headers.get(k).map(String::as_str).unwrap_or("-");
        let text = format!(
            "pod={name} kind=http x-request-id={} x-envoy-attempt-count={}\n",
            header("x-request-id"),
            header("x-envoy-attempt-count")
        );
        write!(
            writer,
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{text}",
            text.len()
        )?;
        writer.flush()?;
        if header("connection").eq_ignore_ascii_case("close") {
            return Ok(());
        }
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
    }
}
