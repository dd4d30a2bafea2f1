//! Where a capture lives: a local directory, or a prefix in object storage named by a URL
//! (`s3://bucket/inc-42/web-1`). Both are listed and read through the same steps, so a
//! copy in a bucket answers exactly as the directory it was copied from.
//!
//! Credentials and endpoints come from each store's usual variables (`AWS_*`,
//! `GOOGLE_*`, `AZURE_*`), read by `object_store`'s builders: nothing here is
//! tracepost's own.
use std::{path::PathBuf, sync::Arc, time::Duration};

use object_store::{
    ClientConfigKey, ObjectStore, ObjectStoreScheme, RetryConfig,
    aws::{AmazonS3Builder, AmazonS3ConfigKey},
    azure::{AzureConfigKey, MicrosoftAzureBuilder},
    gcp::{GoogleCloudStorageBuilder, GoogleConfigKey},
    http::HttpBuilder,
    path::Path as StorePath,
};
use url::Url;

/// The schemes read as object storage. Anything else with `://` is refused rather than
/// taken for a local directory of that odd name.
const SCHEMES: &[&str] = &[
    "s3", "s3a", "gs", "az", "adl", "azure", "abfs", "abfss", "http", "https",
];

/// How long one request may take. A postmortem waits for a slow bucket, but an endpoint
/// that does not answer must end in an error line, not a hang.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Transient failures are retried with backoff, within this bound for each request.
const RETRY_TIMEOUT: Duration = Duration::from_secs(20);
const MAX_RETRIES: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    #[error(
        "capture {0}: unsupported URL scheme (object storage is read from s3://, gs://, az://, abfss:// and http(s)://)"
    )]
    Scheme(String),
    #[error("capture {url}: not a URL ({reason})")]
    Invalid { url: String, reason: String },
    /// The store cannot be set up for it: a URL it does not understand, a missing
    /// account name.
    #[error("capture {url}: {reason}")]
    Store { url: String, reason: String },
}

impl LocationError {
    /// What is wrong, without the URL: for messages that name it their own way.
    pub fn reason(&self) -> String {
        match self {
            Self::Scheme(_) => "unsupported URL scheme (object storage is s3://, gs://, az://, \
                                abfss:// or http(s)://)"
                .into(),
            Self::Invalid { reason, .. } => format!("not a URL ({reason})"),
            Self::Store { reason, .. } => reason.clone(),
        }
    }
}

/// A capture's root, as given on the command line.
#[derive(Debug, Clone)]
pub enum Location {
    Local(PathBuf),
    Remote(Remote),
}

/// A prefix in an object store.
#[derive(Debug, Clone)]
pub struct Remote {
    /// As given, without a trailing `/`: how rows name the capture.
    pub given: String,
    /// `scheme://host[:port]`: the key DataFusion finds the store by.
    pub base: Url,
    pub store: Arc<dyn ObjectStore>,
    pub prefix: StorePath,
}

/// `text` with the password of every URL's `user:password@` in it masked, and the values
/// of its query ([`without_query_values`]): how a URL is shown in messages, capture names
/// and the capture row, and what is done to a store's error text, which quotes the URL it
/// failed on (`PROPFIND http://user:pw@...`). The password still reaches the store; it
/// does not reach terminals, logs and tickets (`http://deploy:hunter2@host/x` shows as
/// `http://deploy:***@host/x`). A password may hold a `/` a URL should have escaped: the
/// user information runs to the last `@` of the word, not to the first `/`.
pub fn without_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let ends = |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>');
        let mut word_end = tail.find(ends).unwrap_or(tail.len());
        // A password may hold a `'`: the URL parser leaves it unescaped, where it escapes
        // every other sign that ends a word here. A store's error quotes such a URL, and
        // the word ended inside the password, which stayed in clear.
        if tail[word_end..].starts_with('\'') {
            let unquoted_end = tail
                .find(|c: char| c != '\'' && ends(c))
                .unwrap_or(tail.len());
            if let Some((colon, at)) = password_span(&tail[..unquoted_end])
                && colon < word_end
                && at > word_end
            {
                word_end = at
                    + tail[at..unquoted_end]
                        .find(ends)
                        .unwrap_or(unquoted_end - at);
            }
        }
        let word = &tail[..word_end];
        let word = match password_span(word) {
            Some((colon, at)) => format!("{}***{}", &word[..=colon], &word[at..]),
            None => word.to_string(),
        };
        out.push_str(&without_query_values(&word));
        rest = &tail[word_end..];
    }
    out.push_str(rest);
    out
}

