//! `record --stacks`: the kernel stacks the programs stored where calls blocked, as text.
//!
//! The programs keep each distinct stack once, in `KSTACKS`, and give a call only its id.
//! The writer turns an id into text the first time a row needs it, here, while the map
//! and this host's `/proc/kallsyms` are at hand: kernel addresses mean nothing on another
//! host, or after a reboot, so the capture carries names, not addresses.
use std::{collections::HashMap, io, sync::Arc, time::Duration};

use aya::maps::{MapData, StackTraceMap};

/// One id's text, once looked up: `None` when the map no longer had it.
type Resolved = Option<Arc<str>>;

/// The stacks of one capture, and the names of this kernel's functions.
pub struct KernelStacks {
    map: StackTraceMap<MapData>,
    /// Sorted by address. Read when the first stack is needed: about 10 MiB that a capture
    /// whose calls never block should not pay for.
    symbols: Option<Vec<(u64, Box<str>)>>,
    text: HashMap<i32, Resolved>,
    min_ns: u64,
}

/// Frames of the programs' own path to `bpf_get_stackid`, and of the scheduler's switch
/// itself: the same on every stack, so they say nothing about where the call blocked.
const SWITCH_FRAMES: &[&str] = &["__schedule", "__traceiter_sched_switch"];

impl KernelStacks {
    /// `min` is `--stack-min`: calls shorter than it get no stack.
    pub fn new(map: StackTraceMap<MapData>, min: Duration) -> Self {
        Self {
            map,
            symbols: None,
            text: HashMap::new(),
            min_ns: u64::try_from(min.as_nanos()).unwrap_or(u64::MAX),
        }
    }

    /// The stack of a call that took `duration_ns` and blocked longest at stack `id`.
    pub fn text(&mut self, id: i32, duration_ns: u64) -> Option<Arc<str>> {
        if id < 0 || duration_ns < self.min_ns {
            return None;
        }
        if let Some(known) = self.text.get(&id) {
            return known.clone();
        }
        let resolved = self.resolve(id);
        self.text.insert(id, resolved.clone());
        resolved
    }

    fn resolve(&mut self, id: i32) -> Resolved {
        let trace = self.map.get(&(id as u32), 0).ok()?;
        let symbols = match &mut self.symbols {
            Some(s) => s,
            None => self.symbols.insert(kernel_symbols().unwrap_or_else(|e| {
                crate::say!(
                    "warning: --stacks: cannot read the kernel's symbols from /proc/kallsyms \
                     ({e}); stack frames read [unknown]"
                );
                Vec::new()
            })),
        };
        let names: Vec<&str> = trace
            .frames()
            .iter()
            .map(|f| name_of(symbols, f.ip))
            .collect();
        Some(fold(&names).into())
    }
}

/// This kernel's function names by address, from `/proc/kallsyms`. A module's functions
/// come as `name\t[module]`, written here as perf writes them, `name [module]`. Read once:
/// a function of a module loaded later is named after the symbol before it.
fn kernel_symbols() -> io::Result<Vec<(u64, Box<str>)>> {
    Ok(aya::util::kernel_symbols()?
        .into_iter()
        .filter(|(addr, _)| *addr != 0)
        .map(|(addr, name)| (addr, as_perf_writes(&name).into_boxed_str()))
        .collect())
}

/// `name\t[module]`, as aya reads `/proc/kallsyms`, as `name [module]`.
fn as_perf_writes(name: &str) -> String {
    name.replace('\t', " ")
}

/// Whether this host shows `record` the kernel's addresses in `/proc/kallsyms`: with
/// `kernel.kptr_restrict` at 2 (or without CAP_SYSLOG) every address reads 0, and no frame
/// of a stack could be named.
pub fn symbols_readable() -> io::Result<bool> {
    let file = io::BufReader::new(std::fs::File::open("/proc/kallsyms")?);
    for line in io::BufRead::lines(file).take(64) {
        let line = line?;
        let addr = line.split_whitespace().next().unwrap_or("0");
        if u64::from_str_radix(addr, 16).is_ok_and(|a| a != 0) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The function `ip` is in: the last symbol at or below it.
fn name_of(symbols: &[(u64, Box<str>)], ip: u64) -> &str {
    match symbols.partition_point(|(addr, _)| *addr <= ip) {
        0 => "[unknown]",
        i => &symbols[i - 1].1,
    }
}

/// Innermost-first frames as one folded line, outermost first, from the frame below the
/// scheduler's switch on.
fn fold(innermost_first: &[&str]) -> String {
    let from = innermost_first
        .iter()
        .rposition(|name| SWITCH_FRAMES.contains(name))
        .map_or(0, |i| i + 1);
    let mut frames: Vec<&str> = innermost_first[from..].to_vec();
    frames.reverse();
    frames.join(";")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_fold_outermost_first_without_the_switch() {
        let stack = [
            "bpf_get_stackid_raw_tp",
            "bpf_trace_run4",
            "__schedule",
            "schedule",
            "anon_pipe_read",
            "vfs_read",
            "ksys_read",
            "do_syscall_64",
            "entry_SYSCALL_64_after_hwframe",
        ];
        assert_eq!(
            fold(&stack),
            "entry_SYSCALL_64_after_hwframe;do_syscall_64;ksys_read;vfs_read;anon_pipe_read;schedule"
        );
        assert_eq!(fold(&["a", "b"]), "b;a");
    }

    #[test]
    fn module_functions_read_as_perf_writes_them() {
        assert_eq!(
            as_perf_writes("ext4_sync_file\t[ext4]"),
            "ext4_sync_file [ext4]"
        );
        assert_eq!(as_perf_writes("vfs_read"), "vfs_read");
    }

    #[test]
    fn an_address_is_in_the_last_function_below_it() {
        let symbols: Vec<(u64, Box<str>)> = vec![(0x100, "a".into()), (0x200, "b".into())];
        assert_eq!(name_of(&symbols, 0x50), "[unknown]");
        assert_eq!(name_of(&symbols, 0x100), "a");
        assert_eq!(name_of(&symbols, 0x1ff), "a");
        assert_eq!(name_of(&symbols, 0x250), "b");
    }
}
