//! Evaluation measures: accuracy, macro-F1 and the confusion matrix for the
//! task head, and the routing measures of RouteLLM (Ong et al., 2024,
//! "RouteLLM: Learning to Route LLMs with Preference Data") for the
//! difficulty head.

use serde::Serialize;

use crate::task::TaskType;

/// Task head results over a set of (expected, predicted) pairs.
#[derive(Clone, Debug, Serialize)]
pub struct TaskReport {
    pub rows: usize,
    pub accuracy: f64,
    /// Mean F1 over the classes that occur as expected or predicted labels.
    pub macro_f1: f64,
    /// F1 per class in [`TaskType::ALL`] order, or `None` for a class that
    /// occurs in neither the expected nor the predicted labels.
    pub f1: Vec<Option<f64>>,
    /// `confusion[expected][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
}

pub fn task_report(pairs: &[(TaskType, TaskType)]) -> TaskReport {
    let mut confusion = vec![vec![0usize; TaskType::COUNT]; TaskType::COUNT];
    for &(expected, predicted) in pairs {
        confusion[expected.index()][predicted.index()] += 1;
    }
    let correct: usize = (0..TaskType::COUNT).map(|k| confusion[k][k]).sum();
    let f1: Vec<Option<f64>> = (0..TaskType::COUNT)
        .map(|k| class_f1(&confusion, k))
        .collect();
    let present: Vec<f64> = f1.iter().flatten().copied().collect();
    TaskReport {
        rows: pairs.len(),
        accuracy: ratio(correct, pairs.len()),
        macro_f1: present.iter().sum::<f64>() / present.len().max(1) as f64,
        f1,
        confusion,
    }
}

fn class_f1(confusion: &[Vec<usize>], k: usize) -> Option<f64> {
    let true_positive = confusion[k][k];
    let expected: usize = confusion[k].iter().sum();
    let predicted: usize = confusion.iter().map(|row| row[k]).sum();
    if expected + predicted == 0 {
        return None;
    }
    Some(2.0 * true_positive as f64 / (expected + predicted) as f64)
}

fn ratio(numerator: usize, denominator: usize) -> f64 {
    if denominator == 0 {
        return 0.0;
    }
    numerator as f64 / denominator as f64
}

/// One routed prompt: the router's score (higher sends it to the strong
/// model first) and whether each model answered correctly.
#[derive(Clone, Copy, Debug)]
pub struct Routed {
    pub score: f32,
    pub strong_correct: bool,
    pub weak_correct: bool,
}

/// Prices in USD per million tokens, used for the cost saving.
#[derive(Clone, Copy, Debug)]
pub struct Prices {
    pub strong: f64,
    pub weak: f64,
}

/// Difficulty head results, as fractions in [0, 1].
#[derive(Clone, Debug, Serialize)]
pub struct RoutingReport {
    pub rows: usize,
    pub strong_accuracy: f64,
    pub weak_accuracy: f64,
    /// Share of strong-model calls needed to recover 50% of the gap.
    pub cpt50: f64,
    /// Share of strong-model calls needed to recover 80% of the gap.
    pub cpt80: f64,
    /// Average performance gap recovered: the area under the gap-recovered
    /// curve over the share of strong calls from 0 to 1.
    pub apgr: f64,
    /// Share of strong calls needed to reach 95% of the strong accuracy.
    pub strong_calls_at_95: f64,
    /// 1 - (routed cost / always-strong cost) at that share.
    pub cost_saving_at_95: f64,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "the strong model's accuracy ({strong:.4}) is not above the weak model's ({weak:.4}), \
     so there is no quality gap to recover; check --strong and --weak"
)]
pub struct NoQualityGap {
    pub strong: f64,
    pub weak: f64,
}

/// Computes the routing measures. Prompts are sent to the strong model in
/// descending score order. Prompts with equal scores form one group that
/// is routed in random order, so the curve is linear across a group and
/// ties neither help nor hurt.
pub fn routing_report(routed: &[Routed], prices: Prices) -> Result<RoutingReport, NoQualityGap> {
    let n = routed.len() as f64;
    let strong = routed.iter().filter(|r| r.strong_correct).count() as f64 / n;
    let weak = routed.iter().filter(|r| r.weak_correct).count() as f64 / n;
    if routed.is_empty() || strong <= weak {
        return Err(NoQualityGap { strong, weak });
    }
    let curve = quality_curve(routed);
    let gap = |quality: f64| (quality - weak) / (strong - weak);
    let strong_calls_at_95 = first_reaching(&curve, 0.95 * strong);
    let cost = strong_calls_at_95 * prices.strong + (1.0 - strong_calls_at_95) * prices.weak;
    Ok(RoutingReport {
        rows: routed.len(),
        strong_accuracy: strong,
        weak_accuracy: weak,
        cpt50: first_reaching(&curve, weak + 0.5 * (strong - weak)),
        cpt80: first_reaching(&curve, weak + 0.8 * (strong - weak)),
        apgr: area(&curve, gap),
        strong_calls_at_95,
        cost_saving_at_95: 1.0 - cost / prices.strong,
    })
}

