//! Policy files: parsing, validation and compilation into the immutable
//! [`Policy`] the decision pipeline reads.

mod compile;
mod diagnostic;
pub mod rules;
pub mod schema;

use std::collections::HashMap;
use std::path::Path;

pub use diagnostic::{Diagnostic, Severity};
pub use rules::{Action, MatchInput, Rule, RuleTable};
pub use schema::Tier;

use crate::catalog::{Model, ModelId, Provider, ProviderId};
use crate::task::TaskType;

/// The policy compiled into the binary, served when no `--policy` is given.
pub const EMBEDDED_POLICY: &str = include_str!("../policies/default.yaml");

/// The source name reported for [`EMBEDDED_POLICY`].
pub const EMBEDDED_SOURCE: &str = "embedded";

/// Settings that apply when no rule or request overrides them.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub task_type: TaskType,
    /// Returned on internal failure, with path `DEGRADED`.
    pub model: ModelId,
    /// A declared p99 budget under this many milliseconds skips the classifier.
    pub latency_bypass_ms: u32,
    /// Output tokens assumed for cost estimates when a request gives none.
    pub output_tokens: u32,
    pub max_fallbacks: usize,
    /// Quality bar per tier: high, standard, economy.
    pub quality_bars: QualityBars,
    pub classifier: ClassifierPolicy,
}

/// How classifier output sets the quality bar.
#[derive(Debug, Clone)]
pub struct ClassifierPolicy {
    /// (difficulty, bar) points with difficulty strictly rising, at least two.
    pub difficulty_curve: Vec<(f64, f64)>,
    /// A task confidence below this routes conservatively.
    pub min_confidence: f64,
    /// The lowest bar used when confidence is below `min_confidence`.
    pub low_confidence_bar: f64,
}

impl ClassifierPolicy {
    /// The quality bar for a difficulty, interpolated on the curve and held
    /// flat beyond its ends.
    pub fn bar_for(&self, difficulty: f64) -> f64 {
        let curve = &self.difficulty_curve;
        let (Some(first), Some(last)) = (curve.first(), curve.last()) else {
            return 0.0;
        };
        if difficulty <= first.0 {
            return first.1;
        }
        if difficulty >= last.0 {
            return last.1;
        }
        for pair in curve.windows(2) {
            let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
            if difficulty <= x1 {
                return y0 + (y1 - y0) * (difficulty - x0) / (x1 - x0);
            }
        }
        last.1
    }
}

#[derive(Debug, Clone, Copy)]
pub struct QualityBars {
    pub high: f64,
    pub standard: f64,
    pub economy: f64,
}

/// A fully validated policy. It is immutable: a reload builds a new one and
/// swaps the pointer.
#[derive(Debug)]
pub struct Policy {
    pub version: Box<str>,
    /// The file path the policy came from, or [`EMBEDDED_SOURCE`].
    pub source: Box<str>,
    pub providers: Vec<Provider>,
    pub models: Vec<Model>,
    pub defaults: Defaults,
    pub rules: RuleTable,
    pub warnings: Vec<Diagnostic>,
    /// Each model's `ModelRef` in protobuf encoding, by [`ModelId`].
    model_refs: Vec<Box<[u8]>>,
    model_ids: HashMap<Box<str>, ModelId>,
    provider_ids: HashMap<Box<str>, ProviderId>,
}

impl Policy {
    /// Parses and compiles policy text. `source` names the file in
    /// diagnostics. On failure every error found is returned, not just the
    /// first.
    pub fn compile(source: &str, text: &str) -> Result<Policy, Vec<Diagnostic>> {
        compile::compile(source, text)
    }

    /// Reads and compiles a policy file.
    pub fn load(path: &Path) -> Result<Policy, Vec<Diagnostic>> {
        let source = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Policy::compile(&source, &text),
            Err(err) => Err(vec![Diagnostic::error(
                &source,
                0,
                0,
                format!("cannot read policy file: {err}"),
            )]),
        }
    }

    /// Compiles the policy built into the binary.
    pub fn embedded() -> Result<Policy, Vec<Diagnostic>> {
        Policy::compile(EMBEDDED_SOURCE, EMBEDDED_POLICY)
    }

    pub fn model_id(&self, name: &str) -> Option<ModelId> {
        self.model_ids.get(name).copied()
    }

    pub fn provider_id(&self, name: &str) -> Option<ProviderId> {
        self.provider_ids.get(name).copied()
    }

    pub fn model(&self, id: ModelId) -> &Model {
        &self.models[usize::from(id.0)]
    }

    pub fn provider(&self, id: ProviderId) -> &Provider {
        &self.providers[usize::from(id.0)]
    }

    /// Returns the protobuf encoding of a model's `ModelRef`: its name and
    /// its provider's name, as fields 1 and 2.
    pub fn encoded_model_ref(&self, id: ModelId) -> &[u8] {
        &self.model_refs[usize::from(id.0)]
    }

    /// The provider name of a model.
    pub fn provider_name(&self, id: ModelId) -> &str {
        &self.provider(self.model(id).provider).name
    }
}

#[cfg(test)]
mod tests;
