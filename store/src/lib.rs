//! Captures in object storage, for both binaries: `analyze` reads them, `record --upload`
//! ships them. Credentials and endpoints come from each store's usual variables.
pub mod location;

pub use location::{Location, LocationError, Remote};

/// An error and its causes on one line: a store's own message often ends in "HTTP
/// error" and keeps what went wrong in its sources.
pub fn causes(err: &dyn std::error::Error) -> String {
    chain(err, one_line)
}

/// An error and its causes on one line, each message whole with its line breaks folded:
/// for messages that put the reason after the first line (S3's `NoSuchBucket` is in the
/// response body).
pub fn causes_whole(err: &dyn std::error::Error) -> String {
    chain(err, |text| {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    })
}

/// Each message of the chain, as `line` makes it, joined by `: `; a message the text
/// already holds is not repeated.
fn chain(err: &dyn std::error::Error, line: impl Fn(&str) -> String) -> String {
    let mut text = line(&err.to_string());
    let mut source = err.source();
    while let Some(cause) = source {
        let next = line(&cause.to_string());
        if !text.contains(&next) {
            text = format!("{text}: {next}");
        }
        source = cause.source();
    }
    text
}

/// The first line of a message.
pub fn one_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}
