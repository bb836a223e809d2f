//! Training: logistic regression fitted with AdaGrad, a softmax for the
//! task head and a sigmoid for the difficulty head. The two heads share the
//! hashed features but own separate output columns, so each is fitted on
//! its own rows. Training is single-threaded and seeded, so the same data,
//! options and seed give the same weights bit for bit.

use crate::classify::features::{self, DENSE_COUNT, Heads};
use crate::classify::weights::{DIFFICULTY, OUTPUTS, TABLE_LIMIT, Weights};
use crate::task::TaskType;

/// Hyperparameters of one training run.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Passes over the training rows.
    pub epochs: u32,
    /// AdaGrad base learning rate of the task head.
    pub learning_rate: f32,
    /// AdaGrad base learning rate of the difficulty head. It is far lower
    /// than the task head's because the difficulty signal in prompt text is
    /// weak and a fast learner memorizes the training prompts.
    pub difficulty_learning_rate: f32,
    /// L2 penalty applied to every weight a row touches.
    pub l2: f32,
    /// log2 of the number of hashed feature rows. Classification reads a
    /// row for every feature, so a table that fits the processor's L2
    /// cache classifies faster than a larger one.
    pub bucket_bits: u32,
    /// Seed of the row order shuffle.
    pub seed: u64,
    /// Exponent of the inverse class frequency used to weight task rows:
    /// 0 weights all rows equally, 1 balances the classes fully.
    pub class_weight_power: f32,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            epochs: 40,
            learning_rate: 0.2,
            difficulty_learning_rate: 0.007,
            l2: 1e-4,
            bucket_bits: 14,
            seed: 1,
            class_weight_power: 0.8,
        }
    }
}

/// A prompt turned into hashed features once, so epochs do not rescan it.
struct Encoded {
    /// (bucket, value) pairs of every feature, for the task head, each
    /// bucket once, value = count / sqrt(total).
    sparse: Vec<(u32, f32)>,
    /// The same for the features that feed the difficulty head.
    difficulty_sparse: Vec<(u32, f32)>,
    dense: [f32; DENSE_COUNT],
}

impl Encoded {
    fn sparse_for(&self, k: usize) -> &[(u32, f32)] {
        if k == DIFFICULTY {
            &self.difficulty_sparse
        } else {
            &self.sparse
        }
    }
}

fn encode(prompt: &str, bucket_bits: u32) -> Encoded {
    let mask = (1u32 << bucket_bits) - 1;
    let mut buckets = Vec::new();
    let mut difficulty_buckets = Vec::new();
    let dense = features::scan(prompt, |hash, heads| {
        buckets.push(hash & mask);
        if heads == Heads::Both {
            difficulty_buckets.push(hash & mask);
        }
    });
    Encoded {
        sparse: merge(buckets),
        difficulty_sparse: merge(difficulty_buckets),
        dense,
    }
}

/// Turns bucket occurrences into (bucket, count / sqrt(occurrences)).
fn merge(mut buckets: Vec<u32>) -> Vec<(u32, f32)> {
    let norm = 1.0 / (buckets.len().max(1) as f32).sqrt();
    buckets.sort_unstable();
    let mut sparse: Vec<(u32, f32)> = Vec::new();
    for bucket in buckets {
        match sparse.last_mut() {
            Some((last, value)) if *last == bucket => *value += norm,
            _ => sparse.push((bucket, norm)),
        }
    }
    sparse
}

/// A row to fit: the encoded prompt, its task label or difficulty target,
/// and its weight in the loss.
struct Sample {
    encoded: Encoded,
    label: usize,
    target: f32,
    weight: f32,
}

/// The full-precision model and its AdaGrad accumulators.
struct Model {
    table: Vec<[f32; OUTPUTS]>,
    table_g2: Vec<[f32; OUTPUTS]>,
    bias: [f32; OUTPUTS],
    bias_g2: [f32; OUTPUTS],
    dense: [[f32; OUTPUTS]; DENSE_COUNT],
    dense_g2: [[f32; OUTPUTS]; DENSE_COUNT],
}

