//! A fake registry served by the test itself on 127.0.0.1 (std::net, one
//! thread per connection), for what no real registry does: endless and
//! stalled bodies, silence, redirect loops, and images a real registry
//! would refuse to hold (configs that are not JSON, layers that are not
//! tars, diff IDs that lie). Like a plain-HTTP server, it answers a TLS
//! hello with an HTTP 400, so a client sees "not TLS" at once.

use berth::Digest;
use serde_json::json;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// What the fake answers on one path.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A complete response.
    Body {
        status: u16,
        content_type: String,
        body: Vec<u8>,
    },
    /// 200 with no length, then the same bytes forever, until the client
    /// hangs up.
    Endless { content_type: String },
    /// 200 announcing `length` bytes, then only `prefix` of them, then
    /// silence until the client hangs up.
    Stall {
        content_type: String,
        length: u64,
        prefix: Vec<u8>,
    },
    /// No answer at all; the connection stays open until the client leaves.
    Silent,
    /// 302 Found to `location`.
    Redirect(String),
    /// A blob whose first transfer breaks: the first answer announces all
    /// of `body` but sends only its first `cut` bytes, then hangs up.
    /// Later answers honour `Range: bytes=N-` with a 206 when `ranges`,
    /// else send the whole body again with a 200, as a registry that
    /// ignores ranges does.
    Flaky {
        body: Vec<u8>,
        cut: usize,
        ranges: bool,
    },
}

impl Reply {
    pub fn json(body: impl Into<Vec<u8>>) -> Reply {
        Reply::Body {
            status: 200,
            content_type: "application/json".into(),
            body: body.into(),
        }
    }

    pub fn bytes(body: impl Into<Vec<u8>>) -> Reply {
        Reply::Body {
            status: 200,
            content_type: "application/octet-stream".into(),
            body: body.into(),
        }
    }
}

type Routes = Arc<Mutex<HashMap<String, Reply>>>;

pub struct FakeRegistry {
    /// `127.0.0.1:<port>`, usable as a reference domain.
    pub host: String,
    routes: Routes,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

/// The parts of an image the fake serves.
#[derive(Debug, Clone)]
pub struct Served {
    /// `host/repo:tag`.
    pub reference: String,
    pub manifest: Vec<u8>,
    pub config_digest: Digest,
    pub layer_digests: Vec<Digest>,
}

/// A layer as served: its bytes and media type.
#[derive(Debug, Clone)]
pub struct Layer {
    pub media_type: String,
    pub bytes: Vec<u8>,
}

impl Layer {
    /// A gzip layer holding one file.
    pub fn gzip_tar(name: &str, content: &[u8]) -> (Layer, Digest) {
        let tar = tar_of(name, content);
        let diff_id = Digest::of(&tar);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let layer = Layer {
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            bytes: gz.finish().unwrap(),
        };
        (layer, diff_id)
    }
}

/// An uncompressed tar holding one file.
pub fn tar_of(name: &str, content: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(1_700_000_000);
    header.set_cksum();
    builder.append_data(&mut header, name, content).unwrap();
    builder.into_inner().unwrap()
}

/// An image config for the host's platform naming `diff_ids`.
pub fn config_for(diff_ids: &[Digest]) -> Vec<u8> {
    let host = berth::platform::Platform::host();
    let mut config = json!({
        "created": "2023-11-14T22:13:20Z",
        "architecture": host.architecture,
        "os": host.os,
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    if let Some(variant) = host.variant {
        config["variant"] = json!(variant);
    }
    serde_json::to_vec(&config).unwrap()
}

impl FakeRegistry {
    /// Starts serving; `GET /v2/` answers 200 until told otherwise.
    pub fn start() -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let host = listener.local_addr().unwrap().to_string();
        let routes: Routes = Arc::default();
        routes
            .lock()
            .unwrap()
            .insert("/v2/".into(), Reply::json("{}"));
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (routes, requests, stop) = (routes.clone(), requests.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (routes, requests) = (routes.clone(), requests.clone());
                    std::thread::spawn(move || serve(stream, &routes, &requests));
                }
            })
        };
        FakeRegistry {
            host,
            routes,
            requests,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// Answers `path` (without query) with `reply` from now on.
    pub fn route(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_string(), reply);
    }

    /// Every request line served so far ("GET /v2/ HTTP/1.1").
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Serves a blob of `repo` under its digest.
    pub fn blob(&self, repo: &str, bytes: &[u8]) -> Digest {
        let digest = Digest::of(bytes);
        self.route(&format!("/v2/{repo}/blobs/{digest}"), Reply::bytes(bytes));
        digest
    }

