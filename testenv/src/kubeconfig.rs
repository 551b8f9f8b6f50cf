//! The admin kubeconfig of a control plane (one cluster, one user, one context, certificates embedded so
//! the file can be copied), and kube-rs clients built from it.

use std::path::Path;

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::pki::{Pki, write_file};

/// Cluster, user and context name in the kubeconfig.
const CONTEXT: &str = "ivschat-testenv";
const USER: &str = "admin";

/// Writes the admin kubeconfig for `server` to `path` and returns it parsed, as kube-rs reads it.
pub(crate) fn write_admin_kubeconfig(path: &Path, server: &str, pki: &Pki) -> Result<Kubeconfig> {
    let encode = |pem: &str| STANDARD.encode(pem.as_bytes());
    let document = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": CONTEXT,
            "cluster": {
                "server": server,
                "certificate-authority-data": encode(&pki.ca_pem),
            },
        }],
        "users": [{
            "name": USER,
            "user": {
                "client-certificate-data": encode(&pki.admin_cert_pem),
                "client-key-data": encode(&pki.admin_key_pem),
            },
        }],
        "contexts": [{
            "name": CONTEXT,
            "context": { "cluster": CONTEXT, "user": USER, "namespace": "default" },
        }],
        "current-context": CONTEXT,
    });
    let text = serde_yaml::to_string(&document).context("serialising the kubeconfig")?;
    // The client key is inside: owner-only.
    write_file(path, &text, 0o600)?;
    Kubeconfig::from_yaml(&text).context("parsing the kubeconfig just written")
}

/// Who a client acts as: the admin itself, or a user (and groups) the admin impersonates.
pub(crate) enum Identity<'a> {
    Admin,
    Impersonated {
        user: &'a str,
        groups: &'a [&'a str],
    },
}

/// Makes ring rustls' process-wide provider unless one is installed already. In a workspace build rustls is
/// compiled with two providers (ring through kube, aws-lc-rs through the AWS SDK) and then cannot pick one
/// by itself: the first TLS client would panic. Whoever installs first wins; a later install is a no-op.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// A kube-rs client for the admin kubeconfig. `retry_transient` is off for readiness polls, which do their
/// own retrying and must see a 503 as "not ready" at once.
pub(crate) async fn client(
    kubeconfig: &Kubeconfig,
    identity: Identity<'_>,
    retry_transient: bool,
) -> Result<kube::Client> {
    install_crypto_provider();
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig.clone(), &KubeConfigOptions::default())
            .await
            .context("building a client configuration from the admin kubeconfig")?;
    config.default_retry = retry_transient;
    if let Identity::Impersonated { user, groups } = identity {
        config.auth_info.impersonate = Some(user.to_string());
        if !groups.is_empty() {
            config.auth_info.impersonate_groups =
                Some(groups.iter().map(|group| group.to_string()).collect());
        }
    }
    kube::Client::try_from(config).context("creating a Kubernetes client")
}
