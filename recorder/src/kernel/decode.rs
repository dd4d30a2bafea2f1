//! Context bytes from the kernel to text: paths, and socket addresses as people write them
//! (`127.0.0.1:80`, `[::1]:443`, `/run/app.sock`, `@abstract`).
use std::{
    mem::offset_of,
    net::{Ipv4Addr, Ipv6Addr},
    sync::Arc,
};

use tracepost_common::{
    DetailedEvent, EXTRA_FD_PAIR, EXTRA_FD_PREFIXED, EXTRA_LEN, EXTRA_PATH, EXTRA_PATH_PAIR,
    EXTRA_SECOND_TRUNCATED, EXTRA_SECOND_UNREAD, EXTRA_SOCKADDR_IN, EXTRA_SOCKADDR_OUT,
    EXTRA_TRUNCATED, EXTRA_UNREADABLE, PATH_PAIR_HALF, SyscallEvent,
};

use crate::kernel::{call::Context, intern::Interner};

const AF_UNIX: u16 = 1;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// The context of one call, as the writer needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Extra {
    /// Shared: the same path recurs, and is keyed by its address downstream.
    Path {
        path: Arc<str>,
        truncated: bool,
        /// A rename's target; `None` for every other call.
        target: Option<Target>,
    },
    Addr(String),
    FdPair(i32, i32),
}

/// A rename's second path, as far as the kernel could read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Whole(Arc<str>),
    /// The first bytes of a longer name.
    Cut(Arc<str>),
    /// Not read: the call failed, or the memory could not be read.
    Unknown,
}

/// A detailed record's fixed part, read out of the staging area, and its context bytes
/// left in place: copying the whole record would copy its 256-byte buffer, which a path
/// mostly leaves unused.
pub struct Detailed<'a> {
    pub event: SyscallEvent,
    kind: u32,
    flags: u32,
    extra: &'a [u8],
    /// A path pair's second path.
    second: &'a [u8],
}

impl<'a> Detailed<'a> {
    /// `bytes` starts with a `DetailedEvent` (possibly followed by more, as in a
    /// `DetailedSchedEvent`); `None` if it is shorter.
    pub fn read(bytes: &'a [u8]) -> Option<Self> {
        if bytes.len() < size_of::<DetailedEvent>() {
            return None;
        }
        let u32_at = |offset: usize| {
            u32::from_ne_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"))
        };
        // SAFETY: `bytes` holds a whole DetailedEvent, which starts with the event.
        let event = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<SyscallEvent>()) };
        let start = offset_of!(DetailedEvent, extra);
        let kind = u32_at(offset_of!(DetailedEvent, extra_kind));
        let len = u32_at(offset_of!(DetailedEvent, extra_len)) as usize;
        let (len, second) = if kind as u8 == EXTRA_PATH_PAIR {
            let second_len =
                (u32_at(offset_of!(DetailedEvent, second_len)) as usize).min(PATH_PAIR_HALF);
            let from = start + PATH_PAIR_HALF;
            (len.min(PATH_PAIR_HALF), &bytes[from..from + second_len])
        } else {
            (len.min(EXTRA_LEN), &bytes[..0])
        };
        Some(Self {
            event,
            kind,
            flags: u32_at(offset_of!(DetailedEvent, extra_flags)),
            extra: &bytes[start..start + len],
            second,
        })
    }

    /// When it carries a path, whole, the context it shares with every call that
    /// names the same path.
    pub fn shared(&self, paths: &mut Interner) -> Option<Arc<Context>> {
        (self.kind as u8 == EXTRA_PATH && self.flags & (EXTRA_UNREADABLE | EXTRA_TRUNCATED) == 0)
            .then(|| paths.context(self.path()))
    }

    /// The path's bytes: for an exec relative to a descriptor that the kernel named, what
    /// follows its `/dev/fd/N/`, the name the caller gave.
    fn path(&self) -> &'a [u8] {
        if self.flags & EXTRA_FD_PREFIXED == 0 {
            return self.extra;
        }
        let after = self.extra.strip_prefix(b"/dev/fd/").unwrap_or(self.extra);
        let digits = after.iter().take_while(|b| b.is_ascii_digit()).count();
        after[digits..].strip_prefix(b"/").unwrap_or(self.extra)
    }

    /// What it carries; `None` when the kernel could not read it.
    pub fn extra(&self, paths: &mut Interner) -> Option<Extra> {
        if self.flags & EXTRA_UNREADABLE != 0 {
            return None;
        }
        let bytes = self.extra;
        match self.kind as u8 {
            EXTRA_PATH => Some(Extra::Path {
                path: paths.intern(whole_chars(self.path(), self.flags & EXTRA_TRUNCATED != 0)),
                truncated: self.flags & EXTRA_TRUNCATED != 0,
                target: None,
            }),
            EXTRA_PATH_PAIR => Some(Extra::Path {
                path: paths.intern(whole_chars(bytes, self.flags & EXTRA_TRUNCATED != 0)),
                truncated: self.flags & EXTRA_TRUNCATED != 0,
                target: Some(if self.flags & EXTRA_SECOND_UNREAD != 0 {
                    Target::Unknown
                } else if self.flags & EXTRA_SECOND_TRUNCATED != 0 {
                    Target::Cut(paths.intern(whole_chars(self.second, true)))
                } else {
                    Target::Whole(paths.intern(self.second))
                }),
            }),
            EXTRA_SOCKADDR_IN | EXTRA_SOCKADDR_OUT => {
                sockaddr(bytes, self.flags & EXTRA_TRUNCATED != 0).map(Extra::Addr)
            }
            EXTRA_FD_PAIR if bytes.len() >= 8 => {
                let a = i32::from_ne_bytes(bytes[0..4].try_into().ok()?);
                let b = i32::from_ne_bytes(bytes[4..8].try_into().ok()?);
                Some(Extra::FdPair(a, b))
            }
            _ => None,
        }
    }
}

