//! testenv's own tests, in one binary: the shared control plane (`shared`), private ones that are stopped,
//! restarted and fail to start (`private`), and `testenv up` / `down` (`up_down`). `no_leftovers` stays a
//! binary of its own: it has no libtest harness, it re-executes itself.

#[path = "../common/mod.rs"]
mod common;
mod private;
mod shared;
mod up_down;
