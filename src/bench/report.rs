//! Benchmark results: latency percentiles and throughput per transport,
//! each beside its baseline, as a table or as one JSON object.

use serde::Serialize;

use super::load::Sample;

/// Latency and throughput of one measurement.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Summary {
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub per_second: f64,
    pub requests: u64,
    pub errors: u64,
}

impl Summary {
    pub fn of(sample: &Sample) -> Self {
        let micros = |quantile: f64| sample.latency.value_at_quantile(quantile) as f64 / 1000.0;
        let seconds = sample.elapsed.as_secs_f64();
        let requests = sample.latency.len();
        Summary {
            p50_us: micros(0.50),
            p90_us: micros(0.90),
            p99_us: micros(0.99),
            p999_us: micros(0.999),
            per_second: if seconds > 0.0 {
                requests as f64 / seconds
            } else {
                0.0
            },
            requests,
            errors: sample.errors,
        }
    }
}

/// One transport and its baseline.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub name: &'static str,
    pub baseline: &'static str,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub per_second: f64,
    pub requests: u64,
    pub errors: u64,
    pub baseline_p50_us: f64,
    pub baseline_p99_us: f64,
    pub baseline_per_second: f64,
    /// p50 over the baseline's p50.
    pub p50_ratio: f64,
    /// p99 over the baseline's p99.
    pub p99_ratio: f64,
}

impl Row {
    pub fn new(
        name: &'static str,
        baseline_name: &'static str,
        real: Summary,
        baseline: Summary,
    ) -> Self {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        Row {
            name,
            baseline: baseline_name,
            p50_us: real.p50_us,
            p90_us: real.p90_us,
            p99_us: real.p99_us,
            p999_us: real.p999_us,
            per_second: real.per_second,
            requests: real.requests,
            errors: real.errors + baseline.errors,
            baseline_p50_us: baseline.p50_us,
            baseline_p99_us: baseline.p99_us,
            baseline_per_second: baseline.per_second,
            p50_ratio: ratio(real.p50_us, baseline.p50_us),
            p99_ratio: ratio(real.p99_us, baseline.p99_us),
        }
    }
}

/// The settings a run used, printed with its results.
#[derive(Clone, Debug, Serialize)]
pub struct RunInfo {
    pub cpus: usize,
    pub connections: usize,
    pub in_flight: usize,
    pub requests: Option<u64>,
    pub seconds: Option<u64>,
    pub prompts: usize,
    pub server_threads: usize,
    pub client_threads: usize,
}

#[derive(Serialize)]
struct Report<'a> {
    run: &'a RunInfo,
    transports: &'a [Row],
}

pub fn json(run: &RunInfo, rows: &[Row]) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(&Report {
        run,
        transports: rows,
    })?)
}

pub fn table(run: &RunInfo, rows: &[Row]) -> String {
    let mut out = format!(
        "{} CPUs, {} connection(s) x {} in flight, {} prompts, server threads {}, client threads {}\n\n",
        run.cpus,
        run.connections,
        run.in_flight,
        run.prompts,
        run.server_threads,
        run.client_threads
    );
    out.push_str(&format!(
        "{:<12} {:>9} {:>9} {:>9} {:>9} {:>11} | {:<14} {:>9} {:>9} {:>11} | {:>6} {:>6}\n",
        "transport",
        "p50 µs",
        "p90 µs",
        "p99 µs",
        "p99.9 µs",
        "per second",
        "baseline",
        "p50 µs",
        "p99 µs",
        "per second",
        "p50 x",
        "p99 x"
    ));
    for row in rows {
        out.push_str(&format!(
            "{:<12} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>11.0} | {:<14} {:>9.2} {:>9.2} {:>11.0} | {:>6.2} {:>6.2}\n",
            row.name,
            row.p50_us,
            row.p90_us,
            row.p99_us,
            row.p999_us,
            row.per_second,
            row.baseline,
            row.baseline_p50_us,
            row.baseline_p99_us,
            row.baseline_per_second,
            row.p50_ratio,
            row.p99_ratio,
        ));
    }
    let errors: u64 = rows.iter().map(|r| r.errors).sum();
    if errors > 0 {
        out.push_str(&format!(
            "\n{errors} requests failed; see the errors field of --json\n"
        ));
    }
    out
}
