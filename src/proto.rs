//! Code generated from `proto/triage/v1/router.proto`.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

tonic::include_proto!("triage.v1");

/// The encoded file descriptor set, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("triage_descriptor");
