//! Compiles `proto/` without a system `protoc`: protox parses the files into a descriptor set,
//! which is both written to `OUT_DIR` (served by reflection) and handed to tonic-prost-build.

use std::{env, error::Error, fs, path::PathBuf};

use prost::Message as _;

const PROTO_DIR: &str = "proto";

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed={PROTO_DIR}");

    let mut protos: Vec<PathBuf> = fs::read_dir(PROTO_DIR)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    protos.retain(|path| path.extension().is_some_and(|ext| ext == "proto"));
    protos.sort();
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }

    let descriptors = protox::Compiler::new([PROTO_DIR])?
        .include_imports(true)
        .include_source_info(true)
        .open_files(&protos)?
        .file_descriptor_set();

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("streamhub_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // File chunks pass from the socket to the file writer (and from the file reader to
        // the socket) as reference-counted `Bytes`, without a copy per chunk.
        .bytes(".streaming.FileChunk.data")
        .compile_fds(descriptors)?;
    Ok(())
}
