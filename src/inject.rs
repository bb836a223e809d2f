//! The Kubernetes side of triage: the sidecar injection webhook and the
//! offline manifest injector.
//!
//! Both paths share one definition of the sidecar ([`template`]) and one
//! function that decides what to add to a pod ([`patch::plan`]), so a pod
//! injected by the webhook and one rendered with `--manifest` come out the
//! same.

mod args;
pub mod manifest;
pub mod overrides;
pub mod patch;
pub mod quantity;
pub mod render;
pub mod review;
mod run;
pub mod server;
pub mod template;
pub mod tls;

pub use args::{InjectArgs, SidecarMode};
pub use run::run;
