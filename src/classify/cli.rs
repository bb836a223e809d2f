//! The `triage train` and `triage eval` commands.

use std::path::PathBuf;

use clap::{ArgGroup, Args};

use crate::classify::data::{self, DataError, RoutingRow, TaskRow};
use crate::classify::metrics::{self, NoQualityGap, Prices, Routed};
use crate::classify::report::{self, JsonReport};
use crate::classify::train::{TrainOptions, train};
use crate::classify::weights::{MAX_BUCKET_BITS, Weights};
use crate::classify::{Classifier, WeightsError, cv};
use crate::cli::output::outln;
use crate::task::TaskType;

/// Hyperparameters shared by `train` and the cross-validation of `eval`.
#[derive(Debug, Args)]
pub struct TrainingFlags {
    /// Passes over the training rows.
    #[arg(long, default_value_t = TrainOptions::default().epochs)]
    pub epochs: u32,
    /// AdaGrad base learning rate of the task head.
    #[arg(long, default_value_t = TrainOptions::default().learning_rate, value_parser = positive_finite)]
    pub learning_rate: f32,
    /// AdaGrad base learning rate of the difficulty head.
    #[arg(long, default_value_t = TrainOptions::default().difficulty_learning_rate, value_parser = positive_finite)]
    pub difficulty_learning_rate: f32,
    /// L2 penalty per weight and update.
    #[arg(long, default_value_t = TrainOptions::default().l2, value_parser = non_negative_finite)]
    pub l2: f32,
    /// log2 of the number of hashed feature rows; each row costs 24 bytes
    /// of weights file (14 gives a 394 KB file, 16 a 1.6 MB file).
    #[arg(long, default_value_t = TrainOptions::default().bucket_bits,
          value_parser = clap::value_parser!(u32).range(8..=i64::from(MAX_BUCKET_BITS)))]
    pub bucket_bits: u32,
    /// Seed of the row order and of the cross-validation folds.
    #[arg(long, default_value_t = TrainOptions::default().seed)]
    pub seed: u64,
    /// Exponent of the inverse class frequency that weights task rows
    /// (0 = unweighted, 1 = fully balanced classes).
    #[arg(long, default_value_t = TrainOptions::default().class_weight_power, value_parser = non_negative_finite)]
    pub class_weight_power: f32,
}

/// Parses a price: a finite number of at least 0.
fn price(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
        _ => Err(format!(
            "{text:?} is not a price; give USD per million tokens, 0 or more"
        )),
    }
}

/// Parses a finite number greater than 0.
fn positive_finite(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(value),
        _ => Err(format!("{text:?} is not a finite number greater than 0")),
    }
}

/// Parses a finite number of at least 0.
fn non_negative_finite(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
        _ => Err(format!("{text:?} is not a finite number of 0 or more")),
    }
}

impl TrainingFlags {
    fn options(&self) -> TrainOptions {
        TrainOptions {
            epochs: self.epochs,
            learning_rate: self.learning_rate,
            difficulty_learning_rate: self.difficulty_learning_rate,
            l2: self.l2,
            bucket_bits: self.bucket_bits,
            seed: self.seed,
            class_weight_power: self.class_weight_power,
        }
    }
}

/// Routing CSV inputs: a `prompt` column and one True/False column per model.
#[derive(Debug, Args)]
pub struct RoutingFlags {
    /// Routing CSV files with a `prompt` column and one True/False
    /// correctness column per model.
    #[arg(long, num_args = 1.., value_name = "FILE.csv", requires_all = ["strong", "weak"])]
    pub routing: Vec<PathBuf>,
    /// Column of the strong (expensive) model in the routing files.
    #[arg(long, value_name = "COLUMN", requires = "routing")]
    pub strong: Option<String>,
    /// Column of the weak (cheap) model in the routing files.
    #[arg(long, value_name = "COLUMN", requires = "routing")]
    pub weak: Option<String>,
}

impl RoutingFlags {
    fn read(&self) -> Result<Vec<RoutingRow>, DataError> {
        match (&self.strong, &self.weak) {
            (Some(strong), Some(weak)) if !self.routing.is_empty() => {
                data::read_routing(&self.routing, strong, weak)
            }
            _ => Ok(Vec::new()),
        }
    }
}

/// Fit the task and difficulty heads and write a weights file.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("input").required(true).multiple(true).args(["tasks", "routing"])))]
pub struct TrainArgs {
    /// JSONL file with `prompt` and `task_type` fields; fits the task head.
    #[arg(long, value_name = "FILE.jsonl")]
    pub tasks: Option<PathBuf>,
    #[command(flatten)]
    pub routing: RoutingFlags,
    /// Path of the weights file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    #[command(flatten)]
    pub training: TrainingFlags,
}

