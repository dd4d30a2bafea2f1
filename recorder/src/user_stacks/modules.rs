//! A process's executable mappings as the unwinder needs them: where each binary sits in
//! memory, and the binary's unwind tables.
use std::{
    collections::HashMap,
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::Arc,
};

use framehop::{ExplicitModuleSectionInfo, Module, Unwinder, x86_64::UnwinderX86_64};
use object::{Object, ObjectSection, ObjectSegment};

/// One file-backed executable mapping.
struct Mapping {
    start: u64,
    end: u64,
    /// The file offset mapped at `start`.
    offset: u64,
    /// The binary, through the process's root, so that a container's files are found.
    file: Arc<Path>,
}

/// The mappings of one process at the time of a sample, and an unwinder that knows them.
pub struct ProcessModules {
    /// `/proc/PID/exe`'s (device, inode): another means the process has exec'd since.
    exe: Option<(u64, u64)>,
    mappings: Vec<Mapping>,
    pub unwinder: UnwinderX86_64<Arc<[u8]>>,
}

/// What one binary's unwinding needs, read once however many processes map it.
pub struct ElfUnwind {
    eh_frame: Option<(std::ops::Range<u64>, Arc<[u8]>)>,
    eh_frame_hdr: Option<(std::ops::Range<u64>, Arc<[u8]>)>,
    debug_frame: Option<Arc<[u8]>>,
    text: Option<std::ops::Range<u64>>,
    got: Option<std::ops::Range<u64>>,
    /// (file offset, address) of each loadable segment: where the file lands in memory.
    segments: Vec<(u64, u64, u64)>,
}

/// Binaries read so far, by (device, inode).
pub type ElfCache = HashMap<(u64, u64), Option<Arc<ElfUnwind>>>;

impl ProcessModules {
    /// Reads `/proc/PID/maps`. A process that is gone gives no mappings: its chains then
    /// stop at the first frame, marked.
    pub fn read(pid: u32, elves: &mut ElfCache) -> Self {
        let mut unwinder = UnwinderX86_64::new();
        let mut mappings = Vec::new();
        let maps = fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
        for line in maps.lines() {
            let Some(m) = parse_line(line) else { continue };
            if !m.exec || !m.path.starts_with('/') {
                continue;
            }
            // Through the process's root, so that a container's files are found; resolved
            // now, so that frames can still be named once the process is gone.
            let through_root = PathBuf::from(format!("/proc/{pid}/root{}", m.path));
            let file: Arc<Path> = fs::canonicalize(&through_root)
                .unwrap_or(through_root)
                .into();
            let elf = elves
                .entry((m.dev, m.inode))
                .or_insert_with(|| read_elf(&file).map(Arc::new))
                .clone();
            let Some(elf) = elf else { continue };
            // The address the file's address 0 lands at: from the segment this mapping is.
            let Some(&(seg_offset, seg_addr, _)) = elf
                .segments
                .iter()
                .find(|&&(off, _, size)| m.offset >= off && m.offset < off + size.max(1))
            else {
                continue;
            };
            let base = m
                .start
                .wrapping_sub(seg_addr)
                .wrapping_add(seg_offset)
                .wrapping_sub(m.offset);
            let info = ExplicitModuleSectionInfo {
                base_svma: 0,
                text_svma: elf.text.clone(),
                got_svma: elf.got.clone(),
                eh_frame_svma: elf.eh_frame.as_ref().map(|(r, _)| r.clone()),
                eh_frame: elf.eh_frame.as_ref().map(|(_, d)| d.clone()),
                eh_frame_hdr_svma: elf.eh_frame_hdr.as_ref().map(|(r, _)| r.clone()),
                eh_frame_hdr: elf.eh_frame_hdr.as_ref().map(|(_, d)| d.clone()),
                debug_frame: elf.debug_frame.clone(),
                ..Default::default()
            };
            unwinder.add_module(Module::new(m.path.to_string(), m.start..m.end, base, info));
            mappings.push(Mapping {
                start: m.start,
                end: m.end,
                offset: m.offset,
                file,
            });
        }
        Self {
            exe: exe_id(pid),
            mappings,
            unwinder,
        }
    }

