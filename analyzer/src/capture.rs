//! Capture directories, checked before any query runs: a typo, an empty capture or a
//! damaged file gets one line naming it instead of an empty or wrong answer.
use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use datafusion::datasource::listing::ListingTableUrl;
use futures::StreamExt as _;
use object_store::{ObjectMeta, path::Path as StorePath};
use tracepost_schema::{FILE_EXTENSION, LOCK_FILE, TABLES, syscalls};
use url::Url;

use crate::{
    files::{self, FileProblem, TableFile},
    location::{Location, LocationError, Remote},
};

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(transparent)]
    Location(#[from] LocationError),
    #[error("capture {0}: no such directory")]
    Missing(String),
    #[error("capture {0}: not a directory")]
    NotDir(String),
    #[error("capture {path}: cannot read it")]
    Unreadable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// One table's directory, where the capture's own could be read.
    #[error("capture {capture}: cannot read its table directory {dir}")]
    UnreadableTable {
        capture: String,
        dir: String,
        #[source]
        source: std::io::Error,
    },
    /// Root reading a directory another user can write: that user could have put a
    /// symlink there to a file only root may read, or swap a file for a FIFO after its
    /// check, which hangs the query (helper-65).
    #[error(
        "capture {capture}: {dir} {why}: root's analyze would read what that user can put \
         there (a symlink to a file only root may read, a FIFO that hangs the query); run \
         analyze as that user, or on a copy root owns"
    )]
    OthersCanWrite {
        capture: String,
        dir: String,
        why: String,
    },
    /// Root reading a capture whose table directory is a symlink: it could lead root's
    /// reads to files only root may read. Not said as another user's doing: root's own
    /// copy may hold one (helper-69).
    #[error(
        "capture {capture}: {dir} is a symlink, which analyze run as root does not follow (it \
         could lead to files only root may read): put the directory itself in its place"
    )]
    SymlinkedTable { capture: String, dir: String },
    /// Listing a bucket or prefix failed: a missing bucket, a refused credential, an
    /// endpoint that does not answer.
    #[error("capture {url}: cannot list it: {reason}")]
    Unlistable { url: String, reason: String },
    #[error(
        "capture {path}: no {table} data ({table}/*.{FILE_EXTENSION}); is this a tracepost capture?"
    )]
    Empty { path: String, table: &'static str },
    /// A recorder made the directory and was killed (or is still starting) before any
    /// table's first file: not a foreign directory, and nothing to read yet.
    #[error(
        "capture {0}: its recorder wrote no file (killed as it started, or starting now): \
         nothing to read"
    )]
    NothingWritten(String),
    #[error(
        "{first}{}; --skip-bad-files answers from the readable files",
        if *.count > 1 { format!(" (and {} more bad files)", .count - 1) } else { String::new() }
    )]
    BadFiles { first: BadFile, count: usize },
    #[error(
        "capture {path}: every {table} file is bad ({} skipped); nothing is left to read",
        skipped.len()
    )]
    NothingReadable {
        path: String,
        table: &'static str,
        /// Every bad file of the capture, for the warnings that name them.
        skipped: Vec<BadFile>,
    },
}

/// A file that cannot be read, and why.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct BadFile {
    /// Its path or URL.
    pub name: String,
    pub problem: FileProblem,
}

#[derive(Debug)]
pub struct Capture {
    root: Location,
    /// The readable files of each table, sorted by name.
    files: BTreeMap<&'static str, Vec<TableFile>>,
    /// Files left out under `--skip-bad-files`.
    skipped: Vec<BadFile>,
}

