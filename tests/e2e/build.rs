//! Compiles the test protos with a protoc binary shipped inside the
//! `protoc-bin-vendored` crate, so no system protoc is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // Build scripts run single-threaded, so setting the variable here is sound.
    std::env::set_var("PROTOC", protoc);
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_protos(&["proto/echo.proto", "proto/helloworld.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
