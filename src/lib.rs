//! triage: a per-pod sidecar that decides which LLM model each request should
//! go to. See ARCHITECTURE.md for the data flow.

pub mod classify;
pub mod cli;
pub mod proto;
pub mod task;
