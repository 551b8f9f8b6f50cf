//! The real AWS CLI (installed by hack/awscli.sh, version pinned there) pointed at an emulator, for tests
//! that make AWS resources the way a user would: in a private empty home (no config or credentials file),
//! with only the emulator's static credentials, its endpoint and a region, and nothing from the machine.

use std::path::PathBuf;
use std::process::Output;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ivschat_emulator::Emulator;
use serde_json::Value;

use crate::command::install_tool;

/// How long one CLI call may take (its Python start-up included).
const CLI_TIMEOUT: Duration = Duration::from_secs(120);

/// The installed CLI and its private home (removed on drop).
pub struct AwsCli {
    aws: PathBuf,
    home: PathBuf,
}

impl AwsCli {
    /// Installs the CLI (or finds it installed); a failure fails the test with what the script needs.
    pub async fn install() -> AwsCli {
        let aws = install_tool(
            "hack/awscli.sh",
            "the AWS CLI",
            "python3 with venv and access to PyPI",
        )
        .await;
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let home = std::env::temp_dir().join(format!(
            "ivschat-awscli-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&home).expect("create the CLI's home");
        std::fs::write(home.join("config"), "").expect("write the empty CLI config file");
        std::fs::write(home.join("credentials"), "").expect("write the empty CLI credentials file");
        AwsCli { aws, home }
    }

    /// Runs `aws <args> --endpoint-url <emulator> --region <region> --output json` as the emulator's
    /// default account.
    pub async fn run(&self, emulator: &Emulator, region: &str, args: &[&str]) -> Output {
        let config = emulator.config();
        let mut command = tokio::process::Command::new(&self.aws);
        command
            .args(args)
            .args([
                "--endpoint-url",
                &emulator.url(),
                "--region",
                region,
                "--output",
                "json",
            ])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("AWS_CONFIG_FILE", self.home.join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", self.home.join("credentials"))
            .env("AWS_ACCESS_KEY_ID", &config.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &config.secret_access_key)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("PYTHONIOENCODING", "utf-8")
            .kill_on_drop(true);
        tokio::time::timeout(CLI_TIMEOUT, command.output())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "aws {} did not finish within {CLI_TIMEOUT:?}",
                    args.join(" ")
                )
            })
            .expect("run aws")
    }

    /// [`AwsCli::run`] that must succeed; its JSON output.
    pub async fn json(&self, emulator: &Emulator, region: &str, args: &[&str]) -> Value {
        let output = self.run(emulator, region, args).await;
        assert!(
            output.status.success(),
            "aws {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
            panic!(
                "aws {} printed no JSON ({error}): {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }
}

impl Drop for AwsCli {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.home);
    }
}
