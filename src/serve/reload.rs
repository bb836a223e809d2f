//! Hot reload of the policy file, on file change and on SIGHUP. A new policy
//! is compiled beside the serving one and swapped in only when it compiles.
//! When it fails, its errors are logged and counted, and the old one keeps
//! serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::state::State;
use crate::policy::{Diagnostic, Policy};
use crate::telemetry;

/// Quiet time after a file event before reloading, so the several events of
/// one write or one ConfigMap symlink swap cause one reload.
const DEBOUNCE: Duration = Duration::from_millis(100);

/// The result of one reload attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum ReloadOutcome {
    Swapped { version: String },
    Unchanged,
    Rejected { errors: usize },
}

/// Reloads `path` now. With `force` false, a file whose text is unchanged
/// since the last attempt is skipped.
pub fn reload(path: &Path, state: &State, force: bool) -> ReloadOutcome {
    let source = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) => {
            let error = Diagnostic::error(&source, 0, 0, format!("cannot read policy file: {err}"));
            return reject(&[error]);
        }
    };
    if !state.text_changed(text_hash(&text)) && !force {
        return ReloadOutcome::Unchanged;
    }
    match Policy::compile(&source, &text) {
        Ok(policy) => {
            for warning in &policy.warnings {
                tracing::warn!(%warning, "policy warning");
            }
            let version = policy.version.to_string();
            state.swap_policy(policy);
            metrics::counter!(telemetry::RELOADS, "result" => "success").increment(1);
            tracing::info!(path = %source, %version, "policy reloaded");
            ReloadOutcome::Swapped { version }
        }
        Err(errors) => reject(&errors),
    }
}

fn reject(errors: &[Diagnostic]) -> ReloadOutcome {
    for error in errors {
        tracing::error!(%error, "policy rejected; the previous policy keeps serving");
    }
    metrics::counter!(telemetry::RELOADS, "result" => "failure").increment(1);
    ReloadOutcome::Rejected {
        errors: errors.len(),
    }
}

fn text_hash(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// Returns whether a change in the watched directory can change the policy.
/// That is the case when the event names the policy file or a
/// `..`-prefixed entry, such as the `..data` symlink that the kubelet swaps
/// when a ConfigMap changes, or names no path at all (a rescan). Other
/// files are ignored, so a log file next to a broken policy does not make
/// the server reload on each of its own error lines.
fn concerns_policy(event: &notify::Event, policy: &Path) -> bool {
    let name = policy.file_name();
    event.paths.is_empty()
        || event.paths.iter().any(|path| {
            let file = path.file_name();
            file == name || file.is_some_and(|f| f.as_encoded_bytes().starts_with(b".."))
        })
}

/// A watch on the policy file and on SIGHUP, set up before the server
/// reports ready so that an early SIGHUP never meets the default action,
/// which would end the process.
pub struct PolicyWatch {
    path: PathBuf,
    state: Arc<State>,
    events: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    hangup: tokio::signal::unix::Signal,
    // Dropping the watcher stops the events.
    _watcher: notify::RecommendedWatcher,
}

impl PolicyWatch {
    /// Starts watching `path`'s directory and SIGHUP.
    ///
    /// The watch is on the directory, not the file: Kubernetes updates a
    /// ConfigMap volume by swapping a `..data` symlink, which replaces the
    /// file without writing to it.
    pub fn new(path: PathBuf, state: Arc<State>) -> anyhow::Result<Self> {
        let (events_tx, events) = mpsc::unbounded_channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                // A send fails only once the receiver is gone at shutdown.
                let _ = events_tx.send(event);
            })?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
        let hangup = signal(SignalKind::hangup())?;
        state.text_changed(
            std::fs::read_to_string(&path)
                .map(|t| text_hash(&t))
                .unwrap_or(0),
        );
        tracing::info!(path = %path.display(), "watching policy file for changes");
        Ok(PolicyWatch {
            path,
            state,
            events,
            hangup,
            _watcher: watcher,
        })
    }

    /// Reloads on change or SIGHUP until `shutdown` is cancelled.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = self.hangup.recv() => {
                    tracing::info!("SIGHUP received; reloading policy");
                    reload(&self.path, &self.state, true);
                }
                event = self.events.recv() => {
                    match event {
                        Some(Ok(event)) if !concerns_policy(&event, &self.path) => continue,
                        Some(Ok(_)) => {}
                        Some(Err(err)) => tracing::warn!(error = %err, "policy file watch error"),
                        None => break,
                    }
                    tokio::time::sleep(DEBOUNCE).await;
                    while self.events.try_recv().is_ok() {}
                    reload(&self.path, &self.state, false);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, EventKind, ModifyKind};

    fn event(paths: &[&str]) -> notify::Event {
        let mut event = notify::Event::new(EventKind::Modify(ModifyKind::Any));
        for path in paths {
            event = event.add_path(PathBuf::from(path));
        }
        event
    }

    #[test]
    fn policy_file_events_count() {
        let policy = Path::new("/etc/triage/policy.yaml");
        assert!(concerns_policy(
            &event(&["/etc/triage/policy.yaml"]),
            policy
        ));
        assert!(concerns_policy(&event(&["/etc/triage/..data"]), policy));
        assert!(concerns_policy(
            &event(&["/etc/triage/x.log", "/etc/triage/policy.yaml"]),
            policy
        ));
    }

    #[test]
    fn other_files_are_ignored() {
        let policy = Path::new("/etc/triage/policy.yaml");
        assert!(!concerns_policy(
            &event(&["/etc/triage/server.log"]),
            policy
        ));
        assert!(!concerns_policy(
            &event(&["/etc/triage/policy.yaml.swp"]),
            policy
        ));
    }

    #[test]
    fn event_without_paths_counts() {
        let policy = Path::new("/etc/triage/policy.yaml");
        let rescan = notify::Event::new(EventKind::Create(CreateKind::Any));
        assert!(concerns_policy(&rescan, policy));
    }
}
