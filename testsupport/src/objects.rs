//! Kubernetes objects in tests: server-side apply of a spec, waiting for an object to reach a state or to be
//! gone, and reading the status fields every kind of this operator has (conditions, observedGeneration,
//! the AWS ARN).

use std::fmt::Debug;
use std::time::{Duration, Instant};

use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// How long [`wait_for`] and [`wait_gone`] wait: minutes of margin over what the operator needs unloaded.
pub const WAIT: Duration = Duration::from_secs(30);
/// How often they read the object.
const POLL: Duration = Duration::from_millis(100);

/// Server-side apply of a whole spec as the field manager `test`, as `kubectl apply --server-side` would.
pub async fn apply<K>(api: &Api<K>, name: &str, spec: Value) -> K
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    apply_with(api, "test", name, json!({}), spec).await
}

/// [`apply`] as the field manager `manager` (taking over fields another manager set: `force`), with
/// `metadata` (labels, annotations, finalizers) besides the name.
pub async fn apply_with<K>(
    api: &Api<K>,
    manager: &str,
    name: &str,
    mut metadata: Value,
    spec: Value,
) -> K
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    metadata["name"] = json!(name);
    let body = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": metadata,
        "spec": spec,
    });
    api.patch(
        name,
        &PatchParams::apply(manager).force(),
        &Patch::Apply(&body),
    )
    .await
    .unwrap_or_else(|err| panic!("applying {} {name}: {err}", K::kind(&())))
}

/// Polls `get` until `done` holds, or fails with the last value after [`WAIT`].
pub async fn wait_for<K, F>(api: &Api<K>, name: &str, what: &str, done: F) -> K
where
    K: Clone + DeserializeOwned + Debug,
    F: Fn(&K) -> bool,
{
    wait_for_within(api, name, what, WAIT, done).await
}

/// [`wait_for`] with its own bound.
pub async fn wait_for_within<K, F>(
    api: &Api<K>,
    name: &str,
    what: &str,
    within: Duration,
    done: F,
) -> K
where
    K: Clone + DeserializeOwned + Debug,
    F: Fn(&K) -> bool,
{
    let deadline = Instant::now() + within;
    loop {
        let object = api.get_opt(name).await.expect("reading the object");
        if let Some(object) = &object
            && done(object)
        {
            return object.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{name}: not {what} within {within:?}: {object:#?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Polls until the object no longer exists, or fails with it after [`WAIT`].
pub async fn wait_gone<K>(api: &Api<K>, name: &str)
where
    K: Clone + DeserializeOwned + Debug,
{
    let deadline = Instant::now() + WAIT;
    while let Some(object) = api.get_opt(name).await.expect("reading the object") {
        assert!(
            Instant::now() < deadline,
            "{name} still exists: {object:#?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// (status, reason, message) of the condition `type_` in the object's status.
pub fn condition<K: Serialize>(object: &K, type_: &str) -> Option<(String, String, String)> {
    let value = serde_json::to_value(object).ok()?;
    value["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_owned(),
                c["reason"].as_str().unwrap_or_default().to_owned(),
                c["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
}

/// Ready=True for the current generation (status.observedGeneration equals metadata.generation).
pub fn is_ready<K: Serialize + Resource>(object: &K) -> bool {
    let observed = serde_json::to_value(object)
        .ok()
        .and_then(|v| v["status"]["observedGeneration"].as_i64());
    observed == object.meta().generation
        && condition(object, "Ready").is_some_and(|(status, _, _)| status == "True")
}

/// The AWS ARN in the object's status; fails the test when there is none.
pub fn status_arn<K: Serialize + Resource>(object: &K) -> String {
    serde_json::to_value(object).expect("serialisable")["status"]["arn"]
        .as_str()
        .unwrap_or_else(|| {
            panic!(
                "{} has an ARN in status",
                object.meta().name.as_deref().unwrap_or_default()
            )
        })
        .to_owned()
}
