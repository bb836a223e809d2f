//! The HTTPS server that the API server calls: POST an AdmissionReview to
//! `/mutate/pod` or `/mutate/namespace`, GET `/healthz` for probes.
//!
//! Shutdown, once the `shutdown` future completes: stop accepting, ask every
//! open connection to finish its current request, then wait for them up to
//! [`DRAIN_TIMEOUT`]. The webhook's future completes a few seconds after
//! SIGTERM, so that requests still routed to the pod are served.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::inject::patch::{InjectConfig, Scope};
use crate::inject::review::{self, Outcome, ReviewResult};

/// The largest request body accepted. etcd rejects requests over 1.5 MiB by
/// default, and a review carries the object once on CREATE, so this leaves
/// room for the request fields and for clusters with a raised etcd limit.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Time a client gets to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Time a client gets to send the request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Time open connections get to finish after shutdown starts.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed accept (for example, too many open files), so the
/// loop does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves the webhook on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    tls: TlsAcceptor,
    config: Arc<InjectConfig>,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_sender, stop) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let connection = handle_connection(stream, peer, tls.clone(), config.clone(), stop.clone());
                    connections.spawn(connection);
                }
                Err(err) => {
                    tracing::warn!(error = %err, "failed to accept a connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }

    tracing::info!(
        open_connections = connections.len(),
        "draining webhook connections"
    );
    let _ = stop_sender.send(true);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        tracing::warn!(
            open_connections = connections.len(),
            "drain timed out; closing connections"
        );
        connections.abort_all();
    }
}

async fn handle_connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: TlsAcceptor,
    config: Arc<InjectConfig>,
    mut stop: watch::Receiver<bool>,
) {
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream));
    let stream = tokio::select! {
        result = handshake => match result {
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) => {
                tracing::warn!(%peer, error = %err, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::warn!(%peer, "TLS handshake timed out");
                return;
            }
        },
        // No request has started yet, so there is nothing to drain.
        () = wait_for_stop(&mut stop) => return,
    };

    let service = service_fn(move |request| {
        let config = config.clone();
        async move { Ok::<_, std::convert::Infallible>(route(request, &config).await) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);

    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = wait_for_stop(&mut stop) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(err) = result {
        tracing::debug!(%peer, error = %err, "connection closed with an error");
    }
}

async fn wait_for_stop(stop: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, which also means stop.
    let _ = stop.wait_for(|stopping| *stopping).await;
}

async fn route(request: Request<Incoming>, config: &InjectConfig) -> Response<Full<Bytes>> {
    let scope = match (request.method(), request.uri().path()) {
        (&Method::GET, "/healthz") => return text(StatusCode::OK, "ok\n"),
        (&Method::POST, "/mutate/pod") => Scope::Pod,
        (&Method::POST, "/mutate/namespace") => Scope::Namespace,
        (_, "/mutate/pod" | "/mutate/namespace") => {
            return text(StatusCode::METHOD_NOT_ALLOWED, "use POST\n");
        }
        _ => return text(StatusCode::NOT_FOUND, "not found\n"),
    };

    let body = match Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(err) => {
            tracing::warn!(error = %err, "failed to read an admission request body");
            let message =
                format!("failed to read the request body (limit {MAX_BODY_BYTES} bytes): {err}\n");
            return text(StatusCode::BAD_REQUEST, &message);
        }
    };

    let started = std::time::Instant::now();
    let result = review::respond(&body, config, scope);
    log_result(&result, scope, started.elapsed());

    let mut response = Response::new(Full::new(Bytes::from(result.json)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

fn log_result(result: &ReviewResult, scope: Scope, elapsed: Duration) {
    let (uid, pod) = (&result.uid, &result.pod);
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    match &result.outcome {
        Outcome::Injected => {
            tracing::info!(uid, pod, ?scope, micros, "injected the triage sidecar");
        }
        Outcome::Skipped(reason) => {
            tracing::debug!(uid, pod, ?scope, micros, %reason, "left the pod as it is");
        }
        Outcome::Rejected(reason) => {
            tracing::info!(uid, pod, ?scope, micros, %reason, "rejected the pod");
        }
        Outcome::Ignored(reason) => {
            tracing::warn!(uid, pod, ?scope, micros, %reason, "allowed a request it could not handle");
        }
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
