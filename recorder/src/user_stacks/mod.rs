//! `record --stacks`: the user-space call chain of each slow call.
//!
//! The programs send the registers and the top of the stack of each call of at least
//! `--stack-min` as it returns ([`UserStackSample`]), before the call's record. The capture
//! thread reads them after the staging areas and unwinds each at once, while the process
//! is most likely still there, with the binaries' own unwind tables: most release binaries
//! and Debian's glibc keep no frame pointers, so a frame-pointer walk would skip the
//! program's own functions. Only the named frames are kept, never the stack's bytes, which
//! hold the program's data. The writer takes a call's chain when it writes the call's row
//! ([`chains`]).
pub mod chains;
mod modules;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use aya::maps::{MapData, RingBuf};
use framehop::{Unwinder, x86_64::UnwindRegsX86_64};
use tracepost_common::UserStackSample;
use tracepost_symbols::frame;

use self::{
    chains::Chains,
    modules::{ElfCache, ProcessModules},
};

/// Frames kept of a chain, innermost first: deeper recursion is cut, and marked so.
const MAX_FRAMES: usize = 128;
/// Processes whose mappings are kept between samples; past it, all are read again.
const MAX_PROCESSES: usize = 1024;
/// Samples unwound in one pass: the rest wait in the ring (which counts what it has no room
/// for), so that the staging areas are read again soon whatever the rate of slow calls.
const MAX_PER_PASS: usize = 256;
/// A chain whose call returned this long before the newest sample's call is dropped: the
/// merge hands records on well within it, so the call's record was lost.
const KEEP_NS: u64 = 30_000_000_000;

/// Reads the samples, unwinds and names them, and hands the chains to the writer.
pub struct UserStacks {
    ring: RingBuf<MapData>,
    chains: Arc<Mutex<Chains>>,
    processes: HashMap<u32, ProcessModules>,
    elves: ElfCache,
    newest_exit_ns: u64,
}

impl UserStacks {
    pub fn new(ring: RingBuf<MapData>) -> Self {
        Self {
            ring,
            chains: Arc::new(Mutex::new(Chains::default())),
            processes: HashMap::new(),
            elves: ElfCache::default(),
            newest_exit_ns: 0,
        }
    }

    /// What the writer takes chains from.
    pub fn chains(&self) -> Arc<Mutex<Chains>> {
        self.chains.clone()
    }

    /// Unwinds what the ring holds, up to [`MAX_PER_PASS`] samples. Called after the
    /// staging areas are read: a call's sample is committed before its record is.
    pub fn drain(&mut self) {
        let mut unwound = Vec::new();
        while unwound.len() < MAX_PER_PASS {
            let sample = {
                let Some(item) = self.ring.next() else { break };
                if item.len() < size_of::<UserStackSample>() {
                    continue;
                }
                // SAFETY: a whole sample, as the length says; read unaligned, as the ring
                // aligns records to 8 bytes only.
                Box::new(unsafe {
                    std::ptr::read_unaligned(item.as_ptr().cast::<UserStackSample>())
                })
            };
            let exit_ns = sample.enter_ns.wrapping_add(sample.duration_ns);
            self.newest_exit_ns = self.newest_exit_ns.max(exit_ns);
            let chain = self.unwind(&sample);
            unwound.push((sample.tid, sample.enter_ns, exit_ns, chain));
        }
        if unwound.is_empty() {
            return;
        }
        // A writer that panicked while holding it has ended the capture already.
        let Ok(mut chains) = self.chains.lock() else {
            return;
        };
        for (tid, enter_ns, exit_ns, chain) in unwound {
            chains.put(tid, enter_ns, exit_ns, &chain);
        }
        chains.prune(self.newest_exit_ns.saturating_sub(KEEP_NS));
    }

    /// The sample's chain as one folded line: outermost frame first, joined by `;`.
    fn unwind(&mut self, s: &UserStackSample) -> String {
        if self.processes.len() >= MAX_PROCESSES {
            self.processes.clear();
        }
        let mut process = match self.processes.remove(&s.pid) {
            Some(p) if p.is_current(s.pid) && p.covers(s.ip) => p,
            _ => ProcessModules::read(s.pid, &mut self.elves),
        };
        let stack = &s.stack[..(s.len as usize).min(s.stack.len())];
        let mut read_stack = |addr: u64| -> Result<u64, ()> {
            let at = usize::try_from(addr.checked_sub(s.sp).ok_or(())?).map_err(|_| ())?;
            let bytes = stack.get(at..at.checked_add(8).ok_or(())?).ok_or(())?;
            Ok(u64::from_le_bytes(bytes.try_into().map_err(|_| ())?))
        };
        let mut frames = Vec::new();
        let mut ended = false;
        {
            let regs = UnwindRegsX86_64::new(s.ip, s.sp, s.bp);
            let ProcessModules {
                unwinder, cache, ..
            } = &mut process;
            let mut iter = unwinder.iter_frames(s.ip, regs, cache, &mut read_stack);
            while frames.len() < MAX_FRAMES {
                match iter.next() {
                    Ok(Some(frame)) => frames.push(frame.address_for_lookup()),
                    Ok(None) => {
                        ended = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        // framehop follows frame pointers through code it has no tables for, and that walk
        // "ends" wherever a frame pointer is 0: only a walk through read binaries alone is
        // known to be whole.
        let whole = ended && frames.iter().all(|&a| process.covers(a));
        let mut names: Vec<String> = frames.iter().map(|&addr| process.frame(addr)).collect();
        self.processes.insert(s.pid, process);
        if !whole {
            names.push(frame::TRUNCATED.to_string());
        }
        names.reverse();
        names.join(";")
    }
}
