//! Child processes of the tests (kubectl, helm, scripts): run with optional stdin, output captured.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A path in the repository (the workspace root).
pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the support crate lives in the workspace")
        .join(relative)
}

/// Bytes of a process's output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `command` to its end, feeding it `stdin` if given (else `/dev/null`), stdout and stderr captured.
pub fn run(mut command: Command, stdin: Option<&str>) -> Output {
    let description = format!("{command:?}");
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|err| panic!("starting {description}: {err}"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("writing stdin");
    }
    child
        .wait_with_output()
        .unwrap_or_else(|err| panic!("running {description}: {err}"))
}

/// [`run`] that fails the test unless the command succeeds; returns its stdout.
pub fn succeed(command: Command, stdin: Option<&str>) -> String {
    let description = format!("{command:?}");
    let output = run(command, stdin);
    assert!(
        output.status.success(),
        "{description} failed: {}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Runs the installer script `script` (a repository path such as `hack/awscli.sh`), which builds or finds a
/// tool in the cache and prints its path; fails the test with what the script needs when it cannot.
pub async fn install_tool(script: &str, what: &str, needs: &str) -> PathBuf {
    let path = repo_path(script);
    let output = tokio::process::Command::new(&path)
        .output()
        .await
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", path.display()));
    assert!(
        output.status.success(),
        "{script} could not install {what} (it needs {needs}):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8(output.stdout).expect("utf-8 path").trim())
}
