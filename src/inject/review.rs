//! Builds the response to one AdmissionReview (admission.k8s.io/v1) for a
//! Pod.
//!
//! Every request that the webhook cannot use is allowed unchanged, with the
//! reason in the response's status message and in a warning, so a broken or
//! misconfigured webhook never blocks pod creation. The one exception is a
//! pod that opts in with an invalid override annotation: it is rejected with
//! a message that names the annotation, because the owner asked for a
//! setting the injector cannot honour.

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::response::Status;
use serde_json::Value;

use crate::inject::patch::{self, InjectConfig, Plan, PlanError, Scope};

/// The webhook's decision on one review, for logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Injected,
    Skipped(String),
    Rejected(String),
    Ignored(String),
}

/// The response to one review and what it was about.
#[derive(Clone, Debug)]
pub struct ReviewResult {
    /// The response AdmissionReview as JSON.
    pub json: Vec<u8>,
    pub outcome: Outcome,
    /// The request's uid, empty when it could not be read.
    pub uid: String,
    /// The pod's namespace and name (or generateName), for logs.
    pub pod: String,
}

/// Processes the AdmissionReview in `body` and builds the response.
pub fn respond(body: &[u8], config: &InjectConfig, scope: Scope) -> ReviewResult {
    let (response, outcome, pod) = match parse_request(body) {
        Ok(request) => {
            let (response, outcome) = respond_to_request(&request, config, scope);
            (response, outcome, describe_pod(&request))
        }
        Err((uid, reason)) => {
            let (response, outcome) = allow_unchanged(invalid_review(uid), reason);
            (response, outcome, String::new())
        }
    };
    let uid = response.uid.clone();
    let json = encode_review(response).unwrap_or_else(|err| {
        // Serializing these plain types cannot fail. If it ever does,
        // respond with the smallest valid review.
        tracing::error!(error = %err, "failed to encode an admission response");
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"","allowed":true}}"#.to_vec()
    });
    ReviewResult {
        json,
        outcome,
        uid,
        pod,
    }
}

/// Encodes the response review, writing `response.patch` as base64.
///
/// The admission.k8s.io/v1 API defines `patch` as bytes, which JSON carries
/// as a base64 string, but kube-core 5.0 serializes its `Vec<u8>` as an
/// array of numbers.
fn encode_review(response: AdmissionResponse) -> Result<Vec<u8>, serde_json::Error> {
    let mut review = serde_json::to_value(response.into_review())?;
    if let Some(patch) = review.pointer_mut("/response/patch") {
        let bytes: Vec<u8> = serde_json::from_value(patch.take())?;
        *patch = Value::String(BASE64_STANDARD.encode(bytes));
    }
    serde_json::to_vec(&review)
}

fn describe_pod(request: &AdmissionRequest<DynamicObject>) -> String {
    let namespace = request.namespace.as_deref().unwrap_or_default();
    let meta = request.object.as_ref().map(|object| &object.metadata);
    let name = meta.and_then(|meta| meta.name.clone().or_else(|| meta.generate_name.clone()));
    format!(
        "{namespace}/{}",
        name.unwrap_or_else(|| request.name.clone())
    )
}

/// Parses the review. On failure, returns the request's uid, when it can be
/// found, with the reason.
fn parse_request(body: &[u8]) -> Result<AdmissionRequest<DynamicObject>, (String, String)> {
    let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(body) {
        Ok(review) => review,
        Err(err) => return Err((find_uid(body), format!("invalid AdmissionReview: {err}"))),
    };

    let api_version = review.types.api_version.clone();
    if api_version != "admission.k8s.io/v1" {
        let reason = format!(
            "unsupported AdmissionReview apiVersion {api_version:?}; expected admission.k8s.io/v1"
        );
        return Err((find_uid(body), reason));
    }
    review.try_into().map_err(|_| {
        (
            String::new(),
            "invalid AdmissionReview: it has no request".to_owned(),
        )
    })
}

fn find_uid(body: &[u8]) -> String {
    let value: Value = serde_json::from_slice(body).unwrap_or_default();
    let uid = value.pointer("/request/uid").and_then(Value::as_str);
    uid.unwrap_or_default().to_owned()
}

fn respond_to_request(
    request: &AdmissionRequest<DynamicObject>,
    config: &InjectConfig,
    scope: Scope,
) -> (AdmissionResponse, Outcome) {
    let response = AdmissionResponse::from(request);
    let kind = &request.kind;
    if !kind.group.is_empty() || kind.kind != "Pod" {
        let reason = format!(
            "triage injects only Pods; this request is for {}",
            describe_kind(request)
        );
        return allow_unchanged(response, reason);
    }
    if request.operation != Operation::Create {
        let reason = format!(
            "triage injects pods only on CREATE, not {:?}",
            request.operation
        );
        return allow_unchanged(response, reason);
    }
    let Some(object) = &request.object else {
        return allow_unchanged(
            response,
            "invalid AdmissionReview: the request has no object".to_owned(),
        );
    };

    let pod = match serde_json::to_value(object) {
        Ok(pod) => pod,
        Err(err) => return allow_unchanged(response, format!("invalid pod: {err}")),
    };
    match patch::plan(&pod, config, scope) {
        Ok(Plan::Inject { patch, warnings }) => with_patch(response, patch, warnings),
        Ok(Plan::Skip(reason)) if reason.is_problem() => {
            allow_unchanged(response, reason.to_string())
        }
        Ok(Plan::Skip(reason)) => {
            let mut response = response;
            response.result.message = reason.to_string();
            (response, Outcome::Skipped(reason.to_string()))
        }
        Err(PlanError::InvalidAnnotation(err)) => reject(response, err.to_string()),
        Err(err) => allow_unchanged(response, err.to_string()),
    }
}

fn describe_kind(request: &AdmissionRequest<DynamicObject>) -> String {
    let kind = &request.kind;
    if kind.group.is_empty() {
        format!("{}/{}", kind.version, kind.kind)
    } else {
        format!("{}/{} {}", kind.group, kind.version, kind.kind)
    }
}

fn with_patch(
    response: AdmissionResponse,
    patch: json_patch::Patch,
    warnings: Vec<String>,
) -> (AdmissionResponse, Outcome) {
    let fallback = response.clone();
    match response.with_patch(patch) {
        Ok(mut response) => {
            if !warnings.is_empty() {
                response.warnings = Some(warnings);
            }
            (response, Outcome::Injected)
        }
        Err(err) => allow_unchanged(fallback, format!("failed to encode the patch: {err}")),
    }
}

/// Allows the request without a patch, with the reason in the status
/// message and in a warning for the client.
fn allow_unchanged(
    mut response: AdmissionResponse,
    reason: String,
) -> (AdmissionResponse, Outcome) {
    response.allowed = true;
    response.result = Status {
        message: reason.clone(),
        ..Status::default()
    };
    response.warnings = Some(vec![format!("triage sidecar not injected: {reason}")]);
    (response, Outcome::Ignored(reason))
}

fn reject(response: AdmissionResponse, reason: String) -> (AdmissionResponse, Outcome) {
    let mut response = response.deny(&reason);
    response.result = Status::failure(&reason, "BadRequest").with_code(400);
    (response, Outcome::Rejected(reason))
}

/// Builds the response to a review that could not be parsed, with the
/// request's uid when it was found, so the API server can match it.
fn invalid_review(uid: String) -> AdmissionResponse {
    let mut response = AdmissionResponse::invalid("invalid AdmissionReview");
    response.uid = uid;
    response
}