/// Returns (share of strong calls, accuracy) at every tie-group boundary,
/// from (0, weak accuracy) to (1, strong accuracy).
fn quality_curve(routed: &[Routed]) -> Vec<(f64, f64)> {
    let mut order: Vec<&Routed> = routed.iter().collect();
    order.sort_by(|a, b| b.score.total_cmp(&a.score));
    let n = routed.len() as f64;
    let mut correct = routed.iter().filter(|r| r.weak_correct).count() as f64;
    let mut curve = vec![(0.0, correct / n)];
    for (i, r) in order.iter().enumerate() {
        correct += f64::from(u8::from(r.strong_correct)) - f64::from(u8::from(r.weak_correct));
        let group_ends = order.get(i + 1).is_none_or(|next| next.score != r.score);
        if group_ends {
            curve.push(((i + 1) as f64 / n, correct / n));
        }
    }
    curve
}

/// Returns the smallest share of strong calls at which the piecewise-linear
/// curve reaches `target` accuracy.
fn first_reaching(curve: &[(f64, f64)], target: f64) -> f64 {
    let Some(&(x0, y0)) = curve.first() else {
        return 1.0;
    };
    if y0 >= target {
        return x0;
    }
    for pair in curve.windows(2) {
        let ((xa, ya), (xb, yb)) = (pair[0], pair[1]);
        if yb >= target {
            return xa + (xb - xa) * (target - ya) / (yb - ya);
        }
    }
    1.0
}

/// Integrates `f(accuracy)` over the share of strong calls (trapezoids,
/// which is exact for a piecewise-linear curve).
fn area(curve: &[(f64, f64)], f: impl Fn(f64) -> f64) -> f64 {
    curve
        .windows(2)
        .map(|pair| (pair[1].0 - pair[0].0) * (f(pair[0].1) + f(pair[1].1)) / 2.0)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRICES: Prices = Prices {
        strong: 10.0,
        weak: 1.0,
    };

    fn routed(score: f32, strong_correct: bool, weak_correct: bool) -> Routed {
        Routed {
            score,
            strong_correct,
            weak_correct,
        }
    }

    #[test]
    fn task_report_counts() {
        use TaskType::*;
        let pairs = [(Code, Code), (Code, Math), (Math, Math), (Chat, Chat)];
        let report = task_report(&pairs);
        assert!((report.accuracy - 0.75).abs() < 1e-12);
        assert_eq!(report.confusion[Code.index()][Math.index()], 1);
        // F1: code 2/3, math 2/3, chat 1; absent classes are skipped.
        assert!((report.macro_f1 - (2.0 / 3.0 + 2.0 / 3.0 + 1.0) / 3.0).abs() < 1e-12);
        assert_eq!(report.f1[Rewrite.index()], None);
    }

    #[test]
    fn perfect_router_scores() {
        // Two prompts need the strong model, two are easy for both.
        let rows = [
            routed(0.9, true, false),
            routed(0.8, true, false),
            routed(0.1, true, true),
            routed(0.2, true, true),
        ];
        let report = routing_report(&rows, PRICES).unwrap();
        assert!((report.cpt50 - 0.25).abs() < 1e-12, "{report:?}");
        // The gap is recovered linearly up to 50% calls, then stays at 1.
        assert!((report.apgr - 0.75).abs() < 1e-12, "{report:?}");
        assert!((report.strong_accuracy - 1.0).abs() < 1e-12);
        assert!((report.weak_accuracy - 0.5).abs() < 1e-12);
    }

    #[test]
    fn reversed_router_scores_badly() {
        let rows = [
            routed(0.1, true, false),
            routed(0.2, true, false),
            routed(0.9, true, true),
            routed(0.8, true, true),
        ];
        let report = routing_report(&rows, PRICES).unwrap();
        assert!((report.cpt50 - 0.75).abs() < 1e-12, "{report:?}");
        assert!((report.apgr - 0.25).abs() < 1e-12, "{report:?}");
    }

    #[test]
    fn ties_route_as_random() {
        let rows = [
            routed(0.5, true, false),
            routed(0.5, true, true),
            routed(0.5, true, true),
            routed(0.5, true, false),
        ];
        let report = routing_report(&rows, PRICES).unwrap();
        assert!((report.cpt50 - 0.5).abs() < 1e-12, "{report:?}");
        assert!((report.apgr - 0.5).abs() < 1e-12, "{report:?}");
    }

    #[test]
    fn cost_saving_uses_prices() {
        let rows = [
            routed(0.9, true, false),
            routed(0.1, true, true),
            routed(0.2, true, true),
            routed(0.3, true, true),
        ];
        let report = routing_report(&rows, PRICES).unwrap();
        // 95% of strong accuracy 1.0 needs 0.95 - 0.75 = 0.2 of a 0.25 step.
        assert!(
            (report.strong_calls_at_95 - 0.2).abs() < 1e-12,
            "{report:?}"
        );
        let expected = 1.0 - (0.2 * 10.0 + 0.8 * 1.0) / 10.0;
        assert!(
            (report.cost_saving_at_95 - expected).abs() < 1e-12,
            "{report:?}"
        );
    }

    #[test]
    fn no_gap_is_an_error() {
        let rows = [routed(0.9, true, true), routed(0.1, false, true)];
        assert!(routing_report(&rows, PRICES).is_err());
        assert!(routing_report(&[], PRICES).is_err());
    }
}
