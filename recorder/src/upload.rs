//! `record --upload URL`: each file goes to object storage as soon as it is closed, so a
//! host that dies during the incident has already handed over all but its last interval.
//!
//! The uploader is a thread of its own that looks at the capture directory, not a step of
//! the writer's: a slow or unreachable store can never hold up recording. It ships what
//! readers would read (finished `*.parquet` of every table, including files an earlier
//! recorder left in the same directory), again whenever a file is replaced (the capture
//! row is rewritten when the capture ends). A file that fails is retried with backoff and
//! kept; `--max-size` deletes only what has been shipped ([`Shipped`]), and what is still
//! unshipped when recording ends is named.
use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

/// `--upload`'s URL as messages show it, a password and query values masked.
pub fn shown(url: &str) -> String {
    #[cfg(feature = "upload")]
    return tracepost_store::location::url_without_secrets(url);
    // Never shown: without the feature no upload starts.
    #[cfg(not(feature = "upload"))]
    return url.to_string();
}

/// The files already in object storage, as the writer names them: `--max-size` may delete
/// only these.
#[derive(Clone, Default)]
pub struct Shipped(Arc<Mutex<HashSet<PathBuf>>>);

impl Shipped {
    pub fn contains(&self, path: &Path) -> bool {
        self.lock().contains(path)
    }

    #[cfg_attr(not(feature = "upload"), allow(dead_code))]
    fn insert(&self, path: PathBuf) {
        self.lock().insert(path);
    }

    #[cfg_attr(not(feature = "upload"), allow(dead_code))]
    fn remove(&self, path: &Path) {
        self.lock().remove(path);
    }

