//! `triage serve`: flags, their environment variables, and startup.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::decide::Limits;
use crate::serve::{self, PodIdentity, Settings, uds};
use crate::telemetry::{self, LogFormat};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Policy file (YAML) to serve and watch for changes; without it the
    /// embedded default policy is served.
    #[arg(long, env = "TRIAGE_POLICY", value_name = "FILE")]
    policy: Option<PathBuf>,

    /// Classifier weights file (.tcw) to use instead of the built-in
    /// weights. A file that fails its checks is logged and the built-in
    /// weights serve.
    #[arg(long, env = "TRIAGE_CLASSIFIER", value_name = "FILE")]
    classifier: Option<PathBuf>,

    /// Unix socket path for gRPC. Default: grpc.sock in $XDG_RUNTIME_DIR/triage,
    /// or in triage-UID under the temporary directory. "off" disables it.
    #[arg(long, env = "TRIAGE_GRPC_SOCKET", value_name = "PATH")]
    grpc_socket: Option<String>,

    /// Unix socket path for the frame protocol (length-prefixed protobuf,
    /// pipelined). Default: frame.sock beside grpc.sock. "off" disables it.
    #[arg(long, env = "TRIAGE_FRAME_SOCKET", value_name = "PATH")]
    frame_socket: Option<String>,

    /// Address for gRPC over TCP; keep it on loopback. "off" disables it.
    #[arg(
        long,
        env = "TRIAGE_GRPC_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:7575"
    )]
    grpc_listen: String,

    /// Address for admin HTTP (/metrics, /healthz, /readyz, /policy, /config). "off" disables it.
    #[arg(
        long,
        env = "TRIAGE_ADMIN_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:7576"
    )]
    admin_listen: String,

    /// Seconds that in-flight calls may run after SIGTERM or SIGINT before
    /// they are closed. Set it below the pod's termination grace period.
    #[arg(
        long,
        env = "TRIAGE_DRAIN_SECONDS",
        value_name = "SECONDS",
        default_value_t = 20
    )]
    drain_seconds: u64,

    /// Deadline for one gRPC call, in milliseconds.
    #[arg(
        long,
        env = "TRIAGE_REQUEST_TIMEOUT_MS",
        value_name = "MS",
        default_value_t = 1000
    )]
    request_timeout_ms: u64,

    /// gRPC calls in flight at once across all connections; calls beyond it
    /// are rejected with RESOURCE_EXHAUSTED instead of queueing.
    #[arg(
        long,
        env = "TRIAGE_MAX_IN_FLIGHT",
        value_name = "CALLS",
        default_value_t = 1024
    )]
    max_in_flight: usize,

    /// Largest prompt accepted, in bytes, summed over prompt and messages;
    /// larger requests get INVALID_ARGUMENT.
    #[arg(long, env = "TRIAGE_MAX_PROMPT_BYTES", value_name = "BYTES", default_value_t = 1024 * 1024)]
    max_prompt_bytes: usize,

    /// Name of the pod this sidecar runs in (Downward API metadata.name);
    /// with the namespace, it labels every metric and the start log.
    #[arg(long, env = "TRIAGE_POD_NAME", value_name = "NAME")]
    pod_name: Option<String>,

    /// Namespace of the pod (Downward API metadata.namespace).
    #[arg(long, env = "TRIAGE_POD_NAMESPACE", value_name = "NAMESPACE")]
    pod_namespace: Option<String>,

    /// Log filter: error, warn, info, debug, trace, or a tracing directive
    /// such as "triage=debug".
    #[arg(
        long,
        env = "TRIAGE_LOG_LEVEL",
        value_name = "LEVEL",
        default_value = "info"
    )]
    log_level: String,

    /// Log format.
    #[arg(
        long,
        env = "TRIAGE_LOG_FORMAT",
        value_name = "FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,

    /// Worker threads for the async runtime; 0 uses one per CPU.
    #[arg(
        long,
        env = "TRIAGE_WORKER_THREADS",
        value_name = "THREADS",
        default_value_t = 0
    )]
    worker_threads: usize,
}

impl ServeArgs {
    fn settings(&self) -> anyhow::Result<Settings> {
        let grpc_socket = match self.grpc_socket.as_deref() {
            Some("off") => None,
            Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
            _ => Some(uds::default_socket_dir().join("grpc.sock")),
        };
        let frame_socket = match self.frame_socket.as_deref() {
            Some("off") => None,
            Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
            _ => Some(frame_socket_beside(grpc_socket.as_deref())),
        };
        if self.max_in_flight == 0 {
            anyhow::bail!("invalid --max-in-flight (TRIAGE_MAX_IN_FLIGHT) 0: use 1 or more");
        }
        if self.request_timeout_ms == 0 {
            anyhow::bail!(
                "invalid --request-timeout-ms (TRIAGE_REQUEST_TIMEOUT_MS) 0: use 1 or more"
            );
        }
        let grpc_listen = address("--grpc-listen", "TRIAGE_GRPC_LISTEN", &self.grpc_listen)?;
        if grpc_socket.is_none() && frame_socket.is_none() && grpc_listen.is_none() {
            anyhow::bail!(
                "no listener for decisions: --grpc-socket, --frame-socket and --grpc-listen are \
                 all off; give at least one of them a path or an address"
            );
        }
        Ok(Settings {
            policy: self.policy.clone(),
            grpc_socket,
            frame_socket,
            classifier: self.classifier.clone(),
            pod: pod_identity(&self.pod_name, &self.pod_namespace),
            grpc_listen,
            admin_listen: address("--admin-listen", "TRIAGE_ADMIN_LISTEN", &self.admin_listen)?,
            drain: Duration::from_secs(self.drain_seconds),
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            max_in_flight: self.max_in_flight,
            limits: Limits {
                max_prompt_bytes: self.max_prompt_bytes,
                ..Limits::default()
            },
        })
    }
}

/// The default frame socket: frame.sock in the gRPC socket's directory, or
/// in the default socket directory when gRPC over UDS is off.
fn frame_socket_beside(grpc_socket: Option<&std::path::Path>) -> PathBuf {
    let dir = grpc_socket
        .and_then(std::path::Path::parent)
        .map_or_else(uds::default_socket_dir, std::path::Path::to_owned);
    dir.join("frame.sock")
}

fn pod_identity(name: &Option<String>, namespace: &Option<String>) -> Option<PodIdentity> {
    let name = name.as_deref().filter(|n| !n.is_empty())?;
    Some(PodIdentity {
        name: name.to_owned(),
        namespace: namespace.clone().unwrap_or_default(),
    })
}

fn address(flag: &str, variable: &str, value: &str) -> anyhow::Result<Option<SocketAddr>> {
    if value == "off" {
        return Ok(None);
    }
    value.parse().map(Some).map_err(|err| {
        anyhow::anyhow!("invalid {flag} ({variable}) {value:?}: {err}; use IP:PORT such as 127.0.0.1:7575, or off")
    })
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    telemetry::init_logs(&args.log_level, args.log_format)?;
    let settings = args.settings()?;
    let pod = args.pod_name.clone().unwrap_or_default();
    let namespace = args.pod_namespace.clone().unwrap_or_default();
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        pod = %pod,
        namespace = %namespace,
        settings = %settings.to_json(),
        "starting triage"
    );

    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if args.worker_threads > 0 {
        runtime.worker_threads(args.worker_threads);
    }
    let runtime = runtime.build()?;
    match runtime.block_on(serve::run(settings)) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "triage stopped with an error");
            Err(err)
        }
    }
}