/// One URL given whole (`record --upload URL`), with its password and query values
/// masked. [`without_secrets`] ends a URL at a space or a quote, as it must in a message;
/// a URL given on its own ends only where it ends, so a password holding `'`, `"`, `<` or a
/// space is masked whole (helper-67 saw one stay in `ps`).
pub fn url_without_secrets(url: &str) -> String {
    let Some(at) = url.find("://") else {
        return url.to_string();
    };
    let (head, word) = url.split_at(at + 3);
    let word = match password_span(word) {
        Some((colon, at)) => format!("{}***{}", &word[..=colon], &word[at..]),
        None => word.to_string(),
    };
    format!("{head}{}", without_query_values(&word))
}

/// `word` with the value of every query parameter masked: a URL's query carries signed
/// and shared-access tokens (`?sig=`, `X-Amz-Signature=`, `token=`), and which of its
/// parameters are secret no list can say for every store.
fn without_query_values(word: &str) -> String {
    let Some(q) = word.find('?') else {
        return word.to_string();
    };
    let (query, fragment) = match word[q..].find('#') {
        Some(h) => (&word[q + 1..q + h], &word[q + h..]),
        None => (&word[q + 1..], ""),
    };
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((key, value)) if !value.is_empty() => format!("{key}=***"),
            _ => param.to_string(),
        })
        .collect();
    format!("{}?{}{fragment}", &word[..q], params.join("&"))
}

/// Where the user information's `:` and its closing `@` sit in `word`, the URL after its
/// `://`, if it has a password. The `:` comes before the path's first `/`, and the `@` is
/// the word's last, so a password holding an unescaped `/` is found whole. A port (digits
/// up to that `/`) followed by an `@` further on in the path is no password:
/// `http://host:8080/inc@2`.
fn password_span(word: &str) -> Option<(usize, usize)> {
    let at = word.rfind('@')?;
    let slash = word.find('/').unwrap_or(word.len());
    let colon = word[..at.min(slash)].find(':')?;
    let port = &word[colon + 1..slash];
    if at > slash && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((colon, at))
}

impl Location {
    /// A URL of a known scheme is object storage; anything else is a local path.
    pub fn parse(arg: &std::path::Path) -> Result<Self, LocationError> {
        let Some(text) = arg.to_str().filter(|t| t.contains("://")) else {
            return Ok(Self::Local(arg.to_path_buf()));
        };
        // `s3://b/inc-42/` and `s3://b/inc-42` are one capture, named without the slash.
        let trimmed = text.trim_end_matches('/');
        let given = url_without_secrets(if trimmed.ends_with(':') {
            text
        } else {
            trimmed
        });
        let url = match Url::parse(text) {
            Ok(url) if SCHEMES.contains(&url.scheme()) => url,
            // `file:///tmp/x#y` read the capture /tmp/x (helper-92).
            Ok(url)
                if url.scheme() == "file"
                    && (url.fragment().is_some() || url.query().is_some()) =>
            {
                return Err(LocationError::Store {
                    url: given,
                    reason: "a '#' or '?' ends a file:// URL's path, and what follows it \
                             would be dropped; write it as %23 or %3F, or give the path"
                        .into(),
                });
            }
            Ok(url) if url.scheme() == "file" => {
                return url
                    .to_file_path()
                    .map(Self::Local)
                    .map_err(|()| LocationError::Scheme(given));
            }
            Ok(_) => return Err(LocationError::Scheme(given)),
            Err(e) => {
                return Err(LocationError::Invalid {
                    url: given,
                    reason: e.to_string(),
                });
            }
        };
        // A `#` ends a URL's path, and nothing reads an s3:// or gs:// query: what came
        // after either was dropped without a word, and `s3://b/run#web-1` and
        // `s3://b/run#web-2` were one prefix (helper-91).
        let dropped = match url.fragment() {
            Some(_) => Some('#'),
            None if url.query().is_some() && matches!(url.scheme(), "s3" | "s3a" | "gs") => {
                Some('?')
            }
            None => None,
        };
        if let Some(sign) = dropped {
            return Err(LocationError::Store {
                url: given,
                reason: format!(
                    "a '{sign}' ends the object keys' prefix, and what follows it would be \
                     dropped; write it as {}",
                    if sign == '#' { "%23" } else { "%3F" }
                ),
            });
        }
        let store_error = |source: object_store::Error| LocationError::Store {
            url: given.clone(),
            reason: crate::causes(&source),
        };
        let (scheme, path) = ObjectStoreScheme::parse(&url).map_err(|e| store_error(e.into()))?;
        // The URL's path is percent-encoded; the store's keys are not.
        let prefix = StorePath::from_url_path(path).map_err(|e| store_error(e.into()))?;
        let store = build(scheme, &url).map_err(store_error)?;
        let mut base = url.clone();
        base.set_path("");
        base.set_query(None);
        base.set_fragment(None);
        Ok(Self::Remote(Remote {
            given,
            base,
            store,
            prefix,
        }))
    }

