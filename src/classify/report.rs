//! Printing evaluation results as tables or as one JSON object.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use crate::classify::metrics::{Prices, RoutingReport, TaskReport};
use crate::cli::output::outln;
use crate::task::TaskType;

/// Accuracy of the task head on one held-out source.
#[derive(Clone, Debug)]
pub struct SourceAccuracy {
    pub source: String,
    pub rows: usize,
    pub accuracy: f64,
}

/// Groups (expected, predicted) pairs by the fold they were held out in.
pub fn source_accuracy(
    pairs: &[(TaskType, TaskType)],
    assignment: &[usize],
    names: &[String],
) -> Vec<SourceAccuracy> {
    names
        .iter()
        .enumerate()
        .map(|(fold, name)| {
            let held_out: Vec<&(TaskType, TaskType)> = pairs
                .iter()
                .zip(assignment)
                .filter(|&(_, &f)| f == fold)
                .map(|(pair, _)| pair)
                .collect();
            let correct = held_out
                .iter()
                .filter(|(expected, predicted)| expected == predicted)
                .count();
            SourceAccuracy {
                source: name.clone(),
                rows: held_out.len(),
                accuracy: correct as f64 / held_out.len().max(1) as f64,
            }
        })
        .collect()
}

/// The flat JSON object that `triage eval --json` prints. Task measures and
/// routing measures use distinct keys, so one object can hold both.
#[derive(Default)]
pub struct JsonReport {
    fields: Map<String, Value>,
}

impl JsonReport {
    pub fn add_tasks(&mut self, report: &TaskReport) {
        let classes: Vec<&str> = TaskType::ALL.iter().map(|task| task.name()).collect();
        self.fields.insert("rows".into(), json!(report.rows));
        self.fields
            .insert("accuracy".into(), json!(report.accuracy));
        self.fields
            .insert("macro_f1".into(), json!(report.macro_f1));
        self.fields.insert("classes".into(), json!(classes));
        self.fields.insert("f1".into(), json!(report.f1));
        self.fields
            .insert("confusion".into(), json!(report.confusion));
    }

    pub fn add_sources(&mut self, sources: &[SourceAccuracy]) {
        let by_source: Map<String, Value> = sources
            .iter()
            .map(|s| {
                (
                    s.source.clone(),
                    json!({"rows": s.rows, "accuracy": s.accuracy}),
                )
            })
            .collect();
        self.fields
            .insert("by_source".into(), Value::Object(by_source));
    }

    pub fn add_routing(&mut self, report: &RoutingReport) {
        if let Ok(Value::Object(fields)) = serde_json::to_value(report) {
            for (key, value) in fields {
                let key = if key == "rows" {
                    "routing_rows".to_owned()
                } else {
                    key
                };
                self.fields.insert(key, value);
            }
        }
    }

    pub fn render(&self) -> String {
        Value::Object(self.fields.clone()).to_string()
    }
}

pub fn print_tasks(report: &TaskReport, mode: &str) {
    outln!("task head, {mode}, {} rows", report.rows);
    outln!("  accuracy  {:.4}", report.accuracy);
    outln!("  macro-F1  {:.4}", report.macro_f1);
    outln!();
    outln!("  confusion matrix (rows: expected, columns: predicted)");
    // Each line is built whole, so all output goes through `outln!`.
    // Writing to a String cannot fail.
    let mut header = format!("  {:<17}", "");
    for task in TaskType::ALL {
        let _ = write!(header, "{:>6}", short_name(task));
    }
    outln!("{header}{:>8}", "F1");
    for (k, row) in report.confusion.iter().enumerate() {
        let mut line = format!("  {:<17}", TaskType::ALL[k].name());
        for count in row {
            let _ = write!(line, "{count:>6}");
        }
        match report.f1[k] {
            Some(f1) => outln!("{line}{f1:>8.3}"),
            None => outln!("{line}{:>8}", "-"),
        }
    }
}

/// Returns a column header of at most five characters.
fn short_name(task: TaskType) -> &'static str {
    match task {
        TaskType::Code => "code",
        TaskType::Math => "math",
        TaskType::Reasoning => "reas",
        TaskType::Summarization => "summ",
        TaskType::Extraction => "extr",
        TaskType::Classification => "class",
        TaskType::CreativeWriting => "creat",
        TaskType::OpenQa => "openq",
        TaskType::ClosedQa => "closq",
        TaskType::Rewrite => "rewr",
        TaskType::Chat => "chat",
    }
}

pub fn print_sources(sources: &[SourceAccuracy]) {
    outln!("task head accuracy per held-out source");
    for source in sources {
        outln!(
            "  {:<24} {:>6} rows  accuracy {:.4}",
            source.source,
            source.rows,
            source.accuracy
        );
    }
    outln!();
}

pub fn print_routing(report: &RoutingReport, mode: &str, prices: Prices) {
    outln!("difficulty head, {mode}, {} rows", report.rows);
    outln!("  strong model accuracy  {:.4}", report.strong_accuracy);
    outln!("  weak model accuracy    {:.4}", report.weak_accuracy);
    outln!(
        "  CPT(50%)               {:.2}% strong calls",
        100.0 * report.cpt50
    );
    outln!(
        "  CPT(80%)               {:.2}% strong calls",
        100.0 * report.cpt80
    );
    outln!("  APGR                   {:.4}", report.apgr);
    outln!(
        "  at 95% of strong accuracy: {:.2}% strong calls, cost saving {:.2}% \
         (strong ${}/M tokens, weak ${}/M tokens, equal tokens per call assumed)",
        100.0 * report.strong_calls_at_95,
        100.0 * report.cost_saving_at_95,
        prices.strong,
        prices.weak
    );
}
