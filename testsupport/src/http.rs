//! Free loopback ports and a plain HTTP/1.1 GET, for the operator's probe and metrics endpoints.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A loopback address nothing listens on (the port is released at once for the process under test).
pub fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
}

/// One HTTP response as read off the wire.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// The status line and headers, lower-cased.
    pub head: String,
    pub body: String,
}

/// GET over plain HTTP/1.1; `None` when nothing listens (yet, or any more) or the answer is not HTTP.
pub fn get(address: SocketAddr, path: &str) -> Option<Response> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    Some(Response {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    })
}

/// The status of `GET path`, `None` when nothing answers.
pub fn status(address: SocketAddr, path: &str) -> Option<u16> {
    get(address, path).map(|response| response.status)
}

/// Waits until `GET path` answers 200 (a probe endpoint coming up); fails the test with `what` after
/// `within`. Blocking: the callers poll a child process, not the runtime.
pub fn wait_ok(address: SocketAddr, path: &str, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    while status(address, path) != Some(200) {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