/// Score the classifier on labelled prompts and routing outcomes.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("input").required(true).multiple(true).args(["tasks", "routing"])))]
pub struct EvalArgs {
    /// JSONL file with `prompt` and `task_type` (and, for --by-source,
    /// `source`) fields; scores the task head.
    #[arg(long, value_name = "FILE.jsonl")]
    pub tasks: Option<PathBuf>,
    #[command(flatten)]
    pub routing: RoutingFlags,
    /// Weights file to evaluate [default: the compiled-in weights].
    #[arg(long, value_name = "FILE", conflicts_with_all = ["cv", "by_source"])]
    pub classifier: Option<PathBuf>,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Cross-validate with this many stratified folds: train on all folds
    /// but one and score the held-out fold, using the training flags below.
    #[arg(long, value_name = "FOLDS", value_parser = clap::value_parser!(u32).range(2..=100))]
    pub cv: Option<u32>,
    /// Cross-validate the task head leaving one `source` out at a time.
    #[arg(long, requires = "tasks")]
    pub by_source: bool,
    /// Price of the strong model in USD per million tokens. The default is
    /// the gpt-4-1106-preview input price in LiteLLM 1.110.2.
    #[arg(long, value_name = "USD", default_value_t = 10.0, value_parser = price)]
    pub strong_price: f64,
    /// Price of the weak model in USD per million tokens. The default is the
    /// DeepInfra Mixtral-8x7B-Instruct price in LiteLLM 1.110.2.
    #[arg(long, value_name = "USD", default_value_t = 0.4, value_parser = price)]
    pub weak_price: f64,
    #[command(flatten)]
    pub training: TrainingFlags,
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("failed to load classifier weights from {path}: {source}")]
    Weights { path: PathBuf, source: WeightsError },
    #[error(transparent)]
    NoQualityGap(#[from] NoQualityGap),
    #[error("failed to write weights file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "training diverged and produced invalid weights ({0}); nothing was written. \
         Lower --learning-rate, --difficulty-learning-rate or --l2"
    )]
    Diverged(WeightsError),
}

/// Runs `triage train`.
pub fn run_train(args: &TrainArgs) -> Result<(), CommandError> {
    let tasks = match &args.tasks {
        Some(path) => data::read_tasks(path)?,
        None => Vec::new(),
    };
    let routing = args.routing.read()?;
    let task_pairs: Vec<(&str, TaskType)> = tasks
        .iter()
        .map(|row| (row.prompt.as_str(), row.task))
        .collect();
    let routing_pairs: Vec<(&str, f32)> = routing
        .iter()
        .map(|row| (row.prompt.as_str(), row.target()))
        .collect();

    let weights = train(&task_pairs, &routing_pairs, &args.training.options());
    let bytes = weights.encode();
    // The loader rejects non-finite weights, so check before writing a file
    // that nothing could load.
    Weights::decode(&bytes).map_err(CommandError::Diverged)?;
    std::fs::write(&args.out, &bytes).map_err(|source| CommandError::Write {
        path: args.out.clone(),
        source,
    })?;
    outln!(
        "wrote {} ({} bytes) from {} task rows and {} routing rows",
        args.out.display(),
        bytes.len(),
        tasks.len(),
        routing.len()
    );
    Ok(())
}

/// Runs `triage eval`.
pub fn run_eval(args: &EvalArgs) -> Result<(), CommandError> {
    let mut json = JsonReport::default();
    if let Some(path) = &args.tasks {
        eval_tasks(args, &data::read_tasks(path)?, &mut json)?;
    }
    let routing = args.routing.read()?;
    if !routing.is_empty() {
        eval_routing(args, &routing, &mut json)?;
    }
    if args.json {
        outln!("{}", json.render());
    }
    Ok(())
}

fn classifier(args: &EvalArgs) -> Result<Classifier, CommandError> {
    let Some(path) = &args.classifier else {
        return Ok(Classifier::embedded().clone());
    };
    Classifier::load(path).map_err(|source| CommandError::Weights {
        path: path.clone(),
        source,
    })
}

fn eval_tasks(
    args: &EvalArgs,
    rows: &[TaskRow],
    json: &mut JsonReport,
) -> Result<(), CommandError> {
    let options = args.training.options();
    let (pairs, mode) = if args.by_source {
        let (assignment, names) = cv::source_folds(rows);
        let pairs = cv::predict_tasks(rows, &assignment, &options);
        let per_source = report::source_accuracy(&pairs, &assignment, &names);
        json.add_sources(&per_source);
        if !args.json {
            report::print_sources(&per_source);
        }
        (pairs, "leave one source out".to_owned())
    } else if let Some(folds) = args.cv {
        let labels: Vec<usize> = rows.iter().map(|row| row.task.index()).collect();
        let assignment = cv::stratified_folds(&labels, folds as usize, options.seed);
        (
            cv::predict_tasks(rows, &assignment, &options),
            format!("{folds}-fold cross-validation"),
        )
    } else {
        let classifier = classifier(args)?;
        let pairs = rows
            .iter()
            .map(|row| (row.task, classifier.classify(&row.prompt).task))
            .collect();
        (pairs, "given weights".to_owned())
    };
    let task_report = metrics::task_report(&pairs);
    if !args.json {
        report::print_tasks(&task_report, &mode);
    }
    json.add_tasks(&task_report);
    Ok(())
}

fn eval_routing(
    args: &EvalArgs,
    rows: &[RoutingRow],
    json: &mut JsonReport,
) -> Result<(), CommandError> {
    let (routed, mode) = match args.cv {
        Some(folds) => (
            cv::predict_routing(rows, folds as usize, &args.training.options()),
            format!("{folds}-fold cross-validation"),
        ),
        None => {
            let classifier = classifier(args)?;
            let routed: Vec<Routed> = rows
                .iter()
                .map(|row| Routed {
                    score: classifier.classify(&row.prompt).difficulty,
                    strong_correct: row.strong_correct,
                    weak_correct: row.weak_correct,
                })
                .collect();
            (routed, "given weights".to_owned())
        }
    };
    let prices = Prices {
        strong: args.strong_price,
        weak: args.weak_price,
    };
    let routing_report = metrics::routing_report(&routed, prices)?;
    if !args.json {
        report::print_routing(&routing_report, &mode, prices);
    }
    json.add_routing(&routing_report);
    Ok(())
}
