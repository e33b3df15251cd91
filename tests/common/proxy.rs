//! A proxy in front of the test registry that cuts blob downloads in half
//! and closes the connection: a registry dying mid-download, every time or
//! only on the first request for each blob.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

pub struct CuttingProxy {
    pub addr: String,
    seen: Arc<Mutex<Seen>>,
}

#[derive(Default)]
struct Seen {
    /// Blob downloads (layers, not the small config), with their Range
    /// header if any.
    blob_requests: Vec<(String, Option<String>)>,
    cut: HashSet<String>,
    cut_first_only: bool,
}

impl CuttingProxy {
    /// Cuts every large blob download.
    pub fn start(upstream: &str) -> CuttingProxy {
        CuttingProxy::with(upstream, false)
    }

    /// Cuts only the first download of each large blob.
    pub fn start_cutting_once(upstream: &str) -> CuttingProxy {
        CuttingProxy::with(upstream, true)
    }

    fn with(upstream: &str, cut_first_only: bool) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Seen { cut_first_only, ..Seen::default() }));
        let (upstream, shared) = (upstream.to_string(), seen.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, seen) = (upstream.clone(), shared.clone());
                std::thread::spawn(move || {
                    let _ = serve(client, &upstream, &seen);
                });
            }
        });
        CuttingProxy { addr, seen }
    }

    pub fn blob_requests(&self) -> usize {
        self.seen.lock().unwrap().blob_requests.len()
    }

    /// The Range headers of the large blob downloads, in order.
    pub fn blob_ranges(&self) -> Vec<Option<String>> {
        self.seen.lock().unwrap().blob_requests.iter().map(|(_, range)| range.clone()).collect()
    }
}

/// One request per connection: forwarded with `Connection: close`, the
/// answer read whole, then passed on (halved for large blobs).
fn serve(client: TcpStream, upstream: &str, seen: &Mutex<Seen>) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line == "\r\n" {
            break;
        }
        if !line.to_ascii_lowercase().starts_with("connection:") {
            head.push(line);
        }
    }
    let blob = head.first().filter(|l| l.contains("/blobs/sha256:")).cloned();
    let range = head.iter().find(|l| l.to_ascii_lowercase().starts_with("range:")).map(|l| l[6..].trim().to_string());
    let mut up = TcpStream::connect(upstream)?;
    let mut request = head.concat();
    request.push_str("Connection: close\r\n\r\n");
    up.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    up.read_to_end(&mut response)?;
    let body_start = response.windows(4).position(|w| w == b"\r\n\r\n").map_or(response.len(), |p| p + 4);
    let body_len = response.len() - body_start;
    let mut client = client;
    let cut = match &blob {
        Some(request) if body_len > 64 * 1024 => {
            let mut seen = seen.lock().unwrap();
            seen.blob_requests.push((request.clone(), range));
            let first = seen.cut.insert(request.clone());
            first || !seen.cut_first_only
        }
        _ => false,
    };
    if cut {
        client.write_all(&response[..body_start + body_len / 2])?;
    } else {
        client.write_all(&response)?;
    }
    client.shutdown(std::net::Shutdown::Both)
}
