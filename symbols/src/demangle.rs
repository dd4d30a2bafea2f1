//! Names as their source spells them: Rust and C++ symbols demangled, others as they are.

/// Longest symbol name demangled; a longer one is kept as it is, so that a hostile binary's
/// names cannot make demangling deep or slow.
const MAX_DEMANGLED: usize = 1024;

/// A Rust or C++ name as its source spells it; any other name as it is.
pub fn demangle(name: &str) -> String {
    if name.len() > MAX_DEMANGLED {
        return name.to_string();
    }
    if (name.starts_with("_R") || name.starts_with("_ZN"))
        && let Ok(d) = rustc_demangle::try_demangle(name)
    {
        return format!("{d:#}");
    }
    if name.starts_with("_Z")
        && let Ok(symbol) = cpp_demangle::Symbol::new(name)
        && let Ok(d) = symbol.demangle()
    {
        return d;
    }
    name.to_string()
}

/// Longest frame name kept, in bytes; a longer one is cut, and ends in `...`.
const MAX_NAME: usize = 512;

/// A symbol as a frame of a folded chain shows it: demangled, at most [`MAX_NAME`] bytes,
/// and, whatever a hostile binary's symbols hold, never holding the `;` that separates
/// frames or a control character, nor starting with the `[` of a marker or an unnamed
/// frame (which `analyze --debug-dir` would rename).
pub fn frame_name(symbol: &str) -> String {
    let mut name = demangle(symbol);
    if name.len() > MAX_NAME {
        let mut end = MAX_NAME;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
        name.push_str("...");
    }
    let unsafe_char = |c: char| c == ';' || c.is_control();
    if name.contains(unsafe_char) {
        name = name.replace(unsafe_char, "_");
    }
    if name.starts_with('[') {
        name.replace_range(..1, "_");
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_mangled_names_are_demangled() {
        assert_eq!(demangle("b"), "b");
        assert_eq!(demangle("deep_sleep"), "deep_sleep");
        assert_eq!(demangle("_ZN3foo3barE"), "foo::bar");
        assert_eq!(demangle("_Z3fooi"), "foo(int)");
        assert_eq!(frame_name("a;b\nc"), "a_b_c");
        assert_eq!(frame_name("[libc.so.6+0x1 ab]"), "_libc.so.6+0x1 ab]");
        let long = frame_name(&"é".repeat(400));
        assert!(long.len() <= 515 && long.ends_with("..."), "{}", long.len());
    }
}
