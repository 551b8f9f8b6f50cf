//! ivschat-operator: a Kubernetes operator for Amazon IVS Chat, and the local IVS Chat emulator it is tested against.
pub mod controller;
pub mod crd;
pub mod duration;
pub mod emulator;
pub mod leader;
pub mod metrics;
pub mod observability;
pub mod plugin;
