//! The text of one frame of a folded chain (`outer;inner`), as the capture stores it.

use std::fmt::Write as _;

/// A frame outside every file (JIT code, an anonymous mapping): nothing can name it later.
pub const UNKNOWN: &str = "[unknown]";
/// Marks a chain cut before its end: a frame outside every binary whose tables were read
/// (JIT code, a binary that could not be read, a process gone before its mappings were),
/// the end of the copied stack, or the frame limit.
pub const TRUNCATED: &str = "[truncated]";

/// Longest binary name kept in a frame; a longer one is cut.
const MAX_MODULE: usize = 64;

/// A frame in a binary that has no symbol for it: `[libc.so.6+0x2724a 79005c…]`, the
/// binary's file name, the address as the binary's own headers number it (what `addr2line
/// -e` and the debug file take) and its GNU build ID in hex, when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unnamed<'a> {
    pub module: &'a str,
    pub address: u64,
    pub build_id: Option<&'a str>,
}

/// The frame text for an address no symbol covers. The file name comes from a path the
/// traced process chose, so anything but `[A-Za-z0-9._-]` becomes `_`: a frame never holds
/// the `;` that separates frames, a space or a bracket.
pub fn unnamed(path: &str, address: u64, build_id: Option<&[u8]>) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    let mut text = String::with_capacity(24 + MAX_MODULE + 2 * build_id.map_or(0, <[u8]>::len));
    text.push('[');
    for c in name.chars().take(MAX_MODULE) {
        let safe = c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        text.push(if safe { c } else { '_' });
    }
    let _ = write!(text, "+{address:#x}");
    if let Some(id) = build_id.filter(|id| !id.is_empty()) {
        text.push(' ');
        for b in id {
            let _ = write!(text, "{b:02x}");
        }
    }
    text.push(']');
    text
}

/// The parts of an [`unnamed`] frame; `None` for any other frame, a name or a marker.
pub fn parse(frame: &str) -> Option<Unnamed<'_>> {
    let inner = frame.strip_prefix('[')?.strip_suffix(']')?;
    let (place, build_id) = match inner.split_once(' ') {
        Some((place, id)) => (place, Some(id)),
        None => (inner, None),
    };
    let (module, address) = place.rsplit_once("+0x")?;
    let address = u64::from_str_radix(address, 16).ok()?;
    // A capture is input: only a plain hex ID is ever used to build a path from.
    if let Some(id) = build_id
        && !(id.len() >= 2 && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return None;
    }
    Some(Unnamed {
        module,
        address,
        build_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unnamed_frame_reads_back() {
        let text = unnamed("/usr/lib/libc.so.6", 0x2724a, Some(&[0x79, 0x00, 0x5c]));
        assert_eq!(text, "[libc.so.6+0x2724a 79005c]");
        assert_eq!(
            parse(&text),
            Some(Unnamed {
                module: "libc.so.6",
                address: 0x2724a,
                build_id: Some("79005c")
            })
        );
        let bare = unnamed("/opt/app", 0x10, None);
        assert_eq!(bare, "[app+0x10]");
        assert_eq!(parse(&bare).unwrap().build_id, None);
    }

    #[test]
    fn a_hostile_path_cannot_break_the_chain() {
        let text = unnamed("/tmp/a;b] c\n+0x1", 0x20, None);
        assert_eq!(text, "[a_b__c__0x1+0x20]");
        assert!(!text[1..text.len() - 1].contains([';', ' ', '[', ']']));
        assert_eq!(parse(&text).unwrap().address, 0x20);
    }

    #[test]
    fn names_and_markers_are_not_unnamed_frames() {
        for frame in [
            "main",
            UNKNOWN,
            TRUNCATED,
            "[x+0xzz]",
            "[x+0x1 ../../etc]",
            "[x+0x1 ab/cd]",
        ] {
            assert_eq!(parse(frame), None, "{frame}");
        }
    }
}
