//! The frame listener: the microsecond path on its own Unix socket. Each
//! connection reads length-prefixed protobuf frames (see `crate::frame` and
//! docs/frame-protocol.md) and answers them in order.
//!
//! Shutdown runs in this order: stop accepting and close the listener, let
//! every connection answer the frames it has already received, then remove
//! the socket file. `Running::wait` bounds the whole sequence by the drain
//! deadline; aborting this task aborts its connections and still removes
//! the socket file, because both are owned by the task.

mod connection;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use bytes::BytesMut;

use super::grpc;
use super::state::{Answer, State};
use super::uds::SocketFile;
use crate::decide::DecideError;
use crate::frame::{self, DEFAULT_MAX_FRAME_BYTES, FrameError, Kind};
use crate::proto::{DecideRequest, Decision};
use connection::Connection;

pub const CONNECTIONS_OPENED: &str = "triage_connections_opened_total";
pub const CONNECTIONS_OPEN: &str = "triage_connections_open";
pub const FRAME_ERRORS: &str = "triage_frame_errors_total";
pub const ACCEPT_ERRORS: &str = "triage_accept_errors_total";
/// The `transport` label of this listener's connection metrics.
pub const TRANSPORT_LABEL: &str = "frames";

/// How long the accept loop pauses after a failed accept, such as when the
/// process is out of file descriptors (EMFILE), before it tries again.
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);

/// Answers decoded requests. The server implements it with the decision
/// pipeline; the load generator's baseline answers with a canned decision.
pub trait Responder: Send + Sync + 'static {
    /// Appends the response frame for request `id` to `output`, or an error
    /// frame when the request cannot be decided.
    fn respond(
        &self,
        request: &DecideRequest,
        id: u64,
        output: &mut BytesMut,
    ) -> Result<(), FrameError>;
}

/// The pipeline's verdict is encoded straight into the output buffer, so a
/// response allocates no message.
impl Responder for State {
    fn respond(
        &self,
        request: &DecideRequest,
        id: u64,
        output: &mut BytesMut,
    ) -> Result<(), FrameError> {
        let loaded = self.policy();
        match self.answer(&loaded, request) {
            Ok(Answer::Decided {
                verdict,
                decide_nanos,
            }) => {
                let len = verdict.encoded_len(decide_nanos);
                respond_encoded(output, id, len.total(), |buf| {
                    verdict.encode(decide_nanos, len, buf);
                })
            }
            Ok(Answer::Degraded(decision)) => respond_with(output, id, &decision),
            Err(err) => {
                respond_with_error(output, id, &err);
                Ok(())
            }
        }
    }
}

/// Appends a response frame whose `payload_len` bytes of encoded `Decision`
/// `write` puts into the buffer.
pub fn respond_encoded(
    output: &mut BytesMut,
    id: u64,
    payload_len: usize,
    write: impl FnOnce(&mut BytesMut),
) -> Result<(), FrameError> {
    frame::encode_with(
        output,
        Kind::Response,
        id,
        payload_len,
        write,
        DEFAULT_MAX_FRAME_BYTES,
    )
}

/// Appends a response frame with `decision`.
fn respond_with(output: &mut BytesMut, id: u64, decision: &Decision) -> Result<(), FrameError> {
    frame::encode_message(
        output,
        Kind::Response,
        id,
        decision,
        DEFAULT_MAX_FRAME_BYTES,
    )
}

/// Appends an error frame with the gRPC status of `err`.
fn respond_with_error(output: &mut BytesMut, id: u64, err: &DecideError) {
    let status = grpc::status(err);
    frame::encode_error(output, id, status.code(), status.message());
}

/// Describes the frame listener's metrics; call once after the recorder
/// is installed.
pub fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge};
    describe_counter!(
        CONNECTIONS_OPENED,
        Unit::Count,
        "Connections accepted, by transport (frames)."
    );
    describe_gauge!(
        CONNECTIONS_OPEN,
        Unit::Count,
        "Connections open now, by transport (frames)."
    );
    describe_counter!(
        FRAME_ERRORS,
        Unit::Count,
        "Malformed frames that closed their connection, by kind of error."
    );
    describe_counter!(
        ACCEPT_ERRORS,
        Unit::Count,
        "Failed accept calls on a listener, by transport (frames); the listener pauses and continues."
    );
}

/// Accepts connections until `shutdown` is cancelled, then drains them and
/// removes the socket file.
pub async fn serve<R: Responder>(
    listener: UnixListener,
    file: SocketFile,
    responder: Arc<R>,
    shutdown: CancellationToken,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let connection = Connection::new(stream, responder.clone(), shutdown.clone());
                    connections.spawn(connection.run());
                }
                Err(err) => pause_after_accept_error(&err, &shutdown).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    tracing::info!(path = %file.path.display(), open = connections.len(), "frame listener stopped accepting; draining connections");
    while connections.join_next().await.is_some() {}
    drop(file);
}

async fn pause_after_accept_error(err: &std::io::Error, shutdown: &CancellationToken) {
    metrics::counter!(ACCEPT_ERRORS, "transport" => TRANSPORT_LABEL).increment(1);
    tracing::warn!(error = %err, pause = ?ACCEPT_PAUSE, "frame listener failed to accept a connection; retrying after a pause");
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = tokio::time::sleep(ACCEPT_PAUSE) => {}
    }
}
