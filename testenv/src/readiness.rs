//! Waiting until etcd and kube-apiserver serve: etcd `/health`, then kube-apiserver `/readyz`, then the
//! `default` namespace (created by a post-start hook shortly after `/readyz` first answers).
//!
//! Callers are synchronous and may sit on a Tokio runtime thread (`#[tokio::test]`), where a nested
//! `block_on` would panic; the async part therefore runs on its own runtime in a scoped thread.

use std::future::Future;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;

/// How often readiness is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Bound on one poll, so a server that accepts but never answers cannot stall the wait past its deadline.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs `future` to completion on a fresh current-thread runtime in a scoped thread, so it works the same
/// from plain threads and from inside another runtime.
pub(crate) fn block_on<F>(future: F) -> Result<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("building a Tokio runtime for the readiness checks")?;
                Ok(runtime.block_on(future))
            })
            .join()
            .map_err(|_| anyhow!("the readiness thread panicked"))?
    })
}

/// What a readiness wait checks between polls: `Err` when the server has exited (with its status and log).
pub(crate) type LivenessCheck<'a> = dyn Fn() -> Result<()> + Sync + 'a;

/// Polls etcd's `/health` until it reports healthy.
pub(crate) fn wait_for_etcd(port: u16, deadline: Instant, alive: &LivenessCheck<'_>) -> Result<()> {
    loop {
        alive()?;
        let last_answer = match etcd_health(port) {
            Ok(answer) if answer.healthy => return Ok(()),
            Ok(answer) => answer.body,
            Err(err) => format!("{err:#}"),
        };
        if Instant::now() >= deadline {
            bail!("etcd did not become healthy in time (last /health answer: {last_answer})");
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

struct EtcdHealth {
    healthy: bool,
    body: String,
}

/// One `GET /health` over plain HTTP/1.0 (etcd's client URL is loopback-only and not TLS).
fn etcd_health(port: u16) -> Result<EtcdHealth> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&address, PROBE_TIMEOUT)
        .with_context(|| format!("connecting to etcd at {address}"))?;
    stream.set_read_timeout(Some(PROBE_TIMEOUT))?;
    stream.set_write_timeout(Some(PROBE_TIMEOUT))?;
    stream.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status_ok = response
        .lines()
        .next()
        .is_some_and(|status_line| status_line.split_whitespace().nth(1) == Some("200"));
    let body = response
        .split_once("\r\n\r\n")
        .map_or(response.as_str(), |(_, body)| body)
        .trim()
        .to_string();
    let healthy = status_ok && body.replace(' ', "").contains(r#""health":"true""#);
    Ok(EtcdHealth { healthy, body })
}

/// Polls kube-apiserver's `/readyz` until it answers `ok`, then waits for the `default` namespace.
pub(crate) async fn wait_for_apiserver(
    client: kube::Client,
    deadline: Instant,
    alive: &LivenessCheck<'_>,
) -> Result<()> {
    loop {
        alive()?;
        let request = http::Request::get("/readyz")
            .body(Vec::new())
            .context("building the /readyz request")?;
        let last_answer =
            match tokio::time::timeout(PROBE_TIMEOUT, client.request_text(request)).await {
                Ok(Ok(body)) if body.trim() == "ok" => break,
                Ok(Ok(body)) => body,
                Ok(Err(err)) => err.to_string(),
                Err(_) => format!("no answer within {PROBE_TIMEOUT:?}"),
            };
        if Instant::now() >= deadline {
            bail!(
                "kube-apiserver did not become ready in time (last /readyz answer: {last_answer})"
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }

    let namespaces: Api<Namespace> = Api::all(client);
    loop {
        alive()?;
        let last_answer =
            match tokio::time::timeout(PROBE_TIMEOUT, namespaces.get_opt("default")).await {
                Ok(Ok(Some(_))) => return Ok(()),
                Ok(Ok(None)) => "namespaces/default not found".to_string(),
                Ok(Err(err)) => err.to_string(),
                Err(_) => format!("no answer within {PROBE_TIMEOUT:?}"),
            };
        if Instant::now() >= deadline {
            bail!("the default namespace did not appear in time (last answer: {last_answer})");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
