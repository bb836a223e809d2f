//! Cached handles for the per-decision metrics. Looking a counter up by its
//! labels through the `metrics` macros allocates the label strings and
//! hashes them into the registry on every call. Here each (path, model,
//! rule) handle is registered once and then found in a read-only table
//! behind an atomic pointer, so recording takes no lock and allocates
//! nothing after the first decision of each kind.
//!
//! NOTE: a handle is bound to the recorder installed when it is first
//! used. Install the recorder (`telemetry::metrics_handle`) before the
//! first decision, as `serve::start` does, or these metrics stay silent.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, LazyLock, OnceLock};

use arc_swap::ArcSwap;
use metrics::{Counter, Histogram};

use super::state::path_label;
use crate::proto::{Decision, Path};
use crate::telemetry;

/// Paths in the proto's `Path` enum, which numbers them from 0.
const PATHS: usize = 7;

#[derive(Clone)]
struct Entry {
    path: Path,
    model: Box<str>,
    rule: Box<str>,
    counter: Counter,
}

/// Entries by a hash of their labels; a bucket contains entries whose hashes
/// collide.
type Table = HashMap<u64, Vec<Entry>>;

struct Cache {
    counters: ArcSwap<Table>,
    durations: [OnceLock<Histogram>; PATHS],
}

static CACHE: LazyLock<Cache> = LazyLock::new(|| Cache {
    counters: ArcSwap::from_pointee(Table::new()),
    durations: Default::default(),
});

/// Records a decision's counter and latency.
pub fn record(decision: &Decision) {
    let Some(receipt) = decision.receipt.as_ref() else {
        return;
    };
    record_parts(
        receipt.path(),
        &decision.model,
        &receipt.rule,
        receipt.decide_nanos,
    );
}

/// Records a decision's counter and latency from its parts. An empty
/// `rule` means that no rule matched.
pub fn record_parts(path: Path, model: &str, rule: &str, decide_nanos: u64) {
    let rule = if rule.is_empty() { "none" } else { rule };
    count(path, model, rule);
    duration(path).record(decide_nanos as f64 / 1e9);
}

fn duration(path: Path) -> &'static Histogram {
    let index = usize::try_from(i32::from(path)).map_or(0, |i| i.min(PATHS - 1));
    CACHE.durations[index].get_or_init(
        || metrics::histogram!(telemetry::DECISION_DURATION, "path" => path_label(path)),
    )
}

fn key(path: Path, model: &str, rule: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    (path as i32, model, rule).hash(&mut hasher);
    hasher.finish()
}

fn count(path: Path, model: &str, rule: &str) {
    let key = key(path, model, rule);
    let table = CACHE.counters.load();
    let found = table.get(&key).and_then(|bucket| {
        bucket
            .iter()
            .find(|e| e.path == path && &*e.model == model && &*e.rule == rule)
    });
    match found {
        Some(entry) => entry.counter.increment(1),
        None => register(key, path, model, rule).increment(1),
    }
}

/// Registers a new handle and publishes a table that contains it. Runs
/// once per label combination; label values come from the policy, so the
/// table stays small.
#[cold]
fn register(key: u64, path: Path, model: &str, rule: &str) -> Counter {
    let counter = metrics::counter!(
        telemetry::DECISIONS,
        "path" => path_label(path),
        "model" => model.to_owned(),
        "rule" => rule.to_owned()
    );
    CACHE.counters.rcu(|table| {
        let mut table = Table::clone(table);
        let bucket = table.entry(key).or_default();
        let exists = bucket
            .iter()
            .any(|e| e.path == path && &*e.model == model && &*e.rule == rule);
        if !exists {
            bucket.push(Entry {
                path,
                model: model.into(),
                rule: rule.into(),
                counter: counter.clone(),
            });
        }
        Arc::new(table)
    });
    counter
}
