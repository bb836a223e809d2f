//! Unix domain socket files: bound with a stale-file check, given mode 0660
//! after bind, and removed on shutdown.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

/// Socket mode: the owner and group (the pod's shared group) may connect.
const SOCKET_MODE: u32 = 0o660;

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("cannot create socket directory {path}: {source}")]
    Directory { path: PathBuf, source: io::Error },
    #[error("another process is listening on {0}; stop it or choose another path")]
    InUse(PathBuf),
    #[error("{0} exists and is not a socket; remove it or choose another path")]
    NotSocket(PathBuf),
    #[error("cannot remove stale socket {path}: {source}")]
    RemoveStale { path: PathBuf, source: io::Error },
    #[error("cannot bind {path}: {source}")]
    Bind { path: PathBuf, source: io::Error },
    #[error("cannot set mode of {path}: {source}")]
    Mode { path: PathBuf, source: io::Error },
}

/// The file of a bound socket, removed when this is dropped.
#[derive(Debug)]
pub struct SocketFile {
    pub path: PathBuf,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        remove_socket(&self.path);
    }
}

/// Binds `path`, replacing a socket file only when nothing listens on it.
pub fn bind(path: &Path) -> Result<(UnixListener, SocketFile), BindError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| BindError::Directory {
            path: dir.to_owned(),
            source,
        })?;
    }
    remove_if_stale(path)?;
    let listener = UnixListener::bind(path).map_err(|source| BindError::Bind {
        path: path.to_owned(),
        source,
    })?;
    let file = SocketFile {
        path: path.to_owned(),
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE)).map_err(
        |source| BindError::Mode {
            path: path.to_owned(),
            source,
        },
    )?;
    Ok((listener, file))
}

fn remove_if_stale(path: &Path) -> Result<(), BindError> {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(BindError::Bind {
                path: path.to_owned(),
                source,
            });
        }
    };
    if !metadata.file_type().is_socket() {
        return Err(BindError::NotSocket(path.to_owned()));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(BindError::InUse(path.to_owned())),
        Err(_) => {
            tracing::info!(path = %path.display(), "removing stale socket file");
            std::fs::remove_file(path).map_err(|source| BindError::RemoveStale {
                path: path.to_owned(),
                source,
            })
        }
    }
}

fn remove_socket(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => tracing::info!(path = %path.display(), "removed socket file"),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => {
            tracing::warn!(path = %path.display(), error = %err, "cannot remove socket file")
        }
    }
}

/// Returns the default directory for socket files: `$XDG_RUNTIME_DIR/triage` when
/// that is set, else `triage-UID` under the system temporary directory, so
/// the first run needs no root.
pub fn default_socket_dir() -> PathBuf {
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(runtime).join("triage");
    }
    let uid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(0);
    std::env::temp_dir().join(format!("triage-{uid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bind_sets_mode_and_removes_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/grpc.sock");
        let socket = bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, SOCKET_MODE);
        drop(socket);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn live_socket_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grpc.sock");
        let _first = bind(&path).unwrap();
        assert!(matches!(bind(&path), Err(BindError::InUse(_))));
    }

    #[tokio::test]
    async fn stale_socket_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grpc.sock");
        let stale = std::os::unix::net::UnixListener::bind(&path).unwrap();
        drop(stale);
        assert!(path.exists());
        let _socket = bind(&path).unwrap();
    }

    #[tokio::test]
    async fn regular_file_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grpc.sock");
        std::fs::write(&path, "data").unwrap();
        assert!(matches!(bind(&path), Err(BindError::NotSocket(_))));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "data");
    }
}
