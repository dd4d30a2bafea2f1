//! `record --stacks`: the user-space call chain of each slow call.
//!
//! The programs send the registers and the top of the stack of each call of at least
//! `--stack-min` as it returns ([`UserStackSample`]). The capture thread reads them after
//! the staging areas and unwinds each at once, while the process and its binaries are
//! there, with the binaries' own unwind tables: most release binaries and Debian's glibc
//! keep no frame pointers, so a frame-pointer walk would skip the program's own functions.
//! Only the named frames are kept, never the stack's bytes, which hold the program's data.
//! The writer takes a call's chain when it writes the call's row ([`chains`]).
pub mod chains;
mod modules;
mod names;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use aya::maps::{MapData, RingBuf};
use framehop::{
    Unwinder,
    x86_64::{CacheX86_64, UnwindRegsX86_64},
};
use tracepost_common::UserStackSample;

use self::{
    chains::Chains,
    modules::{ElfCache, ProcessModules},
    names::Names,
};

/// Frames kept of a chain, innermost first: deeper recursion is cut, and marked so.
const MAX_FRAMES: usize = 128;
/// Processes whose mappings are kept between samples; past it, all are read again.
const MAX_PROCESSES: usize = 1024;
/// Chains whose call entered this long before the newest sample are dropped: their record
/// was lost, so no row will take them.
const KEEP_NS: u64 = 30_000_000_000;

/// Reads the samples, unwinds and names them, and hands the chains to the writer.
pub struct UserStacks {
    ring: RingBuf<MapData>,
    chains: Arc<Mutex<Chains>>,
    processes: HashMap<u32, ProcessModules>,
    elves: ElfCache,
    cache: CacheX86_64,
    names: Names,
    newest_ns: u64,
}

impl UserStacks {
    pub fn new(ring: RingBuf<MapData>) -> Self {
        Self {
            ring,
            chains: Arc::new(Mutex::new(Chains::default())),
            processes: HashMap::new(),
            elves: ElfCache::new(),
            cache: CacheX86_64::new(),
            names: Names::new(),
            newest_ns: 0,
        }
    }

    /// What the writer takes chains from.
    pub fn chains(&self) -> Arc<Mutex<Chains>> {
        self.chains.clone()
    }

    /// Unwinds every sample the ring holds. Called after the staging areas are read: a
    /// call's sample is sent before its record, so every record read so far has its chain.
    pub fn drain(&mut self) {
        let mut unwound = Vec::new();
        loop {
            let sample = {
                let Some(item) = self.ring.next() else { break };
                if item.len() < size_of::<UserStackSample>() {
                    continue;
                }
                // SAFETY: a whole sample, as the length says; read unaligned, as the ring
                // aligns records to 8 bytes only.
                unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<UserStackSample>()) }
            };
            self.newest_ns = self.newest_ns.max(sample.enter_ns);
            let chain = self.unwind(&sample);
            unwound.push((sample.tid, sample.enter_ns, chain));
        }
        if unwound.is_empty() {
            return;
        }
        // A writer that panicked while holding it has ended the capture already.
        let Ok(mut chains) = self.chains.lock() else {
            return;
        };
        for (tid, enter_ns, chain) in unwound {
            chains.put(tid, enter_ns, &chain);
        }
        chains.prune(self.newest_ns.saturating_sub(KEEP_NS));
    }

    /// The sample's chain as one folded line: outermost frame first, joined by `;`.
    fn unwind(&mut self, s: &UserStackSample) -> String {
        if self.processes.len() >= MAX_PROCESSES {
            self.processes.clear();
        }
        let process = match self.processes.remove(&s.pid) {
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
        let mut whole = false;
        {
            let regs = UnwindRegsX86_64::new(s.ip, s.sp, s.bp);
            let mut iter =
                process
                    .unwinder
                    .iter_frames(s.ip, regs, &mut self.cache, &mut read_stack);
            while frames.len() < MAX_FRAMES {
                match iter.next() {
                    Ok(Some(frame)) => frames.push(frame.address_for_lookup()),
                    Ok(None) => {
                        whole = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        let mut names: Vec<String> = frames
            .iter()
            .map(|&addr| match process.locate(addr) {
                Some((file, offset)) => self.names.name(file, offset),
                None => names::UNKNOWN.to_string(),
            })
            .collect();
        self.processes.insert(s.pid, process);
        if !whole {
            names.push(names::TRUNCATED.to_string());
        }
        names.reverse();
        names.join(";")
    }
}
