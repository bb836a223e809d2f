//! Generates the gRPC code for `proto/triage/v1/*.proto`. The protoc binary
//! comes from the `protoc-bin-vendored` crate, so no system protoc is needed.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);

    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("triage_descriptor.bin"))
        .compile_with_config(config, &["proto/triage/v1/router.proto"], &["proto"])?;

    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
