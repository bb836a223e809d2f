//! The pipeline's result, [`Verdict`], and its conversion to the wire
//! [`Decision`] with a receipt. The conversion is where the answer's
//! strings and lists are allocated, and a verdict itself allocates nothing.

use crate::catalog::ModelId;
use crate::classify::Classification;
use crate::policy::{Policy, Rule};
use crate::proto::{
    Candidate, DecideRequest, Decision, DropReason, ModelRef, Path, Receipt, TaskSource,
};
use crate::task::TaskType;

use super::select::{Choice, Filter, Tokens};

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

/// A decision as the pipeline makes it: the chosen model and its failover
/// list as catalog ids, with everything the receipt needs, borrowed from
/// the policy and the request. Reading the model, provider and fallbacks
/// from it allocates nothing; [`Verdict::to_decision`] builds the wire
/// message with the full receipt.
pub struct Verdict<'a> {
    pub(super) policy: &'a Policy,
    pub(super) request: &'a DecideRequest,
    pub(super) stage: Stage<'a>,
    pub(super) bar: f64,
    pub(super) filter: Filter,
    pub(super) tokens: Tokens,
    pub(super) choice: Choice,
}

impl<'a> Verdict<'a> {
    /// Returns the name of the chosen model.
    pub fn model(&self) -> &'a str {
        &self.policy.model(self.choice.chosen).name
    }

    /// Returns the provider of the chosen model.
    pub fn provider(&self) -> &'a str {
        self.policy.provider_name(self.choice.chosen)
    }

    /// Returns the failover list as (model, provider) names, in order.
    pub fn fallbacks(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        let policy = self.policy;
        self.fallback_ids()
            .map(move |id| (&*policy.model(id).name, policy.provider_name(id)))
    }

    /// Returns the ids of the failover list's models, in order.
    pub(super) fn fallback_ids(&self) -> impl Iterator<Item = ModelId> + '_ {
        self.choice.fallbacks().iter().copied()
    }

    /// Returns the estimated cost of the call on the chosen model, in USD.
    pub fn estimated_cost_usd(&self) -> f64 {
        self.tokens.cost(self.policy, self.choice.chosen)
    }

    /// Returns the pipeline stage that decided.
    pub fn path(&self) -> Path {
        self.stage.path
    }

    /// Returns the name of the rule that matched, or "" when none did.
    pub fn rule(&self) -> &'a str {
        self.stage.rule.map_or("", |r| &*r.name)
    }

    /// Returns the version of the policy that decided.
    pub fn policy_version(&self) -> &'a str {
        &self.policy.version
    }

    /// Builds the wire message: the decision and a receipt that lists every
    /// catalog model with its estimated cost and the reason it was not
    /// chosen. `decide_nanos` is left at 0 for the caller to fill in.
    pub fn to_decision(&self) -> Decision {
        let fallbacks = self
            .fallbacks()
            .map(|(model, provider)| ModelRef {
                model: model.to_owned(),
                provider: provider.to_owned(),
            })
            .collect();
        let parts = self.receipt_parts();
        let candidates = self
            .candidate_rows()
            .map(|row| Candidate {
                model: row.model.to_owned(),
                provider: row.provider.to_owned(),
                quality: row.quality,
                estimated_cost_usd: row.estimated_cost_usd,
                dropped: row.dropped.into(),
            })
            .collect();
        let receipt = Receipt {
            path: parts.path,
            rule: parts.rule.to_owned(),
            task_type: parts.task_type,
            task_source: parts.task_source,
            quality_bar: self.bar,
            candidates,
            decide_nanos: 0,
            confidence: parts.confidence,
            difficulty: parts.difficulty,
            deterministic: parts.deterministic,
            note: parts.note.to_owned(),
        };
        Decision {
            request_id: self.request.request_id.clone(),
            model: self.model().to_owned(),
            provider: self.provider().to_owned(),
            fallbacks,
            estimated_cost_usd: self.estimated_cost_usd(),
            policy_version: self.policy_version().to_owned(),
            receipt: Some(receipt),
        }
    }

    /// Returns the receipt's scalar fields, as the wire message contains them.
    pub(super) fn receipt_parts(&self) -> ReceiptParts<'a> {
        let note = match (self.choice.met_bar, self.stage.low_confidence) {
            (false, _) => "no candidate met the quality bar, so the best candidate was chosen",
            (true, true) => {
                "the classifier was unsure of the task type, so the quality bar was raised"
            }
            (true, false) => "",
        };
        let (confidence, difficulty) = self.stage.classification.map_or((0.0, 0.0), |c| {
            (f64::from(c.confidence), f64::from(c.difficulty))
        });
        ReceiptParts {
            path: self.stage.path.into(),
            rule: self.rule(),
            task_type: if self.stage.task_source == TaskSource::None {
                0
            } else {
                self.stage.task.to_proto().into()
            },
            task_source: self.stage.task_source.into(),
            confidence,
            difficulty,
            deterministic: self.request.deterministic,
            note,
        }
    }

    /// Returns one row per catalog model, in catalog order: the receipt's
    /// candidate list.
    pub(super) fn candidate_rows(&self) -> impl Iterator<Item = CandidateRow<'a>> + '_ {
        let policy = self.policy;
        (0..policy.models.len()).map(move |index| {
            let id = ModelId(index as u8);
            let model = policy.model(id);
            let quality = model.quality(self.stage.task);
            CandidateRow {
                id,
                model: &model.name,
                provider: policy.provider_name(id),
                quality,
                estimated_cost_usd: self.tokens.cost(policy, id),
                dropped: drop_reason(policy, self, id, quality),
            }
        })
    }
}

/// The scalar fields of a receipt, with enums as their wire numbers.
pub(super) struct ReceiptParts<'a> {
    pub path: i32,
    pub rule: &'a str,
    pub task_type: i32,
    pub task_source: i32,
    pub confidence: f64,
    pub difficulty: f64,
    pub deterministic: bool,
    pub note: &'static str,
}

/// One model of a receipt's candidate list, with borrowed names.
pub(super) struct CandidateRow<'a> {
    pub id: ModelId,
    pub model: &'a str,
    pub provider: &'a str,
    pub quality: f64,
    pub estimated_cost_usd: f64,
    pub dropped: DropReason,
}

fn drop_reason(policy: &Policy, outcome: &Verdict<'_>, id: ModelId, quality: f64) -> DropReason {
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