/// A string the kernel may have cut at its buffer's end (`cut`), without the first bytes
/// of a character the cut left behind: decoded, they read as U+FFFD, which made the path
/// longer than the buffer and no longer the start of the real one.
fn whole_chars(bytes: &[u8], cut: bool) -> &[u8] {
    match std::str::from_utf8(bytes) {
        Err(e) if cut && e.error_len().is_none() => &bytes[..e.valid_up_to()],
        _ => bytes,
    }
}

/// A `struct sockaddr` of the families people debug; `None` for others. `cut`: the caller's
/// buffer was shorter than the address, and only its first bytes are known.
pub fn sockaddr(bytes: &[u8], cut: bool) -> Option<String> {
    let family = u16::from_ne_bytes(bytes.get(0..2)?.try_into().ok()?);
    match family {
        AF_INET => {
            let port = u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?);
            let ip: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
            Some(format!("{}:{port}", Ipv4Addr::from(ip)))
        }
        AF_INET6 => {
            let port = u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?);
            let ip: [u8; 16] = bytes.get(8..24)?.try_into().ok()?;
            Some(format!("[{}]:{port}", Ipv6Addr::from(ip)))
        }
        // Cut by a caller's short buffer, a name is only the start of the peer's.
        AF_UNIX if cut => None,
        AF_UNIX => {
            let path = bytes.get(2..)?;
            match path.first() {
                // Unnamed (socketpair, or an unbound client).
                None => Some("unix:unnamed".to_string()),
                // Abstract: a leading NUL, then exactly the bytes given (no terminator).
                Some(0) => {
                    let name = &path[1..];
                    let end = name.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                    Some(format!("@{}", String::from_utf8_lossy(&name[..end])))
                }
                Some(_) => {
                    let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
                    Some(String::from_utf8_lossy(&path[..end]).into_owned())
                }
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_path_keeps_only_whole_characters() {
        let path = "/tmp/caf\u{e9}".as_bytes();
        let cut = &path[..path.len() - 1];
        assert_eq!(whole_chars(cut, true), b"/tmp/caf");
        assert_eq!(whole_chars(path, true), path);
        // Not cut: bytes that are not UTF-8 stay, to be read as U+FFFD.
        assert_eq!(whole_chars(cut, false), cut);
        assert_eq!(whole_chars(b"/a\xff/b", true), b"/a\xff/b");
    }

    fn inet(port: u16, ip: [u8; 4]) -> Vec<u8> {
        let mut b = AF_INET.to_ne_bytes().to_vec();
        b.extend(port.to_be_bytes());
        b.extend(ip);
        b.extend([0; 8]);
        b
    }

    #[test]
    fn addresses_read_as_people_write_them() {
        assert_eq!(
            sockaddr(&inet(80, [127, 0, 0, 1]), false).unwrap(),
            "127.0.0.1:80"
        );
        let mut v6 = AF_INET6.to_ne_bytes().to_vec();
        v6.extend(443u16.to_be_bytes());
        v6.extend([0; 4]);
        v6.extend(Ipv6Addr::LOCALHOST.octets());
        v6.extend([0; 4]);
        assert_eq!(sockaddr(&v6, false).unwrap(), "[::1]:443");
        let mut unix = AF_UNIX.to_ne_bytes().to_vec();
        unix.extend(b"/run/app.sock\0garbage");
        assert_eq!(sockaddr(&unix, false).unwrap(), "/run/app.sock");
        let mut abs = AF_UNIX.to_ne_bytes().to_vec();
        abs.extend(b"\0name");
        assert_eq!(sockaddr(&abs, false).unwrap(), "@name");
        assert_eq!(
            sockaddr(&AF_UNIX.to_ne_bytes(), false).unwrap(),
            "unix:unnamed"
        );
        assert_eq!(sockaddr(&[16, 0, 1, 2], false), None); // AF_NETLINK
        assert_eq!(sockaddr(&[2], false), None);
    }

    /// An execveat relative to a descriptor whose name only the kernel read: the path is
    /// what follows the kernel's `/dev/fd/N/`.
    #[test]
    fn an_exec_named_by_the_kernel_from_a_descriptor_has_the_callers_name() {
        let detailed = |extra: &'static [u8], flags: u32| Detailed {
            event: unsafe { std::mem::zeroed() },
            kind: EXTRA_PATH as u32,
            flags,
            extra,
            second: &[],
        };
        assert_eq!(
            detailed(b"/dev/fd/12/bin/true", EXTRA_FD_PREFIXED).path(),
            b"bin/true"
        );
        assert_eq!(
            detailed(b"/dev/fd/12/bin/true", 0).path(),
            b"/dev/fd/12/bin/true"
        );
    }

    /// A caller's buffer shorter than the address: an IP and port are whole in the first
    /// 8 (or 24) bytes, a unix path is not known to end where the buffer did.
    #[test]
    fn an_address_cut_by_a_short_buffer_is_given_only_when_whole() {
        assert_eq!(
            sockaddr(&inet(80, [10, 0, 0, 7])[..8], true).unwrap(),
            "10.0.0.7:80"
        );
        assert_eq!(sockaddr(&inet(80, [10, 0, 0, 7])[..6], true), None);
        let mut unix = AF_UNIX.to_ne_bytes().to_vec();
        unix.extend(b"/run/ap");
        assert_eq!(sockaddr(&unix, true), None);
    }
}
