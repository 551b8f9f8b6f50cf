//! The facts of the Amazon IVS Chat control-plane API (ivschat-api.md) that more than one part of the project
//! relies on, written once: the 17 operations with their groups and TPS quotas ([`operation`]), the field
//! limits of the model ([`limits`]), the regions IVS Chat is offered in ([`regions`]), and the one duration parser shared by the operator's flags and the
//! emulator's admin API ([`duration`]).
//!
//! The operator (rate budget, metrics, plugin) and the emulator both depend on this crate and on nothing of
//! each other, so it stays small: no HTTP, no SDK, no async runtime.

pub mod duration;
pub mod limits;
pub mod operation;
pub mod regions;

pub use operation::{Operation, OperationGroup};
