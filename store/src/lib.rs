//! Captures in object storage, for both binaries: `analyze` reads them, `record --upload`
//! ships them. Credentials and endpoints come from each store's usual variables.
pub mod location;

pub use location::{Location, LocationError, Remote};

/// An error and its causes on one line: a store's own message often ends in "HTTP
/// error" and keeps what went wrong in its sources.
pub fn causes(err: &dyn std::error::Error) -> String {
    let mut text = one_line(&err.to_string());
    let mut source = err.source();
    while let Some(cause) = source {
        let line = one_line(&cause.to_string());
        if !text.contains(&line) {
            text = format!("{text}: {line}");
        }
        source = cause.source();
    }
    text
}

/// The first line of a message.
pub fn one_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}