    #[cfg_attr(not(feature = "upload"), allow(dead_code))]
    fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<PathBuf>> {
        // A panic elsewhere cannot leave a set of paths half-changed.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("--upload: this record was built without upload support (cargo feature `upload`)")]
    NotBuiltIn,
    #[error("--upload {url}: {reason}")]
    Destination { url: String, reason: String },
    #[error("cannot start the upload thread")]
    Thread(#[source] std::io::Error),
    /// Recording ended and these files (relative to `dir`) are not in object storage;
    /// they are kept locally.
    #[error("{} file(s) were not uploaded to {url} and are kept in {}: {}{}", .files.len(), .dir.display(), names(.files), also_vanished(.vanished))]
    NotUploaded {
        url: String,
        dir: PathBuf,
        files: Vec<PathBuf>,
        /// As in [`UploadError::Vanished`].
        vanished: Vec<PathBuf>,
    },
    /// Files shipped during the run are no longer in the store (a bucket deleted and made
    /// again, a lifecycle rule), and `--max-size` had deleted them here: their calls are
    /// lost, and the store's copy of the capture lacks them.
    #[error("{}", vanished(&format!("to {url}"), .files))]
    Vanished { url: String, files: Vec<PathBuf> },
}

/// Files shipped `whither` that the store lost, and `--max-size` had deleted here.
fn vanished(whither: &str, files: &[PathBuf]) -> String {
    format!(
        "{} file(s) shipped {whither} are no longer there, and --max-size had deleted them \
         here: {}",
        files.len(),
        names(files)
    )
}

/// [`vanished`], as the end of a [`UploadError::NotUploaded`].
fn also_vanished(files: &[PathBuf]) -> String {
    match files.is_empty() {
        true => String::new(),
        false => format!("; and {}", vanished("there", files)),
    }
}

fn names(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(feature = "upload")]
pub use shipping::Uploader;

/// Without the feature, `--upload` is refused before anything starts.
#[cfg(not(feature = "upload"))]
pub struct Uploader;

#[cfg(not(feature = "upload"))]
impl Uploader {
    pub fn start(_: &str, _: &Path, _: std::time::Duration, _: bool) -> Result<Self, UploadError> {
        Err(UploadError::NotBuiltIn)
    }

    pub fn shipped(&self) -> Shipped {
        Shipped::default()
    }

    pub fn finish(self, _: impl Fn() -> bool) -> Result<u64, UploadError> {
        Ok(0)
    }
}

#[cfg(feature = "upload")]
mod shipping {
    use std::{
        collections::{HashMap, HashSet},
        fs,
        io::Read as _,
        os::unix::fs::{FileExt as _, OpenOptionsExt as _},
        path::{Path, PathBuf},
        sync::mpsc::{self, Receiver, RecvTimeoutError, Sender},
        sync::{Arc, Mutex},
        thread::{self, JoinHandle},
        time::{Duration, Instant, SystemTime},
    };

    use object_store::{
        ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload, WriteMultipart,
        path::Path as StorePath,
    };
    use tracepost_schema::{FILE_EXTENSION, TABLES, capture, syscalls};
    use tracepost_store::{Location, Remote, causes_whole};

    use super::{Shipped, UploadError};

    /// How often the directory is looked at for newly closed files: as often as the
    /// shortest `--rotate` closes one. Once a second, a `kill -9` under `--rotate 200ms`
    /// left 8 closed files unshipped where one interval was promised (helper-91); a look
    /// that finds nothing new is a few directory reads.
    const SCAN: Duration = Duration::from_millis(100);
    /// Backoff after a failed upload of a file: doubling from the first, up to the last.
    const FIRST_RETRY: Duration = Duration::from_secs(1);
    const LAST_RETRY: Duration = Duration::from_secs(30);
    /// Files larger than this go up in parts of this size, so memory stays bounded
    /// whatever `--rotate` lets a file grow to.
    const PART: usize = 8 * 1024 * 1024;

    /// A file as it was when shipped: a replaced file (same name) differs in one of these.
    type Version = (u64, SystemTime);

    /// When recording has ended, the instant past which no upload is waited for. Shared,
    /// so that a request already in flight when recording ends is cut off at it, not at
    /// the HTTP client's own 60 s timeout.
    #[derive(Clone, Default)]
    struct Ending(Arc<EndingState>);

    #[derive(Default)]
    struct EndingState {
        deadline: Mutex<Option<Instant>>,
        /// The user was told that `record` waits for the store: said once, by whichever
        /// thread sees the wait first.
        told: std::sync::atomic::AtomicBool,
        /// A signal ended the wait, not `--upload-wait`.
        cut: std::sync::atomic::AtomicBool,
    }

    impl Ending {
        fn set(&self, deadline: Instant) {
            *self.0.deadline.lock().unwrap_or_else(|e| e.into_inner()) = Some(deadline);
        }

        /// A signal ends the wait now.
        fn cut_now(&self) {
            self.0.cut.store(true, std::sync::atomic::Ordering::Relaxed);
            self.set(Instant::now());
        }

        /// Why no answer came in time.
        fn no_answer(&self) -> String {
            match self.0.cut.load(std::sync::atomic::Ordering::Relaxed) {
                true => "no answer before a signal stopped the wait".into(),
                false => "no answer before --upload-wait ran out".into(),
            }
        }

        /// Whether recording has ended.
        fn is_set(&self) -> bool {
            self.0
                .deadline
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some()
        }

        /// True the first time only.
        fn tell_once(&self) -> bool {
            !self.0.told.swap(true, std::sync::atomic::Ordering::Relaxed)
        }

        fn passed(&self) -> bool {
            self.left().is_some_and(|left| left.is_zero())
        }

        /// How long until the deadline, once recording has ended.
        fn left(&self) -> Option<Duration> {
            let deadline = *self.0.deadline.lock().unwrap_or_else(|e| e.into_inner());
            deadline.map(|d| d.saturating_duration_since(Instant::now()))
        }
    }

    /// How often a request in flight looks at whether `--upload-wait` has run out.
    const LOOK: Duration = Duration::from_millis(100);
    /// How often the end's wait looks whether the user asked to stop it.
    const CUT_LOOK: Duration = Duration::from_millis(50);
    /// How long the end waits before it says that it waits.
    const TELL_AFTER: Duration = Duration::from_secs(1);

    /// A wait left, rounded up to whole seconds, as a person reads it.
    fn whole_seconds(left: Duration) -> humantime::FormattedDuration {
        humantime::format_duration(Duration::from_secs(left.as_secs_f64().ceil() as u64))
    }

    /// How long a request that moves no data may take: a store that took the connection
    /// and then said nothing held the one upload thread for the HTTP client's 60 s, and
    /// every file closed meanwhile waited unshipped without a word (helper-91).
    const STALL: Duration = Duration::from_secs(10);
    /// The slowest link a file's upload is given time for, on top of [`STALL`].
    const SLOWEST_LINK: u64 = 256 * 1024;

    /// How long the upload of a file of `bytes` may take before it is given up for now
    /// (the file is kept and retried): 10 s, and 4 s more per MiB.
    fn upload_limit(bytes: u64) -> Duration {
        STALL + Duration::from_secs_f64(bytes as f64 / SLOWEST_LINK as f64)
    }

    /// Runs `work` to its end, or until `--upload-wait` runs out, or `limit` has passed.
    fn bounded<T>(
        runtime: &tokio::runtime::Runtime,
        ending: &Ending,
        limit: Duration,
        work: impl Future<Output = Result<T, String>>,
    ) -> Result<T, String> {
        let given_up = Instant::now() + limit;
        runtime.block_on(async {
            let mut work = std::pin::pin!(work);
            loop {
                match tokio::time::timeout(LOOK, work.as_mut()).await {
                    Ok(done) => return done,
                    Err(_) if ending.passed() => return Err(ending.no_answer()),
                    Err(_) if Instant::now() >= given_up => {
                        let limit = Duration::from_secs(limit.as_secs());
                        return Err(format!(
                            "no answer in {}",
                            humantime::format_duration(limit)
                        ));
                    }
                    Err(_) => {}
                }
            }
        })
    }

    pub struct Uploader {
        shipped: Shipped,
        ending: Ending,
        /// The URL as it is shown, its secrets masked.
        given: String,
        quiet: bool,
        wait: Duration,
        /// Says recording is over; the deadline is in [`Ending`].
        finish: Sender<()>,
        handle: JoinHandle<Result<u64, UploadError>>,
    }

    impl Uploader {
        /// Checks the URL and starts shipping `root`'s files there. Nothing is sent yet:
        /// an unreachable store shows in warnings, never in a refusal to record. `quiet`
        /// (`-q`) keeps the notes to itself; warnings and errors are said all the same.
        pub fn start(
            url: &str,
            root: &Path,
            wait: Duration,
            quiet: bool,
        ) -> Result<Self, UploadError> {
            let destination = |reason: String| UploadError::Destination {
                url: tracepost_store::location::url_without_secrets(url),
                reason,
            };
            let remote = match Location::parse(Path::new(url)) {
                Ok(Location::Remote(remote)) => remote,
                Ok(Location::Local(_)) => {
                    return Err(destination(
                        "not an object-store URL (s3://, gs://, az://, abfss:// or http(s)://)"
                            .into(),
                    ));
                }
                Err(e) => return Err(destination(e.reason())),
            };
            let shipped = Shipped::default();
            let ending = Ending::default();
            let (finish, finish_rx) = mpsc::channel();
            let given = remote.given.clone();
            let mut worker = Worker {
                root: root.to_path_buf(),
                remote,
                shipped: shipped.clone(),
                versions: HashMap::new(),
                put: HashSet::new(),
                found: HashSet::new(),
                placeholder_seen: false,
                retry: HashMap::new(),
                failing: false,
                refused: false,
                destination: Destination::Unchecked,
                verified: false,
                vanished: Vec::new(),
                uploaded: 0,
                ending: ending.clone(),
                quiet,
            };
            let handle = thread::Builder::new()
                .name("upload".into())
                .spawn(move || worker.run(finish_rx))
                .map_err(UploadError::Thread)?;
            Ok(Self {
                shipped,
                ending,
                given,
                quiet,
                wait,
                finish,
                handle,
            })
        }

        pub fn shipped(&self) -> Shipped {
            self.shipped.clone()
        }

        /// Recording is over: ships what is left, waiting at most `--upload-wait` or until
        /// `cut` says to stop waiting (the user's Ctrl-C), and returns how many uploads
        /// were made, or names the files that are not shipped.
        pub fn finish(self, cut: impl Fn() -> bool) -> Result<u64, UploadError> {
            let began = Instant::now();
            let deadline = deadline(began, self.wait);
            self.ending.set(deadline);
            let _ = self.finish.send(());
            while !self.handle.is_finished() {
                if cut() && !self.ending.passed() {
                    self.ending.cut_now();
                }
                // A request in flight to a store that does not answer holds the worker
                // until the deadline: the prompt has not come back, so say why.
                if began.elapsed() >= TELL_AFTER && !self.quiet && self.ending.tell_once() {
                    crate::say!(
                        "record: waiting up to {} (--upload-wait; Ctrl-C stops waiting) for \
                         the last files to reach {}",
                        whole_seconds(self.ending.left().unwrap_or_default()),
                        self.given
                    );
                }
                thread::sleep(CUT_LOOK);
            }
            self.handle
                .join()
                .unwrap_or_else(|_| Err(UploadError::Thread(std::io::Error::other("it panicked"))))
        }
    }

    /// Whether the prefix is ours to write. Part files are numbered the same in every
    /// capture, so a second capture shipped to the same prefix (two hosts given one URL)
    /// would silently replace the first one's calls with its own.
    #[derive(PartialEq)]
    enum Destination {
        Unchecked,
        Ours,
        /// Holds another capture: nothing is shipped there.
        Foreign,
    }

    struct Worker {
        root: PathBuf,
        remote: Remote,
        shipped: Shipped,
        versions: HashMap<PathBuf, Version>,
        /// What this recorder put in the prefix: all it may take back when refused.
        put: HashSet<PathBuf>,
        /// Files found there already with the same bytes (an empty table's file, the same
        /// in every capture): another recorder refused on this prefix takes back what it
        /// put, these included, so they are looked at again once recording has ended.
        found: HashSet<PathBuf>,
        /// The empty first `syscalls` file was in the directory: once it is gone, it is
        /// taken out of the bucket too.
        placeholder_seen: bool,
        /// Files that failed: when to try again, and the backoff that got them there.
        retry: HashMap<PathBuf, (Instant, Duration)>,
        /// The last attempt failed: said once, until an upload succeeds again.
        failing: bool,
        /// The last attempt was refused by the store (a 4xx answer: no such bucket, a
        /// credential refused): waiting at the end cannot change that.
        refused: bool,
        destination: Destination,
        /// Every shipped file was looked for in the store once all were shipped.
        verified: bool,
        /// Shipped, gone from the store, and deleted here by `--max-size`.
        vanished: Vec<PathBuf>,
        uploaded: u64,
        ending: Ending,
        /// `-q`: no notes (the wait at the end, uploads resumed).
        quiet: bool,
    }

    /// `--upload-wait` after `at`; a wait past what the clock can hold is a century.
    fn deadline(at: Instant, wait: Duration) -> Instant {
        at.checked_add(wait)
            .unwrap_or_else(|| at + Duration::from_secs(100 * 365 * 24 * 3600))
    }

    impl Worker {
        fn run(&mut self, finish: Receiver<()>) -> Result<u64, UploadError> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(UploadError::Thread)?;
            loop {
                self.pass(&runtime);
                match finish.recv_timeout(SCAN) {
                    Ok(()) => break,
                    Err(RecvTimeoutError::Timeout) => {}
                    // The recorder is gone without saying so: nothing to wait for.
                    Err(RecvTimeoutError::Disconnected) => return Ok(self.uploaded),
                }
            }
            // Everything is closed now: retries are no longer spaced out, only bounded.
            self.retry.clear();
            loop {
                let mut pending = self.pass(&runtime);
                // Refused: waiting cannot change that. The deadline is the ending's, which
                // a second Ctrl-C brings to now.
                let giving_up = !pending.is_empty()
                    && (self.ending.passed()
                        || self.destination == Destination::Foreign
                        || self.refused);
                // Once, with every file shipped or as the end gives up on some: what the
                // store lost of the others is shipped again, or named with them.
                if (pending.is_empty() || giving_up)
                    && !self.verified
                    && self.destination == Destination::Ours
                {
                    self.verified = true;
                    let again = self.still_there(&runtime, !giving_up);
                    if !again.is_empty() && !giving_up {
                        // Shipped again by the next pass.
                        continue;
                    }
                    pending.extend(again);
                }
                if pending.is_empty() {
                    if !self.vanished.is_empty() {
                        return Err(UploadError::Vanished {
                            url: self.remote.given.clone(),
                            files: std::mem::take(&mut self.vanished),
                        });
                    }
                    return Ok(self.uploaded);
                }
                if giving_up {
                    return Err(self.not_uploaded(pending));
                }
                // Ctrl-C was answered minutes ago: say why the prompt has not come back.
                if !self.quiet && self.ending.tell_once() {
                    crate::say!(
                        "record: waiting up to {} (--upload-wait; Ctrl-C stops waiting) for {} \
                         file(s) to reach {}",
                        whole_seconds(self.ending.left().unwrap_or_default()),
                        pending.len(),
                        self.remote.given
                    );
                }
                // In short steps: a second Ctrl-C moves the deadline to now.
                let pause = Instant::now() + FIRST_RETRY;
                while Instant::now() < pause && !self.ending.passed() {
                    thread::sleep(CUT_LOOK);
                }
            }
        }

        fn not_uploaded(&mut self, mut pending: Vec<PathBuf>) -> UploadError {
            pending.sort();
            pending.dedup();
            UploadError::NotUploaded {
                url: self.remote.given.clone(),
                dir: self.root.clone(),
                files: pending
                    .iter()
                    .map(|f| f.strip_prefix(&self.root).unwrap_or(f).to_path_buf())
                    .collect(),
                vanished: std::mem::take(&mut self.vanished),
            }
        }

        /// Ships every finished file that is new or replaced and not waiting to retry.
        /// Returns the files not shipped.
        fn pass(&mut self, runtime: &tokio::runtime::Runtime) -> Vec<PathBuf> {
            let mut pending = Vec::new();
            if self.destination == Destination::Unchecked {
                match bounded(runtime, &self.ending, STALL, self.check_destination()) {
                    Ok(None) => {
                        self.destination = Destination::Ours;
                        self.refused = false;
                    }
                    Ok(Some(name)) => {
                        self.refuse(&format!("it already holds another capture ({name})"));
                    }
                    Err(reason) => {
                        self.refused = refusal(&reason);
                        let what = match self.refused {
                            true => format!("the store refused {}", self.remote.given),
                            false => format!("cannot reach {}", self.remote.given),
                        };
                        self.warn_failing(&what, &reason)
                    }
                }
            }
            if self.ending.is_set() && !self.found.is_empty() {
                self.found_again(runtime);
            }
            let placeholder = self.placeholder();
            // A capture row goes last. The row written at the end says the capture is
            // complete, and a bucket must not say so while some of its calls are still
            // only on the host: once recording has ended, and for a row tried before (the
            // end may have rewritten it), it waits until every other file is there. A row
            // first tried while recording says only that recording began.
            let (rows, parts): (Vec<_>, Vec<_>) = finished_files(&self.root)
                .into_iter()
                .partition(|(path, _)| self.is_capture_row(path));
            let files = parts.into_iter().map(|f| (f, false));
            for ((path, version), is_row) in files.chain(rows.into_iter().map(|f| (f, true))) {
                self.placeholder_seen |= path == placeholder;
                if self.versions.get(&path) == Some(&version) {
                    continue;
                }
                // Unchecked (the store did not answer) or refused, even halfway through;
                // or a capture row while a part file is still to go.
                let row_waits = is_row
                    && !pending.is_empty()
                    && (self.ending.is_set()
                        || self.versions.contains_key(&path)
                        || self.retry.contains_key(&path));
                if self.destination != Destination::Ours || row_waits {
                    pending.push(path);
                    continue;
                }
                let now = Instant::now();
                if self.retry.get(&path).is_some_and(|(at, _)| *at > now) || self.ending.passed() {
                    pending.push(path);
                    continue;
                }
                let upload = self.upload(&path);
                let result = bounded(runtime, &self.ending, upload_limit(version.0), upload);
                match result {
                    Ok(Shipment::Taken) => {
                        self.refuse(&format!(
                            "{} already holds another capture's file",
                            self.key(&path)
                        ));
                        self.take_back(runtime);
                        pending.push(path);
                    }
                    Ok(shipment) => {
                        match shipment {
                            Shipment::Done => self.put.insert(path.clone()),
                            _ => self.found.insert(path.clone()),
                        };
                        if self.failing {
                            if !self.quiet {
                                crate::say!("record: uploads to {} resumed", self.remote.given);
                            }
                            self.failing = false;
                        }
                        self.refused = false;
                        self.retry.remove(&path);
                        self.versions.insert(path.clone(), version);
                        self.shipped.insert(path);
                        self.uploaded += 1;
                    }
                    Err(reason) => {
                        self.refused = refusal(&reason);
                        // A refusal mid-run (the bucket deleted, a credential revoked) is
                        // said as one at the start is, not as a store out of reach.
                        let what = match self.refused {
                            true => format!(
                                "the store refused {} for {}",
                                path.display(),
                                self.remote.given
                            ),
                            false => {
                                format!("cannot upload {} to {}", path.display(), self.remote.given)
                            }
                        };
                        self.warn_failing(&what, &reason);
                        let backoff = self
                            .retry
                            .get(&path)
                            .map_or(FIRST_RETRY, |(_, b)| (*b * 2).min(LAST_RETRY));
                        self.retry.insert(path.clone(), (now + backoff, backoff));
                        pending.push(path);
                    }
                }
            }
            self.withdraw_placeholder(runtime);
            pending
        }

        /// Ships again each file found in the store that is no longer there. Two recorders
        /// started at one moment on one prefix put the same empty tables' files; the one
        /// refused took its own back, and the bucket of the one that went on lacked them
        /// though its capture row said it was whole.
        fn found_again(&mut self, runtime: &tokio::runtime::Runtime) {
            for path in std::mem::take(&mut self.found) {
                let key = self.key(&path);
                let store = self.remote.store.clone();
                match bounded(runtime, &self.ending, STALL, async move {
                    is_there(store.as_ref(), &key).await
                }) {
                    Ok(true) => {}
                    // Gone: shipped again by this pass.
                    Ok(false) => {
                        self.versions.remove(&path);
                        self.shipped.remove(path.as_path());
                    }
                    // Asked again at the next pass.
                    Err(_) => {
                        self.found.insert(path);
                    }
                }
            }
        }

        /// Looks for every shipped file in one listing of each table: a bucket deleted
        /// and made again mid-run had lost the files shipped before, and `record` exited 0
        /// (helper-91). Returns those still here, marked to be shipped again (said where
        /// `retry`; otherwise they are named with the files not shipped); those
        /// `--max-size` has deleted are kept to be named. A bucket that is gone has lost
        /// them all (helper-94: its `NoSuchBucket` was taken for no answer). A store that
        /// does not answer the listing, or refuses it (a credential allowed to write only),
        /// is said, and trusted.
        fn still_there(&mut self, runtime: &tokio::runtime::Runtime, retry: bool) -> Vec<PathBuf> {
            let mut listed = HashSet::new();
            for table in TABLES {
                let store = self.remote.store.clone();
                let prefix = self.remote.prefix.clone().join(table);
                let listing = bounded(runtime, &self.ending, STALL, async move {
                    match store.list_with_delimiter(Some(&prefix)).await {
                        Ok(found) => Ok(found.objects),
                        // No bucket (S3's `NoSuchBucket`, Azure's `ContainerNotFound`): a
                        // listing of a prefix is answered 404 for nothing else.
                        Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
                        Err(e) => match store_error(&e) {
                            reason if reason.contains("status code: 404") => Ok(Vec::new()),
                            reason => Err(reason),
                        },
                    }
                });
                match listing {
                    Ok(found) => listed.extend(found.into_iter().map(|o| o.location)),
                    Err(reason) => {
                        crate::say!(
                            "warning: cannot check that the files shipped to {} are still \
                             there: {reason}",
                            self.remote.given
                        );
                        return Vec::new();
                    }
                }
            }
            let placeholder = self.placeholder();
            let missing: Vec<PathBuf> = self
                .versions
                .keys()
                .filter(|path| **path != placeholder && !listed.contains(&self.key(path)))
                .cloned()
                .collect();
            let mut again = Vec::new();
            for path in missing {
                self.versions.remove(&path);
                self.shipped.remove(&path);
                match path.exists() {
                    true => again.push(path),
                    false => self
                        .vanished
                        .push(path.strip_prefix(&self.root).unwrap_or(&path).to_path_buf()),
                }
            }
            if retry && !again.is_empty() && !self.quiet {
                crate::say!(
                    "record: {} file(s) shipped to {} are no longer there (the bucket was \
                     emptied or made again?); shipping them again",
                    again.len(),
                    self.remote.given
                );
            }
            self.vanished.sort();
            again
        }

        /// The empty `syscalls` file written at the start leaves the directory once a file
        /// with calls is closed; it leaves the bucket then too, so that the bucket holds the
        /// directory's files and no more. That includes one an earlier run killed before its
        /// first file left in the directory (and perhaps in the bucket), seen here even
        /// while the store did not answer. Left there if the store refuses: an empty file
        /// changes no answer, and the next pass tries again.
        fn withdraw_placeholder(&mut self, runtime: &tokio::runtime::Runtime) {
            let path = self.placeholder();
            if !self.placeholder_seen || self.destination != Destination::Ours || path.exists() {
                return;
            }
            // Not before a file of calls is there: a store that stopped answering after
            // the delete went through, and before any such file did, held no `syscalls`
            // file at all, and no reader opened it.
            let calls = self.root.join(syscalls::TABLE);
            if !self
                .versions
                .keys()
                .any(|shipped| shipped.starts_with(&calls) && *shipped != path)
            {
                return;
            }
            let key = self.key(&path);
            let store = self.remote.store.clone();
            let deleted = bounded(runtime, &self.ending, STALL, async move {
                match store.delete(&key).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(store_error(&e)),
                }
            });
            if deleted.is_ok() {
                self.placeholder_seen = false;
                self.versions.remove(&path);
                self.put.remove(&path);
            }
        }

        fn placeholder(&self) -> PathBuf {
            self.root
                .join(syscalls::TABLE)
                .join(crate::files::writer::placeholder_name())
        }

        /// Refused after shipping some files: takes out of the prefix again what it put
        /// there, so that it holds one capture, not parts of two, and never what it found
        /// there. They stay on disk and are named at the end, and `--max-size` deletes no
        /// more of them.
        fn take_back(&mut self, runtime: &tokio::runtime::Runtime) {
            self.shipped.clear();
            self.versions.clear();
            for path in std::mem::take(&mut self.put) {
                let key = self.key(&path);
                let store = self.remote.store.clone();
                let deleted = bounded(runtime, &self.ending, STALL, async move {
                    store.delete(&key).await.map_err(|e| store_error(&e))
                });
                if let Err(reason) = deleted {
                    crate::say!(
                        "warning: cannot take {} back out of {}: {reason}",
                        path.display(),
                        self.remote.given
                    );
                }
            }
        }

        fn key(&self, path: &Path) -> StorePath {
            let relative = path.strip_prefix(&self.root).unwrap_or(path);
            let mut key = self.remote.prefix.clone();
            for part in relative.iter() {
                key = key.join(part.to_string_lossy().as_ref());
            }
            key
        }

        /// The prefix holds another capture: nothing (more) is shipped there.
        fn refuse(&mut self, what: &str) {
            crate::say!(
                "error: --upload {}: {what}; nothing is uploaded there, so that neither \
                 capture overwrites the other. Give each capture its own prefix, such as \
                 .../host=NAME. Recording goes on locally.",
                self.remote.given
            );
            self.destination = Destination::Foreign;
        }

        /// Once the wait is over nothing is retried: the files are named at the end.
        fn warn_failing(&mut self, what: &str, reason: &str) {
            if !self.failing {
                let then = match self.ending.passed() {
                    true => "files are kept here",
                    false => "files are kept and retried",
                };
                crate::say!("warning: {what}: {reason}; {then}");
                self.failing = true;
            }
        }

        /// Lists the prefix's capture rows once, before anything is shipped: a row of a
        /// capture this directory does not hold (named in the answer) means the prefix
        /// belongs to another one.
        async fn check_destination(&self) -> Result<Option<String>, String> {
            let rows = self.remote.prefix.clone().join(capture::TABLE);
            let listed = self
                .remote
                .store
                .list_with_delimiter(Some(&rows))
                .await
                .map_err(|e| store_error(&e))?;
            let ours = self.root.join(capture::TABLE);
            Ok(listed.objects.iter().find_map(|o| {
                let name = o.location.filename()?;
                (!ours.join(name).exists()).then(|| format!("{}/{name}", capture::TABLE))
            }))
        }

        /// Whether `path` is one of the capture rows, not a part file of a table.
        fn is_capture_row(&self, path: &Path) -> bool {
            path.starts_with(self.root.join(capture::TABLE))
        }

        /// `root/TABLE/NAME` to `URL/TABLE/NAME`: the bucket holds the capture's layout,
        /// so `analyze URL` reads it as it reads the directory.
        fn upload(&self, path: &Path) -> impl Future<Output = Result<Shipment, String>> + use<> {
            let store = self.remote.store.clone();
            // Capture rows are named by the capture's id and rewritten when it ends; part
            // files are written once, and numbered alike in every capture.
            let replaceable = self.is_capture_row(path);
            let key = self.key(path);
            let path = path.to_path_buf();
            async move { put_file(store.as_ref(), &path, &key, replaceable).await }
        }
    }

