//! ivschat-operator: a Kubernetes operator for Amazon IVS Chat. The local IVS Chat emulator it is tested against is
//! the `ivschat-emulator` crate.
pub mod controller;
pub mod crd;
pub mod leader;
pub mod metrics;
pub mod plugin;
pub mod probes;
pub mod run;
