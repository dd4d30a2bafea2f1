//! The kernel's BTF, which the syscall hooks need to attach as BTF tracepoints.
use std::os::fd::FromRawFd;

use aya::Btf;

/// The kernel's BTF, or `None` when it has none (or hides it). aya's loader has parsed it
/// once already, for itself, and freed it; this second parse costs about 0.03 CPU-s at
/// start-up (BENCHMARKS.md), against 90 ns saved on every traced call.
pub fn kernel_btf() -> Option<Btf> {
    Btf::from_sys_fs().ok()
}

/// Where the programs find what they read in kernel structures, from the BTF; zeros where
/// it has none. The BTF is mapped once, and only these structs are looked up: about 3 ms,
/// where btf-rs's default full parse took 0.16-0.20 s and 40 MiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StructOffsets {
    /// `task_struct.exit_code`: the status of a process killed and reaped at once.
    pub task_exit_code: u32,
    /// `linux_binprm`'s `p` (the new program's stack pointer once loaded), `argc`,
    /// `filename` and `interp` (the file run, a script's interpreter). With them
    /// `sched_process_exec` reads the arguments from the new program's stack, where the
    /// kernel has just written them; at entry they may be in a page the caller never
    /// touched (a forked child's string literals), which a BPF program cannot fault in, and
    /// the row would have no command line once the process is gone.
    pub binprm: [u32; 4],
    /// `task_struct.files`, `files_struct.fdt`, `fdtable.max_fds`, `fdtable.fd`,
    /// `file.f_inode` and `inode.i_mode`: the way from a thread to the type of the file an
    /// fd refers to, so that an open that returns a FIFO can say so. `None` if any is
    /// missing (two are 0 on every kernel, so 0 cannot mean unknown here).
    pub file_mode: Option<[u32; 6]>,
}

pub fn struct_offsets() -> StructOffsets {
    let Some(btf) = mapped() else {
        return StructOffsets::default();
    };
    StructOffsets {
        task_exit_code: member_offsets(&btf, "task_struct", &["exit_code"]).map_or(0, |[o]| o),
        binprm: member_offsets(&btf, "linux_binprm", &["p", "argc", "filename", "interp"])
            .unwrap_or([0; 4]),
        file_mode: file_mode_offsets(&btf),
    }
}

fn file_mode_offsets(btf: &btf_rs::Btf) -> Option<[u32; 6]> {
    let [files] = member_offsets(btf, "task_struct", &["files"])?;
    let [fdt] = member_offsets(btf, "files_struct", &["fdt"])?;
    let [max_fds, fd] = member_offsets(btf, "fdtable", &["max_fds", "fd"])?;
    let [inode] = member_offsets(btf, "file", &["f_inode"])?;
    let [mode] = member_offsets(btf, "inode", &["i_mode"])?;
    Some([files, fdt, max_fds, fd, inode, mode])
}

/// The kernel's BTF, mapped rather than parsed whole. Kernels before 6.16 cannot map the
/// sysfs file itself: there its bytes (a few MB) are copied into a memfd, which can be.
fn mapped() -> Option<btf_rs::Btf> {
    use btf_rs::{Backend, Btf};
    const VMLINUX: &str = "/sys/kernel/btf/vmlinux";
    if let Ok(btf) = Btf::from_file_with_backend(VMLINUX, Backend::Mmap) {
        return Some(btf);
    }
    let bytes = std::fs::read(VMLINUX).ok()?;
    // SAFETY: a fixed NUL-terminated name; the fd is owned below.
    let fd = unsafe { libc::memfd_create(c"tracepost-btf".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    // SAFETY: memfd_create returned a new fd that nothing else owns.
    let mut copy = std::fs::File::from(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
    std::io::Write::write_all(&mut copy, &bytes).ok()?;
    Btf::from_file_with_backend(format!("/proc/self/fd/{fd}"), Backend::Mmap).ok()
}

/// The byte offsets of `names` in the struct `ty`, each a whole-byte, non-bitfield member at
/// its top level; `None` if any is missing.
fn member_offsets<const N: usize>(
    btf: &btf_rs::Btf,
    ty: &str,
    names: &[&str; N],
) -> Option<[u32; N]> {
    use btf_rs::Type;
    let types = btf.resolve_types_by_name(ty).ok()?;
    types.into_iter().find_map(|t| match t {
        Type::Struct(s) => {
            let mut out = [0u32; N];
            for (o, name) in out.iter_mut().zip(names) {
                *o = s
                    .members
                    .iter()
                    .find(|m| btf.resolve_name(*m).is_ok_and(|n| n == *name))
                    .filter(|m| m.bitfield_size().unwrap_or(0) == 0 && m.bit_offset() % 8 == 0)
                    .map(|m| m.bit_offset() / 8)?;
            }
            Some(out)
        }
        _ => None,
    })
}

/// Hands the pages of the parsed BTF (and of the loader's copy) back to the kernel.
/// Parsed, it is thousands of small allocations; freed, they stay in the heap as holes
/// that the capture's buffers only partly reuse.
pub fn release_freed_heap() {
    // SAFETY: malloc_trim only returns free pages; it touches no live allocation.
    unsafe { libc::malloc_trim(0) };
}

#[cfg(test)]
mod tests {
    /// On a kernel with BTF (every one CI runs on, so there a missing BTF fails) every
    /// member is found, each at its own place: a zero would leave the arguments to the
    /// entry program, and exit statuses to /proc.
    #[test]
    fn the_members_the_programs_read_are_found_where_btf_is() {
        if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "no BTF under CI"
            );
            return;
        }
        let offsets = super::struct_offsets();
        assert!(offsets.task_exit_code > 0, "{offsets:?}");
        assert!(offsets.binprm.iter().all(|&o| o > 0), "{offsets:?}");
        let mut distinct = offsets.binprm.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 4, "{offsets:?}");
    }
}
