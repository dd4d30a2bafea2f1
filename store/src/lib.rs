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
    // A store's error quotes the URL it failed on, password and all.
    location::without_secrets(&text)
}

/// The first line of a message, with the code and message of an S3 or Azure error body
/// that follows it: the first line alone said "404 Not Found: <?xml ...?>", and whether a
/// bucket is missing or the key is wrong (`NoSuchBucket`, `NoSuchKey`,
/// `InvalidAccessKeyId`) is in the body.
pub fn one_line(text: &str) -> String {
    let first = text.lines().next().unwrap_or_default();
    let Some(code) = xml_tag(text, "Code") else {
        return first.to_string();
    };
    let first = match first.find("<?xml") {
        Some(at) => first[..at].trim_end().trim_end_matches(':'),
        None => first,
    };
    match xml_tag(text, "Message") {
        Some(message) => format!("{first}: {code}: {message}"),
        None => format!("{first}: {code}"),
    }
}

/// The text of the first `<name>` element, on one line.
fn xml_tag(text: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let len = text[start..].find(&format!("</{name}>"))?;
    let value = text[start..start + len]
        .split_whitespace()
        .collect::<Vec<_>>();
    (!value.is_empty()).then(|| value.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store's error quotes the URL with its password (`Error performing PROPFIND
    /// http://user:pw@...`); no message built from it does.
    #[test]
    fn a_stores_error_never_shows_a_password() {
        #[derive(Debug)]
        struct Quoting(&'static str, Option<Box<Quoting>>);
        impl std::fmt::Display for Quoting {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for Quoting {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        let err = Quoting(
            "Generic HTTP error",
            Some(Box::new(Quoting(
                "Error performing PROPFIND http://alice:S3cr3t@127.0.0.1:1/dav/x/capture",
                None,
            ))),
        );
        for text in [causes(&err), causes_whole(&err)] {
            assert_eq!(
                text,
                "Generic HTTP error: Error performing PROPFIND \
                 http://alice:***@127.0.0.1:1/dav/x/capture"
            );
        }
    }

    #[test]
    fn an_error_body_gives_its_code_and_message() {
        let s3 = "Error performing GET http://h/b?list-type=2 in 5ms - Server returned \
                  non-2xx status code: 404 Not Found: <?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
                  <Error><Code>NoSuchBucket</Code><Message>The specified bucket does not \
                  exist</Message><BucketName>b</BucketName></Error>";
        assert_eq!(
            one_line(s3),
            "Error performing GET http://h/b?list-type=2 in 5ms - Server returned non-2xx \
             status code: 404 Not Found: NoSuchBucket: The specified bucket does not exist"
        );
        assert_eq!(
            one_line("connection refused\nretrying"),
            "connection refused"
        );
        assert_eq!(one_line("a\n<Code>AccessDenied</Code>"), "a: AccessDenied");
    }
}
