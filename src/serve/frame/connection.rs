//! One frame connection: read what has arrived, respond to every whole frame
//! in order into one output buffer, write it, and read again. Responses to
//! pipelined requests therefore leave in request order, and a burst of
//! requests gets its responses in one write.

use std::sync::Arc;

use bytes::BytesMut;
use prost::Message as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio_util::sync::CancellationToken;

use super::{CONNECTIONS_OPEN, CONNECTIONS_OPENED, FRAME_ERRORS, Responder, TRANSPORT_LABEL};
use crate::frame::{self, DEFAULT_MAX_FRAME_BYTES, Frame, FrameError, Kind};
use crate::proto::DecideRequest;

/// Initial size of each connection's read and write buffers; most
/// requests and decisions fit in it.
const BUFFER_BYTES: usize = 8 * 1024;

pub(super) struct Connection<R> {
    stream: UnixStream,
    responder: Arc<R>,
    shutdown: CancellationToken,
    input: BytesMut,
    output: BytesMut,
}

/// The reason a connection loop ended.
enum Close {
    /// The peer closed, or the server is shutting down.
    Done,
    /// The peer broke the protocol; an error frame has been queued.
    Protocol(FrameError),
    /// A read or write failed.
    Io(std::io::Error),
}

impl<R: Responder> Connection<R> {
    pub(super) fn new(stream: UnixStream, responder: Arc<R>, shutdown: CancellationToken) -> Self {
        Connection {
            stream,
            responder,
            shutdown,
            input: BytesMut::with_capacity(BUFFER_BYTES),
            output: BytesMut::with_capacity(BUFFER_BYTES),
        }
    }

    pub(super) async fn run(mut self) {
        metrics::counter!(CONNECTIONS_OPENED, "transport" => TRANSPORT_LABEL).increment(1);
        let open = metrics::gauge!(CONNECTIONS_OPEN, "transport" => TRANSPORT_LABEL);
        open.increment(1.0);
        match self.serve().await {
            Close::Done => {}
            Close::Protocol(err) => {
                metrics::counter!(FRAME_ERRORS, "error" => err.label()).increment(1);
                tracing::debug!(error = %err, "closing frame connection after a malformed frame");
                // Best effort: the peer may already be gone.
                let _ = self.flush().await;
            }
            Close::Io(err) => tracing::debug!(error = %err, "frame connection failed"),
        }
        let _ = self.stream.shutdown().await;
        open.decrement(1.0);
    }

    async fn serve(&mut self) -> Close {
        // One shutdown future for the whole connection, so waiting for it
        // does not register a new waiter with the token on every read.
        let shutdown = self.shutdown.clone();
        let cancelled = shutdown.cancelled();
        tokio::pin!(cancelled);
        loop {
            if let Err(err) = self.answer_buffered() {
                return Close::Protocol(err);
            }
            if let Err(err) = self.flush().await {
                return Close::Io(err);
            }
            let reserve = frame::missing_bytes(&self.input).max(BUFFER_BYTES / 2);
            self.input.reserve(reserve);
            tokio::select! {
                biased;
                read = self.stream.read_buf(&mut self.input) => match read {
                    Ok(0) => return self.closed_by_peer(),
                    Ok(_) => {}
                    Err(err) => return Close::Io(err),
                },
                // Every whole frame received so far has a response written above.
                () = &mut cancelled => return Close::Done,
            }
        }
    }

    /// Responds to every whole frame in the input buffer.
    fn answer_buffered(&mut self) -> Result<(), FrameError> {
        let result = self.answer_frames();
        if let Err(err) = &result {
            frame::encode_error(
                &mut self.output,
                err.request_id(),
                err.code(),
                &err.to_string(),
            );
        }
        result
    }

    fn answer_frames(&mut self) -> Result<(), FrameError> {
        while let Some(frame) = frame::decode(&mut self.input, DEFAULT_MAX_FRAME_BYTES)? {
            self.answer(frame)?;
        }
        Ok(())
    }

    fn answer(&mut self, frame: Frame) -> Result<(), FrameError> {
        if frame.kind != Kind::Request {
            return Err(FrameError::InvalidKind {
                kind: frame.kind as u8,
                id: frame.id,
            });
        }
        let id = frame.id;
        let request = DecideRequest::decode(frame.payload)
            .map_err(|source| FrameError::InvalidPayload { id, source })?;
        self.responder.respond(&request, id, &mut self.output)
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if self.output.is_empty() {
            return Ok(());
        }
        let result = self.stream.write_all(&self.output).await;
        self.output.clear();
        result
    }

    /// Ends the connection after the peer closed it. A frame the peer left
    /// incomplete gets no response.
    fn closed_by_peer(&self) -> Close {
        if !self.input.is_empty() {
            tracing::debug!(
                buffered = self.input.len(),
                "frame connection closed in the middle of a frame"
            );
        }
        Close::Done
    }
}
