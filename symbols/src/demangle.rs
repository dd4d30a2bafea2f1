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

/// A symbol as a frame of a folded chain shows it: demangled, and never holding the `;`
/// that separates frames, whatever a hostile binary's symbols hold.
pub fn frame_name(symbol: &str) -> String {
    let name = demangle(symbol);
    if name.contains(';') {
        name.replace(';', "_")
    } else {
        name
    }
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
        assert_eq!(frame_name("a;b"), "a_b");
    }
}
