//! The sidecar server: gRPC on a Unix socket and on loopback TCP, the frame
//! protocol on a second Unix socket, the admin HTTP listener, policy hot
//! reload, and graceful shutdown.
//!
//! Shutdown runs in this order: mark not ready (so /readyz and the gRPC
//! health service turn away new traffic), stop accepting, let in-flight calls
//! finish until the drain deadline, then drop the listeners, which removes
//! the socket files.

pub mod admin;
pub mod authority;
mod decision_metrics;
pub mod frame;
pub mod grpc;
mod incoming;
pub mod reload;
pub mod state;
pub mod uds;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnixListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;

use crate::classify::Classifier;
use crate::decide::Limits;
use crate::policy::Policy;
use authority::AuthorityFix;
pub use state::State;

/// Everything `triage serve` needs, validated by the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Policy file to load and watch; `None` serves the embedded policy.
    pub policy: Option<PathBuf>,
    pub grpc_socket: Option<PathBuf>,
    /// Unix socket for the frame protocol; `None` disables it.
    pub frame_socket: Option<PathBuf>,
    /// Classifier weights to load instead of the built-in ones.
    pub classifier: Option<PathBuf>,
    /// The pod this sidecar runs in, from the Downward API; its name and
    /// namespace label every metric.
    pub pod: Option<PodIdentity>,
    pub grpc_listen: Option<SocketAddr>,
    pub admin_listen: Option<SocketAddr>,
    /// How long in-flight calls may run after a shutdown signal.
    pub drain: Duration,
    /// Deadline for one gRPC call.
    pub request_timeout: Duration,
    /// gRPC calls in flight at once across all connections; more are shed.
    pub max_in_flight: usize,
    pub limits: Limits,
}

/// A pod's name and namespace.
#[derive(Clone, Debug)]
pub struct PodIdentity {
    pub name: String,
    pub namespace: String,
}

impl Settings {
    /// The effective settings as JSON, for the log at start and `/config`.
    pub fn to_json(&self) -> serde_json::Value {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        let addr = |a: &Option<SocketAddr>| a.map(|a| a.to_string());
        serde_json::json!({
            "policy": path(&self.policy),
            "grpc_socket": path(&self.grpc_socket),
            "grpc_listen": addr(&self.grpc_listen),
            "admin_listen": addr(&self.admin_listen),
            "drain_seconds": self.drain.as_secs_f64(),
            "request_timeout_ms": self.request_timeout.as_millis() as u64,
            "max_in_flight": self.max_in_flight,
            "max_prompt_bytes": self.limits.max_prompt_bytes,
        })
    }
}

/// A started server. Dropping it does not stop it: call [`Running::shutdown`]
/// and then [`Running::wait`].
pub struct Running {
    pub state: Arc<State>,
    pub grpc_addr: Option<SocketAddr>,
    pub admin_addr: Option<SocketAddr>,
    pub grpc_socket: Option<PathBuf>,
    pub frame_socket: Option<PathBuf>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    drain: Duration,
}

impl Running {
    /// Starts the shutdown sequence; returns at once.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits until every listener has stopped, or the drain deadline after
    /// shutdown has passed, whichever is first.
    pub async fn wait(mut self) {
        self.shutdown.cancelled().await;
        self.state.set_ready(false);
        let drained = tokio::time::timeout(self.drain, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(deadline = ?self.drain, "drain deadline passed; closing remaining calls");
            self.tasks.shutdown().await;
        }
        tracing::info!("server stopped");
    }
}

/// Loads the policy named in `settings`, or the embedded one.
pub fn load_policy(settings: &Settings) -> anyhow::Result<Policy> {
    let result = match &settings.policy {
        Some(path) => Policy::load(path),
        None => Policy::embedded(),
    };
    result.map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("policy has errors:\n{}", lines.join("\n"))
    })
}

/// Loads classifier weights from `path`, or the built-in weights when there
/// is no path or the file fails its checks, so a bad file never stops the
/// sidecar.
pub fn load_classifier(path: Option<&std::path::Path>) -> Arc<Classifier> {
    let Some(path) = path else {
        return Arc::new(Classifier::embedded().clone());
    };
    match Classifier::load(path) {
        Ok(classifier) => {
            tracing::info!(path = %path.display(), "classifier weights loaded");
            Arc::new(classifier)
        }
        Err(err) => {
            tracing::error!(path = %path.display(), error = %err, "classifier weights rejected; serving with the built-in weights");
            metrics::counter!(crate::telemetry::CLASSIFIER_LOAD_FAILURES).increment(1);
            Arc::new(Classifier::embedded().clone())
        }
    }
}

