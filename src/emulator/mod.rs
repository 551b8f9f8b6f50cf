//! The local IVS Chat emulator: the AWS IVS Chat control-plane API (restJson1 over HTTP, SigV4-verified),
//! served from memory with optional persistence, fault injection and request counters for tests.
//!
//! CONTRACT (skeleton; the emulator owner replaces this text with the real module doc):
//! - `EmulatorArgs`: clap `Args` for `ivschat-operator emulator` (`--listen`, `--region`, `--account-id`,
//!   `--access-key-id`, `--secret-access-key`, transition delay, failure switch, quotas, faults, state file).
//! - `run_cli(args)`: runs until SIGINT/SIGTERM.
//! - `EmulatorConfig` (Default = us-west-2, 123456789012, test/test), `Emulator::start(addr, config)`,
//!   `Emulator::url()`, `Emulator::local_addr()`, `Emulator::stop()`.
pub mod sigv4;

/// Placeholder until the emulator lands (replaced by the emulator owner).
#[derive(clap::Args, Debug)]
pub struct EmulatorArgs {}

/// Placeholder until the emulator lands (replaced by the emulator owner).
pub async fn run_cli(_args: EmulatorArgs) -> anyhow::Result<()> {
    anyhow::bail!("the emulator is not written yet")
}
