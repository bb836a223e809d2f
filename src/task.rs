//! Task types shared by the policy, the classifier and the wire contract.

use std::fmt;
use std::str::FromStr;

use crate::proto;

/// The kind of work a prompt requests. The policy scores every model per
/// task type, and the classifier predicts one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskType {
    Code,
    Math,
    Reasoning,
    Summarization,
    Extraction,
    Classification,
    CreativeWriting,
    OpenQa,
    ClosedQa,
    Rewrite,
    Chat,
}

impl TaskType {
    pub const COUNT: usize = 11;

    /// Every task type, in the order used for indexes and weight rows.
    pub const ALL: [TaskType; Self::COUNT] = [
        TaskType::Code,
        TaskType::Math,
        TaskType::Reasoning,
        TaskType::Summarization,
        TaskType::Extraction,
        TaskType::Classification,
        TaskType::CreativeWriting,
        TaskType::OpenQa,
        TaskType::ClosedQa,
        TaskType::Rewrite,
        TaskType::Chat,
    ];

    /// Returns the position of this task type in [`TaskType::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Returns the snake_case name used in policy files, training data and JSON.
    pub const fn name(self) -> &'static str {
        match self {
            TaskType::Code => "code",
            TaskType::Math => "math",
            TaskType::Reasoning => "reasoning",
            TaskType::Summarization => "summarization",
            TaskType::Extraction => "extraction",
            TaskType::Classification => "classification",
            TaskType::CreativeWriting => "creative_writing",
            TaskType::OpenQa => "open_qa",
            TaskType::ClosedQa => "closed_qa",
            TaskType::Rewrite => "rewrite",
            TaskType::Chat => "chat",
        }
    }

    /// Converts the wire enum; `None` for `TASK_TYPE_UNSPECIFIED`.
    pub fn from_proto(value: proto::TaskType) -> Option<TaskType> {
        use proto::TaskType as P;
        Some(match value {
            P::Unspecified => return None,
            P::Code => TaskType::Code,
            P::Math => TaskType::Math,
            P::Reasoning => TaskType::Reasoning,
            P::Summarization => TaskType::Summarization,
            P::Extraction => TaskType::Extraction,
            P::Classification => TaskType::Classification,
            P::CreativeWriting => TaskType::CreativeWriting,
            P::OpenQa => TaskType::OpenQa,
            P::ClosedQa => TaskType::ClosedQa,
            P::Rewrite => TaskType::Rewrite,
            P::Chat => TaskType::Chat,
        })
    }

    pub fn to_proto(self) -> proto::TaskType {
        use proto::TaskType as P;
        match self {
            TaskType::Code => P::Code,
            TaskType::Math => P::Math,
            TaskType::Reasoning => P::Reasoning,
            TaskType::Summarization => P::Summarization,
            TaskType::Extraction => P::Extraction,
            TaskType::Classification => P::Classification,
            TaskType::CreativeWriting => P::CreativeWriting,
            TaskType::OpenQa => P::OpenQa,
            TaskType::ClosedQa => P::ClosedQa,
            TaskType::Rewrite => P::Rewrite,
            TaskType::Chat => P::Chat,
        }
    }
}

impl fmt::Display for TaskType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for a task type name that is not one of [`TaskType::ALL`].
#[derive(Debug, thiserror::Error)]
#[error("unknown task type {0:?}; expected one of {names}", names = task_names())]
pub struct UnknownTaskType(pub String);

fn task_names() -> String {
    let names: Vec<&str> = TaskType::ALL.iter().map(|t| t.name()).collect();
    names.join(", ")
}

impl FromStr for TaskType {
    type Err = UnknownTaskType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskType::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| UnknownTaskType(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for task in TaskType::ALL {
            assert_eq!(task.name().parse::<TaskType>().unwrap(), task);
            assert_eq!(TaskType::from_proto(task.to_proto()), Some(task));
        }
    }

    #[test]
    fn index_matches_position() {
        for (i, task) in TaskType::ALL.into_iter().enumerate() {
            assert_eq!(task.index(), i);
        }
    }

    #[test]
    fn unknown_name_lists_choices() {
        let err = "poetry".parse::<TaskType>().unwrap_err().to_string();
        assert!(err.contains("poetry"), "{err}");
        assert!(err.contains("creative_writing"), "{err}");
    }
}
