//! Turns the pipeline's choice into the wire [`Decision`] and its receipt.
//! This is where the answer's strings and lists are allocated.

use crate::catalog::ModelId;
use crate::classify::Classification;
use crate::policy::{Policy, Rule};
use crate::proto::{
    Candidate, DecideRequest, Decision, DropReason, ModelRef, Path, Receipt, TaskSource,
};
use crate::task::TaskType;

use super::select::{Choice, Filter, Tokens};
use super::validate::Checked;

/// The pipeline stage that decides, and the task type it decides for.
#[derive(Clone, Copy)]
pub(super) struct Stage<'a> {
    pub path: Path,
    pub rule: Option<&'a Rule>,
    pub task: TaskType,
    pub task_source: TaskSource,
    pub classification: Option<Classification>,
    /// The classifier was unsure of the task, so the bar was raised.
    pub low_confidence: bool,
}

impl<'a> Stage<'a> {
    /// A stage that did not run the classifier.
    pub fn new(
        path: Path,
        rule: Option<&'a Rule>,
        task: TaskType,
        task_source: TaskSource,
    ) -> Self {
        Stage {
            path,
            rule,
            task,
            task_source,
            classification: None,
            low_confidence: false,
        }
    }
}

/// The pipeline's result, before it becomes a [`Decision`].
pub(super) struct Outcome<'a> {
    pub stage: Stage<'a>,
    pub bar: f64,
    pub filter: &'a Filter,
    pub tokens: Tokens,
    pub choice: Choice,
}

pub(super) fn build(policy: &Policy, request: &Checked<'_>, outcome: Outcome<'_>) -> Decision {
    let chosen = outcome.choice.chosen;
    let fallbacks = outcome
        .choice
        .fallbacks()
        .iter()
        .map(|&id| ModelRef {
            model: policy.model(id).name.to_string(),
            provider: policy.provider_name(id).to_owned(),
        })
        .collect();
    let note = match (outcome.choice.met_bar, outcome.stage.low_confidence) {
        (false, _) => "no candidate met the quality bar, so the best candidate was chosen",
        (true, true) => "the classifier was unsure of the task type, so the quality bar was raised",
        (true, false) => "",
    };
    let (confidence, difficulty) = outcome.stage.classification.map_or((0.0, 0.0), |c| {
        (f64::from(c.confidence), f64::from(c.difficulty))
    });
    let receipt = Receipt {
        path: outcome.stage.path.into(),
        rule: outcome
            .stage
            .rule
            .map(|r| r.name.to_string())
            .unwrap_or_default(),
        task_type: if outcome.stage.task_source == TaskSource::None {
            0
        } else {
            outcome.stage.task.to_proto().into()
        },
        task_source: outcome.stage.task_source.into(),
        quality_bar: outcome.bar,
        candidates: candidates(policy, &outcome),
        decide_nanos: 0,
        confidence,
        difficulty,
        deterministic: request.request.deterministic,
        note: note.to_owned(),
    };
    Decision {
        request_id: request.request.request_id.clone(),
        model: policy.model(chosen).name.to_string(),
        provider: policy.provider_name(chosen).to_owned(),
        fallbacks,
        estimated_cost_usd: outcome.tokens.cost(policy, chosen),
        policy_version: policy.version.to_string(),
        receipt: Some(receipt),
    }
}

fn candidates(policy: &Policy, outcome: &Outcome<'_>) -> Vec<Candidate> {
    (0..policy.models.len())
        .map(|index| {
            let id = ModelId(index as u8);
            let model = policy.model(id);
            let quality = model.quality(outcome.stage.task);
            Candidate {
                model: model.name.to_string(),
                provider: policy.provider_name(id).to_owned(),
                quality,
                estimated_cost_usd: outcome.tokens.cost(policy, id),
                dropped: drop_reason(policy, outcome, id, quality).into(),
            }
        })
        .collect()
}

fn drop_reason(policy: &Policy, outcome: &Outcome<'_>, id: ModelId, quality: f64) -> DropReason {
    let choice = &outcome.choice;
    if id == choice.chosen || choice.fallbacks().contains(&id) {
        return DropReason::None;
    }
    if let Some(reason) = outcome.filter.reason(policy, id) {
        return reason;
    }
    if quality < outcome.bar {
        DropReason::BelowQualityBar
    } else {
        DropReason::NotCheapest
    }
}

/// Returns a short description of a drop reason for error messages.
pub(super) fn reason_text(reason: DropReason) -> &'static str {
    match reason {
        DropReason::ProviderNotAllowed => {
            "belongs to a provider the request or policy does not allow"
        }
        DropReason::NotInRuleCandidates => "is not among the matching rule's candidates",
        DropReason::MissingTools => "does not support tools",
        DropReason::MissingVision => "does not support vision",
        DropReason::MissingJsonOutput => "does not support JSON output",
        DropReason::ContextTooSmall => "has too small a context window for this request",
        DropReason::OutputLimitTooSmall => "cannot produce max_output_tokens tokens",
        DropReason::BelowQualityBar => "is below the quality bar",
        DropReason::NotCheapest | DropReason::None | DropReason::Unspecified => "was not chosen",
    }
}

pub(super) fn degraded(policy: &Policy, request: &DecideRequest, note: &str) -> Decision {
    let id = degraded_model(policy, request);
    Decision {
        request_id: request.request_id.clone(),
        model: policy.model(id).name.to_string(),
        provider: policy.provider_name(id).to_owned(),
        fallbacks: Vec::new(),
        estimated_cost_usd: 0.0,
        policy_version: policy.version.to_string(),
        receipt: Some(Receipt {
            path: Path::Degraded.into(),
            task_source: TaskSource::None.into(),
            deterministic: request.deterministic,
            note: note.to_owned(),
            ..Receipt::default()
        }),
    }
}

/// The safe default model, or when the request limits providers and the
/// default is not among them, the first catalog model that is.
fn degraded_model(policy: &Policy, request: &DecideRequest) -> ModelId {
    let default = policy.defaults.model;
    let allowed = |id: ModelId| {
        let provider = policy.provider_name(id);
        request.allowed_providers.iter().any(|p| p == provider)
    };
    if request.allowed_providers.is_empty() || allowed(default) {
        return default;
    }
    (0..policy.models.len())
        .map(|i| ModelId(i as u8))
        .find(|&id| allowed(id))
        .unwrap_or(default)
}
