//! Why a request cannot be decided. Each variant maps to one gRPC status code
//! and has a fixed label for metrics.

/// A request the pipeline rejects. `field` names the request field at fault,
/// as written in the proto (for example `messages[2].role`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    /// The request is malformed: the caller must change it.
    #[error("invalid {field}: {message}")]
    InvalidArgument { field: String, message: String },
    /// The request is well formed but the policy cannot satisfy it, for
    /// example a pinned model that the provider limit forbids.
    #[error("cannot satisfy {field}: {message}")]
    FailedPrecondition { field: String, message: String },
}

impl DecideError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        DecideError::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn precondition(field: impl Into<String>, message: impl Into<String>) -> Self {
        DecideError::FailedPrecondition {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A fixed label for metrics; never derived from request content.
    pub fn label(&self) -> &'static str {
        match self {
            DecideError::InvalidArgument { .. } => "invalid_argument",
            DecideError::FailedPrecondition { .. } => "failed_precondition",
        }
    }

    pub fn field(&self) -> &str {
        match self {
            DecideError::InvalidArgument { field, .. }
            | DecideError::FailedPrecondition { field, .. } => field,
        }
    }
}
