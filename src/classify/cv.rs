//! Cross-validation: train on all folds but one, predict the held-out fold,
//! and pool the held-out predictions of every fold into one report.

use std::collections::BTreeMap;

use crate::classify::Classifier;
use crate::classify::data::{RoutingRow, TaskRow};
use crate::classify::metrics::Routed;
use crate::classify::train::{SplitMix64, TrainOptions, shuffled, train};
use crate::task::TaskType;

/// Assigns each row to one of `folds` folds so that every label is spread
/// as evenly as possible: rows of each label are shuffled with `seed` and
/// dealt out in turn, continuing where the previous label stopped.
pub fn stratified_folds(labels: &[usize], folds: usize, seed: u64) -> Vec<usize> {
    let mut by_label: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (row, &label) in labels.iter().enumerate() {
        by_label.entry(label).or_default().push(row);
    }
    let mut rng = SplitMix64::new(seed);
    let mut assignment = vec![0; labels.len()];
    let mut next = 0;
    for rows in by_label.values() {
        for index in shuffled(rows.len(), &mut rng) {
            assignment[rows[index]] = next % folds;
            next += 1;
        }
    }
    assignment
}

/// Assigns each row the index of its source, so each source is one fold.
/// Returns the fold of each row and the source name of each fold.
pub fn source_folds(rows: &[TaskRow]) -> (Vec<usize>, Vec<String>) {
    let mut names: Vec<String> = rows.iter().map(|row| row.source.clone()).collect();
    names.sort();
    names.dedup();
    let assignment = rows
        .iter()
        .map(|row| {
            names
                .iter()
                .position(|name| *name == row.source)
                .unwrap_or(0)
        })
        .collect();
    (assignment, names)
}

/// Predicts the task of every row with a model trained without the row's
/// fold. Returns (expected, predicted) in row order.
pub fn predict_tasks(
    rows: &[TaskRow],
    assignment: &[usize],
    options: &TrainOptions,
) -> Vec<(TaskType, TaskType)> {
    let folds = assignment.iter().copied().max().map_or(0, |max| max + 1);
    let mut predicted = vec![TaskType::Chat; rows.len()];
    for fold in 0..folds {
        let training: Vec<(&str, TaskType)> = rows
            .iter()
            .zip(assignment)
            .filter(|&(_, &f)| f != fold)
            .map(|(row, _)| (row.prompt.as_str(), row.task))
            .collect();
        let classifier = Classifier::from_weights(train(&training, &[], options));
        for (i, row) in rows.iter().enumerate() {
            if assignment[i] == fold {
                predicted[i] = classifier.classify(&row.prompt).task;
            }
        }
    }
    rows.iter().map(|row| row.task).zip(predicted).collect()
}

/// Scores the difficulty of every row with a model trained without the
/// row's fold.
pub fn predict_routing(rows: &[RoutingRow], folds: usize, options: &TrainOptions) -> Vec<Routed> {
    let labels: Vec<usize> = rows.iter().map(routing_label).collect();
    let assignment = stratified_folds(&labels, folds, options.seed);
    let mut scores = vec![0.0; rows.len()];
    for fold in 0..folds {
        let training: Vec<(&str, f32)> = rows
            .iter()
            .zip(&assignment)
            .filter(|&(_, &f)| f != fold)
            .map(|(row, _)| (row.prompt.as_str(), row.target()))
            .collect();
        let classifier = Classifier::from_weights(train(&[], &training, options));
        for (i, row) in rows.iter().enumerate() {
            if assignment[i] == fold {
                scores[i] = classifier.classify(&row.prompt).difficulty;
            }
        }
    }
    rows.iter()
        .zip(scores)
        .map(|(row, score)| Routed {
            score,
            strong_correct: row.strong_correct,
            weak_correct: row.weak_correct,
        })
        .collect()
}

/// Stratifies routing rows by the pair of outcomes, so each fold gets its
/// share of prompts that only the strong model answers.
fn routing_label(row: &RoutingRow) -> usize {
    usize::from(row.strong_correct) * 2 + usize::from(row.weak_correct)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_stratified() {
        let labels: Vec<usize> = (0..100).map(|i| usize::from(i % 10 == 0)).collect();
        let assignment = stratified_folds(&labels, 5, 3);
        for fold in 0..5 {
            let rare = (0..100)
                .filter(|&i| assignment[i] == fold && labels[i] == 1)
                .count();
            let size = assignment.iter().filter(|&&f| f == fold).count();
            assert_eq!(rare, 2, "fold {fold}");
            assert_eq!(size, 20, "fold {fold}");
        }
    }

    #[test]
    fn folds_depend_on_seed() {
        let labels = vec![0; 50];
        assert_eq!(
            stratified_folds(&labels, 5, 1),
            stratified_folds(&labels, 5, 1)
        );
        assert_ne!(
            stratified_folds(&labels, 5, 1),
            stratified_folds(&labels, 5, 2)
        );
    }

    #[test]
    fn source_folds_group_rows() {
        let row = |source: &str| TaskRow {
            prompt: String::new(),
            task: TaskType::Chat,
            source: source.to_owned(),
        };
        let rows = [row("b"), row("a"), row("b")];
        let (assignment, names) = source_folds(&rows);
        assert_eq!(names, ["a", "b"]);
        assert_eq!(assignment, [1, 0, 1]);
    }
}
