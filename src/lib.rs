//! triage: a per-pod sidecar that decides which LLM model each request should
//! go to. See ARCHITECTURE.md for the data flow.

pub mod bench;
pub mod catalog;
pub mod classify;
pub mod cli;
pub mod client;
pub mod decide;
pub mod frame;
pub mod inject;
pub mod policy;
pub mod proto;
pub mod serve;
pub mod task;
pub mod telemetry;
