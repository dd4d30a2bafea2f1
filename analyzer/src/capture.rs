//! Capture directories, checked before any query runs: a typo, an empty capture or a
//! damaged file gets one line naming it instead of an empty or wrong answer.
use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use tracepost_schema::{FILE_EXTENSION, TABLES, syscalls};

use crate::files::{self, FileProblem, TableFile};

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("capture {}: no such directory", .0.display())]
    Missing(PathBuf),
    #[error("capture {}: not a directory", .0.display())]
    NotDir(PathBuf),
    #[error("capture {}: cannot read it", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("capture {}: no {table} data ({table}/*.{FILE_EXTENSION}); is this a tracepost capture?", path.display())]
    Empty { path: PathBuf, table: &'static str },
    #[error(
        "{first}{}; --skip-bad-files answers from the readable files",
        if *.count > 1 { format!(" (and {} more bad files)", .count - 1) } else { String::new() }
    )]
    BadFiles { first: BadFile, count: usize },
    #[error(
        "capture {}: every {table} file is bad ({} skipped); nothing is left to read",
        path.display(),
        skipped.len()
    )]
    NothingReadable {
        path: PathBuf,
        table: &'static str,
        /// Every bad file of the capture, for the warnings that name them.
        skipped: Vec<BadFile>,
    },
}

/// A file that cannot be read, and why.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct BadFile {
    pub path: PathBuf,
    pub problem: FileProblem,
}

#[derive(Debug)]
pub struct Capture {
    root: PathBuf,
    /// The readable files of each table, sorted by name.
    files: BTreeMap<&'static str, Vec<TableFile>>,
    /// Files left out under `--skip-bad-files`.
    skipped: Vec<BadFile>,
}

impl Capture {
    /// Lists and checks every file of every table. A bad file is an error, unless
    /// `skip_bad_files`, when it is left out and remembered in [`Capture::skipped`].
    pub fn open(root: &Path, skip_bad_files: bool) -> Result<Self, CaptureError> {
        let meta = fs::metadata(root).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => CaptureError::Missing(root.to_path_buf()),
            _ => CaptureError::Unreadable {
                path: root.to_path_buf(),
                source,
            },
        })?;
        if !meta.is_dir() {
            return Err(CaptureError::NotDir(root.to_path_buf()));
        }
        let mut files = BTreeMap::new();
        let mut bad = Vec::new();
        for table in TABLES {
            let mut good = Vec::new();
            for path in list(root, table)? {
                match files::check(&path, table) {
                    Ok(f) => good.push(f),
                    Err(problem) => bad.push(BadFile { path, problem }),
                }
            }
            files.insert(table, good);
        }
        if !bad.is_empty() && !skip_bad_files {
            let count = bad.len();
            let first = bad.into_iter().next().expect("not empty");
            return Err(CaptureError::BadFiles { first, count });
        }
        if files[syscalls::TABLE].is_empty() {
            if bad.iter().any(|b| in_table(b, root, syscalls::TABLE)) {
                return Err(CaptureError::NothingReadable {
                    path: root.to_path_buf(),
                    table: syscalls::TABLE,
                    skipped: bad,
                });
            }
            return Err(CaptureError::Empty {
                path: root.to_path_buf(),
                table: syscalls::TABLE,
            });
        }
        Ok(Self {
            root: root.to_path_buf(),
            files,
            skipped: bad,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How rows name this capture: the directory as it was given.
    pub fn name(&self) -> String {
        self.root.display().to_string()
    }

    /// The readable files of `table`.
    pub fn files(&self, table: &str) -> &[TableFile] {
        self.files.get(table).map_or(&[], Vec::as_slice)
    }

    /// The files left out by `--skip-bad-files`.
    pub fn skipped(&self) -> &[BadFile] {
        &self.skipped
    }
}

fn in_table(bad: &BadFile, root: &Path, table: &str) -> bool {
    bad.path.parent() == Some(&root.join(table))
}

/// The finished files of `table`, sorted by name. Files still being written never end in
/// `.parquet`, so they are not listed.
fn list(root: &Path, table: &str) -> Result<Vec<PathBuf>, CaptureError> {
    let dir = root.join(table);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(CaptureError::Unreadable { path: dir, source }),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == FILE_EXTENSION))
        // Hidden files are not the recorder's (it writes `.part-*` only while in progress).
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    Ok(files)
}
