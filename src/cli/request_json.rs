//! JSON forms of a request and a decision for `explain` and `route`. Field
//! names are the proto field names; enums are written as their proto value
//! names (for example "PATH_RULE") and read from those names or from the
//! policy file's short names (for example "code" or "best").

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::proto::{
    self, Candidate, DecideRequest, Decision, DropReason, Path, QualityTier, TaskSource,
};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RequestJson {
    request_id: String,
    tenant: String,
    route: String,
    labels: HashMap<String, String>,
    prompt: String,
    messages: Vec<MessageJson>,
    task_type: Option<String>,
    pinned_model: String,
    latency_budget_ms: u32,
    quality_tier: Option<String>,
    allowed_providers: Vec<String>,
    required: Option<RequiredJson>,
    max_output_tokens: u32,
    sticky_key: String,
    deterministic: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageJson {
    role: String,
    content: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RequiredJson {
    tools: bool,
    vision: bool,
    json_output: bool,
    min_context_tokens: u32,
}

impl RequestJson {
    pub fn into_request(self) -> anyhow::Result<DecideRequest> {
        let task_type = match self.task_type.as_deref() {
            None | Some("") => 0,
            Some(name) => task_value(name)?,
        };
        let quality_tier = match self.quality_tier.as_deref() {
            None | Some("") => 0,
            Some(name) => tier_value(name)?,
        };
        Ok(DecideRequest {
            request_id: self.request_id,
            tenant: self.tenant,
            route: self.route,
            labels: self.labels,
            prompt: self.prompt,
            messages: self
                .messages
                .into_iter()
                .map(|m| proto::Message {
                    role: m.role,
                    content: m.content,
                })
                .collect(),
            task_type,
            pinned_model: self.pinned_model,
            latency_budget_ms: self.latency_budget_ms,
            quality_tier,
            allowed_providers: self.allowed_providers,
            required: self.required.map(|r| proto::Requirements {
                tools: r.tools,
                vision: r.vision,
                json_output: r.json_output,
                min_context_tokens: r.min_context_tokens,
            }),
            max_output_tokens: self.max_output_tokens,
            sticky_key: self.sticky_key,
            deterministic: self.deterministic,
        })
    }
}

fn task_value(name: &str) -> anyhow::Result<i32> {
    if let Some(task) = proto::TaskType::from_str_name(name) {
        return Ok(task.into());
    }
    let task: crate::task::TaskType = name
        .parse()
        .map_err(|err| anyhow::anyhow!("invalid task_type: {err}"))?;
    Ok(task.to_proto().into())
}

fn tier_value(name: &str) -> anyhow::Result<i32> {
    if let Some(tier) = QualityTier::from_str_name(name) {
        return Ok(tier.into());
    }
    let tier = match name {
        "best" => QualityTier::Best,
        "high" => QualityTier::High,
        "standard" => QualityTier::Standard,
        "economy" => QualityTier::Economy,
        _ => anyhow::bail!("invalid quality_tier {name:?}; use best, high, standard or economy"),
    };
    Ok(tier.into())
}

fn enum_name<T: TryFrom<i32>>(value: i32, name: impl Fn(&T) -> &'static str) -> Value {
    match T::try_from(value) {
        Ok(known) => json!(name(&known)),
        Err(_) => json!(value),
    }
}

pub fn decision_to_json(decision: &Decision) -> Value {
    let fallbacks: Vec<Value> = decision
        .fallbacks
        .iter()
        .map(|f| json!({"model": f.model, "provider": f.provider}))
        .collect();
    let receipt = decision.receipt.as_ref().map(|r| {
        json!({
            "path": enum_name(r.path, Path::as_str_name),
            "rule": r.rule,
            "task_type": enum_name(r.task_type, proto::TaskType::as_str_name),
            "task_source": enum_name(r.task_source, TaskSource::as_str_name),
            "confidence": r.confidence,
            "difficulty": r.difficulty,
            "quality_bar": r.quality_bar,
            "candidates": r.candidates.iter().map(candidate_json).collect::<Vec<_>>(),
            "decide_nanos": r.decide_nanos,
            "deterministic": r.deterministic,
            "note": r.note,
        })
    });
    json!({
        "request_id": decision.request_id,
        "model": decision.model,
        "provider": decision.provider,
        "fallbacks": fallbacks,
        "estimated_cost_usd": decision.estimated_cost_usd,
        "policy_version": decision.policy_version,
        "receipt": receipt,
    })
}

fn candidate_json(candidate: &Candidate) -> Value {
    json!({
        "model": candidate.model,
        "provider": candidate.provider,
        "quality": candidate.quality,
        "estimated_cost_usd": candidate.estimated_cost_usd,
        "dropped": enum_name(candidate.dropped, DropReason::as_str_name),
    })
}
