//! Arguments written as a shell reads them, so that one argument with spaces stays one
//! argument in the text: `--password='correct horse'`, not `--password=correct horse`,
//! whose second word a reader (or `analyze`'s masking of secrets) takes for another.
use std::borrow::Cow;

/// Characters a shell word may hold unquoted.
fn plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c)
}

/// `word` as a shell reads it back. A `NAME=value` or `--name=value` word has only its
/// value quoted, as people write it, so the name stays in front.
pub fn quote(word: &str) -> Cow<'_, str> {
    if !word.is_empty() && word.chars().all(plain) {
        return Cow::Borrowed(word);
    }
    let single = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    match word.split_once('=') {
        Some((name, value)) if !name.is_empty() && name.chars().all(plain) => {
            Cow::Owned(format!("{name}={}", single(value)))
        }
        _ => Cow::Owned(single(word)),
    }
}

/// `words` quoted and joined by spaces.
pub fn join<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    words.into_iter().map(quote).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_only_where_a_shell_needs_it() {
        assert_eq!(
            join([
                "sh",
                "-c",
                "echo 'hi' there",
                "--password=correct horse",
                "PGPASSWORD=x y",
                ""
            ]),
            r"sh -c 'echo '\''hi'\'' there' --password='correct horse' PGPASSWORD='x y' ''"
        );
        assert_eq!(join(["a=b=c d"]), "a='b=c d'");
        assert_eq!(join(["=x y"]), "'=x y'");
    }
}