impl Capture {
    /// Lists and checks every file of every table. A bad file is an error, unless
    /// `skip_bad_files`, when it is left out and remembered in [`Capture::skipped`].
    pub async fn open(root: Location, skip_bad_files: bool) -> Result<Self, CaptureError> {
        let name = root.name();
        if let Location::Local(path) = &root {
            let meta = fs::metadata(path).map_err(|source| match source.kind() {
                std::io::ErrorKind::NotFound => CaptureError::Missing(name.clone()),
                _ => CaptureError::Unreadable {
                    path: name.clone(),
                    source,
                },
            })?;
            if !meta.is_dir() {
                return Err(CaptureError::NotDir(name));
            }
            // Named itself where it cannot be listed: its tables could not be found in it,
            // and the first table's directory was blamed (helper-97).
            if let Err(source) = fs::read_dir(path) {
                return Err(CaptureError::Unreadable { path: name, source });
            }
            if files::as_root() {
                only_root_writes(path, &name)?;
            }
        }
        let mut files = BTreeMap::new();
        let mut bad = Vec::new();
        let mut bad_syscalls = false;
        let mut vanished = 0;
        // The tables at once: a store that stalls costs one request's timeout, not one
        // for each table in turn (four minutes where the README promised one).
        let checked =
            futures::future::join_all(TABLES.iter().map(|&table| check_table(&root, table))).await;
        // Tables with no file at all: a recorder gives every table one as it starts.
        let mut without_files = Vec::new();
        for (table, results) in TABLES.into_iter().zip(checked) {
            let mut good = Vec::new();
            let results = results?;
            if results.is_empty() {
                without_files.push(table);
            }
            for result in results {
                match result {
                    Ok(f) => good.push(f),
                    // Listed, then gone: deleted by a record still writing the capture
                    // (`--max-size` deletes its oldest files), not damaged.
                    Err(BadFile {
                        problem: FileProblem::Io(e),
                        ..
                    }) if e.kind() == std::io::ErrorKind::NotFound => vanished += 1,
                    Err(b) => {
                        bad_syscalls |= table == syscalls::TABLE;
                        bad.push(b);
                    }
                }
            }
            // Not `processes` or `aggregates`: two runs of `-p` into one directory write
            // the same row for the same process, and their files are the same bytes.
            if table == syscalls::TABLE || table == tracepost_schema::capture::TABLE {
                warn_copies(&name, &good);
            }
            files.insert(table, good);
        }
        if vanished > 0 {
            crate::say!(
                "warning: capture {}: {vanished} of its files were deleted while this read it \
                 (a record still writing it with --max-size deletes its oldest files): the \
                 answer is of the files left",
                crate::output::visible(&name)
            );
        }
        if !bad.is_empty() && !skip_bad_files {
            let count = bad.len();
            let first = bad.into_iter().next().expect("not empty");
            return Err(CaptureError::BadFiles { first, count });
        }
        if files[syscalls::TABLE].is_empty() {
            if bad_syscalls {
                return Err(CaptureError::NothingReadable {
                    path: name,
                    table: syscalls::TABLE,
                    skipped: bad,
                });
            }
            let locked = matches!(&root, Location::Local(path) if path.join(LOCK_FILE).exists());
            if locked && files.values().all(Vec::is_empty) {
                return Err(CaptureError::NothingWritten(name));
            }
            return Err(CaptureError::Empty {
                path: name,
                table: syscalls::TABLE,
            });
        }
        // Said only of a capture that is read: one with no syscalls is an error of its own.
        for table in without_files {
            if let Some(lacks) = without(table) {
                crate::say!(
                    "warning: capture {}: {table}/ holds no file (a copy that left it out?): \
                     {lacks}",
                    crate::output::visible(&name)
                );
            }
        }
        Ok(Self {
            root,
            files,
            skipped: bad,
        })
    }

    pub fn location(&self) -> &Location {
        &self.root
    }