    /// Whether a store's error is its answer refusing the request (HTTP 4xx: no such
    /// bucket, a key or credential refused), not a failure to reach it. A timeout (408)
    /// or a request to slow down (429) is worth waiting for.
    fn refusal(reason: &str) -> bool {
        const AT: &str = "status code: ";
        reason.match_indices(AT).any(|(i, _)| {
            let code = reason[i + AT.len()..].get(..3);
            code.is_some_and(|c| c.starts_with('4') && c != "408" && c != "429")
        })
    }

    /// A store's error on one line, whole (S3's reason is on the lines after the status),
    /// within a bound: a response body can be a page of HTML.
    fn store_error(e: &object_store::Error) -> String {
        const MAX: usize = 600;
        let mut text = causes_whole(e);
        if text.len() > MAX {
            let cut = (0..=MAX)
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            text.truncate(cut);
            text.push_str("...");
        }
        text
    }

    /// How an upload ended, when the store answered.
    enum Shipment {
        /// This recorder put it there.
        Done,
        /// The same bytes were there already: this recorder's, from an attempt whose
        /// answer was lost, or a file that is the same in another capture (an empty
        /// table's). Shipped, but not this recorder's to take back.
        Found,
        /// The key holds another file: another capture ships to this prefix.
        Taken,
    }

