//! The gRPC services: Router, the standard health service and server
//! reflection (v1 and v1alpha, since grpcurl 1.8 speaks only v1alpha).

use std::sync::Arc;
use std::time::Duration;

use tonic::{Request, Response, Status};
use tonic_health::server::HealthReporter;

use super::state::State;
use crate::decide::DecideError;
use crate::proto::router_server::{Router, RouterServer};
use crate::proto::{self, DecideRequest, Decision, GetPolicyRequest, PolicyInfo};

pub struct RouterService {
    state: Arc<State>,
}

#[tonic::async_trait]
impl Router for RouterService {
    async fn decide(&self, request: Request<DecideRequest>) -> Result<Response<Decision>, Status> {
        let request = request.into_inner();
        match self.state.decide(&request) {
            Ok(decision) => {
                tracing::debug!(request_id = %request.request_id, model = %decision.model, "decided");
                Ok(Response::new(decision))
            }
            Err(err) => Err(status(&err)),
        }
    }

    async fn get_policy(
        &self,
        _: Request<GetPolicyRequest>,
    ) -> Result<Response<PolicyInfo>, Status> {
        Ok(Response::new(policy_info(&self.state)))
    }
}

pub fn status(err: &DecideError) -> Status {
    match err {
        DecideError::InvalidArgument { .. } => Status::invalid_argument(err.to_string()),
        DecideError::FailedPrecondition { .. } => Status::failed_precondition(err.to_string()),
    }
}

pub fn policy_info(state: &State) -> PolicyInfo {
    let loaded = state.policy();
    let policy = &loaded.policy;
    PolicyInfo {
        version: policy.version.to_string(),
        rule_count: policy.rules.len() as u32,
        model_count: policy.models.len() as u32,
        provider_count: policy.providers.len() as u32,
        source: policy.source.to_string(),
        loaded_at_unix: loaded.loaded_at_unix,
        warnings: policy.warnings.iter().map(ToString::to_string).collect(),
    }
}

/// Builds the routes every gRPC listener serves, and the health reporter
/// that marks the Router service serving or not.
pub fn routes(
    state: Arc<State>,
) -> Result<(tonic::service::Routes, HealthReporter), tonic_reflection::server::Error> {
    let (reporter, health) = tonic_health::server::health_reporter();
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let routes = tonic::service::Routes::new(RouterServer::new(RouterService { state }))
        .add_service(health)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?);
    Ok((routes, reporter))
}

/// Marks Router serving (or not) in the health service, both under its
/// own name and under the empty name that probes check by default.
pub async fn set_serving(reporter: &HealthReporter, serving: bool) {
    use tonic_health::ServingStatus;
    let status = if serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    reporter.set_service_status("", status).await;
    reporter.set_service_status(SERVICE_NAME, status).await;
}

pub const SERVICE_NAME: &str = "triage.v1.Router";

/// How long an idle HTTP/2 connection may stay open without a ping reply.
pub const KEEPALIVE: Duration = Duration::from_secs(20);