    /// Serves an OCI image: its config and layers as blobs, and a manifest
    /// (built by `edit` from the honest one) under `tag` and its digest.
    pub fn image(
        &self,
        repo: &str,
        tag: &str,
        config: &[u8],
        layers: &[Layer],
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> Served {
        let config_digest = self.blob(repo, config);
        let layer_digests: Vec<Digest> = layers.iter().map(|l| self.blob(repo, &l.bytes)).collect();
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config.len(),
            },
            "layers": layers.iter().zip(&layer_digests).map(|(l, d)| json!({
                "mediaType": l.media_type,
                "digest": d,
                "size": l.bytes.len(),
            })).collect::<Vec<_>>(),
        });
        edit(&mut manifest);
        let manifest = serde_json::to_vec(&manifest).unwrap();
        self.manifest(repo, tag, &manifest);
        Served {
            reference: format!("{}/{repo}:{tag}", self.host),
            manifest,
            config_digest,
            layer_digests,
        }
    }

    /// Serves `manifest` (OCI image manifest) under `tag` and its digest.
    pub fn manifest(&self, repo: &str, tag: &str, manifest: &[u8]) {
        let reply = Reply::Body {
            status: 200,
            content_type: "application/vnd.oci.image.manifest.v1+json".into(),
            body: manifest.to_vec(),
        };
        self.route(&format!("/v2/{repo}/manifests/{tag}"), reply.clone());
        let digest = Digest::of(manifest);
        self.route(&format!("/v2/{repo}/manifests/{digest}"), reply);
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor so it sees the flag.
        let _ = TcpStream::connect(&self.host);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Answers one connection's requests until it closes.
fn serve(stream: TcpStream, routes: &Routes, requests: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut writer = stream;
    loop {
        // A TLS ClientHello starts with 0x16: answer as a plain HTTP
        // server does, which a TLS client reads as "not TLS".
        match reader.fill_buf() {
            Ok([0x16, ..]) => {
                let _ = writer.write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                return;
            }
            Ok([]) | Err(_) => return,
            Ok(_) => {}
        }
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        // The first byte a `Range: bytes=N-` asks for.
        let mut range_from = None;
        loop {
            let mut header = String::new();
            match reader.read_line(&mut header) {
                Ok(0) | Err(_) => return,
                Ok(_) if header == "\r\n" || header == "\n" => break,
                Ok(_) => {
                    let lower = header.trim_end().to_ascii_lowercase();
                    if let Some(from) = lower
                        .strip_prefix("range: bytes=")
                        .and_then(|r| r.strip_suffix('-'))
                    {
                        range_from = from.parse::<usize>().ok();
                    }
                }
            }
        }
        let mut request_line = request_line.trim_end().to_string();
        if let Some(from) = range_from {
            request_line.push_str(&format!(" (range from {from})"));
        }
        let mut requests = requests.lock().unwrap();
        requests.push(request_line.clone());
        // Whether this is the first time this method and path are asked for.
        let first = requests
            .iter()
            .filter(|r| same_target(r, &request_line))
            .count()
            == 1;
        drop(requests);
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .split('?')
            .next()
            .unwrap_or("/")
            .to_string();
        let reply = routes.lock().unwrap().get(&path).cloned();
        let keep_open = match reply {
            Some(reply) => answer(&mut writer, reply, first, range_from),
            None => {
                let body = br#"{"errors":[{"code":"NOT_FOUND","message":"nothing here"}]}"#;
                head(
                    &mut writer,
                    404,
                    "application/json",
                    Some(body.len() as u64),
                )
                .and_then(|_| writer.write_all(body))
                .is_ok()
            }
        };
        if !keep_open {
            return;
        }
    }
}

/// Writes `reply` to a request that asked for its bytes `range_from` on,
/// and is the `first` for its path; whether the connection may serve
/// another request.
fn answer(writer: &mut TcpStream, reply: Reply, first: bool, range_from: Option<usize>) -> bool {
    match reply {
        Reply::Flaky { body, cut, ranges } => flaky(writer, &body, cut, ranges, first, range_from),
        Reply::Body {
            status,
            content_type,
            body,
        } => head(writer, status, &content_type, Some(body.len() as u64))
            .and_then(|_| writer.write_all(&body))
            .is_ok(),
        Reply::Redirect(location) => write!(
            writer,
            "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n"
        )
        .is_ok(),
        Reply::Endless { content_type } => {
            let chunk = vec![b' '; 64 << 10];
            let _ = write!(
                writer,
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nConnection: close\r\n\r\n{{\"schemaVersion\":2,\"x\":\""
            );
            while writer.write_all(&chunk).is_ok() {}
            false
        }
        Reply::Stall {
            content_type,
            length,
            prefix,
        } => {
            if head(writer, 200, &content_type, Some(length))
                .and_then(|_| writer.write_all(&prefix))
                .is_ok()
            {
                wait_for_hangup(writer);
            }
            false
        }
        Reply::Silent => {
            wait_for_hangup(writer);
            false
        }
    }
}

/// Whether two logged request lines ask for the same method and path.
fn same_target(a: &str, b: &str) -> bool {
    a.split_whitespace()
        .take(2)
        .eq(b.split_whitespace().take(2))
}

/// Answers a [`Reply::Flaky`] blob; whether the connection may serve on.
fn flaky(
    writer: &mut TcpStream,
    body: &[u8],
    cut: usize,
    ranges: bool,
    first: bool,
    range_from: Option<usize>,
) -> bool {
    let from = match range_from {
        Some(from) if ranges => from.min(body.len()),
        _ => 0,
    };
    let status = if ranges && range_from.is_some() {
        206
    } else {
        200
    };
    let mut head = format!(
        "HTTP/1.1 {status} Status\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n",
        body.len() - from
    );
    if status == 206 {
        head.push_str(&format!(
            "Content-Range: bytes {from}-{}/{}\r\n",
            body.len().saturating_sub(1),
            body.len()
        ));
    }
    head.push_str("\r\n");
    let rest = &body[from..];
    let sent = if first {
        &rest[..cut.min(rest.len())]
    } else {
        rest
    };
    let written = writer
        .write_all(head.as_bytes())
        .and_then(|_| writer.write_all(sent))
        .is_ok();
    // A first answer ends by hanging up, mid-body.
    written && !first
}

/// Blocks until the client closes the connection: a stall that costs the
/// server nothing and ends with the client.
fn wait_for_hangup(stream: &mut TcpStream) {
    let mut sink = [0u8; 4096];
    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
}

fn head(
    writer: &mut TcpStream,
    status: u16,
    content_type: &str,
    length: Option<u64>,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Status",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n");
    if let Some(length) = length {
        head.push_str(&format!("Content-Length: {length}\r\n"));
    }
    head.push_str("\r\n");
    writer.write_all(head.as_bytes())
}
