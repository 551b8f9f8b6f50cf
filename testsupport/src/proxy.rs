//! A TCP proxy that can fail the way a network partition does: [`Proxy::stall`] silently stops copying bytes
//! (no reset, no close: the peers' calls just hang, as behind a blackholing firewall), [`Proxy::resume`]
//! forwards again. Connections that lived through a stall are cut at the resume, as TCP gives up on a long
//! partition, so nothing sent into the partition is delivered late; new connections are forwarded. Plus a
//! kubeconfig that reaches the control plane through the proxy, for an operator process whose API server
//! connection a test partitions.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use testenv::ControlPlane;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the connections do now.
#[derive(Clone, Copy, Debug, Default)]
struct Mode {
    stalled: bool,
    /// Moves on at every resume: a connection opened in an earlier epoch lived through a stall.
    epoch: u64,
    /// The proxy is gone: every connection ends.
    closed: bool,
}

/// What one connection of `epoch` does under `mode`.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Forward,
    Wait,
    Cut,
}

fn verdict(mode: &Mode, epoch: u64) -> Verdict {
    if mode.closed || mode.epoch != epoch {
        Verdict::Cut
    } else if mode.stalled {
        Verdict::Wait
    } else {
        Verdict::Forward
    }
}

/// A running proxy on a loopback port; stopped (every connection closed) when dropped.
pub struct Proxy {
    address: SocketAddr,
    mode: Arc<watch::Sender<Mode>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the proxy");
        let address = listener.local_addr().expect("the proxy's address");
        let mode = Arc::new(watch::channel(Mode::default()).0);
        let accept = tokio::spawn(accept(listener, upstream, mode.clone()));
        Proxy {
            address,
            mode,
            accept,
        }
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops copying bytes, in both directions, on every connection (and those accepted from now on).
    pub fn stall(&self) {
        self.mode.send_modify(|mode| mode.stalled = true);
    }

    /// Forwards again: the connections that lived through the stall are cut, new ones are forwarded.
    pub fn resume(&self) {
        self.mode.send_modify(|mode| {
            mode.stalled = false;
            mode.epoch += 1;
        });
    }

    /// A copy of `control_plane`'s admin kubeconfig at `path` whose server is this proxy (the same
    /// loopback address and certificate, another port).
    pub fn kubeconfig(&self, control_plane: &ControlPlane, path: &Path) -> PathBuf {
        let server = control_plane.server_url();
        let text =
            std::fs::read_to_string(control_plane.kubeconfig_path()).expect("the kubeconfig");
        assert_eq!(
            text.matches(&server).count(),
            1,
            "the kubeconfig names {server} once"
        );
        let proxied = text.replace(&server, &format!("https://{}", self.address));
        std::fs::write(path, proxied).expect("writing the proxied kubeconfig");
        path.to_owned()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.mode.send_modify(|mode| mode.closed = true);
    }
}

/// The upstream address of a control plane (`https://127.0.0.1:PORT`), for [`Proxy::start`].
pub fn api_server_address(control_plane: &ControlPlane) -> SocketAddr {
    control_plane
        .server_url()
        .trim_start_matches("https://")
        .parse()
        .expect("the API server's address")
}

async fn accept(listener: TcpListener, upstream: SocketAddr, mode: Arc<watch::Sender<Mode>>) {
    while let Ok((client, _)) = listener.accept().await {
        let mode = mode.subscribe();
        // Taken at the accept: a connection accepted while stalled lives through the stall.
        let epoch = mode.borrow().epoch;
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::join!(
                pump(client_read, server_write, mode.clone(), epoch),
                pump(server_read, client_write, mode, epoch),
            );
        });
    }
}

/// Copies one direction while the mode lets it; ends (dropping both halves) when the connection is cut or
/// its reader reaches the end, which it passes on as a half close.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
    epoch: u64,
) {
    let mut buffer = vec![0; 16 * 1024];
    loop {
        if !may_forward(&mut mode, epoch).await {
            return;
        }
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            // An idle connection is cut too, not only one with bytes to copy.
            () = cut(&mut mode, epoch) => return,
        };
        let count = match read {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(count) => count,
        };
        // Read before a stall began: held, and dropped if the connection is cut.
        if !may_forward(&mut mode, epoch).await {
            return;
        }
        if to.write_all(&buffer[..count]).await.is_err() {
            return;
        }
    }
}

/// Waits while stalled; `false` when the connection is to be cut.
async fn may_forward(mode: &mut watch::Receiver<Mode>, epoch: u64) -> bool {
    match mode
        .wait_for(|mode| verdict(mode, epoch) != Verdict::Wait)
        .await
    {
        Ok(mode) => verdict(&mode, epoch) == Verdict::Forward,
        Err(_) => false,
    }
}

/// Resolves when the connection is to be cut.
async fn cut(mode: &mut watch::Receiver<Mode>, epoch: u64) {
    let _ = mode
        .wait_for(|mode| verdict(mode, epoch) == Verdict::Cut)
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut read, mut write) = stream.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        address
    }

    /// Sends `bytes` and reads as many back within `within`: `None` when nothing came back in time,
    /// `Some(empty)` when the connection was closed.
    async fn round_trip(stream: &mut TcpStream, bytes: &[u8], within: Duration) -> Option<Vec<u8>> {
        stream.write_all(bytes).await.ok()?;
        let mut answer = vec![0; bytes.len()];
        match tokio::time::timeout(within, stream.read_exact(&mut answer)).await {
            Ok(Ok(_)) => Some(answer),
            Ok(Err(_)) => Some(Vec::new()),
            Err(_) => None,
        }
    }

    #[tokio::test]
    async fn a_stall_hangs_every_connection_silently_and_a_resume_cuts_them_and_forwards_new_ones()
    {
        let proxy = Proxy::start(echo_server().await).await;
        let wait = Duration::from_secs(5);
        let mut before = TcpStream::connect(proxy.address()).await.expect("connect");
        assert_eq!(
            round_trip(&mut before, b"ping", wait).await.as_deref(),
            Some(&b"ping"[..])
        );

        proxy.stall();
        // Neither answered nor closed: the call just hangs.
        let short = Duration::from_millis(300);
        assert_eq!(round_trip(&mut before, b"lost", short).await, None);
        let mut during = TcpStream::connect(proxy.address())
            .await
            .expect("connect while stalled");
        assert_eq!(round_trip(&mut during, b"lost", short).await, None);

        proxy.resume();
        // What lived through the stall is cut (what was sent into it never arrives)...
        for stream in [&mut before, &mut during] {
            let mut rest = Vec::new();
            let read = tokio::time::timeout(wait, stream.read_to_end(&mut rest)).await;
            assert!(
                matches!(read, Ok(Ok(0)) | Ok(Err(_))),
                "cut, with nothing delivered: {read:?} {rest:?}"
            );
        }
        // ...and new connections are forwarded.
        let mut after = TcpStream::connect(proxy.address()).await.expect("connect");
        assert_eq!(
            round_trip(&mut after, b"pong", wait).await.as_deref(),
            Some(&b"pong"[..])
        );
    }
}
