//! Debug files found by build ID, as gdb, perf and Debian's `-dbgsym` packages lay them out:
//! `DIR/.build-id/79/005c16….debug`. The build ID ties a frame to the very binary that ran,
//! so a debug file of another build is never used to name it.
use std::{
    collections::HashMap,
    fs::File,
    io::Read,
    os::{fd::AsRawFd, unix::fs::OpenOptionsExt},
    path::{Path, PathBuf},
};

use crate::{SymbolTable, build_id, demangle::frame_name, frame};

/// Debug files larger than this are not read.
const MAX_FILE_BYTES: u64 = 2 << 30;
/// Debug files whose tables are kept; past it, all are read again as needed, so that a
/// capture naming millions of build IDs cannot grow the analyzer without bound.
const MAX_TABLES: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum DebugDirError {
    #[error("--debug-dir {dir}")]
    Unreadable {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--debug-dir {dir}: not a directory")]
    NotADirectory { dir: PathBuf },
}

/// Names unnamed frames from the debug files under some directories.
#[derive(Debug)]
pub struct DebugDirs {
    dirs: Vec<PathBuf>,
    /// By build ID: the debug file's table, or `None` when no directory has a usable one.
    tables: HashMap<String, Option<SymbolTable>>,
}

impl DebugDirs {
    /// Checks that each directory can be listed: a mistyped one is an error, not a run
    /// that names nothing and says nothing.
    pub fn new(dirs: &[PathBuf]) -> Result<Self, DebugDirError> {
        for dir in dirs {
            let meta = std::fs::metadata(dir).map_err(|source| DebugDirError::Unreadable {
                dir: dir.clone(),
                source,
            })?;
            if !meta.is_dir() {
                return Err(DebugDirError::NotADirectory { dir: dir.clone() });
            }
            std::fs::read_dir(dir).map_err(|source| DebugDirError::Unreadable {
                dir: dir.clone(),
                source,
            })?;
        }
        Ok(Self {
            dirs: dirs.to_vec(),
            tables: HashMap::new(),
        })
    }

    /// The directories with no `.build-id` directory in them, where no debug file can be
    /// found: most likely the `.build-id` directory itself, or a directory of debug files
    /// by name, given by mistake.
    pub fn without_build_ids(&self) -> Vec<&Path> {
        self.dirs
            .iter()
            .filter(|d| !d.join(".build-id").is_dir())
            .map(PathBuf::as_path)
            .collect()
    }

    /// A folded chain with each unnamed frame that a debug file covers given its name; the
    /// other frames as they were.
    pub fn name_chain(&mut self, chain: &str) -> String {
        let mut out = String::with_capacity(chain.len());
        for (i, f) in chain.split(';').enumerate() {
            if i > 0 {
                out.push(';');
            }
            match self.name_frame(f) {
                Some(name) => out.push_str(&name),
                None => out.push_str(f),
            }
        }
        out
    }

    fn name_frame(&mut self, text: &str) -> Option<String> {
        let f = frame::parse(text)?;
        let id = f.build_id?.to_ascii_lowercase();
        if !self.tables.contains_key(&id) {
            if self.tables.len() >= MAX_TABLES {
                self.tables.clear();
            }
            let table = self.read(&id);
            self.tables.insert(id.clone(), table);
        }
        let name = self.tables.get(&id)?.as_ref()?.name(f.address)?;
        Some(frame_name(name))
    }

    /// The first debug file for `id` whose own build ID is `id` and that has symbols.
    fn read(&self, id: &str) -> Option<SymbolTable> {
        let (head, rest) = id.split_at_checked(2)?;
        self.dirs.iter().find_map(|dir| {
            let path = dir
                .join(".build-id")
                .join(head)
                .join(format!("{rest}.debug"));
            let data = read_regular(&path)?;
            let file = object::File::parse(&*data).ok()?;
            let own: String = build_id(&file)?
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            if own != id {
                return None;
            }
            let table = SymbolTable::read(&file);
            (!table.is_empty()).then_some(table)
        })
    }
}

/// A regular file's bytes; nothing for a FIFO, a device or a file too large.
fn read_regular(path: &Path) -> Option<Vec<u8>> {
    // Looked at before it is opened for reading, through a handle that opens nothing
    // (O_PATH): opening a device has effects of its own (a watchdog starts, a tape
    // rewinds), and the directory may be another user's, who could swap a symlink in
    // between a look by name and an open by name. The read goes through that handle.
    let handle = File::options()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(path)
        .ok()?;
    let meta = handle.metadata().ok()?;
    if !meta.is_file() || meta.len() > MAX_FILE_BYTES {
        return None;
    }
    let mut file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(format!("/proc/self/fd/{}", handle.as_raw_fd()))
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > MAX_FILE_BYTES {
        return None;
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    (&mut file)
        .take(MAX_FILE_BYTES)
        .read_to_end(&mut data)
        .ok()?;
    Some(data)
}
