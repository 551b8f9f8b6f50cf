//! Everything that needs a real kube-apiserver, in one test binary (one link, one shared control plane
//! instead of seven): the CRDs and their schema, the deploy manifests and RBAC, the `kubectl ivschat` plugin,
//! the controllers' scenarios, the chat loop through kubectl, `make demo` and `make demo-down`, the operator's
//! metrics and leader election; beside them the one install artefact that needs no API server, the image built
//! without a container engine.
//!
//! Each module keeps its own namespaces, so they share the control plane of `ivschat_testsupport::cluster`.
//! The exception is `deploy`, whose scenario runs the controllers cluster-wide as the deploy ServiceAccount:
//! it gets a private control plane, so that operator never sees the other modules' objects. Tests that were
//! alone in their binary and are timing-sensitive run `serial::alone`, see `ivschat_testsupport::serial`.

mod accounts;
mod chat_loop;
mod controller_scenarios;
mod crds;
mod demo;
mod deploy;
mod export;
mod image;
mod leader_election;
mod metrics;
mod plugin;
mod plugin_import;
