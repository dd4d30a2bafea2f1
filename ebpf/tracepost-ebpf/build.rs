//! Rebuild when bpf-linker changes: a new linker can change the emitted object.
fn main() {
    println!(
        "cargo::rustc-check-cfg=cfg(bpf_target_arch, values(\"x86_64\", \"aarch64\", \"riscv64\", \"arm\", \"powerpc64\", \"s390x\", \"mips\", \"loongarch64\"))"
    );
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("bpf-linker");
            if candidate.exists() {
                println!("cargo:rerun-if-changed={}", candidate.display());
                break;
            }
        }
    }
}