impl Model {
    fn new(bucket_bits: u32) -> Model {
        let rows = 1usize << bucket_bits;
        Model {
            table: vec![[0.0; OUTPUTS]; rows],
            table_g2: vec![[0.0; OUTPUTS]; rows],
            bias: [0.0; OUTPUTS],
            bias_g2: [0.0; OUTPUTS],
            dense: [[0.0; OUTPUTS]; DENSE_COUNT],
            dense_g2: [[0.0; OUTPUTS]; DENSE_COUNT],
        }
    }

    fn logit(&self, encoded: &Encoded, k: usize) -> f32 {
        let sparse: f32 = encoded
            .sparse_for(k)
            .iter()
            .map(|&(b, v)| self.table[b as usize][k] * v)
            .sum();
        let dense: f32 = encoded
            .dense
            .iter()
            .zip(&self.dense)
            .map(|(v, row)| v * row[k])
            .sum();
        self.bias[k] + sparse + dense
    }

    /// Applies one AdaGrad step for output `k` given d(loss)/d(logit).
    fn step(&mut self, encoded: &Encoded, k: usize, grad: f32, options: &TrainOptions) {
        let rate = if k == DIFFICULTY {
            options.difficulty_learning_rate
        } else {
            options.learning_rate
        };
        adagrad(&mut self.bias[k], &mut self.bias_g2[k], grad, 0.0, rate);
        for (&value, (row, g2)) in encoded
            .dense
            .iter()
            .zip(self.dense.iter_mut().zip(&mut self.dense_g2))
        {
            if value != 0.0 {
                adagrad(&mut row[k], &mut g2[k], grad * value, options.l2, rate);
            }
        }
        for &(bucket, value) in encoded.sparse_for(k) {
            let b = bucket as usize;
            adagrad(
                &mut self.table[b][k],
                &mut self.table_g2[b][k],
                grad * value,
                options.l2,
                rate,
            );
        }
    }

    /// Quantizes the table to i16 values within ±[`TABLE_LIMIT`], with one
    /// scale per output column.
    fn quantize(&self, bucket_bits: u32) -> Weights {
        let mut scales = [1.0f32; OUTPUTS];
        for (k, scale) in scales.iter_mut().enumerate() {
            let max = self
                .table
                .iter()
                .map(|row| row[k].abs())
                .fold(0.0f32, f32::max);
            if max > 0.0 {
                *scale = max / f32::from(TABLE_LIMIT);
            }
        }
        let rows = self
            .table
            .iter()
            .map(|row| {
                std::array::from_fn(|k| {
                    let limit = f32::from(TABLE_LIMIT);
                    (row[k] / scales[k]).round().clamp(-limit, limit) as i16
                })
            })
            .collect();
        Weights {
            bucket_bits,
            scales,
            bias: self.bias,
            dense: self.dense,
            rows,
        }
    }
}

fn adagrad(weight: &mut f32, g2: &mut f32, grad: f32, l2: f32, rate: f32) {
    let grad = grad + l2 * *weight;
    *g2 += grad * grad;
    *weight -= rate * grad / (g2.sqrt() + 1e-6);
}

