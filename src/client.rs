//! A fail-open client for the triage sidecar, over the frame protocol or
//! gRPC.
//!
//! [`Client::decide`] never fails: when the sidecar is unreachable, misses
//! the per-call deadline, closes the connection or rejects the request, it
//! returns the configured fallback model, marks the result with
//! [`Source::FailOpen`] and the reason, and counts it in
//! `triage_client_fail_open_total`. [`Client::try_decide`] returns the
//! error instead, for callers that want to handle it themselves.
//!
//! Connections are opened on first use and reused by every call. On the
//! frame protocol, concurrent calls share one connection and are pipelined.

mod frames;
mod grpc;

use std::path::PathBuf;
use std::time::Duration;

use tonic::Code;

use crate::proto::{DecideRequest, Decision, Path, Receipt, TaskSource};

pub const FAIL_OPEN: &str = "triage_client_fail_open_total";

/// Default per-call deadline: long enough for a loaded sidecar, short
/// next to the LLM call it precedes.
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(50);

/// Where the sidecar listens.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// The frame protocol on a Unix socket.
    Frames(PathBuf),
    /// gRPC on a Unix socket.
    GrpcUnix(PathBuf),
    /// gRPC over TCP, as a URI such as `http://127.0.0.1:7575`.
    GrpcTcp(String),
}

/// The model returned when the sidecar cannot answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fallback {
    pub model: String,
    pub provider: String,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub endpoint: Endpoint,
    /// Time allowed for one call, connecting included.
    pub deadline: Duration,
    pub fallback: Fallback,
}

impl Config {
    /// A configuration with the default deadline.
    pub fn new(endpoint: Endpoint, fallback: Fallback) -> Self {
        Config {
            endpoint,
            deadline: DEFAULT_DEADLINE,
            fallback,
        }
    }
}

/// Why a call failed. Each variant has a fixed metrics label.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to the sidecar: {0}")]
    Unreachable(String),
    #[error("the sidecar did not answer within the deadline")]
    DeadlineExceeded,
    #[error("the connection to the sidecar closed before the answer: {0}")]
    ConnectionLost(String),
    #[error("the sidecar rejected the request with {code:?}: {message}")]
    Rejected { code: Code, message: String },
    #[error("the sidecar's answer is invalid: {0}")]
    Protocol(String),
}

impl ClientError {
    /// A fixed label for metrics; never derived from request content.
    pub fn label(&self) -> &'static str {
        match self {
            ClientError::Unreachable(_) => "unreachable",
            ClientError::DeadlineExceeded => "deadline_exceeded",
            ClientError::ConnectionLost(_) => "connection_lost",
            ClientError::Rejected { .. } => "rejected",
            ClientError::Protocol(_) => "protocol",
        }
    }
}

/// Where a decision came from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// The sidecar decided.
    Sidecar,
    /// The sidecar could not answer, so the configured fallback was used.
    FailOpen(ClientError),
}

/// A decision and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Routed {
    pub decision: Decision,
    pub source: Source,
}

impl Routed {
    pub fn is_fail_open(&self) -> bool {
        matches!(self.source, Source::FailOpen(_))
    }
}

enum Transport {
    Frames(frames::FrameTransport),
    Grpc(grpc::GrpcTransport),
}

/// A client for one sidecar. Share it (it is `Send + Sync`) rather than
/// building one per call, so connections are reused.
pub struct Client {
    transport: Transport,
    deadline: Duration,
    fallback: Fallback,
}

impl Client {
    /// Builds a client; it connects on the first call. Must be called inside
    /// a tokio runtime. Fails only on a malformed gRPC URI.
    pub fn new(config: Config) -> Result<Self, ClientError> {
        let transport = match config.endpoint {
            Endpoint::Frames(path) => Transport::Frames(frames::FrameTransport::new(path)),
            Endpoint::GrpcUnix(path) => Transport::Grpc(grpc::GrpcTransport::unix(path)),
            Endpoint::GrpcTcp(uri) => Transport::Grpc(grpc::GrpcTransport::tcp(&uri)?),
        };
        Ok(Client {
            transport,
            deadline: config.deadline,
            fallback: config.fallback,
        })
    }

    /// Decides `request`, or returns the fallback model marked
    /// [`Source::FailOpen`] when the sidecar cannot answer in time.
    pub async fn decide(&self, request: DecideRequest) -> Routed {
        let request_id = request.request_id.clone();
        match self.try_decide(request).await {
            Ok(decision) => Routed {
                decision,
                source: Source::Sidecar,
            },
            Err(err) => {
                metrics::counter!(FAIL_OPEN, "reason" => err.label()).increment(1);
                tracing::debug!(request_id = %request_id, error = %err, "sidecar did not decide; using the fallback model");
                Routed {
                    decision: self.fallback_decision(request_id, &err),
                    source: Source::FailOpen(err),
                }
            }
        }
    }

    /// Decides `request` within the deadline, or returns why it could not.
    pub async fn try_decide(&self, request: DecideRequest) -> Result<Decision, ClientError> {
        let call = async move {
            match &self.transport {
                Transport::Frames(frames) => frames.decide(&request).await,
                Transport::Grpc(grpc) => grpc.decide(request, self.deadline).await,
            }
        };
        match tokio::time::timeout(self.deadline, call).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::DeadlineExceeded),
        }
    }

    fn fallback_decision(&self, request_id: String, err: &ClientError) -> Decision {
        Decision {
            request_id,
            model: self.fallback.model.clone(),
            provider: self.fallback.provider.clone(),
            receipt: Some(Receipt {
                path: Path::Degraded.into(),
                task_source: TaskSource::None.into(),
                note: format!("fail-open in the client: {err}"),
                ..Receipt::default()
            }),
            ..Decision::default()
        }
    }
}

/// Describes the client's metrics; call once after installing a recorder.
pub fn describe_metrics() {
    metrics::describe_counter!(
        FAIL_OPEN,
        metrics::Unit::Count,
        "Calls answered with the fallback model because the sidecar could not decide, by reason."
    );
}
