//! The admin HTTP listener: /metrics, /healthz, /readyz, /policy and
//! /config. It runs
//! on its own task, apart from the decision path, so a scrape never waits
//! behind decisions.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::state::State;
use crate::catalog::ModelId;
use crate::telemetry;

/// Serves admin requests on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    config: Arc<serde_json::Value>,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, _) = match accepted {
            Ok(conn) => conn,
            Err(err) => {
                // Accept errors such as EMFILE are transient: log, pause, go on.
                tracing::warn!(error = %err, "admin listener accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = state.clone();
        let config = config.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                let config = config.clone();
                async move { Ok::<_, Infallible>(route(&state, &config, &request)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(5))
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(err) = result {
                        tracing::debug!(error = %err, "admin connection ended with an error");
                    }
                }
                () = shutdown.cancelled() => conn.as_mut().graceful_shutdown(),
            }
        });
    }
    tracing::info!("admin listener stopped");
}

fn route(
    state: &State,
    config: &serde_json::Value,
    request: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
    }
    match request.uri().path() {
        "/metrics" => {
            let handle = telemetry::metrics_handle();
            handle.run_upkeep();
            let mut response = text(StatusCode::OK, &handle.render());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            response
        }
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if state.is_ready() => text(StatusCode::OK, "ready\n"),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        "/policy" => json(policy_json(state)),
        "/config" => json(config.clone()),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; try /metrics, /healthz, /readyz, /policy or /config\n",
        ),
    }
}

fn policy_json(state: &State) -> serde_json::Value {
    let loaded = state.policy();
    let policy = &loaded.policy;
    let models: Vec<_> = policy
        .models
        .iter()
        .enumerate()
        .map(|(i, model)| {
            serde_json::json!({
                "name": &*model.name,
                "provider": policy.provider_name(ModelId(i as u8)),
                "input_usd_per_mtok": model.input_usd_per_mtok,
                "output_usd_per_mtok": model.output_usd_per_mtok,
                "context_tokens": model.context_tokens,
                "max_output_tokens": model.max_output_tokens,
            })
        })
        .collect();
    let rules: Vec<&str> = policy.rules.rules().iter().map(|r| &*r.name).collect();
    let warnings: Vec<String> = policy.warnings.iter().map(ToString::to_string).collect();
    serde_json::json!({
        "version": &*policy.version,
        "source": &*policy.source,
        "loaded_at_unix": loaded.loaded_at_unix,
        "providers": policy.providers.iter().map(|p| &*p.name).collect::<Vec<_>>(),
        "models": models,
        "rules": rules,
        "warnings": warnings,
    })
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::copy_from_slice(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn json(value: serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}
