//! Request validation: turns a wire request into checked values with ids, or
//! a [`DecideError`] that names the field.

use crate::catalog::{Capabilities, ModelId, ProviderSet};
use crate::policy::{Policy, Tier};
use crate::proto::{DecideRequest, QualityTier, TaskType as ProtoTask};
use crate::task::TaskType;

use super::{DecideError, Limits};

const ROLES: [&str; 4] = ["system", "user", "assistant", "tool"];
/// Bytes of text assumed per token when estimating input tokens. English
/// text averages about four bytes per token in common tokenizers; this is an
/// estimate for cost and context checks, not a count.
const BYTES_PER_TOKEN: u64 = 4;

/// A request that passed validation, with names resolved to ids.
pub(super) struct Checked<'a> {
    pub request: &'a DecideRequest,
    pub declared_task: Option<TaskType>,
    /// The requested tier; a request without one is treated as standard.
    pub tier: Tier,
    pub providers: ProviderSet,
    pub capabilities: Capabilities,
    pub min_context_tokens: u32,
    pub input_tokens: u64,
    pub output_tokens: u32,
    pub pinned: Option<ModelId>,
    /// The text the classifier reads: the prompt, or the last user message.
    pub text: &'a str,
}

pub(super) fn check<'a>(
    policy: &Policy,
    limits: &Limits,
    request: &'a DecideRequest,
) -> Result<Checked<'a>, DecideError> {
    check_sizes(limits, request)?;
    let text_bytes = check_text(limits, request)?;
    let declared_task = declared_task(request.task_type)?;
    let tier = tier(request.quality_tier)?;
    let providers = providers(policy, request)?;
    let pinned = pinned(policy, request)?;

    let required = request.required.unwrap_or_default();
    let mut capabilities = Capabilities::empty();
    for (wanted, capability) in [
        (required.tools, Capabilities::TOOLS),
        (required.vision, Capabilities::VISION),
        (required.json_output, Capabilities::JSON_OUTPUT),
    ] {
        if wanted {
            capabilities = capabilities.union(capability);
        }
    }

    let output_tokens = match request.max_output_tokens {
        0 => policy.defaults.output_tokens,
        tokens => tokens,
    };
    Ok(Checked {
        request,
        declared_task,
        tier,
        providers,
        capabilities,
        min_context_tokens: required.min_context_tokens,
        input_tokens: (text_bytes as u64).div_ceil(BYTES_PER_TOKEN),
        output_tokens,
        pinned,
        text: classifier_text(request),
    })
}

fn check_sizes(limits: &Limits, request: &DecideRequest) -> Result<(), DecideError> {
    let fields = [
        ("request_id", &request.request_id),
        ("tenant", &request.tenant),
        ("route", &request.route),
        ("pinned_model", &request.pinned_model),
        ("sticky_key", &request.sticky_key),
    ];
    for (field, value) in fields {
        if value.len() > limits.max_field_bytes {
            return Err(DecideError::invalid(
                field,
                format!(
                    "{} bytes is over the limit of {} bytes",
                    value.len(),
                    limits.max_field_bytes
                ),
            ));
        }
    }
    if request.labels.len() > limits.max_labels {
        return Err(DecideError::invalid(
            "labels",
            format!(
                "{} labels is over the limit of {}",
                request.labels.len(),
                limits.max_labels
            ),
        ));
    }
    Ok(())
}

/// Checks prompt and messages and returns their total size in bytes.
fn check_text(limits: &Limits, request: &DecideRequest) -> Result<usize, DecideError> {
    if !request.prompt.is_empty() && !request.messages.is_empty() {
        return Err(DecideError::invalid(
            "prompt",
            "set either prompt or messages, not both",
        ));
    }
    for (i, message) in request.messages.iter().enumerate() {
        if !ROLES.contains(&message.role.as_str()) {
            return Err(DecideError::invalid(
                format!("messages[{i}].role"),
                format!(
                    "unknown role {:?}; use one of {}",
                    truncated(&message.role),
                    ROLES.join(", ")
                ),
            ));
        }
    }
    let bytes = request.prompt.len()
        + request
            .messages
            .iter()
            .map(|m| m.content.len())
            .sum::<usize>();
    if bytes > limits.max_prompt_bytes {
        let field = if request.messages.is_empty() {
            "prompt"
        } else {
            "messages"
        };
        return Err(DecideError::invalid(
            field,
            format!(
                "{bytes} bytes is over the limit of {} bytes; raise --max-prompt-bytes or send less text",
                limits.max_prompt_bytes
            ),
        ));
    }
    Ok(bytes)
}

fn declared_task(value: i32) -> Result<Option<TaskType>, DecideError> {
    match ProtoTask::try_from(value) {
        Ok(task) => Ok(TaskType::from_proto(task)),
        Err(_) => Err(DecideError::invalid(
            "task_type",
            format!("unknown task type value {value}"),
        )),
    }
}

fn tier(value: i32) -> Result<Tier, DecideError> {
    match QualityTier::try_from(value) {
        Ok(QualityTier::Unspecified | QualityTier::Standard) => Ok(Tier::Standard),
        Ok(QualityTier::Best) => Ok(Tier::Best),
        Ok(QualityTier::High) => Ok(Tier::High),
        Ok(QualityTier::Economy) => Ok(Tier::Economy),
        Err(_) => Err(DecideError::invalid(
            "quality_tier",
            format!("unknown quality tier value {value}"),
        )),
    }
}

fn providers(policy: &Policy, request: &DecideRequest) -> Result<ProviderSet, DecideError> {
    if request.allowed_providers.is_empty() {
        return Ok(ProviderSet::ALL);
    }
    let mut set = ProviderSet::empty();
    for (i, name) in request.allowed_providers.iter().enumerate() {
        match policy.provider_id(name) {
            Some(id) => set.insert(id),
            None => {
                let known: Vec<&str> = policy.providers.iter().map(|p| &*p.name).collect();
                return Err(DecideError::invalid(
                    format!("allowed_providers[{i}]"),
                    format!(
                        "unknown provider {:?}; the policy has {}",
                        truncated(name),
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(set)
}

fn pinned(policy: &Policy, request: &DecideRequest) -> Result<Option<ModelId>, DecideError> {
    if request.pinned_model.is_empty() {
        return Ok(None);
    }
    match policy.model_id(&request.pinned_model) {
        Some(id) => Ok(Some(id)),
        None => Err(DecideError::invalid(
            "pinned_model",
            format!(
                "unknown model {:?}; pin a model listed in policy {}, see GetPolicy or /policy",
                truncated(&request.pinned_model),
                policy.version
            ),
        )),
    }
}

fn classifier_text(request: &DecideRequest) -> &str {
    if !request.prompt.is_empty() {
        return &request.prompt;
    }
    let last_user = request.messages.iter().rev().find(|m| m.role == "user");
    last_user.map_or("", |m| m.content.as_str())
}

/// At most 64 bytes of a caller's value, cut on a character boundary, so an
/// error message stays short whatever was sent.
fn truncated(value: &str) -> &str {
    let mut end = value.len().min(64);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}
