//! Hive-style `key=value` segments in a capture's path or URL become columns:
//! `s3://incidents/inc-42/host=web-1` gives every row of that capture `host = 'web-1'`.
//! A fleet's uploads are laid out that way so that a query can group or filter by host
//! without a join against a list of captures.

/// The `key=value` segments of `name`, in order. A key is a lowercase SQL identifier, so
/// that it can be written unquoted; other segments with `=` are left alone.
pub fn of(name: &str) -> Vec<(String, String)> {
    let path = name.split_once("://").map_or(name, |(_, rest)| rest);
    path.split('/')
        .filter_map(|segment| segment.split_once('='))
        .filter(|(key, _)| is_identifier(key))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
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
        let pairs = |name| of(name);
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
    }
}
