//! The custom resources `ChatRoom` and `ChatLoggingConfiguration` (group `ivschat.dev`, version `v1alpha1`).
//!
//! CONTRACT (skeleton; the CRD owner replaces this text): `pub fn crds_yaml() -> anyhow::Result<String>`
//! renders both CRDs as a multi-document YAML, exactly what `crds/` holds.

/// Placeholder until the CRD types land (replaced by the CRD owner).
pub fn crds_yaml() -> anyhow::Result<String> {
    anyhow::bail!("the CRD types are not written yet")
}