    /// Whether the process is still the program these mappings were read from. One that
    /// has exited since is: its last calls' samples arrive after it is gone, and these
    /// mappings are the last it had.
    pub fn is_current(&self, pid: u32) -> bool {
        match exe_id(pid) {
            None => true,
            now => self.exe.is_some() && self.exe == now,
        }
    }

    /// Whether `addr` is in a mapping read: one that is not was mapped since (a library
    /// loaded later), and the mappings are read again.
    pub fn covers(&self, addr: u64) -> bool {
        self.mapping(addr).is_some()
    }

    /// The binary `addr` is in, and its offset in that file.
    pub fn locate(&self, addr: u64) -> Option<(&Path, u64)> {
        let m = self.mapping(addr)?;
        Some((&m.file, addr - m.start + m.offset))
    }

    fn mapping(&self, addr: u64) -> Option<&Mapping> {
        self.mappings
            .iter()
            .find(|m| (m.start..m.end).contains(&addr))
    }
}

fn exe_id(pid: u32) -> Option<(u64, u64)> {
    let meta = fs::metadata(format!("/proc/{pid}/exe")).ok()?;
    Some((meta.dev(), meta.ino()))
}

struct MapsLine<'a> {
    start: u64,
    end: u64,
    exec: bool,
    offset: u64,
    dev: u64,
    inode: u64,
    path: &'a str,
}

/// `start-end perms offset major:minor inode path`.
fn parse_line(line: &str) -> Option<MapsLine<'_>> {
    let mut fields = line.splitn(6, ' ');
    let (start, end) = fields.next()?.split_once('-')?;
    let perms = fields.next()?;
    let offset = fields.next()?;
    let (major, minor) = fields.next()?.split_once(':')?;
    let inode = fields.next()?;
    let path = fields.next().unwrap_or("").trim_start();
    let hex = |s: &str| u64::from_str_radix(s, 16).ok();
    Some(MapsLine {
        start: hex(start)?,
        end: hex(end)?,
        exec: perms.as_bytes().get(2) == Some(&b'x'),
        offset: hex(offset)?,
        dev: (hex(major)? << 32) | hex(minor)?,
        inode: inode.parse().ok()?,
        path,
    })
}

/// The sections unwinding reads, copied out of the file. `None` for a file that is not
/// an ELF object, or cannot be read.
fn read_elf(path: &Path) -> Option<ElfUnwind> {
    let data = fs::read(path).ok()?;
    let file = object::File::parse(&*data).ok()?;
    let section = |name: &str| {
        let s = file.section_by_name(name)?;
        let range = s.address()..s.address() + s.size();
        let bytes: Arc<[u8]> = s.data().ok()?.into();
        Some((range, bytes))
    };
    let range = |name: &str| {
        let s = file.section_by_name(name)?;
        Some(s.address()..s.address() + s.size())
    };
    Some(ElfUnwind {
        eh_frame: section(".eh_frame"),
        eh_frame_hdr: section(".eh_frame_hdr"),
        debug_frame: section(".debug_frame").map(|(_, d)| d),
        text: range(".text"),
        got: range(".got"),
        segments: file
            .segments()
            .map(|s| {
                let (offset, size) = s.file_range();
                (offset, s.address(), size)
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_maps_line_gives_its_fields() {
        let l = parse_line(
            "7f1c2a028000-7f1c2a1ad000 r-xp 00028000 fe:01 1837 /usr/lib/x86_64-linux-gnu/libc.so.6",
        )
        .unwrap();
        assert_eq!(
            (l.start, l.end, l.offset),
            (0x7f1c2a028000, 0x7f1c2a1ad000, 0x28000)
        );
        assert!(l.exec);
        assert_eq!((l.dev, l.inode), ((0xfe << 32) | 1, 1837));
        assert_eq!(l.path, "/usr/lib/x86_64-linux-gnu/libc.so.6");
        let anon = parse_line(
            "7ffd1c5e4000-7ffd1c605000 rw-p 00000000 00:00 0                          [stack]",
        )
        .unwrap();
        assert!(!anon.exec);
        assert_eq!(anon.path, "[stack]");
    }
}
