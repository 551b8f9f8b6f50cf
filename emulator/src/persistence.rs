//! Optional state file: rooms, logging configurations (with their lifecycle timestamps) and tags, as JSON,
//! of every (account, region): one flat list of each, whose ARNs say which scope each resource belongs to
//! (so a file from the single-scope emulator is read as is; see [`crate::store::Stores::from_persisted`]).
//!
//! Writes are atomic: the state goes to a temporary file in the same directory, which is fsynced and then renamed
//! over the state file (and the directory fsynced), so a crash leaves either the old or the new file, never a
//! torn one. Each mutation snapshots the store under its lock and writes outside it; a writer lock plus the store
//! revision make sure an older snapshot never overwrites a newer one. Chat tokens and pagination keys are not
//! kept: after a restart, old tokens are rejected.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::store::PersistedState;

/// Format version of the state file.
const FORMAT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateFile {
    format_version: u32,
    #[serde(flatten)]
    state: PersistedState,
}

/// Writes snapshots of the store to the state file, newest revision wins.
#[derive(Debug)]
pub struct Persister {
    path: PathBuf,
    /// Revision of the last snapshot written (async lock: held across the blocking write).
    written_revision: tokio::sync::Mutex<u64>,
}

impl Persister {
    pub fn new(path: PathBuf, loaded_revision: u64) -> Persister {
        Persister {
            path,
            written_revision: tokio::sync::Mutex::new(loaded_revision),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `state` (the store at `revision`) unless a newer revision was written already.
    pub async fn write(&self, revision: u64, state: PersistedState) -> anyhow::Result<()> {
        let mut written = self.written_revision.lock().await;
        if *written >= revision {
            return Ok(());
        }
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || write_atomically(&path, &state))
            .await
            .context("the state-file writer task failed")??;
        *written = revision;
        Ok(())
    }
}

/// Reads the state file; a missing file is an empty state.
pub fn load(path: &Path) -> anyhow::Result<PersistedState> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok(PersistedState::default());
        }
        Err(err) => {
            return Err(err)
                .with_context(|| format!("cannot read the state file {}", path.display()));
        }
    };
    let file: StateFile = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "the state file {} is not a valid emulator state",
            path.display()
        )
    })?;
    if file.format_version != FORMAT_VERSION {
        anyhow::bail!(
            "the state file {} has format version {}, this emulator reads version {FORMAT_VERSION}",
            path.display(),
            file.format_version
        );
    }
    Ok(file.state)
}

fn write_atomically(path: &Path, state: &PersistedState) -> anyhow::Result<()> {
    let file = StateFile {
        format_version: FORMAT_VERSION,
        state: state.clone(),
    };
    let bytes = serde_json::to_vec_pretty(&file).context("cannot encode the emulator state")?;
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    let temporary = directory.join(format!(
        ".{file_name}.{}.{}.tmp",
        std::process::id(),
        crate::ids::new_id()
    ));
    let result = (|| -> anyhow::Result<()> {
        let mut handle = std::fs::File::create(&temporary)
            .with_context(|| format!("cannot create {}", temporary.display()))?;
        handle
            .write_all(&bytes)
            .with_context(|| format!("cannot write {}", temporary.display()))?;
        handle
            .sync_all()
            .with_context(|| format!("cannot fsync {}", temporary.display()))?;
        std::fs::rename(&temporary, path).with_context(|| {
            format!(
                "cannot rename {} to {}",
                temporary.display(),
                path.display()
            )
        })?;
        // Make the rename itself durable.
        if let Ok(dir) = std::fs::File::open(&directory) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ArnScope;
    use crate::store::{RoomSpec, Store};

    fn temp_dir() -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ivschat-emulator-persist-{}", crate::ids::new_id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn state_with_a_room() -> PersistedState {
        let mut store = Store::new(ArnScope {
            region: "us-west-2".into(),
            account_id: "1".into(),
        });
        let spec = RoomSpec {
            name: "persisted".into(),
            maximum_message_rate_per_second: 10,
            maximum_message_length: 500,
            message_review_handler: None,
            logging_configuration_identifiers: vec![],
            tags: [("k".to_string(), "v".to_string())].into(),
        };
        store
            .create_room(spec, None, jiff::Timestamp::now())
            .expect("room");
        store.persisted_state()
    }

    #[tokio::test]
    async fn writes_load_back_and_leave_no_temporary_files() {
        let dir = temp_dir();
        let path = dir.join("state.json");
        assert_eq!(
            load(&path).expect("missing file is empty"),
            PersistedState::default()
        );
        let persister = Persister::new(path.clone(), 0);
        let state = state_with_a_room();
        persister.write(2, state.clone()).await.expect("write");
        // An older revision must not overwrite the newer one.
        persister
            .write(1, PersistedState::default())
            .await
            .expect("stale write is skipped");
        assert_eq!(load(&path).expect("load"), state);
        let entries: Vec<_> = std::fs::read_dir(&dir).expect("read dir").collect();
        assert_eq!(entries.len(), 1, "only the state file remains");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn corrupt_or_foreign_files_are_reported() {
        let dir = temp_dir();
        let path = dir.join("state.json");
        std::fs::write(&path, b"{not json").expect("write");
        let error = load(&path).expect_err("corrupt").to_string();
        assert!(error.contains("not a valid emulator state"), "{error}");
        std::fs::write(
            &path,
            br#"{"formatVersion": 99, "rooms": [], "loggingConfigurations": []}"#,
        )
        .expect("write");
        assert!(
            load(&path)
                .expect_err("version")
                .to_string()
                .contains("format version 99")
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
