//! Capture directories, checked before any query runs, so that a typo or an empty capture
//! gets one line naming the directory instead of an empty answer.
use std::{
    fs,
    path::{Path, PathBuf},
};

use tracepost_schema::{FILE_EXTENSION, syscalls};

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
}

#[derive(Debug, Clone)]
pub struct Capture {
    root: PathBuf,
}

impl Capture {
    pub fn open(root: &Path) -> Result<Self, CaptureError> {
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
        let capture = Self {
            root: root.to_path_buf(),
        };
        if capture.files(syscalls::TABLE)?.is_empty() {
            return Err(CaptureError::Empty {
                path: root.to_path_buf(),
                table: syscalls::TABLE,
            });
        }
        Ok(capture)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How rows name this capture: the directory as it was given.
    pub fn name(&self) -> String {
        self.root.display().to_string()
    }

    pub fn table_dir(&self, table: &str) -> PathBuf {
        self.root.join(table)
    }

    /// Finished files of `table`, sorted by name.
    pub fn files(&self, table: &str) -> Result<Vec<PathBuf>, CaptureError> {
        let dir = self.table_dir(table);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(CaptureError::Unreadable { path: dir, source }),
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|ext| ext == FILE_EXTENSION))
            .collect();
        files.sort();
        Ok(files)
    }
}
