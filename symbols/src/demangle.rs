//! Names as their source spells them: Rust and C++ symbols demangled, others as they are.
use std::fmt;

/// Longest symbol name demangled; a longer one is kept as it is, so that a hostile binary's
/// names cannot make demangling deep or slow.
const MAX_DEMANGLED: usize = 1024;

/// Longest frame name kept, in bytes; a longer one is cut, and ends in `...`.
const MAX_NAME: usize = 512;

/// A Rust or C++ name as its source spells it; any other name as it is. At most
/// [`MAX_NAME`] bytes and `...` of a demangled name are made: a C++ name of 243 bytes can
/// stand for one of gigabytes, and making it whole took 0.6 s a frame.
pub fn demangle(name: &str) -> String {
    if name.len() > MAX_DEMANGLED {
        return name.to_string();
    }
    let mut out = Capped::default();
    if (name.starts_with("_R") || name.starts_with("_ZN"))
        && let Ok(d) = rustc_demangle::try_demangle(name)
    {
        let whole = fmt::write(&mut out, format_args!("{d:#}")).is_ok();
        return out.finish(whole);
    }
    if name.starts_with("_Z")
        && let Ok(symbol) = cpp_demangle::Symbol::new(name)
    {
        let options = cpp_demangle::DemangleOptions::default();
        let whole = symbol.structured_demangle(&mut out, &options).is_ok();
        if whole || out.cut {
            return out.finish(whole);
        }
    }
    name.to_string()
}

/// Text that refuses to grow past [`MAX_NAME`] bytes: the demangler stops at the refusal.
#[derive(Default)]
struct Capped {
    text: String,
    cut: bool,
}

impl fmt::Write for Capped {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.text.len() + s.len() <= MAX_NAME {
            self.text.push_str(s);
            return Ok(());
        }
        let mut end = MAX_NAME - self.text.len();
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.text.push_str(&s[..end]);
        self.cut = true;
        Err(fmt::Error)
    }
}

impl Capped {
    fn finish(mut self, whole: bool) -> String {
        if !whole {
            self.text.push_str("...");
        }
        self.text
    }
}

/// A symbol as a frame of a folded chain shows it: demangled, at most [`MAX_NAME`] bytes,
/// and, whatever a hostile binary's symbols hold, never holding the `;` that separates
/// frames or a control character, nor starting with the `[` of a marker or an unnamed
/// frame (which `analyze --debug-dir` would rename).
pub fn frame_name(symbol: &str) -> String {
    let mut name = demangle(symbol);
    if name.len() > MAX_NAME + 3 {
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
        // A name whose demangled form is exponential in its mangled one: cut, at once.
        let hostile = "_Z1f1A1BIS_ES0_IS1_S1_ES0_IS2_S2_ES0_IS3_S3_ES0_IS4_S4_ES0_IS5_S5_ES0_IS6_S6_\
                       ES0_IS7_S7_ES0_IS8_S8_ES0_IS9_S9_ES0_ISA_SA_ES0_ISB_SB_ES0_ISC_SC_ES0_ISD_SD_\
                       ES0_ISE_SE_ES0_ISF_SF_ES0_ISG_SG_ES0_ISH_SH_ES0_ISI_SI_ES0_ISJ_SJ_ES0_ISK_SK_\
                       ES0_ISL_SL_E";
        let started = std::time::Instant::now();
        let name = demangle(hostile);
        assert!(
            name.ends_with("...") && name.len() == MAX_NAME + 3,
            "{}",
            name.len()
        );
        assert!(
            started.elapsed() < std::time::Duration::from_millis(100),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(frame_name("[libc.so.6+0x1 ab]"), "_libc.so.6+0x1 ab]");
        let long = frame_name(&"é".repeat(400));
        assert!(long.len() <= 515 && long.ends_with("..."), "{}", long.len());
    }
}