/// Binds every listener and starts serving. Returns once the sockets are
/// bound and the server is ready.
pub async fn start(settings: Settings) -> anyhow::Result<Running> {
    let policy = load_policy(&settings)?;
    for warning in &policy.warnings {
        tracing::warn!(%warning, "policy warning");
    }
    tracing::info!(
        version = %policy.version,
        source = %policy.source,
        models = policy.models.len(),
        rules = policy.rules.len(),
        "policy loaded"
    );
    let labels = match &settings.pod {
        Some(pod) => vec![
            ("pod", pod.name.clone()),
            ("namespace", pod.namespace.clone()),
        ],
        None => Vec::new(),
    };
    crate::telemetry::install_metrics(&labels);
    let classifier = load_classifier(settings.classifier.as_deref());
    let state = State::with_classifier(policy, settings.limits.clone(), classifier);
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let (routes, health) = grpc::routes(state.clone())?;

    let grpc_socket = match &settings.grpc_socket {
        Some(path) => {
            let (listener, file) = uds::bind(path)?;
            tracing::info!(path = %path.display(), "gRPC listening on Unix socket");
            let server = grpc_server(&settings).add_routes(routes.clone());
            let stop = shutdown.clone().cancelled_owned();
            tasks.spawn(async move {
                let accepted =
                    UnixListenerStream::new(listener).map(|conn| conn.map(AuthorityFix::new));
                let connections = incoming::pause_on_error(accepted, "grpc_uds");
                if let Err(err) = server.serve_with_incoming_shutdown(connections, stop).await {
                    tracing::error!(error = %err, "gRPC Unix socket server failed");
                }
                drop(file);
            });
            Some(path.clone())
        }
        None => None,
    };

    let frame_socket = match &settings.frame_socket {
        Some(path) => {
            let (listener, file) = uds::bind(path)?;
            tracing::info!(path = %path.display(), "frame protocol listening on Unix socket");
            frame::describe_metrics();
            tasks.spawn(frame::serve(
                listener,
                file,
                state.clone(),
                shutdown.clone(),
            ));
            Some(path.clone())
        }
        None => None,
    };

    let grpc_addr = match settings.grpc_listen {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot bind gRPC address {addr}"))?;
            let bound = listener.local_addr()?;
            tracing::info!(addr = %bound, "gRPC listening on TCP");
            let server = grpc_server(&settings).add_routes(routes.clone());
            let stop = shutdown.clone().cancelled_owned();
            tasks.spawn(async move {
                // Nagle's algorithm would hold small responses back until the
                // peer's delayed ACK, about 40 ms on Linux.
                let accepted = TcpIncoming::from(listener).with_nodelay(Some(true));
                let connections = incoming::pause_on_error(accepted, "grpc_tcp");
                if let Err(err) = server.serve_with_incoming_shutdown(connections, stop).await {
                    tracing::error!(error = %err, "gRPC TCP server failed");
                }
            });
            Some(bound)
        }
        None => None,
    };

    let admin_addr = match settings.admin_listen {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot bind admin address {addr}"))?;
            let bound = listener.local_addr()?;
            tracing::info!(addr = %bound, "admin HTTP listening");
            let config = Arc::new(settings.to_json());
            tasks.spawn(admin::serve(
                listener,
                state.clone(),
                config,
                shutdown.clone(),
            ));
            Some(bound)
        }
        None => None,
    };

    if let Some(path) = settings.policy.clone() {
        let watch = reload::PolicyWatch::new(path, state.clone())
            .context("cannot watch the policy file")?;
        tasks.spawn(watch.run(shutdown.clone()));
    }

    grpc::set_serving(&health, true).await;
    state.set_ready(true);
    let stop = shutdown.clone();
    tokio::spawn(async move {
        stop.cancelled().await;
        grpc::set_serving(&health, false).await;
    });

    Ok(Running {
        state,
        grpc_addr,
        admin_addr,
        grpc_socket,
        frame_socket,
        shutdown,
        tasks,
        drain: settings.drain,
    })
}

pub(crate) fn grpc_server(
    settings: &Settings,
) -> tonic::transport::Server<
    tower::layer::util::Stack<
        tower::limit::GlobalConcurrencyLimitLayer,
        tower::layer::util::Identity,
    >,
> {
    tonic::transport::Server::builder()
        .timeout(settings.request_timeout)
        .load_shed(true)
        .http2_keepalive_interval(Some(grpc::KEEPALIVE))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            settings.max_in_flight,
        ))
}

/// Starts the server and runs it until SIGTERM or SIGINT.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let running = start(settings).await?;
    tracing::info!("ready");
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM received; draining"),
        _ = interrupt.recv() => tracing::info!("SIGINT received; draining"),
    }
    running.shutdown();
    running.wait().await;
    Ok(())
}
