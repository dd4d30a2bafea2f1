//! Names for the frames of user-space chains, from the binaries' symbol tables.
use std::{collections::HashMap, path::Path, sync::Arc};

use blazesym::symbolize::{
    Input, Symbolized, Symbolizer,
    source::{Elf, Source},
};

/// A frame no symbol covers: a stripped binary, or code outside any file (JIT).
pub const UNKNOWN: &str = "[unknown]";
/// Marks a chain cut before its end: the copied stack or the unwind tables ended first.
pub const TRUNCATED: &str = "[truncated]";

/// Names looked up so far, by binary and file offset: a slow call tends to come from the
/// same few places again and again.
pub struct Names {
    symbolizer: Symbolizer,
    known: HashMap<(Arc<Path>, u64), Arc<str>>,
}

/// Names remembered; past it, they are looked up again.
const MAX_KNOWN: usize = 65536;

impl Names {
    pub fn new() -> Self {
        Self {
            // Its own demangling reads every name as C++, and a C function `b` as `bool`.
            symbolizer: Symbolizer::builder().enable_demangling(false).build(),
            known: HashMap::new(),
        }
    }

    /// The function at `offset` in `file`.
    pub fn name(&mut self, file: &Path, offset: u64) -> String {
        if let Some(name) = self.known.get(&(Arc::from(file), offset)) {
            return name.to_string();
        }
        let mut src = Elf::new(file);
        // Symbols only: DWARF would name inlined frames too, at far more cost per lookup.
        src.debug_syms = false;
        let name: Arc<str> = match self
            .symbolizer
            .symbolize_single(&Source::Elf(src), Input::FileOffset(offset))
        {
            Ok(Symbolized::Sym(sym)) => demangle(&sym.name).into(),
            _ => UNKNOWN.into(),
        };
        if self.known.len() >= MAX_KNOWN {
            self.known.clear();
        }
        self.known.insert((Arc::from(file), offset), name.clone());
        name.to_string()
    }
}

/// A Rust or C++ name as its source spells it; any other name as it is.
fn demangle(name: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_mangled_names_are_demangled() {
        assert_eq!(demangle("b"), "b");
        assert_eq!(demangle("deep_sleep"), "deep_sleep");
        assert_eq!(demangle("_ZN3foo3barE"), "foo::bar");
        assert_eq!(demangle("_Z3fooi"), "foo(int)");
    }
}
