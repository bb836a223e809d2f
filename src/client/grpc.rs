//! The gRPC client over a Unix socket or TCP. A tonic channel multiplexes
//! concurrent calls on one HTTP/2 connection and reconnects by itself.

use std::path::PathBuf;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::Code;
use tonic::transport::{Channel, Endpoint, Uri};

use super::ClientError;
use crate::proto::router_client::RouterClient;
use crate::proto::{DecideRequest, Decision};

/// The HTTP/2 authority sent over a Unix socket. The socket path is not a
/// valid authority, and the server rejects streams that use one.
const UNIX_AUTHORITY: &str = "http://localhost";

pub(super) struct GrpcTransport {
    client: RouterClient<Channel>,
}

impl GrpcTransport {
    pub(super) fn unix(path: PathBuf) -> Self {
        let connector = tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { UnixStream::connect(path).await.map(TokioIo::new) }
        });
        let channel = Endpoint::from_static(UNIX_AUTHORITY).connect_with_connector_lazy(connector);
        GrpcTransport {
            client: RouterClient::new(channel),
        }
    }

    pub(super) fn tcp(uri: &str) -> Result<Self, ClientError> {
        let endpoint = Endpoint::from_shared(uri.to_owned())
            .map_err(|err| ClientError::Unreachable(format!("invalid gRPC URI {uri:?}: {err}")))?
            .tcp_nodelay(true);
        Ok(GrpcTransport {
            client: RouterClient::new(endpoint.connect_lazy()),
        })
    }

    pub(super) async fn decide(
        &self,
        request: DecideRequest,
        deadline: Duration,
    ) -> Result<Decision, ClientError> {
        let mut request = tonic::Request::new(request);
        request.set_timeout(deadline);
        match self.client.clone().decide(request).await {
            Ok(response) => Ok(response.into_inner()),
            Err(status) => Err(classify(&status)),
        }
    }
}

/// Splits transport failures, which tonic reports as UNAVAILABLE or
/// UNKNOWN, from the server's own answers.
fn classify(status: &tonic::Status) -> ClientError {
    match status.code() {
        Code::Unavailable => ClientError::Unreachable(status.message().to_owned()),
        Code::DeadlineExceeded | Code::Cancelled => ClientError::DeadlineExceeded,
        Code::Unknown => ClientError::ConnectionLost(status.message().to_owned()),
        Code::Internal => ClientError::Protocol(status.message().to_owned()),
        code => ClientError::Rejected {
            code,
            message: status.message().to_owned(),
        },
    }
}
