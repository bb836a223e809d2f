//! Baseline servers that do no routing work: they decode each request and
//! respond with a canned decision of the real decision's size, through the
//! same listener code as the real server.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message as _;
use tonic::{Request, Response, Status};

use crate::decide::{put_string, string_len};
use crate::frame::FrameError;
use crate::proto::router_server::Router;
use crate::proto::{DecideRequest, Decision, GetPolicyRequest, PolicyInfo};
use crate::serve::frame::{Responder, respond_encoded};

/// The field number of `Decision.request_id`, which prost writes first.
const REQUEST_ID_FIELD: u32 = 1;

/// Responds to every request with a copy of one decision, carrying the
/// request's id.
#[derive(Clone)]
pub struct Canned {
    decision: Arc<Decision>,
    /// The decision encoded without its request id.
    without_id: Bytes,
}

impl Canned {
    pub fn new(decision: Decision) -> Self {
        let mut anonymous = decision.clone();
        anonymous.request_id.clear();
        Canned {
            decision: Arc::new(decision),
            without_id: Bytes::from(anonymous.encode_to_vec()),
        }
    }

    fn answer(&self, request: &DecideRequest) -> Decision {
        let mut decision = Decision::clone(&self.decision);
        decision.request_id.clone_from(&request.request_id);
        decision
    }
}

/// Like the real server, the frame baseline writes its response straight into
/// the output buffer: the request's id, then the canned decision's other
/// fields, encoded once.
impl Responder for Canned {
    fn respond(
        &self,
        request: &DecideRequest,
        id: u64,
        output: &mut BytesMut,
    ) -> Result<(), FrameError> {
        let request_id = &request.request_id;
        let id_len = string_len(REQUEST_ID_FIELD, request_id);
        respond_encoded(output, id, id_len + self.without_id.len(), |buf| {
            put_string(REQUEST_ID_FIELD, request_id, buf);
            buf.put_slice(&self.without_id);
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{self, DEFAULT_MAX_FRAME_BYTES};
    use crate::proto::{ModelRef, Receipt};

    #[test]
    fn frame_answer_carries_request_id() {
        let canned = Canned::new(Decision {
            request_id: "canned".into(),
            model: "alpha".into(),
            provider: "a".into(),
            fallbacks: vec![ModelRef {
                model: "beta".into(),
                provider: "b".into(),
            }],
            estimated_cost_usd: 0.25,
            policy_version: "v1".into(),
            receipt: Some(Receipt::default()),
        });
        for request_id in ["req-7", ""] {
            let request = DecideRequest {
                request_id: request_id.into(),
                ..DecideRequest::default()
            };
            let mut output = BytesMut::new();
            canned.respond(&request, 9, &mut output).unwrap();
            let answer = frame::decode(&mut output, DEFAULT_MAX_FRAME_BYTES)
                .unwrap()
                .unwrap();
            assert_eq!(answer.id, 9);
            let decision = Decision::decode(answer.payload).unwrap();
            assert_eq!(
                decision,
                canned.answer(&request),
                "request id {request_id:?}"
            );
        }
    }
}
