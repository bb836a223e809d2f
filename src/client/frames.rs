//! The frame protocol client. One connection carries every call: each call
//! registers its request id, hands its encoded frame to a writer task that
//! batches whatever is queued into one write, and waits for a reader task
//! to route the answer with that id back to it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use prost::Message as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::ClientError;
use crate::frame::{self, DEFAULT_MAX_FRAME_BYTES, Frame, Kind};
use crate::proto::{DecideRequest, Decision};

/// Initial size of the read and write buffers.
const BUFFER_BYTES: usize = 8 * 1024;

pub(super) struct FrameTransport {
    path: PathBuf,
    current: ArcSwapOption<Connection>,
    /// Held while connecting, so concurrent calls open one connection.
    connecting: tokio::sync::Mutex<()>,
}

impl FrameTransport {
    pub(super) fn new(path: PathBuf) -> Self {
        FrameTransport {
            path,
            current: ArcSwapOption::empty(),
            connecting: tokio::sync::Mutex::new(()),
        }
    }

    pub(super) async fn decide(&self, request: &DecideRequest) -> Result<Decision, ClientError> {
        let connection = self.connection().await?;
        let frame = connection.call(request).await?;
        match frame.kind {
            Kind::Response => Decision::decode(frame.payload)
                .map_err(|err| ClientError::Protocol(format!("invalid Decision payload: {err}"))),
            Kind::Error => {
                let (code, message) = frame::decode_error(&frame)
                    .map_err(|err| ClientError::Protocol(err.to_string()))?;
                Err(ClientError::Rejected { code, message })
            }
            Kind::Request => Err(ClientError::Protocol(
                "the sidecar sent a request frame".to_owned(),
            )),
        }
    }

    /// The open connection, or a new one when there is none or it closed.
    async fn connection(&self) -> Result<Arc<Connection>, ClientError> {
        if let Some(connection) = self.open_connection() {
            return Ok(connection);
        }
        let _guard = self.connecting.lock().await;
        if let Some(connection) = self.open_connection() {
            return Ok(connection);
        }
        let stream = UnixStream::connect(&self.path)
            .await
            .map_err(|err| ClientError::Unreachable(format!("{}: {err}", self.path.display())))?;
        let connection = Arc::new(Connection::start(stream));
        self.current.store(Some(connection.clone()));
        Ok(connection)
    }

    fn open_connection(&self) -> Option<Arc<Connection>> {
        self.current
            .load_full()
            .filter(|connection| !connection.shared.closed.load(Ordering::Acquire))
    }
}

type Reply = Result<Frame, ClientError>;

/// State shared by callers and the reader task.
struct Shared {
    pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
    closed: AtomicBool,
}

impl Shared {
    /// Marks the connection closed and fails every waiting call.
    fn close(&self, why: &str) {
        self.closed.store(true, Ordering::Release);
        let waiting: Vec<_> = self.pending.lock().drain().collect();
        for (_, reply) in waiting {
            let _ = reply.send(Err(ClientError::ConnectionLost(why.to_owned())));
        }
    }
}

struct Connection {
    shared: Arc<Shared>,
    next_id: AtomicU64,
    frames: mpsc::UnboundedSender<Bytes>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

impl Connection {
    fn start(stream: UnixStream) -> Self {
        let (read, write) = stream.into_split();
        let shared = Arc::new(Shared {
            pending: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        });
        let (frames, queue) = mpsc::unbounded_channel();
        Connection {
            reader: tokio::spawn(read_answers(read, shared.clone())),
            writer: tokio::spawn(write_frames(write, queue, shared.clone())),
            shared,
            next_id: AtomicU64::new(1),
            frames,
        }
    }

    async fn call(&self, request: &DecideRequest) -> Result<Frame, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut buffer = BytesMut::new();
        frame::encode_message(
            &mut buffer,
            Kind::Request,
            id,
            request,
            DEFAULT_MAX_FRAME_BYTES,
        )
        .map_err(|err| ClientError::Rejected {
            code: err.code(),
            message: err.to_string(),
        })?;
        let (reply, answer) = oneshot::channel();
        self.shared.pending.lock().insert(id, reply);
        // Removes the entry if this call is dropped at its deadline.
        let _forget = Forget {
            shared: &self.shared,
            id,
        };
        if self.frames.send(buffer.freeze()).is_err() {
            return Err(ClientError::ConnectionLost("writer stopped".to_owned()));
        }
        match answer.await {
            Ok(reply) => reply,
            Err(_) => Err(ClientError::ConnectionLost("connection dropped".to_owned())),
        }
    }
}

struct Forget<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.shared.pending.lock().remove(&self.id);
    }
}

async fn write_frames(
    mut write: OwnedWriteHalf,
    mut queue: mpsc::UnboundedReceiver<Bytes>,
    shared: Arc<Shared>,
) {
    let mut batch = BytesMut::with_capacity(BUFFER_BYTES);
    while let Some(first) = queue.recv().await {
        batch.extend_from_slice(&first);
        while let Ok(next) = queue.try_recv() {
            batch.extend_from_slice(&next);
        }
        if let Err(err) = write.write_all(&batch).await {
            shared.close(&format!("write failed: {err}"));
            return;
        }
        batch.clear();
    }
}

async fn read_answers(mut read: OwnedReadHalf, shared: Arc<Shared>) {
    let mut input = BytesMut::with_capacity(BUFFER_BYTES);
    loop {
        loop {
            match frame::decode(&mut input, DEFAULT_MAX_FRAME_BYTES) {
                Ok(Some(frame)) => deliver(&shared, frame),
                Ok(None) => break,
                Err(err) => return shared.close(&format!("invalid frame from the sidecar: {err}")),
            }
        }
        input.reserve(frame::missing_bytes(&input).max(BUFFER_BYTES / 2));
        match read.read_buf(&mut input).await {
            Ok(0) => return shared.close("closed by the sidecar"),
            Ok(_) => {}
            Err(err) => return shared.close(&format!("read failed: {err}")),
        }
    }
}

/// Hands a frame to the call waiting for its id. An error frame with id 0
/// answers no call: it reports why the server is closing the connection.
fn deliver(shared: &Shared, frame: Frame) {
    let waiting = shared.pending.lock().remove(&frame.id);
    match waiting {
        Some(reply) => {
            let _ = reply.send(Ok(frame));
        }
        None if frame.kind == Kind::Error => {
            let reason = frame::decode_error(&frame).map_or_else(
                |err| err.to_string(),
                |(code, text)| format!("{code:?}: {text}"),
            );
            tracing::warn!(reason = %reason, "the sidecar reported a frame protocol error");
        }
        // The call gave up at its deadline before the answer came.
        None => {}
    }
}