    /// What makes two captures the same one, whatever the spelling: the scheme (`s3a` is
    /// `s3`), the bucket or host, and the prefix as the store sees it.
    pub fn identity(&self) -> String {
        match self {
            Self::Local(p) => p
                .canonicalize()
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string(),
            Self::Remote(r) => {
                let scheme = match r.base.scheme() {
                    "s3a" => "s3",
                    "abfs" | "abfss" | "adl" | "azure" => "az",
                    other => other,
                };
                let host = r.base.host_str().unwrap_or_default();
                let port = r.base.port().map(|p| format!(":{p}")).unwrap_or_default();
                format!("{scheme}://{host}{port}/{}", r.prefix)
            }
        }
    }

    /// How rows name the capture: the directory or URL as it was given.
    pub fn name(&self) -> String {
        match self {
            Self::Local(path) => path.display().to_string(),
            Self::Remote(r) => r.given.clone(),
        }
    }
}

/// A store for `url`'s bucket or host, configured from the environment.
fn build(scheme: ObjectStoreScheme, url: &Url) -> object_store::Result<Arc<dyn ObjectStore>> {
    // object_store's HTTP client uses rustls but leaves the choice of crypto to the
    // program; without one installed every request fails with a bare "builder error".
    // Installing twice is refused harmlessly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let retry = RetryConfig {
        max_retries: MAX_RETRIES,
        retry_timeout: RETRY_TIMEOUT,
        ..Default::default()
    };
    // Set key by key: replacing the builder's client options would drop what the
    // environment set there (`AWS_ALLOW_HTTP`, proxies).
    let timeouts = [
        (ClientConfigKey::ConnectTimeout, CONNECT_TIMEOUT),
        (ClientConfigKey::Timeout, REQUEST_TIMEOUT),
    ]
    .map(|(key, d)| (key, format!("{}s", d.as_secs())));
    Ok(match scheme {
        ObjectStoreScheme::AmazonS3 => {
            let mut b = AmazonS3Builder::from_env().with_url(url.as_str());
            for (key, value) in &timeouts {
                b = b.with_config(AmazonS3ConfigKey::Client(*key), value);
            }
            Arc::new(b.with_retry(retry).build()?)
        }
        ObjectStoreScheme::GoogleCloudStorage => {
            let mut b = GoogleCloudStorageBuilder::from_env().with_url(url.as_str());
            for (key, value) in &timeouts {
                b = b.with_config(GoogleConfigKey::Client(*key), value);
            }
            Arc::new(b.with_retry(retry).build()?)
        }
        ObjectStoreScheme::MicrosoftAzure => {
            let mut b = MicrosoftAzureBuilder::from_env().with_url(url.as_str());
            for (key, value) in &timeouts {
                b = b.with_config(AzureConfigKey::Client(*key), value);
            }
            Arc::new(b.with_retry(retry).build()?)
        }
        ObjectStoreScheme::Http => {
            // No environment speaks for a plain web server: an http:// URL is consent
            // enough to use plain HTTP.
            let mut b = HttpBuilder::new()
                .with_url(&url[..url::Position::BeforePath])
                .with_config(
                    ClientConfigKey::AllowHttp,
                    (url.scheme() == "http").to_string(),
                );
            for (key, value) in &timeouts {
                b = b.with_config(*key, value);
            }
            Arc::new(b.with_retry(retry).build()?)
        }
        other => {
            return Err(object_store::Error::NotSupported {
                source: format!("{other:?} is not object storage").into(),
            });
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_urls_password_is_masked_where_it_is_shown() {
        use super::without_secrets;
        assert_eq!(
            super::url_without_secrets("http://deploy:a'b c\"d<e>@h:1/x?sig=s'q"),
            "http://deploy:***@h:1/x?sig=***"
        );
        assert_eq!(
            without_secrets("http://admin:hunter2@127.0.0.1:1/dav/x"),
            "http://admin:***@127.0.0.1:1/dav/x"
        );
        assert_eq!(
            without_secrets("https://u:p@ss:w@host"),
            "https://u:***@host"
        );
        // A `'` in the password, which the URL parser does not escape, in a store's error.
        assert_eq!(
            without_secrets("Error performing GET http://u:pa'ss@h:1/x in 1s"),
            "Error performing GET http://u:***@h:1/x in 1s"
        );
        assert_eq!(
            without_secrets("at 'http://u:a'b'c@h/x': refused"),
            "at 'http://u:***@h/x': refused"
        );
        assert_eq!(
            without_secrets("'http://h/x' 'b:c@d'"),
            "'http://h/x' 'b:c@d'"
        );
        // An unescaped `/` in the password, and URLs quoted inside an error's text.
        assert_eq!(
            without_secrets("capture http://alice:se/cret@127.0.0.1:1/x: not a URL"),
            "capture http://alice:***@127.0.0.1:1/x: not a URL"
        );
        assert_eq!(
            without_secrets("PROPFIND http://a:b@h/x/capture (a), then HTTP://c:d%40e@h/y"),
            "PROPFIND http://a:***@h/x/capture (a), then HTTP://c:***@h/y"
        );
        // Every query parameter's value: signatures and shared-access tokens.
        assert_eq!(
            without_secrets(
                "https://u:pw@h/y?sig=TopSecret96&X-Amz-Signature=TopSecret95&flag&e=#frag x?a=b"
            ),
            "https://u:***@h/y?sig=***&X-Amz-Signature=***&flag&e=#frag x?a=b"
        );
        for kept in [
            "s3://bucket/inc-42",
            "http://user@host/x",
            "cap",
            "no url: here",
            // An `@` in the path, after a port or a `:` of the path's own.
            "http://host:8080/captures/inc@2",
            "s3://bucket/a:b@c",
        ] {
            assert_eq!(without_secrets(kept), kept);
        }
    }

    use std::path::Path;

    use super::*;

    #[test]
    fn urls_of_known_schemes_are_stores_and_everything_else_a_path() {
        let local = Location::parse(Path::new("inc-42/web-1")).unwrap();
        assert!(matches!(local, Location::Local(p) if p == Path::new("inc-42/web-1")));
        let file = Location::parse(Path::new("file:///tmp/inc-42")).unwrap();
        assert!(matches!(file, Location::Local(p) if p == Path::new("/tmp/inc-42")));
        match Location::parse(Path::new("s3://bucket/inc-42/host=web-1/")).unwrap() {
            Location::Remote(r) => {
                assert_eq!(r.given, "s3://bucket/inc-42/host=web-1");
                assert_eq!(r.base.as_str(), "s3://bucket");
                assert_eq!(r.prefix.as_ref(), "inc-42/host=web-1");
            }
            other => panic!("not remote: {other:?}"),
        }
        // What a `#` or an s3:// `?` would cut off is refused, not dropped (helper-91);
        // written escaped, it is part of the key.
        for (url, shown, sign) in [
            ("s3://b/run#web-1", "s3://b/run#web-1", "'#'"),
            ("gs://b/run?web=1", "gs://b/run?web=***", "'?'"),
            ("https://h/dav/run#x", "https://h/dav/run#x", "'#'"),
        ] {
            let err = Location::parse(Path::new(url)).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("capture {shown}: a {sign} ends the object keys'")),
                "{err}"
            );
        }
        let err = Location::parse(Path::new("file:///tmp/x#y"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("capture file:///tmp/x#y: a '#' or '?' ends a file:// URL's path"),
            "{err}"
        );
        match Location::parse(Path::new("s3://b/run%23web-1")).unwrap() {
            Location::Remote(r) => assert_eq!(r.prefix.as_ref(), "run#web-1"),
            other => panic!("not remote: {other:?}"),
        }
        let err = Location::parse(Path::new("ftp://host/inc-42")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "capture ftp://host/inc-42: unsupported URL scheme (object storage is read from \
             s3://, gs://, az://, abfss:// and http(s)://)"
        );
    }
}
