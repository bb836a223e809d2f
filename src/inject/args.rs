//! Flags of `triage inject`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, ValueEnum};

/// Runs the sidecar injection webhook, or injects a manifest offline.
#[derive(Debug, Args)]
pub struct InjectArgs {
    /// Address the HTTPS webhook server listens on.
    #[arg(long, env = "TRIAGE_INJECT_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,

    /// PEM file with the webhook's certificate chain. Reloaded when it
    /// changes on disk.
    #[arg(long, env = "TRIAGE_INJECT_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// PEM file with the webhook's private key.
    #[arg(long, env = "TRIAGE_INJECT_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Sidecar template to use instead of the one built into the binary.
    #[arg(long, env = "TRIAGE_INJECT_TEMPLATE", value_name = "FILE")]
    pub template: Option<PathBuf>,

    /// Sidecar mode for pods without a triage.dev/sidecar-mode annotation.
    /// `native` needs Kubernetes 1.29 or later, and `container` works on
    /// older clusters.
    #[arg(long, env = "TRIAGE_INJECT_SIDECAR_MODE", default_value_t = SidecarMode::Native)]
    pub sidecar_mode: SidecarMode,

    /// Seconds between the end of the sidecar's drain and the end of the
    /// pod's termination grace period.
    #[arg(long, env = "TRIAGE_INJECT_DRAIN_MARGIN_SECONDS", default_value_t = 5,
          value_parser = clap::value_parser!(i64).range(0..=3600))]
    pub drain_margin_seconds: i64,

    /// Seconds the webhook keeps accepting requests after SIGTERM, while
    /// the Service's endpoints drop the terminating pod. With
    /// failurePolicy Ignore, a pod whose request arrives after that is
    /// created without the sidecar.
    #[arg(long, env = "TRIAGE_INJECT_SHUTDOWN_DELAY_SECONDS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(0..=300))]
    pub shutdown_delay_seconds: u64,

    /// Inject every pod template in this Kubernetes YAML file (`-` for
    /// stdin) and print the result, instead of serving.
    #[arg(long, value_name = "FILE", conflicts_with = "print_sidecar")]
    pub manifest: Option<PathBuf>,

    /// With --manifest: inject every pod template that does not opt out, as
    /// the webhook does in a namespace labelled for injection.
    #[arg(long, requires = "manifest")]
    pub all: bool,

    /// Print the sidecar template in effect as YAML, instead of serving.
    #[arg(long)]
    pub print_sidecar: bool,

    /// Log filter for the webhook server (tracing-subscriber syntax).
    #[arg(long, env = "TRIAGE_INJECT_LOG", default_value = "info")]
    pub log_level: String,
}

/// The way the sidecar is added to a pod.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum SidecarMode {
    /// An init container with `restartPolicy: Always` (Kubernetes 1.29 and
    /// later): it starts before the application and stops after it.
    #[default]
    Native,
    /// A regular container, for clusters older than 1.29. Start and stop
    /// order are not guaranteed, and a Job's pod does not finish while it
    /// runs.
    Container,
}

impl SidecarMode {
    pub const fn name(self) -> &'static str {
        match self {
            SidecarMode::Native => "native",
            SidecarMode::Container => "container",
        }
    }
}

impl fmt::Display for SidecarMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for a sidecar mode name that is neither `native` nor
/// `container`.
#[derive(Debug, thiserror::Error)]
#[error("unknown sidecar mode {0:?}; expected native or container")]
pub struct UnknownSidecarMode(pub String);

impl FromStr for SidecarMode {
    type Err = UnknownSidecarMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "native" => Ok(SidecarMode::Native),
            "container" => Ok(SidecarMode::Container),
            other => Err(UnknownSidecarMode(other.to_owned())),
        }
    }
}