/// Fits both heads. Either slice may be empty, which leaves that head at
/// zero (a uniform task guess or a difficulty of 0.5).
pub fn train(
    tasks: &[(&str, TaskType)],
    routing: &[(&str, f32)],
    options: &TrainOptions,
) -> Weights {
    let mut model = Model::new(options.bucket_bits);
    let mut rng = SplitMix64::new(options.seed);
    let task_samples = task_samples(tasks, options);
    let difficulty_samples: Vec<Sample> = routing
        .iter()
        .map(|&(prompt, target)| Sample {
            encoded: encode(prompt, options.bucket_bits),
            label: 0,
            target,
            weight: 1.0,
        })
        .collect();

    let mut average = Average::new(options.bucket_bits);
    for epoch in 0..options.epochs {
        for index in shuffled(task_samples.len(), &mut rng) {
            fit_task(&mut model, &task_samples[index], options);
        }
        for index in shuffled(difficulty_samples.len(), &mut rng) {
            fit_difficulty(&mut model, &difficulty_samples[index], options);
        }
        if epoch >= options.epochs / 2 {
            average.add(&model);
        }
    }
    average.finish(&mut model);
    model.quantize(options.bucket_bits)
}

/// The mean of the weights at the end of each epoch in the second half of
/// training, which is less noisy than the last epoch's weights.
struct Average {
    table: Vec<[f32; OUTPUTS]>,
    bias: [f32; OUTPUTS],
    dense: [[f32; OUTPUTS]; DENSE_COUNT],
    snapshots: u32,
}

impl Average {
    fn new(bucket_bits: u32) -> Average {
        Average {
            table: vec![[0.0; OUTPUTS]; 1 << bucket_bits],
            bias: [0.0; OUTPUTS],
            dense: [[0.0; OUTPUTS]; DENSE_COUNT],
            snapshots: 0,
        }
    }

    fn add(&mut self, model: &Model) {
        let pairs = self.table.iter_mut().zip(&model.table);
        let pairs = pairs.chain(std::iter::once((&mut self.bias, &model.bias)));
        let pairs = pairs.chain(self.dense.iter_mut().zip(&model.dense));
        for (sum, row) in pairs {
            for (total, value) in sum.iter_mut().zip(row) {
                *total += value;
            }
        }
        self.snapshots += 1;
    }

    /// Replaces the model's weights with the mean, if any epoch was added.
    fn finish(self, model: &mut Model) {
        if self.snapshots == 0 {
            return;
        }
        let scale = 1.0 / self.snapshots as f32;
        let mean = |row: [f32; OUTPUTS]| row.map(|total| total * scale);
        model.table = self.table.into_iter().map(mean).collect();
        model.bias = mean(self.bias);
        model.dense = self.dense.map(mean);
    }
}

fn task_samples(tasks: &[(&str, TaskType)], options: &TrainOptions) -> Vec<Sample> {
    let mut counts = [0usize; TaskType::COUNT];
    for &(_, task) in tasks {
        counts[task.index()] += 1;
    }
    let present = counts.iter().filter(|&&n| n > 0).count().max(1);
    let total = tasks.len() as f32;
    tasks
        .iter()
        .map(|&(prompt, task)| {
            let balanced = total / (present as f32 * counts[task.index()] as f32);
            Sample {
                encoded: encode(prompt, options.bucket_bits),
                label: task.index(),
                target: 0.0,
                weight: balanced.powf(options.class_weight_power),
            }
        })
        .collect()
}

fn fit_task(model: &mut Model, sample: &Sample, options: &TrainOptions) {
    let logits: [f32; TaskType::COUNT] = std::array::from_fn(|k| model.logit(&sample.encoded, k));
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps = logits.map(|logit| (logit - max).exp());
    let total: f32 = exps.iter().sum();
    for (k, exp) in exps.iter().enumerate() {
        let target = if k == sample.label { 1.0 } else { 0.0 };
        let grad = (exp / total - target) * sample.weight;
        model.step(&sample.encoded, k, grad, options);
    }
}

fn fit_difficulty(model: &mut Model, sample: &Sample, options: &TrainOptions) {
    let probability = super::sigmoid(model.logit(&sample.encoded, DIFFICULTY));
    let grad = (probability - sample.target) * sample.weight;
    model.step(&sample.encoded, DIFFICULTY, grad, options);
}

