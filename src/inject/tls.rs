//! The webhook's TLS setup: a certificate and key read from PEM files and
//! read again whenever either file changes, so a rotated Secret (helm
//! upgrade, cert-manager renewal) takes effect without a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// How often the certificate files are checked for changes. The kubelet
/// takes up to about a minute to update a mounted Secret, so a shorter
/// interval would not rotate noticeably sooner.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(30);

/// A certificate or key that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("failed to read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid PEM in {path}: {message}")]
    Pem { path: String, message: String },
    #[error("no certificate found in {0}")]
    NoCertificate(String),
    #[error("unsupported private key in {path}: {source}")]
    Key { path: String, source: rustls::Error },
    #[error("the private key in {key} does not belong to the certificate in {cert}")]
    KeyMismatch { cert: String, key: String },
    #[error("invalid TLS settings: {0}")]
    Config(#[from] rustls::Error),
}

/// Serves the most recently loaded certificate to every handshake.
#[derive(Debug)]
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: ArcSwap<CertifiedKey>,
}

impl ReloadingCert {
    /// Loads the certificate chain and key; fails if either is unusable.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let key = load_certified_key(cert_path, key_path)?;
        Ok(Self {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            current: ArcSwap::from_pointee(key),
        })
    }

    /// Builds the rustls server settings, offering HTTP/1.1 only.
    pub fn server_config(self: &Arc<Self>) -> Result<ServerConfig, TlsError> {
        let provider = Arc::new(ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    /// Checks the files every `interval` ([`RELOAD_INTERVAL`] in the
    /// webhook) and swaps in a changed certificate. A changed pair that
    /// fails to load is logged, and the previous certificate keeps serving.
    pub async fn watch(self: Arc<Self>, interval: Duration) {
        let mut last_seen = self.modified();
        let mut ticker = tokio::time::interval(interval);
        loop {
            ticker.tick().await;
            let seen = self.modified();
            if seen == last_seen {
                continue;
            }
            last_seen = seen;
            match load_certified_key(&self.cert_path, &self.key_path) {
                Ok(key) => {
                    self.current.store(Arc::new(key));
                    tracing::info!(cert = %self.cert_path.display(), "reloaded the TLS certificate");
                }
                Err(err) => {
                    tracing::error!(error = %err, "failed to reload the TLS certificate; keeping the previous one");
                }
            }
        }
    }

    fn modified(&self) -> (Option<SystemTime>, Option<SystemTime>) {
        let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
        (modified(&self.cert_path), modified(&self.key_path))
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn load_certified_key(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsError> {
    let cert_pem = read(cert_path)?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| pem_error(cert_path, err))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(cert_path.display().to_string()));
    }

    let key_pem = read(key_path)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|err| pem_error(key_path, err))?;
    let signing_key = ring::sign::any_supported_type(&key).map_err(|source| TlsError::Key {
        path: key_path.display().to_string(),
        source,
    })?;
    let certified = CertifiedKey::new(certs, signing_key);
    certified.keys_match().map_err(|_| TlsError::KeyMismatch {
        cert: cert_path.display().to_string(),
        key: key_path.display().to_string(),
    })?;
    Ok(certified)
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn pem_error(path: &Path, err: rustls::pki_types::pem::Error) -> TlsError {
    TlsError::Pem {
        path: path.display().to_string(),
        message: err.to_string(),
    }
}
