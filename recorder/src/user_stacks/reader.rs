//! Reading a mapped binary: here ([`read_here`]) where its file system is local, and in a
//! process of its own ([`read`]) where it may not answer.
//!
//! A read on a FUSE or network file system whose server is gone blocks in the kernel, where
//! no signal reaches it, and a process cannot exit while one of its threads is there. Where
//! a binary's file system is not known to be local (an overlay, whose lower layer can be
//! FUSE, as lazy-pulled container images are; a mount the traced process's own mountinfo
//! does not show, from a chroot or another namespace, or lazily unmounted), `record` runs
//! itself as a helper that opens and reads it. A helper that does not answer in time is
//! killed and left: if it is stuck in the kernel it stays there, and `record` still exits.
use std::{
    fs::File,
    io::{Read, Write},
    os::{
        fd::AsRawFd,
        unix::fs::{MetadataExt, OpenOptionsExt},
    },
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// `record FLAG PATH INODE MAX`: the helper's arguments. Not a documented option: `main`
/// looks for it before parsing anything.
pub const HELPER_FLAG: &str = "--tracepost-read-mapped-binary";
/// How long the helper may go without sending anything.
const QUIET_LIMIT: Duration = Duration::from_secs(2);

/// (device, inode, size, mtime) of the file, as the cache knows binaries by.
pub type Key = (u64, u64, u64, i64);

/// In the helper (`record HELPER_FLAG ...`): serves the read and returns the exit code.
/// `None` in `record` itself. The arguments are read as the OS gives them: a traced
/// command's may be any bytes.
pub fn serve_if_asked() -> Option<u8> {
    let mut args = std::env::args_os().skip(1);
    if args.next()? != HELPER_FLAG {
        return None;
    }
    let args: Option<Vec<String>> = args.map(|a| a.into_string().ok()).collect();
    Some(match args.and_then(|a| serve(&a)) {
        Some(()) => 0,
        None => 1,
    })
}

/// Opens `path` without blocking (a FIFO put in a binary's place cannot hang it) and checks
/// that it is the regular file `inode`, of at most `max` bytes. Where `record` reads a
/// binary itself and where its helper does.
fn open_checked(path: &str, inode: u64, max: u64) -> Option<(File, Key)> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.file_type().is_file() || meta.ino() != inode || meta.size() > max {
        return None;
    }
    Some((file, (meta.dev(), meta.ino(), meta.size(), meta.mtime())))
}

/// Sends (dev, ino, size, mtime), waits for `y`, then sends the bytes.
fn serve(args: &[String]) -> Option<()> {
    let [path, inode, max] = args else {
        return None;
    };
    let (inode, max): (u64, u64) = (inode.parse().ok()?, max.parse().ok()?);
    let (mut file, (dev, ino, size, mtime)) = open_checked(path, inode, max)?;
    let mut out = std::io::stdout().lock();
    let mut header = Vec::with_capacity(32);
    for v in [dev, ino, size, mtime as u64] {
        header.extend_from_slice(&v.to_le_bytes());
    }
    out.write_all(&header).ok()?;
    out.flush().ok()?;
    let mut go = [0u8; 1];
    std::io::stdin().read_exact(&mut go).ok()?;
    if go[0] != b'y' {
        return Some(());
    }
    std::io::copy(&mut (&mut file).take(max), &mut out).ok()?;
    out.flush().ok()
}

/// What [`read`] gives, read here: for a file system known to answer.
pub fn read_here(
    path: &str,
    inode: u64,
    max: u64,
    known: impl Fn(&Key) -> bool,
) -> Result<(Key, Option<Vec<u8>>), Failed> {
    let (mut file, key) = open_checked(path, inode, max).ok_or(Failed::Unreadable)?;
    if known(&key) {
        return Ok((key, None));
    }
    let mut data = Vec::with_capacity(key.2 as usize);
    (&mut file)
        .take(max)
        .read_to_end(&mut data)
        .map_err(|_| Failed::Unreadable)?;
    Ok((key, Some(data)))
}

/// Why the helper gave nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum Failed {
    /// Not a regular file, another file than the mapping's, too large, or no helper.
    Unreadable,
    /// It went [`QUIET_LIMIT`] without a word: the file system does not answer.
    Quiet,
}

/// What the helper found: the file's key, and its bytes unless `known` said the cache has
/// them already.
pub fn read(
    path: &str,
    inode: u64,
    max: u64,
    known: impl Fn(&Key) -> bool,
) -> Result<(Key, Option<Vec<u8>>), Failed> {
    let mut child = Command::new("/proc/self/exe")
        .args([HELPER_FLAG, path, &inode.to_string(), &max.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|_| Failed::Unreadable)?;
    let result = talk(&mut child, max, known);
    match result {
        Ok(_) => {
            let _ = child.wait();
        }
        // Killed, and reaped only if it is gone already: one stuck in the kernel dies only
        // when it leaves it, and waiting for it would hold this thread there too.
        Err(_) => {
            let _ = child.kill();
            let _ = child.try_wait();
        }
    }
    result
}

fn talk(
    child: &mut Child,
    max: u64,
    known: impl Fn(&Key) -> bool,
) -> Result<(Key, Option<Vec<u8>>), Failed> {
    let mut stdout = child.stdout.take().ok_or(Failed::Unreadable)?;
    let mut header = Vec::with_capacity(32);
    read_quietly_limited(&mut stdout, &mut header, 32)?;
    if header.len() < 32 {
        return Err(Failed::Unreadable);
    }
    let word = |i: usize| u64::from_le_bytes(header[i * 8..i * 8 + 8].try_into().unwrap());
    let key = (word(0), word(1), word(2), word(3) as i64);
    let mut stdin = child.stdin.take().ok_or(Failed::Unreadable)?;
    if known(&key) {
        let _ = stdin.write_all(b"n");
        return Ok((key, None));
    }
    stdin.write_all(b"y").map_err(|_| Failed::Unreadable)?;
    drop(stdin);
    let mut data = Vec::with_capacity(key.2.min(max) as usize);
    read_quietly_limited(&mut stdout, &mut data, max)?;
    Ok((key, Some(data)))
}

/// Reads until end of file or `limit` bytes, giving up when nothing comes for
/// [`QUIET_LIMIT`].
fn read_quietly_limited(
    from: &mut impl ReadFd,
    into: &mut Vec<u8>,
    limit: u64,
) -> Result<(), Failed> {
    let mut buf = vec![0u8; 64 << 10];
    let mut last = Instant::now();
    while (into.len() as u64) < limit {
        let left = QUIET_LIMIT.saturating_sub(last.elapsed());
        let mut pfd = libc::pollfd {
            fd: from.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: one pollfd, valid for the call.
        let ready = unsafe { libc::poll(&mut pfd, 1, ms) };
        if ready == 0 {
            return Err(Failed::Quiet);
        }
        if ready < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Failed::Unreadable);
        }
        let want = buf.len().min((limit - into.len() as u64) as usize);
        match from.read(&mut buf[..want]) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                into.extend_from_slice(&buf[..n]);
                last = Instant::now();
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Err(Failed::Unreadable),
        }
    }
    Ok(())
}

/// A pipe to poll and read.
trait ReadFd: Read {
    fn fd(&self) -> i32;
}

impl ReadFd for std::process::ChildStdout {
    fn fd(&self) -> i32 {
        self.as_raw_fd()
    }
}