/// Returns 0..len in an order drawn from `rng` (Fisher-Yates).
pub fn shuffled(len: usize, rng: &mut SplitMix64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    for i in (1..len).rev() {
        let j = rng.below(i + 1);
        order.swap(i, j);
    }
    order
}

/// SplitMix64, a small seeded generator. It is enough for shuffles and
/// folds, and its output does not change across platforms or crate versions.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Returns a value in 0..bound. The modulo bias is negligible for the
    /// sizes used here.
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Classifier;

    const CODE: [&str; 6] = [
        "Write a Python function that reverses a linked list.",
        "Fix the bug in this JavaScript loop: for (let i = 0; i <= n; i++) {}",
        "Implement a binary search in Rust and explain its complexity.",
        "Why does my C++ program segfault when I dereference this pointer?",
        "Write a SQL query that returns the top five customers by revenue.",
        "Refactor this Go function to return an error instead of panicking.",
    ];
    const CHAT: [&str; 6] = [
        "Hi! How are you doing today?",
        "Good morning, I just wanted to say thanks for the help yesterday.",
        "Hey, what's up? I'm bored, let's talk.",
        "Hello there, nice to meet you!",
        "I had a rough day at work and just want to chat for a bit.",
        "Thanks so much, you're great. Talk later!",
    ];

    fn toy_tasks() -> Vec<(&'static str, TaskType)> {
        let code = CODE.iter().map(|&p| (p, TaskType::Code));
        let chat = CHAT.iter().map(|&p| (p, TaskType::Chat));
        code.chain(chat).collect()
    }

    fn small_options() -> TrainOptions {
        TrainOptions {
            bucket_bits: 12,
            epochs: 20,
            ..TrainOptions::default()
        }
    }

    #[test]
    fn learns_separable_toy_task() {
        let weights = train(&toy_tasks(), &[], &small_options());
        let classifier = Classifier::from_weights(weights);
        for (prompt, task) in toy_tasks() {
            let out = classifier.classify(prompt);
            assert_eq!(out.task, task, "{prompt}");
        }
        let unseen = classifier.classify("Write a Python function that parses a date string.");
        assert_eq!(unseen.task, TaskType::Code);
        let unseen = classifier.classify("Hey, nice to meet you! How was your day?");
        assert_eq!(unseen.task, TaskType::Chat);
    }

    #[test]
    fn learns_toy_difficulty() {
        let routing: Vec<(&str, f32)> = CODE
            .iter()
            .map(|&p| (p, 1.0))
            .chain(CHAT.iter().map(|&p| (p, 0.0)))
            .collect();
        let classifier = Classifier::from_weights(train(&[], &routing, &small_options()));
        for (prompt, hard) in routing {
            let difficulty = classifier.classify(prompt).difficulty;
            assert_eq!(difficulty > 0.5, hard > 0.5, "{prompt}: {difficulty}");
        }
    }

    #[test]
    fn training_is_deterministic() {
        let first = train(&toy_tasks(), &[], &small_options());
        let second = train(&toy_tasks(), &[], &small_options());
        assert_eq!(first, second);
        let other_seed = TrainOptions {
            seed: 99,
            ..small_options()
        };
        assert_ne!(first, train(&toy_tasks(), &[], &other_seed));
    }

    #[test]
    fn encode_merges_repeated_buckets() {
        let encoded = encode("spam spam spam spam", 8);
        let mut buckets: Vec<u32> = encoded.sparse.iter().map(|&(b, _)| b).collect();
        buckets.dedup();
        assert_eq!(buckets.len(), encoded.sparse.len());
        let total: f32 = encoded.sparse.iter().map(|&(_, v)| v * v).sum();
        assert!(total > 0.0);
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut rng = SplitMix64::new(7);
        let mut order = shuffled(100, &mut rng);
        assert_ne!(order, (0..100).collect::<Vec<_>>());
        order.sort_unstable();
        assert_eq!(order, (0..100).collect::<Vec<_>>());
    }
}