    /// How rows name this capture: the directory or URL as it was given.
    pub fn name(&self) -> String {
        self.root.name()
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

/// What a capture without `table`'s files lacks, for the tables whose absence nothing
/// else says: no `syscalls` is an error, and no `capture` row a warning of its own.
fn without(table: &str) -> Option<&'static str> {
    match table {
        tracepost_schema::aggregates::TABLE => Some(
            "the calls the kernel only counted (--min-duration, --failed, a full buffer) are \
             missing from every count, and their errors too",
        ),
        tracepost_schema::processes::TABLE => {
            Some("`processes` is empty: no command lines, parents or exit codes")
        }
        _ => None,
    }
}

/// Each finished file of `table`, in name order, checked: a readable file, or why not.
async fn check_table(
    root: &Location,
    table: &'static str,
) -> Result<Vec<Result<TableFile, BadFile>>, CaptureError> {
    match root {
        Location::Local(path) => Ok(list(path, table)?
            .into_iter()
            .map(|path| {
                files::check(&path, table).map_err(|problem| BadFile {
                    name: path.display().to_string(),
                    problem,
                })
            })
            .collect()),
        Location::Remote(remote) => {
            let objects = list_remote(remote, table).await?;
            // Each footer is a round trip: a fleet's hundreds of files are read several at
            // a time, and the answers kept in name order.
            Ok(futures::stream::iter(objects)
                .map(|object| check_object(remote, object, table))
                .buffered(FOOTERS_IN_FLIGHT)
                .collect()
                .await)
        }
    }
}

/// Names each file that holds the same rows as one before it in the table (`part-000001
/// (1).parquet`, a second download beside the first): both are read, so their rows count
/// twice.
fn warn_copies(capture: &str, files: &[TableFile]) {
    let mut seen: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for f in files {
        let Some(print) = f.fingerprint.as_deref() else {
            continue;
        };
        match seen.get(print) {
            Some(first) => crate::say!(
                "warning: capture {}: {} holds the same rows as {}, a copy beside it: both \
                 are read, and their rows count twice; move one out",
                crate::output::visible(capture),
                crate::output::visible(&f.name),
                crate::output::visible(first)
            ),
            None => {
                seen.insert(print, &f.name);
            }
        }
    }
}

/// Footers read at once from a store.
const FOOTERS_IN_FLIGHT: usize = 16;

async fn check_object(
    remote: &Remote,
    object: ObjectMeta,
    table: &'static str,
) -> Result<TableFile, BadFile> {
    let url = object_url(remote, &object.location);
    let name = url.to_string();
    // DataFusion opens the file by URL: one whose name does not survive the trip (a `%`
    // in a key) would read as empty, so it is refused instead.
    let addressable =
        ListingTableUrl::parse(url.as_str()).is_ok_and(|u| u.prefix() == &object.location);
    let checked = if addressable {
        files::check_remote(&remote.store, &object, url, table).await
    } else {
        Err(FileProblem::Unaddressable)
    };
    checked.map_err(|problem| BadFile { name, problem })
}

/// A table's finished files under a prefix: its direct children only, as for a
/// directory, with the same rules for names.
async fn list_remote(remote: &Remote, table: &str) -> Result<Vec<ObjectMeta>, CaptureError> {
    let dir = remote.prefix.clone().join(table);
    let listing = remote
        .store
        .list_with_delimiter(Some(&dir))
        .await
        .map_err(|e| CaptureError::Unlistable {
            url: remote.given.clone(),
            reason: files::causes(&e),
        })?;
    let (mut objects, others): (Vec<ObjectMeta>, Vec<ObjectMeta>) =
        listing.objects.into_iter().partition(|o| {
            o.location
                .filename()
                .is_some_and(|n| is_table_file(std::path::Path::new(n)))
        });
    objects.sort_by(|a, b| a.location.cmp(&b.location));
    // Named as a directory's are: DuckDB's `s3://.../syscalls/*.parquet` reads a hidden
    // object too (helper-91).
    let others = others
        .iter()
        .filter_map(|o| Some((o.location.filename()?.to_string(), false)))
        .chain(
            listing
                .common_prefixes
                .iter()
                .filter_map(|p| Some((p.filename()?.to_string(), true))),
        )
        .collect();
    warn_unread(&remote.given, table, others);
    Ok(objects)
}

/// The URL DataFusion opens an object by, under the store's base URL.
fn object_url(remote: &Remote, location: &StorePath) -> Url {
    let mut url = remote.base.clone();
    url.set_path(location.as_ref());
    url
}

/// The finished files of `table`, sorted by name. Files still being written never end in
/// `.parquet`, so they are not listed.
fn list(root: &Path, table: &str) -> Result<Vec<PathBuf>, CaptureError> {
    let dir = root.join(table);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CaptureError::UnreadableTable {
                capture: root.display().to_string(),
                dir: dir.display().to_string(),
                source,
            });
        }
    };
    let (mut files, others): (Vec<PathBuf>, Vec<PathBuf>) = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .partition(|p| is_table_file(p));
    files.sort();
    let others = others
        .iter()
        .filter_map(|p| Some((p.file_name()?.to_string_lossy().into_owned(), p.is_dir())))
        .collect();
    warn_unread(&root.display().to_string(), table, others);
    Ok(files)
}

/// Names what in a table's directory looks like data but is not read: a hidden
/// `.parquet` file, one named `.PARQUET`, a directory. Other readers differ on each
/// (DuckDB's `*.parquet` reads a hidden file, pandas a directory), and two tools gave two
/// answers with no word why (helper-69).
/// `others` are the names beside the table's files, each with whether it is a directory
/// (a prefix, in a store).
fn warn_unread(root: &str, table: &str, others: Vec<(String, bool)>) {
    let mut unread: Vec<String> = others
        .iter()
        .filter_map(|(name, is_dir)| {
            let why = if *is_dir {
                "a directory"
            } else if !name
                .to_ascii_lowercase()
                .ends_with(&format!(".{FILE_EXTENSION}"))
            {
                return None;
            } else if name.starts_with('.') {
                "hidden"
            } else {
                "not named .parquet"
            };
            Some(format!("{} ({why})", crate::output::visible(name)))
        })
        .collect();
    if unread.is_empty() {
        return;
    }
    unread.sort();
    crate::say!(
        "warning: capture {}: {table}/ holds what analyze does not read: {}; other readers \
         may read it, and answer otherwise",
        crate::output::visible(root),
        unread.join(", ")
    );
}

