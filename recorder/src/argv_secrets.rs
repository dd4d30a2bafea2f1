//! Masks the secrets of `--upload`'s URL in the process's own argument memory. A password
//! or a signed query in the URL was masked in every message and in the capture, but
//! `/proc/PID/cmdline` showed it whole to every local user for the whole run (helper-65):
//! the kernel reads the command line from that memory as it is now, so it is rewritten
//! there, as daemons do to set their titles. Between the exec and this, a few
//! milliseconds, it is still readable (README Limits).
use std::ops::Range;

/// Rewrites each `--upload` URL among the arguments before `--`, byte for byte in place:
/// the kernel keeps the arguments' starts, so no argument may grow or move. Where the
/// masked URL is no longer than the URL it is written with `*` after it, else the whole
/// URL becomes `*`. Does nothing where /proc cannot say where the arguments are.
pub fn hide() {
    // What the capture row's `command_line` is built from, read before it is masked: read
    // after, it held the padding, or a URL erased whole (helper-67).
    let _ = crate::ARGS.set(std::env::args_os().collect());
    let Some(span) = args_span() else {
        return;
    };
    // SAFETY: `span` is this process's own argument area, as the kernel reports it in
    // /proc/self/stat: mapped, writable (the top of the main thread's stack), and read by
    // nothing else in this process once clap has copied the arguments out.
    let area =
        unsafe { std::slice::from_raw_parts_mut(span.start as *mut u8, span.end - span.start) };
    mask(area);
}

/// Where the arguments lie: fields 48 and 49 of /proc/self/stat, counted from 1.
fn args_span() -> Option<Range<usize>> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name, in parentheses, may hold spaces: the fields after it are plain.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let start: usize = fields.get(48 - 3)?.parse().ok()?;
    let end: usize = fields.get(49 - 3)?.parse().ok()?;
    (start != 0 && end > start).then_some(start..end)
}

/// Masks the URLs of `--upload URL` and `--upload=URL` in `area`, NUL-separated arguments
/// with the program's name first.
fn mask(area: &mut [u8]) {
    let mut next_is_url = false;
    let mut at = 0;
    let mut first = true;
    while at < area.len() {
        let len = area[at..]
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(area.len() - at);
        let arg = at..at + len;
        at += len + 1;
        if std::mem::take(&mut first) {
            continue;
        }
        let text = &area[arg.clone()];
        if text == b"--" {
            break;
        }
        let url = if next_is_url {
            Some(arg.clone())
        } else if text.starts_with(b"--upload=") {
            Some(arg.start + "--upload=".len()..arg.end)
        } else {
            None
        };
        next_is_url = text == b"--upload";
        if let Some(url) = url {
            rewrite(&mut area[url]);
        }
    }
}

fn rewrite(url: &mut [u8]) {
    let Ok(text) = std::str::from_utf8(url) else {
        url.fill(b'*');
        return;
    };
    let masked = tracepost_store::location::url_without_secrets(text);
    if masked == text {
        return;
    }
    match masked.len() <= url.len() {
        true => {
            let n = masked.len();
            url[..n].copy_from_slice(masked.as_bytes());
            url[n..].fill(b'*');
        }
        false => url.fill(b'*'),
    }
}

#[cfg(test)]
mod tests {
    use super::mask;

    fn masked(args: &[&str]) -> Vec<String> {
        let mut area = args.join("\0").into_bytes();
        area.push(0);
        let len = area.len();
        mask(&mut area);
        assert_eq!(area.len(), len);
        area[..len - 1]
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    #[test]
    fn an_upload_urls_secrets_are_masked_in_place_and_nothing_moves() {
        assert_eq!(
            masked(&[
                "record",
                "--upload",
                "http://deploy:S3CR3T@127.0.0.1:5999/inc?sig=TOPSECRET",
                "-p",
                "1"
            ]),
            [
                "record",
                "--upload",
                "http://deploy:***@127.0.0.1:5999/inc?sig=************",
                "-p",
                "1"
            ]
        );
        // Longer when masked: every byte goes.
        assert_eq!(
            masked(&[
                "record",
                "--upload=http://u:p@h/x",
                "--",
                "--upload",
                "http://a:b@c"
            ]),
            [
                "record",
                "--upload=**************",
                "--",
                "--upload",
                "http://a:b@c"
            ]
        );
        // A password holding a quote or a space is a URL's too, given whole.
        assert_eq!(
            masked(&["record", "--upload", "http://d:a'b c@h/x"]),
            ["record", "--upload", "http://d:***@h/x**"]
        );
        // Nothing secret: left as it is.
        assert_eq!(
            masked(&["record", "--upload", "s3://bucket/inc"]),
            ["record", "--upload", "s3://bucket/inc"]
        );
    }
}
