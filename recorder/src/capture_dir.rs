//! The capture directory: where it goes, and that it is private.
//!
//! Captures hold sensitive data (paths, arguments, who talked to whom), so the directory is
//! 0700 and is never a symlink someone else planted, nor an existing directory of other
//! files that a mistyped `-o` would mix a capture into. An existing capture is continued:
//! an always-on recorder restarted after a reboot keeps writing where it left off.
use std::{
    fs::{self, DirBuilder},
    io,
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
    time::SystemTime,
};

use tracepost_schema::{TABLES, syscalls};

#[derive(Debug, thiserror::Error)]
pub enum CaptureDirError {
    #[error("output {} is a symlink; give the real directory", .0.display())]
    Symlink(PathBuf),
    #[error("output {} is not empty and is not a tracepost capture", .0.display())]
    NotEmpty(PathBuf),
    #[error("output {} exists and is not a directory", .0.display())]
    NotDir(PathBuf),
    #[error("cannot create output directory {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// `capture-<host>-<UTC time>`, e.g. `capture-web-3-20261123T225500Z`.
pub fn default_name(host: &str, now: SystemTime) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(now)
        .to_string()
        .replace(['-', ':'], "");
    PathBuf::from(format!("capture-{host}-{stamp}"))
}

pub fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// A created, empty, private capture directory.
#[derive(Debug, Clone)]
pub struct CaptureDir {
    root: PathBuf,
}

impl CaptureDir {
    pub fn create(root: &Path) -> Result<Self, CaptureDirError> {
        match fs::symlink_metadata(root) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(CaptureDirError::Symlink(root.to_path_buf()));
            }
            Ok(meta) if !meta.is_dir() => {
                return Err(CaptureDirError::NotDir(root.to_path_buf()));
            }
            Ok(_) => {
                let empty = fs::read_dir(root)
                    .map_err(|source| CaptureDirError::Create {
                        path: root.to_path_buf(),
                        source,
                    })?
                    .next()
                    .is_none();
                if !empty && !is_capture(root) {
                    return Err(CaptureDirError::NotEmpty(root.to_path_buf()));
                }
                fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o700))
                    .map_err(|source| CaptureDirError::Create {
                        path: root.to_path_buf(),
                        source,
                    })?;
            }
            Err(_) => private_dir(root, true)?,
        }
        let dir = Self {
            root: root.to_path_buf(),
        };
        for table in TABLES {
            let path = dir.table_dir(table);
            if !path.is_dir() {
                private_dir(&path, false)?;
            }
        }
        Ok(dir)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn table_dir(&self, table: &str) -> PathBuf {
        self.root.join(table)
    }
}

/// A directory holding a `syscalls` table directory is a capture.
fn is_capture(root: &Path) -> bool {
    fs::symlink_metadata(root.join(syscalls::TABLE)).is_ok_and(|m| m.is_dir())
}

fn private_dir(path: &Path, recursive: bool) -> Result<(), CaptureDirError> {
    DirBuilder::new()
        .recursive(recursive)
        .mode(0o700)
        .create(path)
        .map_err(|source| CaptureDirError::Create {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn default_name_has_host_and_utc_time() {
        // 2026-11-23T22:55:00Z
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_474_500);
        assert_eq!(
            default_name("web-3", t),
            PathBuf::from("capture-web-3-20261123T225500Z")
        );
    }

    #[test]
    fn creates_private_dirs_and_refuses_symlinks_and_foreign_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("a/b/cap");
        let dir = CaptureDir::create(&root).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir.root()), 0o700);
        assert_eq!(mode(&dir.table_dir("syscalls")), 0o700);

        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(tmp.path().join("elsewhere"), &link).unwrap();
        assert!(matches!(
            CaptureDir::create(&link),
            Err(CaptureDirError::Symlink(_))
        ));

        let busy = tmp.path().join("busy");
        fs::create_dir(&busy).unwrap();
        fs::write(busy.join("notes.txt"), "x").unwrap();
        assert!(matches!(
            CaptureDir::create(&busy),
            Err(CaptureDirError::NotEmpty(_))
        ));
        let file = busy.join("notes.txt");
        assert!(matches!(
            CaptureDir::create(&file),
            Err(CaptureDirError::NotDir(_))
        ));
    }

    #[test]
    fn an_existing_capture_is_continued() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("cap");
        let dir = CaptureDir::create(&root).unwrap();
        fs::write(dir.table_dir("syscalls").join("part-000001.parquet"), "x").unwrap();
        let again = CaptureDir::create(&root).unwrap();
        assert!(
            again
                .table_dir("syscalls")
                .join("part-000001.parquet")
                .exists()
        );
    }
}
