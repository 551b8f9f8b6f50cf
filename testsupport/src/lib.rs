//! What the ivschat-operator test suites and benchmarks share, so that no helper is copied between test
//! files: the shared control plane with the CRDs installed ([`cluster`]), server-side apply and waiting on
//! Kubernetes objects ([`objects`]), child processes and tool installers ([`command`]), plain HTTP and free
//! ports ([`http`]), the Prometheus text format ([`metrics`]), SigV4 signing of raw requests ([`sigv4`]),
//! the emulator and WebSocket clients of its chat API ([`emulator`], [`messaging`]), starting the operator
//! in-process or as a process ([`operator`]), a TCP proxy that partitions a process from the API server
//! ([`proxy`]) and which tests may run side by side ([`serial`]); and the real AWS CLI pointed at an
//! emulator ([`awscli`]), for resources made the way a user makes them; and message review handlers as real
//! Lambda functions behind the Lambda Invoke API ([`lambda`]).
//!
//! `testenv` stays the control-plane launcher (and the `make cluster-up` binary); this crate builds on it.

pub mod awscli;
pub mod cluster;
pub mod command;
pub mod emulator;
pub mod http;
pub mod lambda;
pub mod messaging;
pub mod metrics;
pub mod objects;
pub mod operator;
pub mod proxy;
pub mod serial;
pub mod sigv4;

pub use cluster::{control_plane, create_namespace};
pub use objects::{apply, apply_with, condition, is_ready, status_arn, wait_for, wait_gone};
