//! The throw-away PKI of one control plane: a CA, the kube-apiserver serving certificate, the admin client
//! certificate (CN `admin`, O `system:masters`) and the service-account signing key pair.
//!
//! Every key is ECDSA P-256: rcgen's ring backend cannot generate RSA keys, and kube-apiserver accepts
//! ECDSA keys both for TLS and for signing service-account tokens (ES256).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

/// Names the serving certificate is valid for: loopback (how tests and kubectl reach it) and the in-cluster
/// names of the `kubernetes` service, so a client that follows the cluster's own endpoints also verifies.
const SERVING_NAMES: &[&str] = &[
    "127.0.0.1",
    // The node's address the API server advertises when it has a node (crate::node::NODE_IP).
    "10.199.0.1",
    "localhost",
    "10.0.0.1",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

/// The client certificates of a node's components (`<file>.crt` / `<file>.key` in the PKI dir, read by
/// hack/node.sh): file name, user (CN) and group (O).
const NODE_COMPONENT_IDENTITIES: &[(&str, &str, Option<&str>)] = &[
    ("kubelet", "system:node:ivschat-node", Some("system:nodes")),
    (
        "kube-controller-manager",
        "system:kube-controller-manager",
        None,
    ),
    ("kube-scheduler", "system:kube-scheduler", None),
    ("kube-proxy", "system:kube-proxy", None),
];

/// Where the PKI files of one control plane are, plus the PEM texts the kubeconfig embeds.
pub(crate) struct Pki {
    pub(crate) ca_cert: PathBuf,
    pub(crate) serving_cert: PathBuf,
    pub(crate) serving_key: PathBuf,
    pub(crate) service_account_public_key: PathBuf,
    pub(crate) service_account_signing_key: PathBuf,
    pub(crate) ca_pem: String,
    pub(crate) admin_cert_pem: String,
    pub(crate) admin_key_pem: String,
}

/// Generates the PKI and writes it into `dir` (private keys with mode 0600).
pub(crate) fn write_pki(dir: &Path) -> Result<Pki> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;

    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = common_name("ivschat-testenv-ca");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, new_key()?).context("self-signing the CA")?;

    let serving_names: Vec<String> = SERVING_NAMES.iter().map(|name| name.to_string()).collect();
    let mut serving_params =
        CertificateParams::new(serving_names).context("serving certificate names")?;
    serving_params.distinguished_name = common_name("kube-apiserver");
    serving_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    serving_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let serving_key = new_key()?;
    let serving_cert = serving_params
        .signed_by(&serving_key, &*ca)
        .context("signing the kube-apiserver serving certificate")?;

    let (admin_cert, admin_key) = client_certificate(&ca, "admin", Some("system:masters"))?;

    // The node's components, each under the identity a real cluster gives it, so the Node authorizer and
    // the bootstrap RBAC roles (system:node-proxier, system:kube-scheduler, ...) are what grants them
    // access. Only used by a control plane that has a node; cheap enough to make for every one.
    for (file, user, group) in NODE_COMPONENT_IDENTITIES {
        let (cert, key) = client_certificate(&ca, user, *group)?;
        write_file(&dir.join(format!("{file}.crt")), &cert.pem(), 0o644)?;
        write_file(
            &dir.join(format!("{file}.key")),
            &key.serialize_pem(),
            0o600,
        )?;
    }

    let service_account_key = new_key()?;

    let pki = Pki {
        ca_cert: dir.join("ca.crt"),
        serving_cert: dir.join("apiserver.crt"),
        serving_key: dir.join("apiserver.key"),
        service_account_public_key: dir.join("sa.pub"),
        service_account_signing_key: dir.join("sa.key"),
        ca_pem: ca.pem(),
        admin_cert_pem: admin_cert.pem(),
        admin_key_pem: admin_key.serialize_pem(),
    };
    write_file(&pki.ca_cert, &pki.ca_pem, 0o644)?;
    write_file(&pki.serving_cert, &serving_cert.pem(), 0o644)?;
    write_file(&pki.serving_key, &serving_key.serialize_pem(), 0o600)?;
    write_file(&dir.join("admin.crt"), &pki.admin_cert_pem, 0o644)?;
    write_file(&dir.join("admin.key"), &pki.admin_key_pem, 0o600)?;
    write_file(
        &pki.service_account_public_key,
        &service_account_key.public_key_pem(),
        0o644,
    )?;
    write_file(
        &pki.service_account_signing_key,
        &service_account_key.serialize_pem(),
        0o600,
    )?;
    Ok(pki)
}

/// A client certificate signed by `ca` for `user`, in `group` if given (the API server reads the
/// organisation as the group), and its key.
fn client_certificate(
    ca: &CertifiedIssuer<'_, KeyPair>,
    user: &str,
    group: Option<&str>,
) -> Result<(Certificate, KeyPair)> {
    let mut params = CertificateParams::default();
    let mut name = common_name(user);
    if let Some(group) = group {
        name.push(DnType::OrganizationName, group);
    }
    params.distinguished_name = name;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = new_key()?;
    let cert = params
        .signed_by(&key, &**ca)
        .with_context(|| format!("signing the client certificate of {user}"))?;
    Ok((cert, key))
}

fn new_key() -> Result<KeyPair> {
    KeyPair::generate().context("generating an ECDSA P-256 key")
}

fn common_name(name: &str) -> DistinguishedName {
    let mut distinguished_name = DistinguishedName::new();
    distinguished_name.push(DnType::CommonName, name);
    distinguished_name
}

/// Writes `contents` to a new file created with `mode`, so a private key is never readable by others,
/// not even between creation and a later chmod.
pub(crate) fn write_file(path: &Path, contents: &str, mode: u32) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}
