//! Candidate filtering and the choice of a model and its failover list. All
//! sets are bitsets on the stack; nothing here allocates.

use crate::catalog::{Capabilities, ModelId, ModelSet, ProviderSet};
use crate::policy::Policy;
use crate::proto::DropReason;
use crate::task::TaskType;

/// The hard limits a model must meet to be a candidate at all.
#[derive(Clone, Copy)]
pub(super) struct Filter {
    pub providers: ProviderSet,
    /// Models a rule allows; every model when no rule narrows them.
    pub candidates: ModelSet,
    pub capabilities: Capabilities,
    /// Tokens of context the call needs: the larger of the declared minimum
    /// and the estimated input plus output.
    pub context_tokens: u64,
    pub output_tokens: u32,
}

impl Filter {
    /// Returns why `id` is not a candidate, or `None` when it is one.
    pub fn reason(&self, policy: &Policy, id: ModelId) -> Option<DropReason> {
        let model = policy.model(id);
        let caps = model.capabilities;
        if !self.providers.contains(model.provider) {
            Some(DropReason::ProviderNotAllowed)
        } else if !self.candidates.contains(id) {
            Some(DropReason::NotInRuleCandidates)
        } else if !caps.contains(self.capabilities.intersect_one(Capabilities::TOOLS)) {
            Some(DropReason::MissingTools)
        } else if !caps.contains(self.capabilities.intersect_one(Capabilities::VISION)) {
            Some(DropReason::MissingVision)
        } else if !caps.contains(self.capabilities.intersect_one(Capabilities::JSON_OUTPUT)) {
            Some(DropReason::MissingJsonOutput)
        } else if u64::from(model.context_tokens) < self.context_tokens {
            Some(DropReason::ContextTooSmall)
        } else if model.max_output_tokens < self.output_tokens {
            Some(DropReason::OutputLimitTooSmall)
        } else {
            None
        }
    }

    pub fn eligible(&self, policy: &Policy) -> ModelSet {
        let mut set = ModelSet::empty();
        for index in 0..policy.models.len() {
            let id = ModelId(index as u8);
            if self.reason(policy, id).is_none() {
                set.insert(id);
            }
        }
        set
    }
}

/// The objective of a choice.
#[derive(Clone, Copy, Debug)]
pub(super) enum Goal {
    /// The cheapest model whose quality meets the bar.
    Cheapest { bar: f64 },
    /// The highest quality model.
    Best,
}

/// Token counts for cost estimates.
#[derive(Clone, Copy)]
pub(super) struct Tokens {
    pub input: u64,
    pub output: u64,
}

impl Tokens {
    pub fn cost(self, policy: &Policy, id: ModelId) -> f64 {
        policy.model(id).cost_usd(self.input, self.output)
    }
}

pub(super) const MAX_FALLBACKS: usize = 16;

/// The chosen model and its ordered failover list.
#[derive(Clone, Copy)]
pub(super) struct Choice {
    pub chosen: ModelId,
    pub fallbacks: [ModelId; MAX_FALLBACKS],
    pub fallback_count: usize,
    /// False when no candidate met the bar and the best one was taken.
    pub met_bar: bool,
}

impl Choice {
    /// A choice of `pin`, failing over to `alternatives`' chosen model and
    /// then its fallbacks, at most `max_fallbacks` in all.
    pub fn pinned(pin: ModelId, alternatives: Option<Choice>, max_fallbacks: usize) -> Choice {
        let mut choice = Choice {
            chosen: pin,
            fallbacks: [pin; MAX_FALLBACKS],
            fallback_count: 0,
            met_bar: true,
        };
        if let Some(alternatives) = alternatives {
            choice.push_fallback(alternatives.chosen, max_fallbacks);
            for &id in alternatives.fallbacks() {
                choice.push_fallback(id, max_fallbacks);
            }
        }
        choice
    }

    pub fn fallbacks(&self) -> &[ModelId] {
        &self.fallbacks[..self.fallback_count]
    }

    fn push_fallback(&mut self, id: ModelId, limit: usize) {
        let taken = id == self.chosen || self.fallbacks().contains(&id);
        if !taken && self.fallback_count < limit.min(MAX_FALLBACKS) {
            self.fallbacks[self.fallback_count] = id;
            self.fallback_count += 1;
        }
    }
}

/// Picks a model from `eligible`; `None` when it is empty. The failover list
/// contains the next candidates in the goal's order, then the best-quality
/// candidate, at most `max_fallbacks` in all. Ties break on cost, then on
/// quality, then on catalog order, so the result is deterministic.
pub(super) fn choose(
    policy: &Policy,
    eligible: ModelSet,
    task: TaskType,
    goal: Goal,
    tokens: Tokens,
    max_fallbacks: usize,
) -> Option<Choice> {
    let quality = |id: ModelId| policy.model(id).quality(task);
    let cheaper = |a: ModelId, b: ModelId| order_cheapest(policy, task, tokens, a, b);
    let better = |a: ModelId, b: ModelId| order_best(policy, task, tokens, a, b);

    let (pool, met_bar, by_cheapest) = match goal {
        Goal::Best => (eligible, true, false),
        Goal::Cheapest { bar } => {
            let mut meeting = ModelSet::empty();
            eligible
                .iter()
                .filter(|&id| quality(id) >= bar)
                .for_each(|id| meeting.insert(id));
            if meeting.is_empty() {
                (eligible, false, false)
            } else {
                (meeting, true, true)
            }
        }
    };
    let pick = |set: ModelSet| {
        if by_cheapest {
            min_by(set, cheaper)
        } else {
            min_by(set, better)
        }
    };

    let chosen = pick(pool)?;
    let mut choice = Choice {
        chosen,
        fallbacks: [chosen; MAX_FALLBACKS],
        fallback_count: 0,
        met_bar,
    };
    let mut rest = pool;
    rest.remove(chosen);
    while choice.fallback_count + 1 < max_fallbacks {
        let Some(next) = pick(rest) else { break };
        choice.push_fallback(next, max_fallbacks);
        rest.remove(next);
    }
    if let Some(best) = min_by(eligible, better) {
        choice.push_fallback(best, max_fallbacks);
    }
    // When the best model was already chosen or listed, fill the free slot
    // with the next candidate in order.
    if let Some(next) = pick(rest) {
        choice.push_fallback(next, max_fallbacks);
    }
    Some(choice)
}

/// The lowest element of `set` under `less`, with catalog order breaking
/// remaining ties because the set iterates lowest id first.
fn min_by(set: ModelSet, less: impl Fn(ModelId, ModelId) -> bool) -> Option<ModelId> {
    set.iter().fold(None, |best, id| match best {
        Some(current) if !less(id, current) => Some(current),
        _ => Some(id),
    })
}

fn order_cheapest(policy: &Policy, task: TaskType, tokens: Tokens, a: ModelId, b: ModelId) -> bool {
    let (cost_a, cost_b) = (tokens.cost(policy, a), tokens.cost(policy, b));
    if cost_a != cost_b {
        return cost_a < cost_b;
    }
    policy.model(a).quality(task) > policy.model(b).quality(task)
}

fn order_best(policy: &Policy, task: TaskType, tokens: Tokens, a: ModelId, b: ModelId) -> bool {
    let (quality_a, quality_b) = (policy.model(a).quality(task), policy.model(b).quality(task));
    if quality_a != quality_b {
        return quality_a > quality_b;
    }
    tokens.cost(policy, a) < tokens.cost(policy, b)
}
