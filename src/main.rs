//! The `ivschat-operator` binary: thin command-line front end over the library.
//!
//! Subcommands: `run` (the operator, [`ivschat_operator::run`]), `emulator` (the local IVS Chat emulator),
//! `crds` (print the CRD YAML).

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ivschat-operator",
    version,
    about = "Kubernetes operator for Amazon IVS Chat"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the local IVS Chat emulator (wire-compatible with the AWS IVS Chat API).
    Emulator(Box<ivschat_emulator::EmulatorArgs>),
    /// Print the CustomResourceDefinitions (YAML, one document per kind).
    Crds,
    /// Run the operator: reconcile ChatRoom and ChatLoggingConfiguration objects against AWS IVS Chat.
    Run(Box<ivschat_operator::run::RunArgs>),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Emulator(args) => ivschat_emulator::run_cli(*args).await,
        Command::Run(args) => ivschat_operator::run::run(*args).await,
        Command::Crds => {
            print!("{}", ivschat_operator::crd::crds_yaml()?);
            Ok(())
        }
    }
}
