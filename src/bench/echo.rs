//! Baseline servers that do no routing work: they decode each request and
//! respond with a canned decision of the real decision's size, through the
//! same listener code as the real server.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::decide::DecideError;
use crate::proto::router_server::Router;
use crate::proto::{DecideRequest, Decision, GetPolicyRequest, PolicyInfo};
use crate::serve::frame::Responder;

/// Responds to every request with a copy of one decision, carrying the
/// request's id.
#[derive(Clone)]
pub struct Canned {
    decision: Arc<Decision>,
}

impl Canned {
    pub fn new(decision: Decision) -> Self {
        Canned {
            decision: Arc::new(decision),
        }
    }

    fn answer(&self, request: &DecideRequest) -> Decision {
        let mut decision = Decision::clone(&self.decision);
        decision.request_id.clone_from(&request.request_id);
        decision
    }
}

impl Responder for Canned {
    fn respond(&self, request: &DecideRequest) -> Result<Decision, DecideError> {
        Ok(self.answer(request))
    }
}

#[tonic::async_trait]
impl Router for Canned {
    async fn decide(&self, request: Request<DecideRequest>) -> Result<Response<Decision>, Status> {
        Ok(Response::new(self.answer(request.get_ref())))
    }

    async fn get_policy(
        &self,
        _: Request<GetPolicyRequest>,
    ) -> Result<Response<PolicyInfo>, Status> {
        Ok(Response::new(PolicyInfo::default()))
    }
}
