//! A proxy in front of the test registry that cuts every blob download in
//! half and closes the connection: a registry dying mid-download.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub struct CuttingProxy {
    pub addr: String,
    blob_requests: Arc<AtomicUsize>,
}

impl CuttingProxy {
    pub fn start(upstream: &str) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let blob_requests = Arc::new(AtomicUsize::new(0));
        let (upstream, counter) = (upstream.to_string(), blob_requests.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, counter) = (upstream.clone(), counter.clone());
                std::thread::spawn(move || {
                    let _ = serve(client, &upstream, &counter);
                });
            }
        });
        CuttingProxy { addr, blob_requests }
    }

    /// Blob downloads seen (layers, not the small config).
    pub fn blob_requests(&self) -> usize {
        self.blob_requests.load(Ordering::SeqCst)
    }
}

/// One request per connection: forwarded with `Connection: close`, the
/// answer read whole, then passed on (halved for large blobs).
fn serve(client: TcpStream, upstream: &str, counter: &AtomicUsize) -> std::io::Result<()> {
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
    let is_blob = head.first().is_some_and(|l| l.contains("/blobs/sha256:"));
    let mut up = TcpStream::connect(upstream)?;
    let mut request = head.concat();
    request.push_str("Connection: close\r\n\r\n");
    up.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    up.read_to_end(&mut response)?;
    let body_start = response.windows(4).position(|w| w == b"\r\n\r\n").map_or(response.len(), |p| p + 4);
    let body_len = response.len() - body_start;
    let mut client = client;
    if is_blob && body_len > 64 * 1024 {
        counter.fetch_add(1, Ordering::SeqCst);
        client.write_all(&response[..body_start + body_len / 2])?;
    } else {
        client.write_all(&response)?;
    }
    client.shutdown(std::net::Shutdown::Both)
}