/// Refuses a capture whose directory, or one of its tables' directories, another user
/// owns or may write into, or that lies below a directory or symlink of theirs: there
/// they could swap the capture for one of their own between this check and the reads.
/// Checked for root only: another user can lead root's reads where that user could not
/// read, and hang them.
fn only_root_writes(root: &Path, name: &str) -> Result<(), CaptureError> {
    use std::os::unix::fs::MetadataExt as _;
    // `L/` and `L/.` name what the link `L` leads to, and lstat follows the link there:
    // without them each link below would go unseen (helper-74).
    let root = &without_trailing(root);
    // `cap` given plainly lies below the working directory.
    let parent = match root.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    on_the_way(parent, name)?;
    // The capture named through a symlink, or a chain of them: each link is its owner's to
    // point elsewhere between the check and the reads (helper-71 swapped one to a FIFO and
    // hung root's query), and so is each link's directory if another user can write it
    // (helper-73 went through a second link in an open directory). Each must be root's,
    // and the directories above where each leads are checked as the path given is.
    let mut at = root.clone();
    for _ in 0..MAX_LINKS {
        let Ok(link) = fs::symlink_metadata(&at) else {
            break;
        };
        if !link.file_type().is_symlink() {
            break;
        }
        if link.uid() != 0 {
            return Err(CaptureError::OthersCanWrite {
                capture: name.to_string(),
                dir: at.display().to_string(),
                why: format!("is a symlink owned by uid {}", link.uid()),
            });
        }
        let Ok(to) = fs::read_link(&at) else {
            break;
        };
        let next = match at.parent() {
            Some(dir) if to.is_relative() => dir.join(to),
            _ => to,
        };
        if let Some(parent) = next.parent().filter(|p| !p.as_os_str().is_empty()) {
            on_the_way(parent, name)?;
        }
        at = without_trailing(&next);
    }
    let dirs = std::iter::once(root.to_path_buf()).chain(TABLES.iter().map(|t| root.join(t)));
    for (i, dir) in dirs.enumerate() {
        // The capture's own directory may be a symlink its user typed; a table's is one
        // planted, or kept by a copy.
        if i > 0 && fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(CaptureError::SymlinkedTable {
                capture: name.to_string(),
                dir: dir.display().to_string(),
            });
        }
        // Followed, as the reads will be: the capture's own directory is root's here, so a
        // symlink in it is root's too.
        let meta = match fs::metadata(&dir) {
            Ok(meta) => meta,
            // A missing table is said later; one that cannot be read, likewise.
            Err(_) => continue,
        };
        let mode = meta.mode();
        // Any group: containers run users in group 0 (helper-67). Where the directory has
        // an ACL, its group bits are the ACL's mask, which any entry that lets another
        // user write it must hold.
        let why = if meta.uid() != 0 {
            format!("is owned by uid {}", meta.uid())
        } else if mode & 0o022 != 0 {
            format!("is writable by other users (mode {:04o})", mode & 0o7777)
        } else {
            continue;
        };
        return Err(CaptureError::OthersCanWrite {
            capture: name.to_string(),
            dir: dir.display().to_string(),
            why,
        });
    }
    Ok(())
}

/// The directories down to `dir` checked as `record -o` checks its own, for the capture
/// `name` below them. An unreadable one is left to the capture's own reads to name.
fn on_the_way(dir: &Path, name: &str) -> Result<(), CaptureError> {
    match tracepost_paths::check_path(dir) {
        Err(tracepost_paths::PathError::Unsafe { dir, why }) => Err(CaptureError::OthersCanWrite {
            capture: name.to_string(),
            dir: dir.display().to_string(),
            why: format!("is on the way to it, and {why}"),
        }),
        _ => Ok(()),
    }
}

/// `path` without a trailing `/` or `.` (`cap/`, `cap/.`), which make lstat follow a link.
fn without_trailing(path: &Path) -> PathBuf {
    match path.components().collect::<PathBuf>() {
        p if p.as_os_str().is_empty() => PathBuf::from("."),
        p => p,
    }
}

/// Links followed from a capture's name before the kernel's own limit stops the reads.
const MAX_LINKS: usize = 40;

/// A `.parquet` file that is not hidden: hidden files are not the recorder's (it writes
/// `.part-*` only while in progress).
fn is_table_file(path: &Path) -> bool {
    path.extension().is_some_and(|ext| ext == FILE_EXTENSION)
        && path
            .file_name()
            .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
}
