//! A process's executable mappings as the unwinder needs them: where each binary sits in
//! memory, its unwind tables and its symbols.
//!
//! A binary is opened through `/proc/PID/map_files/START-END`, never by the path the maps
//! list: that names the very file mapped, in the process's own container, deleted or
//! replaced since, and no path a traced (perhaps hostile) process chose is resolved as
//! root. Only a regular file of at most [`MAX_FILE_BYTES`] is read, and only into memory
//! this recorder owns: no mapping of a file that its owner could truncate under us.
use std::{
    collections::HashMap,
    fs,
    ops::Range,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use framehop::{
    ExplicitModuleSectionInfo, Module, Unwinder,
    x86_64::{CacheX86_64, UnwinderX86_64},
};
use object::{Object, ObjectSection, ObjectSegment, SegmentFlags};
use tracepost_symbols::{SymbolTable, demangle::frame_name, frame};

use super::reader::{self, Key};

/// Binaries larger than this are not read: their frames are `[unknown]`, and the chains
/// through them marked cut. A binary is read whole, for a moment, so this bounds that
/// moment's memory too.
const MAX_FILE_BYTES: u64 = 256 << 20;
/// Binaries whose tables are kept; past it, all are read again as needed.
const MAX_BINARIES: usize = 256;
/// Most memory one binary's kept tables may take; a binary needing more is not unwound
/// (`[unknown]`, chains marked cut). A traced program chooses its own binaries: one with a
/// 250 MB `.debug_frame` kept 250 MB of root's recorder alive per copy run, and a user
/// who could run six took 1.5 GB of it (a red-team pass).
const MAX_TABLE_BYTES: usize = 32 << 20;
/// Most memory the tables kept alive take in all, by the cache and by the processes that
/// map them: a binary that would pass it is not unwound until some are let go. Bounding
/// the cache alone let 32 processes of 30 MB binaries, alive together, hold 1 GB (a
/// review of the first bound).
const MAX_LIVE_BYTES: usize = 128 << 20;

/// What every [`ElfTables`] alive holds, [`ElfTables::bytes`] summed.
static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

/// Whether the tables alive hold all they may: the unwinder then lets go of what it keeps
/// (the cache, the processes' mappings) and reads again what it needs.
pub fn over_budget() -> bool {
    LIVE_BYTES.load(Ordering::Relaxed) >= MAX_LIVE_BYTES
}

/// One executable mapping of a binary that could be read.
struct Mapping {
    range: Range<u64>,
    /// As the process's maps list it: only its file name is kept, in frames no symbol names.
    path: Box<str>,
    /// Where the binary's address 0 lands.
    bias: u64,
    elf: Arc<ElfTables>,
}

/// The mappings of one process, read at one moment, and an unwinder that knows them.
pub struct ProcessModules {
    /// The process's start time and program, from `/proc`: another means the pid was reused,
    /// or the process has exec'd, and the mappings are read again.
    identity: Option<(u64, String)>,
    mappings: Vec<Mapping>,
    pub unwinder: UnwinderX86_64<Arc<[u8]>>,
    /// framehop's rules by address: per process, since two processes can run different
    /// code at one address.
    pub cache: CacheX86_64,
}

/// What one binary's unwinding and naming need, read once however many processes map it.
pub struct ElfTables {
    eh_frame: Option<(Range<u64>, Arc<[u8]>)>,
    eh_frame_hdr: Option<(Range<u64>, Arc<[u8]>)>,
    debug_frame: Option<Arc<[u8]>>,
    text: Option<Range<u64>>,
    got: Option<Range<u64>>,
    /// (file offset, file size, address, executable) of each loadable segment.
    segments: Vec<(u64, u64, u64, bool)>,
    symbols: SymbolTable,
    /// What a frame no symbol names carries, so that its debug file names it later.
    build_id: Option<Box<[u8]>>,
    /// What this counts in [`LIVE_BYTES`], given back when it goes.
    counted: usize,
}

impl Drop for ElfTables {
    fn drop(&mut self) {
        LIVE_BYTES.fetch_sub(self.counted, Ordering::Relaxed);
    }
}

/// `tables`, which hold `bytes` ([`ElfTables::bytes`]), counted as alive, if they fit
/// within `budget` with what is alive already.
fn keep_within(mut tables: ElfTables, bytes: usize, budget: usize) -> Option<Arc<ElfTables>> {
    let alive = LIVE_BYTES.fetch_add(bytes, Ordering::Relaxed);
    if alive.saturating_add(bytes) > budget {
        LIVE_BYTES.fetch_sub(bytes, Ordering::Relaxed);
        return None;
    }
    tables.counted = bytes;
    Some(Arc::new(tables))
}

/// What the unwinder has learnt of binaries, across processes.
#[derive(Default)]
pub struct ElfCache {
    /// Binaries read so far, by (device, inode, size, mtime) as the mapped file's `fstat`
    /// says: a binary replaced in place, or an inode number reused, is read again.
    tables: HashMap<Key, Option<Arc<ElfTables>>>,
    /// Devices (major, minor) where a helper got no answer: not tried again, so that a
    /// hung file system costs one helper stuck in the kernel, not one per process.
    quiet: Vec<(u32, u32)>,
}

impl ProcessModules {
    /// Reads `/proc/PID/maps` and the binaries it maps. A process that is gone gives no
    /// mappings: its chains are then `[unknown]`, marked cut.
    pub fn read(pid: u32, elves: &mut ElfCache) -> Self {
        let mut unwinder = UnwinderX86_64::new();
        let mut mappings = Vec::new();
        let maps = fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
        let mounts = mounts_of(pid);
        if elves.tables.len() >= MAX_BINARIES || over_budget() {
            elves.tables.clear();
        }
        let mut found: Vec<(MapsLine<'_>, Place)> = maps
            .lines()
            .filter_map(parse_line)
            .filter(|m| m.exec && m.path.starts_with('/'))
            .map(|m| {
                let place = mounts.iter().find(|(dev, _)| *dev == m.dev);
                let place = place.map_or(Place::Unsure, |(_, p)| *p);
                (m, place)
            })
            .collect();
        // Local binaries first: one read in a helper can take seconds to be given up on,
        // and the process may be gone by then.
        found.sort_by_key(|(_, place)| *place != Place::Local);
        for (m, place) in found {
            let Some(elf) = open_mapped(pid, &m, elves, place) else {
                continue;
            };
            let Some(bias) = bias_of(&elf, &m) else {
                continue;
            };
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
            unwinder.add_module(Module::new(m.path.to_string(), m.start..m.end, bias, info));
            mappings.push(Mapping {
                range: m.start..m.end,
                path: m.path.trim_end_matches(" (deleted)").into(),
                bias,
                elf,
            });
        }
        Self {
            identity: identity(pid),
            mappings,
            unwinder,
            cache: CacheX86_64::new(),
        }
    }

    /// Whether the process is still the program these mappings were read from. One that
    /// has exited since is: its last calls' samples arrive after it is gone, and these
    /// mappings are the last it had.
    pub fn is_current(&self, pid: u32) -> bool {
        match identity(pid) {
            None => true,
            now => now == self.identity,
        }
    }

    /// Whether `addr` is in a binary whose unwind tables were read.
    pub fn covers(&self, addr: u64) -> bool {
        self.mapping(addr).is_some()
    }

    /// The frame at `addr` as the chain shows it: the function a symbol names; else the
    /// binary, the address within it and its build ID, for `analyze --debug-dir` to name;
    /// else `[unknown]`.
    pub fn frame(&self, addr: u64) -> String {
        let Some(m) = self.mapping(addr) else {
            return frame::UNKNOWN.to_string();
        };
        let at = addr.wrapping_sub(m.bias);
        match m.elf.symbols.name(at) {
            Some(name) => frame_name(name),
            None => frame::unnamed(&m.path, at, m.elf.build_id.as_deref()),
        }
    }

    fn mapping(&self, addr: u64) -> Option<&Mapping> {
        self.mappings.iter().find(|m| m.range.contains(&addr))
    }
}

/// The process's start time (field 22 of `/proc/PID/stat`) and what `/proc/PID/exe` links
/// to. Both come from procfs alone: nothing is read from the program's file system.
fn identity(pid: u32) -> Option<(u64, String)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command's closing parenthesis, which the name itself may contain.
    let rest = &stat[stat.rfind(')')? + 1..];
    let start: u64 = rest.split_whitespace().nth(19)?.parse().ok()?;
    let exe = fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    Some((start, exe.to_string_lossy().into_owned()))
}

/// The binary mapped at `m`, read through `map_files`, or from the cache: here if its file
/// system is a local one, in a helper process if that is not known ([`super::reader`]),
/// not at all on a network or FUSE file system.
fn open_mapped(
    pid: u32,
    m: &MapsLine<'_>,
    elves: &mut ElfCache,
    place: Place,
) -> Option<Arc<ElfTables>> {
    let path = format!("/proc/{pid}/map_files/{:x}-{:x}", m.start, m.end);
    let known = |k: &Key| elves.tables.contains_key(k);
    let read = match place {
        Place::Remote => return None,
        Place::Unsure if elves.quiet.contains(&m.dev) => return None,
        Place::Local => reader::read_here(&path, m.inode, MAX_FILE_BYTES, known),
        Place::Unsure => reader::read(&path, m.inode, MAX_FILE_BYTES, known),
    };
    let (key, data) = match read {
        Ok(r) => r,
        Err(reader::Failed::Quiet) => {
            elves.quiet.push(m.dev);
            return None;
        }
        Err(reader::Failed::Unreadable) => return None,
    };
    match data {
        None => elves.tables.get(&key)?.clone(),
        Some(data) => match read_elf(&data)
            .map(|t| (t.bytes(), t))
            .filter(|(bytes, _)| *bytes <= MAX_TABLE_BYTES)
        {
            // Not cached: tried again once the tables alive hold less.
            Some((bytes, t)) => {
                let tables = keep_within(t, bytes, MAX_LIVE_BYTES)?;
                elves.tables.insert(key, Some(tables.clone()));
                Some(tables)
            }
            None => {
                elves.tables.insert(key, None);
                None
            }
        },
    }
}

/// Where the binary's address 0 lands, from the loadable segment this mapping holds: the
/// executable one whose file range overlaps the mapping's. (A mapping starts on a page,
/// so its offset can be below its segment's, as lld lays out files.)
fn bias_of(elf: &ElfTables, m: &MapsLine<'_>) -> Option<u64> {
    let len = m.end.checked_sub(m.start)?;
    let map_end = m.offset.checked_add(len)?;
    let overlaps = |&&(off, size, _, _): &&(u64, u64, u64, bool)| {
        off < map_end && m.offset < off.saturating_add(size.max(1))
    };
    let &(off, _, addr, _) = elf
        .segments
        .iter()
        .filter(overlaps)
        .find(|s| s.3)
        .or_else(|| elf.segments.iter().find(overlaps))?;
    // start - offset is where the file's byte 0 lands; the segment's address sits its own
    // offset further in.
    Some(
        m.start
            .wrapping_sub(m.offset)
            .wrapping_add(off)
            .wrapping_sub(addr),
    )
}

/// Where a binary's file system is, as far as the unwinder is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// On a block device or in memory: read here.
    Local,
    /// Network or FUSE: a read there can block for as long as a server or a daemon stays
    /// away, in the kernel, where no signal reaches it. Never read; chains through such a
    /// binary read `[unknown]` and are marked cut.
    Remote,
    /// Anything else, and a mount the process's mountinfo does not show: read in a helper
    /// process that can be left behind ([`super::reader`]).
    Unsure,
}

