//! The shared control plane is a real, TLS-protected, RBAC-enforcing kube-apiserver of the pinned version,
//! reachable through kubectl and kube-rs with the same admin kubeconfig.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use testenv::ControlPlane;

#[test]
fn kubectl_reports_the_pinned_server_version() -> Result<()> {
    let pinned = testenv::pinned_kubernetes_version()?;
    let output = ControlPlane::shared()
        .kubectl()
        .args(["version", "-o", "json"])
        .output()?;
    ensure!(
        output.status.success(),
        "kubectl version failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let version: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    assert_eq!(version["serverVersion"]["gitVersion"], pinned, "{version}");
    assert_eq!(version["clientVersion"]["gitVersion"], pinned, "{version}");
    Ok(())
}

#[tokio::test]
async fn the_default_namespace_exists() -> Result<()> {
    let client = ControlPlane::shared().client().await?;
    let namespace = Api::<Namespace>::all(client).get("default").await?;
    assert_eq!(namespace.metadata.name.as_deref(), Some("default"));
    Ok(())
}

#[tokio::test]
async fn kubectl_and_kube_rs_authenticate_as_the_admin_of_system_masters() -> Result<()> {
    let control_plane = ControlPlane::shared();
    let review = Api::<SelfSubjectReview>::all(control_plane.client().await?)
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await?;
    let user = review
        .status
        .and_then(|status| status.user_info)
        .context("SelfSubjectReview without user info")?;
    assert_eq!(user.username.as_deref(), Some("admin"));
    assert!(
        user.groups
            .unwrap_or_default()
            .contains(&"system:masters".to_string())
    );

    let output = control_plane
        .kubectl()
        .args([
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ])
        .output()?;
    ensure!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "admin");
    Ok(())
}

#[tokio::test]
async fn rbac_forbids_until_a_binding_grants_and_only_what_it_grants() -> Result<()> {
    let control_plane = ControlPlane::shared();
    let admin = control_plane.client().await?;
    let namespace = unique_name("rbac");
    Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &named_namespace(&namespace))
        .await?;

    let user = "testenv-rbac-user";
    let group = "testenv-rbac-readers";
    let as_user: Api<ConfigMap> =
        Api::namespaced(control_plane.client_as(user, &[]).await?, &namespace);
    let as_group_member: Api<ConfigMap> = Api::namespaced(
        control_plane.client_as("someone-else", &[group]).await?,
        &namespace,
    );
    expect_forbidden(as_user.list(&Default::default()).await)?;
    expect_forbidden(as_group_member.list(&Default::default()).await)?;

    let reader = Role {
        metadata: named(&namespace, "configmap-reader"),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["configmaps".to_string()]),
            verbs: vec!["get".to_string(), "list".to_string()],
            ..PolicyRule::default()
        }]),
    };
    Api::<Role>::namespaced(admin.clone(), &namespace)
        .create(&PostParams::default(), &reader)
        .await?;
    let binding = RoleBinding {
        metadata: named(&namespace, "configmap-readers"),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_string()),
            kind: "Role".to_string(),
            name: "configmap-reader".to_string(),
        },
        subjects: Some(vec![
            Subject {
                api_group: Some("rbac.authorization.k8s.io".to_string()),
                kind: "User".to_string(),
                name: user.to_string(),
                namespace: None,
            },
            Subject {
                api_group: Some("rbac.authorization.k8s.io".to_string()),
                kind: "Group".to_string(),
                name: group.to_string(),
                namespace: None,
            },
        ]),
    };
    Api::<RoleBinding>::namespaced(admin.clone(), &namespace)
        .create(&PostParams::default(), &binding)
        .await?;

    // The authorizer reads RBAC objects from an informer cache: a grant takes effect within moments.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match as_user.list(&Default::default()).await {
            Ok(_) => break,
            Err(err) if Instant::now() < deadline && is_forbidden(&err) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => return Err(err).context("list stayed forbidden after the binding"),
        }
    }
    as_group_member.list(&Default::default()).await?;

    // Only what the role grants: no create, and nothing in another namespace.
    let config_map = ConfigMap {
        metadata: named(&namespace, "not-allowed"),
        ..ConfigMap::default()
    };
    expect_forbidden(as_user.create(&PostParams::default(), &config_map).await)?;
    let elsewhere: Api<ConfigMap> =
        Api::namespaced(control_plane.client_as(user, &[]).await?, "default");
    expect_forbidden(elsewhere.list(&Default::default()).await)?;

    // kubectl impersonation sees the same decisions.
    for (verb, expected) in [("list", "yes"), ("create", "no")] {
        let output = control_plane
            .kubectl()
            .args([
                "auth",
                "can-i",
                verb,
                "configmaps",
                "-n",
                &namespace,
                "--as",
                user,
            ])
            .output()?;
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            expected,
            "{verb}"
        );
    }
    Ok(())
}

#[test]
fn install_crds_applies_every_document_and_waits_until_established() -> Result<()> {
    let control_plane = ControlPlane::shared();
    let crd = |plural: &str, kind: &str| {
        format!(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: {plural}.testenv.example\n\
             spec:\n  group: testenv.example\n  scope: Namespaced\n  names: {{plural: {plural}, kind: {kind}}}\n\
             \x20 versions:\n  - name: v1\n    served: true\n    storage: true\n\
             \x20   schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}\n"
        )
    };
    let yaml = format!(
        "{}---\n{}",
        crd("widgets", "Widget"),
        crd("gadgets", "Gadget")
    );
    control_plane.install_crds(&yaml)?;
    // Idempotent: a second install of the same definitions succeeds.
    control_plane.install_crds(&yaml)?;
    for name in ["widgets.testenv.example", "gadgets.testenv.example"] {
        let output = control_plane
            .kubectl()
            .args(["get", "crd", name, "-o"])
            .arg("jsonpath={.status.conditions[?(@.type==\"Established\")].status}")
            .output()?;
        assert_eq!(String::from_utf8_lossy(&output.stdout), "True", "{name}");
    }
    let err = control_plane
        .install_crds("apiVersion: v1\nkind: List\n")
        .expect_err("YAML without named documents is refused");
    assert!(
        format!("{err:#}").contains("no CustomResourceDefinition"),
        "{err:#}"
    );
    Ok(())
}

fn is_forbidden(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 403)
}

fn expect_forbidden<T: std::fmt::Debug>(outcome: kube::Result<T>) -> Result<()> {
    match outcome {
        Err(err) if is_forbidden(&err) => Ok(()),
        other => bail!("expected 403 Forbidden, got {other:?}"),
    }
}

fn unique_name(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn named(namespace: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(namespace.to_string()),
        ..ObjectMeta::default()
    }
}

fn named_namespace(name: &str) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}