    /// A part file is put only where nothing is (`If-None-Match: *` on S3), so that two
    /// recorders given one prefix at the same moment cannot replace each other's files.
    /// A key that holds the same bytes counts as shipped ([`Shipment::Found`]).
    async fn put_file(
        store: &dyn ObjectStore,
        path: &Path,
        key: &StorePath,
        replaceable: bool,
    ) -> Result<Shipment, String> {
        let mut file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| format!("cannot read it: {e}"))?;
        let len = file.metadata().map_err(|e| e.to_string())?.len() as usize;
        // The recorder renames only whole files into place; one that is not whole now was
        // changed by someone else, and a bucket must not get a file no reader can open.
        let mut head = [0; 4];
        let mut tail = [0; 4];
        let whole = len >= 8
            && file.read_exact_at(&mut head, 0).is_ok()
            && file.read_exact_at(&mut tail, len as u64 - 4).is_ok()
            && &head == b"PAR1"
            && &tail == b"PAR1";
        if !whole {
            return Err("it is not a whole Parquet file (changed since it was written?)".into());
        }
        if len <= PART {
            let mut bytes = Vec::with_capacity(len);
            file.read_to_end(&mut bytes)
                .map_err(|e| format!("cannot read it: {e}"))?;
            let mode = if replaceable {
                PutMode::Overwrite
            } else {
                PutMode::Create
            };
            let bytes = bytes::Bytes::from(bytes);
            let put = store
                .put_opts(key, PutPayload::from(bytes.clone()), PutOptions::from(mode))
                .await;
            return match put {
                Ok(_) => Ok(Shipment::Done),
                Err(object_store::Error::AlreadyExists { .. }) => {
                    already_there(store, key, &bytes).await
                }
                // A store without the precondition (a WebDAV server, an S3 clone with
                // conditional puts off).
                Err(object_store::Error::NotImplemented { .. }) => {
                    if is_there(store, key).await? {
                        return already_there(store, key, &bytes).await;
                    }
                    store
                        .put(key, PutPayload::from(bytes))
                        .await
                        .map_err(|e| store_error(&e))?;
                    Ok(Shipment::Done)
                }
                Err(e) => Err(store_error(&e)),
            };
        }
        // Multipart uploads have no such precondition.
        if !replaceable && is_there(store, key).await? {
            // Too big to hold for a compare: its last bytes (the footer, with this
            // capture's statistics) stand for it.
            let tail_len = len.min(64 * 1024);
            let mut tail = vec![0; tail_len];
            file.read_exact_at(&mut tail, (len - tail_len) as u64)
                .map_err(|e| format!("cannot read it: {e}"))?;
            let there = store
                .get_range(key, (len - tail_len) as u64..len as u64)
                .await;
            return Ok(match there {
                Ok(b) if b[..] == tail[..] => Shipment::Found,
                _ => Shipment::Taken,
            });
        }
        let upload = store
            .put_multipart(key)
            .await
            .map_err(|e| store_error(&e))?;
        let mut parts = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut buf = vec![0; PART];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| format!("cannot read it: {e}"))?;
            if n == 0 {
                break;
            }
            parts
                .wait_for_capacity(2)
                .await
                .map_err(|e| store_error(&e))?;
            parts.write(&buf[..n]);
        }
        parts.finish().await.map_err(|e| store_error(&e))?;
        Ok(Shipment::Done)
    }

    /// The key already holds a file: this one, from an attempt whose answer was lost, or
    /// another capture's. Only the same bytes are taken for this one: two captures' part
    /// files can be the same size.
    async fn already_there(
        store: &dyn ObjectStore,
        key: &StorePath,
        bytes: &[u8],
    ) -> Result<Shipment, String> {
        let there = store
            .get(key)
            .await
            .map_err(|e| store_error(&e))?
            .bytes()
            .await
            .map_err(|e| store_error(&e))?;
        Ok(if there[..] == bytes[..] {
            Shipment::Found
        } else {
            Shipment::Taken
        })
    }

    /// Whether the key holds a file, for stores and uploads without a precondition: looked
    /// at first, which leaves a narrower window than none.
    async fn is_there(store: &dyn ObjectStore, key: &StorePath) -> Result<bool, String> {
        match store.head(key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(store_error(&e)),
        }
    }

    /// The finished files of every table, with their versions. Hidden names (files being
    /// written, the lock) are not for readers and are not shipped.
    fn finished_files(root: &Path) -> Vec<(PathBuf, Version)> {
        let mut files = Vec::new();
        for table in TABLES {
            let Ok(entries) = fs::read_dir(root.join(table)) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') || !name.ends_with(&format!(".{FILE_EXTENSION}")) {
                    continue;
                }
                let Ok(meta) = entry.metadata() else { continue };
                if !meta.is_file() {
                    continue;
                }
                let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                files.push((entry.path(), (meta.len(), modified)));
            }
        }
        // Each table's oldest first (parts are numbered): `--max-size` frees the oldest,
        // and a dying host should have handed over its earliest calls first.
        files.sort();
        files
    }
}
