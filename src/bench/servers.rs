//! The servers a benchmark run starts in its own process: the real triage
//! server on every transport, and the baseline servers that respond with a
//! canned decision, on temporary sockets and loopback ports.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_stream::wrappers::UnixListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;

use super::echo::Canned;
use crate::decide::Limits;
use crate::proto::DecideRequest;
use crate::proto::router_server::RouterServer;
use crate::serve::{self, Running, Settings, frame, uds};

pub struct Servers {
    pub real: Running,
    pub echo_frames: PathBuf,
    pub echo_grpc_socket: PathBuf,
    pub echo_grpc_addr: SocketAddr,
    stop: CancellationToken,
    tasks: JoinSet<()>,
}

fn settings(dir: &Path, policy: Option<PathBuf>) -> Settings {
    Settings {
        policy,
        grpc_socket: Some(dir.join("grpc.sock")),
        frame_socket: Some(dir.join("frame.sock")),
        classifier: None,
        pod: None,
        grpc_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        admin_listen: None,
        drain: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        // Above any load the benchmark offers, so no call is shed.
        max_in_flight: 1 << 20,
        limits: Limits::default(),
    }
}

impl Servers {
    /// Starts every server. The canned decision is the real server's
    /// decision for `sample`, so baseline responses have the real size.
    pub async fn start(
        dir: &Path,
        policy: Option<PathBuf>,
        sample: &DecideRequest,
    ) -> anyhow::Result<Self> {
        let settings = settings(dir, policy);
        let real = serve::start(settings.clone()).await?;
        let decision = real
            .state
            .decide(sample)
            .map_err(|err| anyhow::anyhow!("the first prompt cannot be decided: {err}"))?;
        let canned = Canned::new(decision);
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();

        let echo_frames = dir.join("echo-frame.sock");
        let (listener, file) = uds::bind(&echo_frames)?;
        tasks.spawn(frame::serve(
            listener,
            file,
            Arc::new(canned.clone()),
            stop.clone(),
        ));

        let echo_grpc_socket = dir.join("echo-grpc.sock");
        let (listener, file) = uds::bind(&echo_grpc_socket)?;
        let server = serve::grpc_server(&settings).add_service(RouterServer::new(canned.clone()));
        let until = stop.clone().cancelled_owned();
        tasks.spawn(async move {
            let incoming = UnixListenerStream::new(listener);
            if let Err(err) = server.serve_with_incoming_shutdown(incoming, until).await {
                tracing::error!(error = %err, "echo gRPC server on a Unix socket failed");
            }
            drop(file);
        });

        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .context("cannot bind a loopback port for the echo gRPC server")?;
        let echo_grpc_addr = listener.local_addr()?;
        let server = serve::grpc_server(&settings).add_service(RouterServer::new(canned));
        let until = stop.clone().cancelled_owned();
        tasks.spawn(async move {
            let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
            if let Err(err) = server.serve_with_incoming_shutdown(incoming, until).await {
                tracing::error!(error = %err, "echo gRPC server on TCP failed");
            }
        });

        Ok(Servers {
            real,
            echo_frames,
            echo_grpc_socket,
            echo_grpc_addr,
            stop,
            tasks,
        })
    }

    pub async fn stop(mut self) {
        self.stop.cancel();
        self.real.shutdown();
        self.real.wait().await;
        while self.tasks.join_next().await.is_some() {}
    }
}
