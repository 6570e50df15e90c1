//! A fault-injecting HTTP/1.1 proxy in front of a real registry: it passes
//! requests through one at a time and answers chosen ones with a 500
//! itself, so a test can break a push at an exact request.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Which requests fail: those of `method`, numbered from 1 in arrival
/// order, for which `fails` says so.
type Rule = Box<dyn Fn(usize) -> bool + Send + Sync>;

pub struct FaultyProxy {
    /// `127.0.0.1:<port>`, what clients are pointed at.
    pub host: String,
    seen: Arc<Mutex<Vec<String>>>,
    failed: Arc<AtomicUsize>,
}

impl FaultyProxy {
    /// Proxies to `upstream`; the `n`th request of `method` fails when
    /// `fails(n)`.
    pub fn start(
        upstream: &str,
        method: &str,
        fails: impl Fn(usize) -> bool + Send + Sync + 'static,
    ) -> FaultyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let host = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let failed = Arc::new(AtomicUsize::new(0));
        let counter = Arc::new(AtomicUsize::new(0));
        let rule: Arc<Rule> = Arc::new(Box::new(fails));
        let (upstream, method) = (upstream.to_string(), method.to_string());
        let (seen_by_proxy, failed_by_proxy) = (seen.clone(), failed.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, method) = (upstream.clone(), method.clone());
                let (seen, failed) = (seen_by_proxy.clone(), failed_by_proxy.clone());
                let (counter, rule) = (counter.clone(), rule.clone());
                std::thread::spawn(move || {
                    let _ = serve(client, &upstream, &method, &counter, &rule, &seen, &failed);
                });
            }
        });
        FaultyProxy { host, seen, failed }
    }

    /// Every request line seen, in order.
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// How many requests were answered with a 500.
    pub fn failed(&self) -> usize {
        self.failed.load(Ordering::SeqCst)
    }
}

fn serve(
    client: TcpStream,
    upstream: &str,
    method: &str,
    counter: &AtomicUsize,
    fails: &Rule,
    seen: &Mutex<Vec<String>>,
    failed: &AtomicUsize,
) -> std::io::Result<()> {
    // One request per connection: every answer says "Connection: close".
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(()); // hung up before asking
        }
        let end = line == "\r\n";
        head.push(line);
        if end {
            break;
        }
    }
    let request_line = head[0].trim_end().to_string();
    seen.lock().unwrap().push(request_line.clone());
    let length: usize = head
        .iter()
        .find_map(|h| {
            let (name, value) = h.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    if request_line.starts_with(&format!("{method} "))
        && fails(counter.fetch_add(1, Ordering::SeqCst) + 1)
    {
        failed.fetch_add(1, Ordering::SeqCst);
        return client.write_all(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    }
    // Upstream, a connection of its own, closed by the server after its
    // answer: the answer is everything it sends.
    let mut server = TcpStream::connect(upstream)?;
    for line in &head {
        let name = line.split(':').next().unwrap_or("");
        if !name.eq_ignore_ascii_case("connection") && line != "\r\n" {
            server.write_all(line.as_bytes())?;
        }
    }
    server.write_all(b"Connection: close\r\n\r\n")?;
    server.write_all(&body)?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer)?;
    client.write_all(&answer)
}
