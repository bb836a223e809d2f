//! The tiny prompt classifier: a linear model over hashed n-gram features
//! with two heads. One predicts a task type (a softmax over
//! [`TaskType::ALL`]) and the other a difficulty score, the expected gain
//! of sending the prompt to a strong model instead of a cheap one.

pub mod cli;
pub mod cv;
pub mod data;
pub mod features;
pub mod metrics;
pub mod normalize;
pub mod report;
pub mod table;
pub mod train;
pub mod weights;

use std::path::Path;
use std::sync::OnceLock;

use crate::task::TaskType;
use features::DENSE_COUNT;
use table::{Sums, Table};
pub use weights::WeightsError;
use weights::{DIFFICULTY, OUTPUTS, Weights};

/// The default weights, compiled into the binary. They are built from the
/// shared data directory (`DATA`) with:
///
/// ```text
/// cargo run --release -- train \
///     --tasks DATA/prompts/labeled_prompts_unified.jsonl \
///     --routing DATA/routing_eval/routellm_gsm8k_responses.csv \
///               DATA/routing_eval/routellm_mmlu/*.csv \
///     --strong gpt-4-1106-preview --weak mistralai/Mixtral-8x7B-Instruct-v0.1 \
///     --seed 1 --out weights/default.tcw
/// ```
///
/// docs/classifier.md describes the data, the figures and how to retrain.
static DEFAULT_WEIGHTS: &[u8] = include_bytes!("../weights/default.tcw");

/// The classifier's output for one prompt.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Classification {
    /// The most likely task type.
    pub task: TaskType,
    /// The softmax probability of `task`, in (0, 1].
    pub confidence: f32,
    /// The probability, in [0, 1], that a strong model's answer beats a
    /// cheap model's, with a tie counted as half a win. Above 0.5 the strong
    /// model is expected to do better.
    pub difficulty: f32,
}

/// A loaded model. Classifying is read-only, so one instance can be shared
/// across threads.
#[derive(Clone, Debug)]
pub struct Classifier {
    weights: Weights,
    /// `weights.rows` in the layout that `classify` sums.
    table: Table,
}

impl Classifier {
    /// Returns the classifier with the compiled-in default weights, decoding
    /// them on first use.
    pub fn embedded() -> &'static Classifier {
        static EMBEDDED: OnceLock<Classifier> = OnceLock::new();
        EMBEDDED.get_or_init(|| match Classifier::from_bytes(DEFAULT_WEIGHTS) {
            Ok(classifier) => classifier,
            // A unit test decodes the same bytes, so this is a build defect.
            Err(err) => panic!("the compiled-in classifier weights are invalid: {err}"),
        })
    }

    /// Reads and validates a weights file written by `triage train`.
    pub fn load(path: &Path) -> Result<Classifier, WeightsError> {
        let bytes = std::fs::read(path).map_err(|source| WeightsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Classifier::from_bytes(&bytes)
    }

    /// Decodes and validates weights from the bytes of a weights file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Classifier, WeightsError> {
        Weights::decode(bytes).map(Classifier::from_weights)
    }

    pub fn from_weights(weights: Weights) -> Classifier {
        let table = Table::new(&weights.rows);
        Classifier { weights, table }
    }

    pub fn weights(&self) -> &Weights {
        &self.weights
    }

    /// Classifies one prompt. The work is bounded by the bytes read (see
    /// [`features::HEAD_BYTES`]) and nothing is allocated: the logits are
    /// summed while the features are hashed.
    pub fn classify(&self, prompt: &str) -> Classification {
        let (sums, dense) = self.table.scan(prompt);
        let logits = self.logits(&sums, &dense);
        decide(&logits)
    }

    /// Combines the summed table rows with the biases and the numeric
    /// features. As in training, each head's sum is scaled by 1/sqrt of the
    /// number of features it read.
    fn logits(&self, sums: &Sums, dense: &[f32; DENSE_COUNT]) -> [f32; OUTPUTS] {
        let weights = &self.weights;
        let task_norm = 1.0 / ((sums.both_count + sums.task_only_count).max(1) as f32).sqrt();
        let difficulty_norm = 1.0 / (sums.both_count.max(1) as f32).sqrt();
        let mut logits = weights.bias;
        for (k, logit) in logits.iter_mut().enumerate() {
            let (sum, norm) = if k == DIFFICULTY {
                (sums.both[k], difficulty_norm)
            } else {
                (sums.both[k] + sums.task_only[k], task_norm)
            };
            *logit += sum as f32 * weights.scales[k] * norm;
        }
        for (value, row) in dense.iter().zip(&weights.dense) {
            for (logit, weight) in logits.iter_mut().zip(row) {
                *logit += value * weight;
            }
        }
        logits
    }
}

/// Turns logits into the task with the highest softmax probability and the
/// sigmoid of the difficulty logit.
fn decide(logits: &[f32; OUTPUTS]) -> Classification {
    let task_logits = &logits[..TaskType::COUNT];
    let mut best = 0;
    for (k, &logit) in task_logits.iter().enumerate() {
        if logit > task_logits[best] {
            best = k;
        }
    }
    let max = task_logits[best];
    let total: f32 = task_logits.iter().map(|&logit| (logit - max).exp()).sum();
    Classification {
        task: TaskType::ALL[best],
        confidence: 1.0 / total,
        difficulty: sigmoid(logits[DIFFICULTY]),
    }
}

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_weights_decode() {
        let classifier = Classifier::embedded();
        assert!(classifier.weights().rows.len() >= 1 << weights::MIN_BUCKET_BITS);
        assert!(
            DEFAULT_WEIGHTS.len() < 4 << 20,
            "{} bytes",
            DEFAULT_WEIGHTS.len()
        );
    }

    #[test]
    fn classification_is_in_range() {
        let classifier = Classifier::embedded();
        for prompt in ["", "hi", "Write a haiku about rust.", &"x".repeat(20_000)] {
            let out = classifier.classify(prompt);
            assert!(out.confidence > 0.0, "{out:?}");
            assert!(out.confidence <= 1.0, "{out:?}");
            assert!((0.0..=1.0).contains(&out.difficulty), "{out:?}");
        }
    }

    #[test]
    fn decide_picks_max_logit() {
        let mut logits = [0.0; OUTPUTS];
        logits[TaskType::Math.index()] = 3.0;
        logits[DIFFICULTY] = 0.0;
        let out = decide(&logits);
        assert_eq!(out.task, TaskType::Math);
        assert!(out.confidence > 0.6, "{out:?}");
        assert!((out.difficulty - 0.5).abs() < 1e-6);
    }

    #[test]
    fn load_reports_missing_file() {
        let err = Classifier::load(Path::new("/nonexistent/weights.tcw")).unwrap_err();
        assert!(matches!(err, WeightsError::Read { .. }), "{err}");
        assert!(
            err.to_string().contains("/nonexistent/weights.tcw"),
            "{err}"
        );
    }
}
