//! Generates the wire types from `proto/` with protox, so no `protoc` binary is
//! needed, and their canonical proto3 JSON mapping with pbjson.

use std::{env, path::PathBuf};

use protox::prost::Message;

const PROTOS: &[&str] = &[
    "suanli/v1/host.proto",
    "suanli/v1/stream.proto",
    "suanli/v1/node.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out = PathBuf::from(env::var("OUT_DIR")?);

    let fds = protox::compile(PROTOS, ["proto"])?;
    let descriptors = fds.encode_to_vec();

    prost_build::Config::new().out_dir(&out).compile_fds(fds)?;
    pbjson_build::Builder::new()
        .out_dir(&out)
        .register_descriptors(&descriptors)?
        .build(&[".suanli"])?;
    Ok(())
}
