//! Hive-style `key=value` segments in a capture's path or URL become columns:
//! `s3://incidents/inc-42/host=web-1` gives every row of that capture `host = 'web-1'`.
//! A fleet's uploads are laid out that way so that a query can group or filter by host
//! without a join against a list of captures.

use crate::tables::{CAPTURE_COLUMN, SKIPPED_FILES_COLUMN};

/// A path that gives one key two values.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "its path gives `{key}` two values ({first:?}, then {second:?}), and the column `{key}` \
     holds one; name the capture by a path that gives `{key}=` once"
)]
pub struct TwoValues {
    pub key: String,
    pub first: String,
    pub second: String,
}

/// The `key=value` segments of `name`, in order. A key is a lowercase SQL identifier, so
/// that it can be written unquoted; other segments with `=` are left alone.
///
/// A key given twice with two values (`host=a/host=b`) is refused: neither is more
/// right than the other, and taking one silently put every row under the host the path
/// named first. The same value twice is one value.
pub fn of(name: &str) -> Result<Vec<(String, String)>, TwoValues> {
    let path = name.split_once("://").map_or(name, |(_, rest)| rest);
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (key, value) in path
        .split('/')
        .filter_map(|segment| segment.split_once('='))
        .filter(|(key, _)| is_identifier(key))
        // Columns every table has already: a segment cannot replace them.
        .filter(|(key, _)| *key != CAPTURE_COLUMN && *key != SKIPPED_FILES_COLUMN)
    {
        match pairs.iter().find(|(k, _)| k == key) {
            Some((_, first)) if first != value => {
                return Err(TwoValues {
                    key: key.to_string(),
                    first: first.clone(),
                    second: value.to_string(),
                });
            }
            Some(_) => {}
            None => pairs.push((key.to_string(), value.to_string())),
        }
    }
    Ok(pairs)
}

fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_hive_style_segments_only() {
        let pairs = |name| of(name).unwrap();
        assert_eq!(
            pairs("s3://incidents/inc-42/host=web-1/day=2026-12-01"),
            vec![
                ("host".to_string(), "web-1".to_string()),
                ("day".to_string(), "2026-12-01".to_string())
            ]
        );
        assert_eq!(
            pairs("/srv/captures/region=eu/host=db-2"),
            vec![
                ("region".to_string(), "eu".to_string()),
                ("host".to_string(), "db-2".to_string())
            ]
        );
        // Not identifiers: left as part of the name.
        assert!(pairs("caps/Host=web-1/a b=c/=x/1x=y").is_empty());
        assert!(pairs("inc-42").is_empty());
        assert_eq!(pairs("host=").first().map(|p| p.1.as_str()), Some(""));
        // What every table has already is not a key, and not checked.
        assert_eq!(
            pairs("/p/capture=a/x/capture=b/skipped_files=1/skipped_files=2/host=h"),
            vec![("host".to_string(), "h".to_string())]
        );
        assert_eq!(
            pairs("/srv/host=web-1/inc-3/host=web-1"),
            vec![("host".to_string(), "web-1".to_string())]
        );
    }

    #[test]
    fn a_key_with_two_values_is_refused_by_name() {
        let err = of("s3://b/host=old/inc-42/host=web-1").unwrap_err();
        assert_eq!(
            err,
            TwoValues {
                key: "host".into(),
                first: "old".into(),
                second: "web-1".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "its path gives `host` two values (\"old\", then \"web-1\"), and the column \
             `host` holds one; name the capture by a path that gives `host=` once"
        );
    }
}
