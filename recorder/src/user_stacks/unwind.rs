//! The unwinder thread: each sample's chain, from the process's mappings and the binaries'
//! unwind tables, put where the writer takes it.
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        mpsc::{Receiver, SyncSender},
    },
    time::Duration,
};

use framehop::{Unwinder, x86_64::UnwindRegsX86_64};
use tracepost_common::UserStackSample;
use tracepost_symbols::frame;

use super::{
    Progress,
    chains::Chains,
    modules::{ElfCache, ProcessModules},
};

/// Frames kept of a chain, innermost first: deeper recursion is cut, and marked so.
const MAX_FRAMES: usize = 128;
/// Processes whose mappings are kept between samples; past it, all are read again.
const MAX_PROCESSES: usize = 1024;
/// A chain whose call returned this long before the newest sample's call is dropped: the
/// merge hands records on well within it, so the call's row has been written without it.
const KEEP_NS: u64 = 30_000_000_000;

pub struct Unwinding {
    chains: Arc<Mutex<Chains>>,
    processes: HashMap<u32, ProcessModules>,
    elves: ElfCache,
    newest_exit_ns: u64,
    /// `TRACEPOST_TEST_UNWIND_DELAY_MS`: a pause before each sample, for the test that
    /// stands in for a binary on a hung file system.
    delay: Option<Duration>,
}

impl Unwinding {
    pub fn new(chains: Arc<Mutex<Chains>>) -> Self {
        let delay = std::env::var("TRACEPOST_TEST_UNWIND_DELAY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis);
        Self {
            chains,
            processes: HashMap::new(),
            elves: ElfCache::default(),
            newest_exit_ns: 0,
            delay,
        }
    }

    /// Unwinds batches of samples until the capture thread drops its end of the queue,
    /// and gives each emptied batch back.
    pub(super) fn run(
        mut self,
        batches: Receiver<Vec<UserStackSample>>,
        give_back: &SyncSender<Vec<UserStackSample>>,
        progress: &Progress,
    ) {
        for mut batch in batches {
            for sample in &batch {
                if let Some(d) = self.delay {
                    std::thread::sleep(d);
                }
                let exit_ns = sample.enter_ns.wrapping_add(sample.duration_ns);
                self.newest_exit_ns = self.newest_exit_ns.max(exit_ns);
                let chain = self.unwind(sample);
                // A writer that panicked while holding it has ended the capture already.
                let Ok(mut chains) = self.chains.lock() else {
                    return;
                };
                chains.put(sample.tid, sample.enter_ns, exit_ns, &chain);
                // Counted done under the chains' lock, so that [`super::UserStacks::late`]
                // sees each sample as done or not, never both.
                let Ok(mut done) = progress.done.lock() else {
                    return;
                };
                *done += 1;
            }
            if let Ok(mut chains) = self.chains.lock() {
                chains.prune(self.newest_exit_ns.saturating_sub(KEEP_NS));
            }
            progress.advanced.notify_all();
            batch.clear();
            let _ = give_back.try_send(batch);
        }
    }

    /// The sample's chain as one folded line: outermost frame first, joined by `;`.
    fn unwind(&mut self, s: &UserStackSample) -> String {
        if self.processes.len() >= MAX_PROCESSES || super::modules::over_budget() {
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