/// File system types read here.
const LOCAL_FS: &[&str] = &[
    "ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "ramfs", "squashfs", "erofs", "vfat", "f2fs",
    "zfs", "iso9660", "jfs", "bcachefs", "nilfs2", "exfat", "ntfs3", "hfsplus", "devtmpfs",
    "rootfs",
];

/// File system types never read (by prefix: `fuse.sshfs`, `nfs4`).
const REMOTE_FS: &[&str] = &[
    "fuse", "nfs", "cifs", "smb", "9p", "ceph", "afs", "gluster", "lustre", "gfs2", "ocfs2",
    "virtiofs", "sshfs", "davfs", "pvfs2", "beegfs", "gpfs",
];

/// The devices (major, minor) of the process's mounts and where each is, from its own
/// `/proc/PID/mountinfo`, which names no file it could redirect.
fn mounts_of(pid: u32) -> Vec<((u32, u32), Place)> {
    let info = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
    info.lines().filter_map(mount_place).collect()
}

/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw`: the device, and
/// where the file system type after ` - ` puts it.
fn mount_place(line: &str) -> Option<((u32, u32), Place)> {
    let (mount, after) = line.split_once(" - ")?;
    let fstype = after.split(' ').next()?;
    let place = if REMOTE_FS.iter().any(|r| fstype.starts_with(r)) {
        Place::Remote
    } else if LOCAL_FS.contains(&fstype) {
        Place::Local
    } else {
        Place::Unsure
    };
    let (major, minor) = mount.split(' ').nth(2)?.split_once(':')?;
    Some(((major.parse().ok()?, minor.parse().ok()?), place))
}

struct MapsLine<'a> {
    start: u64,
    end: u64,
    exec: bool,
    offset: u64,
    /// (major, minor), as `stat` and `mountinfo` number it.
    dev: (u32, u32),
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
        dev: (
            u32::try_from(hex(major)?).ok()?,
            u32::try_from(hex(minor)?).ok()?,
        ),
        inode: inode.parse().ok()?,
        path,
    })
}

impl ElfTables {
    /// About how much memory the tables hold.
    fn bytes(&self) -> usize {
        let section = |s: &Option<(Range<u64>, Arc<[u8]>)>| s.as_ref().map_or(0, |(_, d)| d.len());
        section(&self.eh_frame)
            + section(&self.eh_frame_hdr)
            + self.debug_frame.as_ref().map_or(0, |d| d.len())
            + self.segments.len() * std::mem::size_of::<(u64, u64, u64, bool)>()
            + self.symbols.bytes()
    }
}

/// The sections unwinding reads and the function symbols, copied out of `data`. `None` for
/// a file that is not an ELF object.
fn read_elf(data: &[u8]) -> Option<ElfTables> {
    let file = object::File::parse(data).ok()?;
    let range = |s: &object::Section<'_, '_>| s.address()..s.address().saturating_add(s.size());
    let section = |name: &str| {
        let s = file.section_by_name(name)?;
        let bytes: Arc<[u8]> = s.data().ok()?.into();
        Some((range(&s), bytes))
    };
    let eh_frame = section(".eh_frame");
    Some(ElfTables {
        // `.debug_frame` only where there is no `.eh_frame`, which x86-64 code always has
        // unless built without it: the two describe the same code, and a debug section can
        // be as large as its author likes.
        debug_frame: match eh_frame {
            None => section(".debug_frame").map(|(_, d)| d),
            Some(_) => None,
        },
        eh_frame,
        eh_frame_hdr: section(".eh_frame_hdr"),
        text: file.section_by_name(".text").map(|s| range(&s)),
        got: file.section_by_name(".got").map(|s| range(&s)),
        segments: file
            .segments()
            .map(|s| {
                let (offset, size) = s.file_range();
                let exec = matches!(s.flags(), SegmentFlags::Elf { p_flags } if p_flags & 1 != 0);
                (offset, size, s.address(), exec)
            })
            .collect(),
        symbols: SymbolTable::read(&file),
        build_id: tracepost_symbols::build_id(&file).map(Into::into),
        counted: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binary's author chooses its sections' sizes: a large `.debug_frame` beside the
    /// `.eh_frame` is not kept, and tables past the bound are not kept at all.
    #[test]
    fn a_binary_cannot_make_the_recorder_keep_its_large_sections() {
        let tmp = tempfile::tempdir().unwrap();
        let junk = tmp.path().join("junk");
        fs::write(&junk, vec![0x5a; 40 << 20]).unwrap();
        let with = |option: &str, name: &str| {
            let out = tmp.path().join(name);
            let status = std::process::Command::new("objcopy")
                .arg(format!("{option}={}", junk.display()))
                .arg("/bin/true")
                .arg(&out)
                .status()
                .unwrap();
            assert!(status.success());
            fs::read(out).unwrap()
        };
        let plain = read_elf(&fs::read("/bin/true").unwrap()).unwrap();
        let debug = read_elf(&with("--add-section=.debug_frame", "debug")).unwrap();
        assert!(debug.eh_frame.is_some());
        assert!(debug.debug_frame.is_none());
        assert_eq!(debug.bytes(), plain.bytes());
        assert!(plain.bytes() < MAX_TABLE_BYTES);
        let big = read_elf(&with("--update-section=.eh_frame", "big")).unwrap();
        assert!(big.bytes() > MAX_TABLE_BYTES, "{}", big.bytes());
    }

    /// What the tables alive hold is counted while they live, and a budget refuses more.
    #[test]
    fn tables_alive_are_counted_until_they_go() {
        let data = fs::read("/bin/true").unwrap();
        let bytes = read_elf(&data).unwrap().bytes();
        // No other test keeps tables alive: only the unwinder's reads count them.
        let before = LIVE_BYTES.load(Ordering::Relaxed);
        let kept = keep_within(read_elf(&data).unwrap(), bytes, usize::MAX).unwrap();
        assert_eq!(kept.counted, bytes);
        assert_eq!(LIVE_BYTES.load(Ordering::Relaxed), before + bytes);
        // One more copy would pass a budget of what is alive now.
        assert!(keep_within(read_elf(&data).unwrap(), bytes, before + bytes).is_none());
        assert_eq!(LIVE_BYTES.load(Ordering::Relaxed), before + bytes);
        drop(kept);
        assert_eq!(LIVE_BYTES.load(Ordering::Relaxed), before);
    }

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
        assert_eq!(l.inode, 1837);
        assert_eq!(l.dev, (0xfe, 1));
        assert_eq!(l.path, "/usr/lib/x86_64-linux-gnu/libc.so.6");
        let anon = parse_line(
            "7ffd1c5e4000-7ffd1c605000 rw-p 00000000 00:00 0                          [stack]",
        )
        .unwrap();
        assert!(!anon.exec);
        assert_eq!(anon.path, "[stack]");
    }

    #[test]
    fn each_mount_is_local_remote_or_unsure() {
        let fuse = "48 27 0:45 / /mnt/x rw,nosuid,nodev - fuse.sshfs host:/x rw,user_id=0";
        assert_eq!(mount_place(fuse), Some(((0, 45), Place::Remote)));
        let nfs = "50 27 0:52 / /srv rw - nfs4 10.0.0.1:/srv rw,vers=4.2";
        assert_eq!(mount_place(nfs), Some(((0, 52), Place::Remote)));
        let local = "29 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw";
        assert_eq!(mount_place(local), Some(((254, 1), Place::Local)));
        // An overlay's lower layer can be FUSE: read in a helper.
        let overlay = "60 27 0:41 / /c rw - overlay overlay rw,lowerdir=/l,upperdir=/u";
        assert_eq!(mount_place(overlay), Some(((0, 41), Place::Unsure)));
        // A mount point whose path holds " - " is still read by its own separator.
        let odd = "51 27 0:60 / /a\\040-\\040b rw - tmpfs tmpfs rw";
        assert_eq!(mount_place(odd), Some(((0, 60), Place::Local)));
    }

    fn tables(segments: Vec<(u64, u64, u64, bool)>) -> ElfTables {
        ElfTables {
            eh_frame: None,
            eh_frame_hdr: None,
            debug_frame: None,
            text: None,
            got: None,
            segments,
            symbols: SymbolTable::default(),
            build_id: None,
            counted: 0,
        }
    }

    /// GNU ld (`-z separate-code`): the code segment starts on its own page, at an offset
    /// equal to its address.
    #[test]
    fn the_bias_of_a_gnu_ld_binary() {
        let elf = tables(vec![(0, 0x628, 0, false), (0x1000, 0x1d5, 0x1000, true)]);
        let m = parse_line("55d0c8a5b000-55d0c8a5c000 r-xp 00001000 fe:01 9 /bin/x").unwrap();
        assert_eq!(bias_of(&elf, &m), Some(0x55d0c8a5a000));
    }

    /// lld: the code segment shares its first page with the read-only one and sits a page
    /// further in memory than in the file; the mapping starts on the page below it.
    #[test]
    fn the_bias_of_an_lld_binary() {
        let elf = tables(vec![(0, 0x640, 0, false), (0x640, 0x200, 0x1640, true)]);
        let m = parse_line("55d0c8a5c000-55d0c8a5d000 r-xp 00000000 fe:01 9 /bin/x").unwrap();
        // 0x1640 in the binary is at 0x55d0c8a5c640: the mapping's byte 0x640.
        let bias = bias_of(&elf, &m).unwrap();
        assert_eq!(bias + 0x1640, 0x55d0c8a5c640);
    }
}
