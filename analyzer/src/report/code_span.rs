//! Names in a report's notes are set as Markdown code spans, which a capture's name can
//! break: `a`b` read as code `a` then a stray backtick that turned the rest of the note
//! into code. Both sides follow CommonMark's rule here, so any name survives: the fence
//! is one backtick longer than the longest run inside it.

/// `s` as a CommonMark code span.
pub fn code_span(s: &str) -> String {
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    // A space on each side keeps a backtick at an end from joining the fence, and keeps a
    // name's own spaces at both ends: CommonMark strips one from each side.
    let spaced = s.starts_with(' ') && s.ends_with(' ') && !s.trim().is_empty();
    let pad = if s.starts_with('`') || s.ends_with('`') || spaced {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// A piece of a note: plain text, or the text of a code span.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    Code(&'a str),
}

/// Splits a note into text and code spans as CommonMark reads them: a run of backticks
/// opens a span that the next run of the same length closes; one that nothing closes is
/// text.
pub fn pieces(note: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut text_from = 0;
    let mut i = 0;
    let bytes = note.as_bytes();
    while i < bytes.len() {
        if bytes[i] != b'`' {
            i += 1;
            continue;
        }
        let run = bytes[i..].iter().take_while(|&&b| b == b'`').count();
        let open_end = i + run;
        match closing(note, open_end, run) {
            Some(close) => {
                if text_from < i {
                    out.push(Piece::Text(&note[text_from..i]));
                }
                out.push(Piece::Code(strip_pad(&note[open_end..close])));
                i = close + run;
                text_from = i;
            }
            None => i = open_end,
        }
    }
    if text_from < note.len() {
        out.push(Piece::Text(&note[text_from..]));
    }
    out
}

/// Where the first run of exactly `run` backticks at or after `from` starts.
fn closing(note: &str, from: usize, run: usize) -> Option<usize> {
    let bytes = note.as_bytes();
    let mut i = from;
    while i < bytes.len() {
        if bytes[i] == b'`' {
            let n = bytes[i..].iter().take_while(|&&b| b == b'`').count();
            if n == run {
                return Some(i);
            }
            i += n;
        } else {
            i += 1;
        }
    }
    None
}

/// One space off each side, where both have one and the span is not all spaces.
fn strip_pad(code: &str) -> &str {
    if code.len() >= 2 && code.starts_with(' ') && code.ends_with(' ') && code.trim() != "" {
        &code[1..code.len() - 1]
    } else {
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_name_reads_back_as_one_code_span() {
        for name in [
            "inc-42", "a`b", "``", "`x", "x`", "a``b`c", " sp ", " `", "`",
        ] {
            let note = format!(
                "Capture {} is not in it: `record --sched`.",
                code_span(name)
            );
            let code: Vec<_> = pieces(&note)
                .into_iter()
                .filter_map(|p| match p {
                    Piece::Code(c) => Some(c),
                    Piece::Text(_) => None,
                })
                .collect();
            assert_eq!(code, [name, "record --sched"], "{note}");
        }
    }

    #[test]
    fn an_unclosed_backtick_is_text() {
        assert_eq!(
            pieces("a ` b `c`"),
            [Piece::Text("a "), Piece::Code("b"), Piece::Text("c`")]
        );
        assert_eq!(pieces("``a`"), [Piece::Text("``a`")]);
    }
}
