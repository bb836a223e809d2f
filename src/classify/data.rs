//! Readers for the two training and evaluation layouts: JSONL prompts with a
//! task label, and routing CSV files with one True/False column per model.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::task::{TaskType, UnknownTaskType};

/// One prompt with its task label.
#[derive(Clone, Debug)]
pub struct TaskRow {
    pub prompt: String,
    pub task: TaskType,
    /// The data set the row came from; empty when the file has no `source`.
    pub source: String,
}

/// One prompt with the outcome of the strong and the weak model.
#[derive(Clone, Debug)]
pub struct RoutingRow {
    pub prompt: String,
    pub strong_correct: bool,
    pub weak_correct: bool,
}

impl RoutingRow {
    /// Returns whether only the strong model answered correctly, which is
    /// the event the difficulty head predicts.
    pub fn needs_strong(&self) -> bool {
        self.strong_correct && !self.weak_correct
    }

    /// Returns the training target of the difficulty head: 1 when only the
    /// strong model is correct, 0 when only the weak one is, and 0.5 when
    /// they agree. This is the probability that the strong model's answer
    /// beats the weak one's with a tie counted as half a win, so the head
    /// learns the expected gain of calling the strong model.
    pub fn target(&self) -> f32 {
        let strong = f32::from(u8::from(self.strong_correct));
        let weak = f32::from(u8::from(self.weak_correct));
        (1.0 + strong - weak) / 2.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("failed to read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: invalid JSON line: {source}")]
    Json {
        path: PathBuf,
        line: usize,
        source: serde_json::Error,
    },
    #[error("{path}:{line}: {source}")]
    Task {
        path: PathBuf,
        line: usize,
        source: UnknownTaskType,
    },
    #[error("{path}: invalid CSV: {source}")]
    Csv { path: PathBuf, source: csv::Error },
    #[error("{path}: no column named {column:?}; the columns are {available}")]
    MissingColumn {
        path: PathBuf,
        column: String,
        available: String,
    },
    #[error("{path}: record {record}: column {column:?} is {value:?}, expected True or False")]
    InvalidOutcome {
        path: PathBuf,
        record: usize,
        column: String,
        value: String,
    },
    #[error("{path}: contains no rows")]
    Empty { path: PathBuf },
}

#[derive(Deserialize)]
struct JsonTaskRow {
    prompt: String,
    task_type: String,
    #[serde(default)]
    source: Option<String>,
}

/// Reads a JSONL file whose lines have `prompt` and `task_type` fields and
/// optionally `source`. Blank lines are skipped; other fields are ignored.
pub fn read_tasks(path: &Path) -> Result<Vec<TaskRow>, DataError> {
    let read_error = |source| DataError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut rows = Vec::new();
    for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(read_error)?;
        if line.trim().is_empty() {
            continue;
        }
        rows.push(parse_task_line(path, index + 1, &line)?);
    }
    if rows.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(rows)
}

fn parse_task_line(path: &Path, line: usize, text: &str) -> Result<TaskRow, DataError> {
    let row: JsonTaskRow = serde_json::from_str(text).map_err(|source| DataError::Json {
        path: path.to_path_buf(),
        line,
        source,
    })?;
    let task = row.task_type.parse().map_err(|source| DataError::Task {
        path: path.to_path_buf(),
        line,
        source,
    })?;
    Ok(TaskRow {
        prompt: row.prompt,
        task,
        source: row.source.unwrap_or_default(),
    })
}

/// Reads routing CSV files: a `prompt` column and one True/False column per
/// model, of which `strong` and `weak` name the two to compare.
pub fn read_routing(
    paths: &[PathBuf],
    strong: &str,
    weak: &str,
) -> Result<Vec<RoutingRow>, DataError> {
    let mut rows = Vec::new();
    for path in paths {
        rows.extend(read_routing_file(path, strong, weak)?);
    }
    Ok(rows)
}

fn read_routing_file(path: &Path, strong: &str, weak: &str) -> Result<Vec<RoutingRow>, DataError> {
    let csv_error = |source| DataError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = csv::Reader::from_path(path).map_err(csv_error)?;
    let headers = reader.headers().map_err(csv_error)?.clone();
    let column = |name: &str| find_column(path, &headers, name);
    let (prompt_at, strong_at, weak_at) = (column("prompt")?, column(strong)?, column(weak)?);

    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let record = record.map_err(csv_error)?;
        let outcome = |at: usize, name: &str| {
            let value = record.get(at).unwrap_or_default();
            parse_outcome(value).ok_or_else(|| DataError::InvalidOutcome {
                path: path.to_path_buf(),
                record: index + 1,
                column: name.to_owned(),
                value: value.to_owned(),
            })
        };
        rows.push(RoutingRow {
            prompt: record.get(prompt_at).unwrap_or_default().to_owned(),
            strong_correct: outcome(strong_at, strong)?,
            weak_correct: outcome(weak_at, weak)?,
        });
    }
    if rows.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(rows)
}

fn find_column(path: &Path, headers: &csv::StringRecord, name: &str) -> Result<usize, DataError> {
    headers
        .iter()
        .position(|header| header == name)
        .ok_or_else(|| {
            let available: Vec<&str> = headers.iter().collect();
            DataError::MissingColumn {
                path: path.to_path_buf(),
                column: name.to_owned(),
                available: available.join(", "),
            }
        })
}

fn parse_outcome(value: &str) -> Option<bool> {
    match value.trim() {
        "True" | "true" | "1" => Some(true),
        "False" | "false" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn write_temp(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    #[test]
    fn reads_task_jsonl() {
        let file = write_temp(
            "{\"prompt\": \"Sort a list\", \"task_type\": \"code\", \"source\": \"a\"}\n\n\
             {\"prompt\": \"Hi there\", \"task_type\": \"chat\", \"extra\": 1}\n",
        );
        let rows = read_tasks(file.path()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].task, TaskType::Code);
        assert_eq!(rows[0].source, "a");
        assert_eq!(rows[1].source, "");
    }

    #[test]
    fn unknown_task_names_line() {
        let file = write_temp(
            "{\"prompt\": \"x\", \"task_type\": \"code\"}\n{\"prompt\": \"y\", \"task_type\": \"poem\"}\n",
        );
        let err = read_tasks(file.path()).unwrap_err().to_string();
        assert!(err.contains(":2:"), "{err}");
        assert!(err.contains("poem"), "{err}");
    }

    #[test]
    fn reads_routing_csv() {
        let file = write_temp("prompt,big,small\n\"Add 1\nand 2\",True,False\nHello,False,False\n");
        let rows = read_routing(&[file.path().to_path_buf()], "big", "small").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].prompt, "Add 1\nand 2");
        assert!(rows[0].needs_strong());
        assert!(!rows[1].needs_strong());
    }

    #[test]
    fn missing_column_lists_columns() {
        let file = write_temp("prompt,big,small\nx,True,True\n");
        let err = read_routing(&[file.path().to_path_buf()], "huge", "small")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"huge\""), "{err}");
        assert!(err.contains("prompt, big, small"), "{err}");
    }

    #[test]
    fn invalid_outcome_is_rejected() {
        let file = write_temp("prompt,big,small\nx,maybe,True\n");
        let err = read_routing(&[file.path().to_path_buf()], "big", "small")
            .unwrap_err()
            .to_string();
        assert!(err.contains("maybe"), "{err}");
    }
}
