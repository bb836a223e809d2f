//! The model catalog: providers, models, prices, capabilities and quality per
//! task type, indexed by small integer ids so the decision path can use
//! bitsets instead of strings.

mod sets;

pub use sets::{ModelSet, ProviderSet};

use crate::task::TaskType;

/// The maximum number of models in a policy, the width of [`ModelSet`].
pub const MAX_MODELS: usize = 128;
/// The maximum number of providers in a policy, the width of [`ProviderSet`].
pub const MAX_PROVIDERS: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelId(pub u8);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderId(pub u8);

/// Capabilities as bit flags, so a requirement check is one AND.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capabilities(u8);

impl Capabilities {
    pub const TOOLS: Capabilities = Capabilities(1);
    pub const VISION: Capabilities = Capabilities(2);
    pub const JSON_OUTPUT: Capabilities = Capabilities(4);

    pub const fn empty() -> Self {
        Capabilities(0)
    }

    pub const fn union(self, other: Capabilities) -> Self {
        Capabilities(self.0 | other.0)
    }

    pub const fn contains(self, other: Capabilities) -> bool {
        self.0 & other.0 == other.0
    }

    /// `one` if this set contains it, else the empty set.
    pub const fn intersect_one(self, one: Capabilities) -> Capabilities {
        Capabilities(self.0 & one.0)
    }
}

#[derive(Debug)]
pub struct Provider {
    pub name: Box<str>,
}

#[derive(Debug)]
pub struct Model {
    pub name: Box<str>,
    pub provider: ProviderId,
    /// List price in USD per million input tokens.
    pub input_usd_per_mtok: f64,
    /// List price in USD per million output tokens.
    pub output_usd_per_mtok: f64,
    pub context_tokens: u32,
    pub max_output_tokens: u32,
    pub capabilities: Capabilities,
    /// Quality from 0 to 1, indexed by [`TaskType::index`].
    pub quality: [f64; TaskType::COUNT],
}

impl Model {
    pub fn quality(&self, task: TaskType) -> f64 {
        self.quality[task.index()]
    }

    /// Estimated cost in USD of one call with these token counts.
    pub fn cost_usd(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        (input_tokens as f64 * self.input_usd_per_mtok
            + output_tokens as f64 * self.output_usd_per_mtok)
            / 1_000_000.0
    }
}
