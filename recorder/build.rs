//! Compiles `ebpf/tracepost-ebpf` for the BPF target so that `record` embeds its kernel
//! programs: one file to copy onto a production host.
use anyhow::{Context as _, Result};

fn main() -> Result<()> {
    let ebpf_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../ebpf");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "tracepost-ebpf",
            root_dir: ebpf_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
    .context("building the eBPF programs (needs the nightly toolchain with rust-src and bpf-linker 0.10: run ./dev/setup)")
}
