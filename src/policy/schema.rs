//! The policy file as written: YAML mapped onto serde types. Unknown keys are
//! errors, and every value that later checks can reject keeps its location.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::task::TaskType;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    #[serde(default)]
    pub version: Option<Spanned<String>>,
    pub providers: Vec<ProviderSpec>,
    pub models: Vec<ModelSpec>,
    pub defaults: DefaultsSpec,
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
    #[serde(default)]
    pub classifier: Option<ClassifierSpec>,
}

/// How classifier output becomes a quality bar.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierSpec {
    /// Points (difficulty, quality bar), both from 0 to 1, with difficulty
    /// rising; the bar between points is interpolated linearly.
    pub difficulty_curve: Option<Spanned<Vec<[f64; 2]>>>,
    /// A task confidence below this raises the bar to `low_confidence_bar`.
    pub min_confidence: Option<Spanned<f64>>,
    pub low_confidence_bar: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    pub name: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub name: Spanned<String>,
    pub provider: Spanned<String>,
    pub input_usd_per_mtok: Spanned<f64>,
    pub output_usd_per_mtok: Spanned<f64>,
    pub context_tokens: Spanned<u32>,
    pub max_output_tokens: Spanned<u32>,
    #[serde(default)]
    pub capabilities: Vec<Spanned<Capability>>,
    pub quality: Spanned<QualitySpec>,
}

/// A feature a model offers and a request can require.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    Tools,
    Vision,
    JsonOutput,
}

/// Quality scores from 0 to 1, one per task type; `default` covers the task
/// types left out.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualitySpec {
    pub default: Option<Spanned<f64>>,
    pub code: Option<Spanned<f64>>,
    pub math: Option<Spanned<f64>>,
    pub reasoning: Option<Spanned<f64>>,
    pub summarization: Option<Spanned<f64>>,
    pub extraction: Option<Spanned<f64>>,
    pub classification: Option<Spanned<f64>>,
    pub creative_writing: Option<Spanned<f64>>,
    pub open_qa: Option<Spanned<f64>>,
    pub closed_qa: Option<Spanned<f64>>,
    pub rewrite: Option<Spanned<f64>>,
    pub chat: Option<Spanned<f64>>,
}

impl QualitySpec {
    /// The score written for `task`, without the `default` fallback.
    pub fn get(&self, task: TaskType) -> Option<&Spanned<f64>> {
        match task {
            TaskType::Code => self.code.as_ref(),
            TaskType::Math => self.math.as_ref(),
            TaskType::Reasoning => self.reasoning.as_ref(),
            TaskType::Summarization => self.summarization.as_ref(),
            TaskType::Extraction => self.extraction.as_ref(),
            TaskType::Classification => self.classification.as_ref(),
            TaskType::CreativeWriting => self.creative_writing.as_ref(),
            TaskType::OpenQa => self.open_qa.as_ref(),
            TaskType::ClosedQa => self.closed_qa.as_ref(),
            TaskType::Rewrite => self.rewrite.as_ref(),
            TaskType::Chat => self.chat.as_ref(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultsSpec {
    pub task_type: Spanned<TaskType>,
    pub model: Spanned<String>,
    #[serde(default)]
    pub latency_bypass_ms: Option<Spanned<u32>>,
    #[serde(default)]
    pub output_tokens: Option<Spanned<u32>>,
    #[serde(default)]
    pub max_fallbacks: Option<Spanned<u32>>,
    #[serde(default)]
    pub quality_bars: Option<QualityBarsSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualityBarsSpec {
    pub high: Option<Spanned<f64>>,
    pub standard: Option<Spanned<f64>>,
    pub economy: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: Spanned<String>,
    #[serde(rename = "match", default)]
    pub conditions: MatchSpec,
    pub action: Spanned<ActionSpec>,
}

/// Conditions of a rule. Every listed field must match; a field left out
/// matches anything.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchSpec {
    pub tenants: Option<Vec<Spanned<String>>>,
    pub routes: Option<Vec<Spanned<String>>>,
    pub labels: Option<BTreeMap<String, String>>,
    pub tasks: Option<Vec<Spanned<TaskType>>>,
    pub tiers: Option<Vec<Spanned<Tier>>>,
}

/// A quality tier a request can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Best,
    High,
    Standard,
    Economy,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    pub pin: Option<Spanned<String>>,
    pub providers: Option<Vec<Spanned<String>>>,
    pub candidates: Option<Vec<Spanned<String>>>,
    pub quality_bar: Option<Spanned<f64>>,
    pub task_type: Option<Spanned<TaskType>>,
    pub skip_classifier: Option<bool>,
}

impl<'de> Deserialize<'de> for TaskType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}
