//! Masking secrets in output meant to be shared: the report, Markdown, and `-o` files.
//!
//! A capture holds command lines and paths as programs passed them, and those carry
//! passwords, tokens and keys. What goes into a ticket should not. Each rule masks the
//! secret and keeps what says where it was (`--password=***`, `https://deploy:***@host`),
//! so the row still reads. Every string cell of the output goes through the same rules, so
//! a secret is masked wherever it appears: command lines, paths, examples.
use std::{borrow::Cow, cell::Cell, sync::Arc, sync::LazyLock};

use datafusion::arrow::{
    array::{
        Array, ArrayRef, AsArray as _, FixedSizeListArray, LargeListArray, ListArray, MapArray,
        RecordBatch, StringArray, StructArray,
    },
    compute::cast,
    datatypes::{DataType, Field, Schema},
    error::ArrowError,
};
use regex::{Captures, Regex};
use tracepost_schema::processes::CMDLINE_CUT;

/// What replaces a secret.
pub const MASK: &str = "***";

/// Names of arguments and variables whose value is a secret.
/// A prefix is allowed (`db-password`, `PGPASSWORD`, `AWS_SECRET_ACCESS_KEY`).
/// A suffix after a separator is allowed too (`SECRET_KEY`, `TOKEN_V2`, `X-Amz-Signature`),
/// or a camelCase noun that makes it one (`secretKey`, `authToken`): not any camelCase
/// word, which took `PasswordAuthentication=no` and `--bypassCache` for secrets (helper-73).
const SECRET_NAMES: &str = r"[A-Za-z0-9_.-]*?(?:passphrase|password|passwd|pass|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|auth|credentials?|session[_-]?id|cookie|signature|sig)(?:[_.-][A-Za-z0-9]+|(?-i:Key|KEY|Token|TOKEN|Secret|SECRET|Password|PASSWORD|Passphrase|PASSPHRASE))*";

/// The last parts of a name that make it say where or how a secret is kept, not the secret:
/// `--password-file=PATH`, `git -c credential.helper=store`, `--auth-provider=oidc`,
/// `docker login --password-stdin`, `--sig-proxy=false` (helper-74 found these masked, and
/// the value of the flag after `--password-stdin` with them).
const NOT_SECRET_SUFFIXES: [&str; 20] = [
    "file", "path", "dir", "helper", "provider", "proxy", "stdin", "type", "method", "mode", "url",
    "uri", "endpoint", "prompt", "policy", "ttl", "timeout", "expiry", "name", "plugin",
];

/// Whether a name [`SECRET_NAMES`] matched ends in a part after a separator that says it
/// is not the secret (see [`NOT_SECRET_SUFFIXES`]). A secret's noun after such a part
/// still makes one: `PATH_TOKEN` is masked.
fn names_no_secret(name: &str) -> bool {
    let name = name.trim_start_matches('-');
    match name.rsplit_once(['_', '.', '-']) {
        Some((head, last)) if !head.is_empty() => NOT_SECRET_SUFFIXES
            .iter()
            .any(|s| last.eq_ignore_ascii_case(s)),
        _ => false,
    }
}

/// The name just before where a rule puts its mask, and the signs and quotes between it
/// and the value: what `kept` ends with.
fn name_before_mask(kept: &str) -> (&str, &str) {
    let end = kept.trim_end_matches(|c: char| c.is_whitespace() || "=:'\"()[],\\".contains(c));
    // Past the sign found, which need not be one byte: `(?i)` lets `[A-Za-z]` match `ſ`
    // and the Kelvin sign, and a cut inside one panicked (helper-78).
    let start = end
        .char_indices()
        .rfind(|&(_, c)| !(c.is_ascii_alphanumeric() || "_.-".contains(c)))
        .map_or(0, |(i, c)| i + c.len_utf8());
    (&end[start..], &kept[end.len()..])
}

/// Whether a name's value after a bare `:` is a URL that only says where a credential
/// helper applies: git's `credential.https://host.helper=store`. Any other name's
/// `://x` is a value (`password://hunter2`, helper-78).
fn a_credential_url(name: &str, separator: &str, value: &str) -> bool {
    let name = name.to_ascii_lowercase();
    separator == ":"
        && value.starts_with("//")
        && (name.ends_with(".https") || name.ends_with(".http"))
}

/// A MySQL or MariaDB client's name as a word of its own (a path before it allowed),
/// then its arguments up to the one that starts with `-p`, as a group. The group begins
/// with docker's `--name`, `--hostname`, `--link` or `--network-alias` where the name is
/// a container's (not `-h`: a client's `-h mysql` is its host, helper-78).
const MYSQL_ARGS: &str = r"(?i)((?:^|[\s;&|(`'\x22])(?:--(?:name|hostname|link|network-alias)(?:=|\s+))?(?:[^\s;&|'\x22:]*/)?(?:mysql|mariadb)[a-z_-]*(?:\s+[^\s;&|]+)*?\s+)";

/// Whether [`MYSQL_ARGS`]'s group is docker naming a container `mysql`, with no client of
/// that name after it: `docker run --name mysql mysql:8 mysql -uroot -p123` has its
/// client's `-p` after a second `mysql` word (helper-77).
fn names_a_container(args: &str) -> bool {
    let program = |w: &str| {
        let w = w.rsplit('/').next().unwrap_or(w).to_ascii_lowercase();
        w.starts_with("mysql") || w.starts_with("mariadb")
    };
    let mut words = args
        .split(|c: char| c.is_whitespace() || c == '=')
        .filter(|w| !w.is_empty());
    let named = match words.next() {
        Some("--name" | "--hostname" | "--link" | "--network-alias") => {
            words.next().is_some_and(program)
        }
        _ => false,
    };
    named && !words.any(program)
}

/// docker's `-p` value: a port, or ports mapped (`3306`, `3306:3306`, `127.0.0.1::80/tcp`,
/// `[::1]:80:80`).
static PORT_MAPPING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:\[[0-9A-Fa-f:.]+\]:|[0-9.]+:)?(?:[0-9]+(?:-[0-9]+)?)?:?[0-9]+(?:-[0-9]+)?(?:/(?:tcp|udp|sctp))?$",
    )
        .expect("a valid pattern")
});

/// What an expect pattern that waits for a password prompt holds.
const PROMPT: &str = "(?:assword|assphrase|asscode)";

/// An expect pattern that waits for a password prompt (`"Password: "`, `-re
/// {(P|p)assword}`, `*assphrase*`), quoted, braced or bare.
static PROMPT_WORD: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"(?:"[^"]*{PROMPT}[^"]*"|'[^']*{PROMPT}[^']*'|\{{[^{{}}]*{PROMPT}[^{{}}]*\}}|[^\s;{{}}"']*{PROMPT}[^\s;{{}}"']*)"#
    )
});

/// The value of expect's `-i` (and `-timeout`): a word, a command's result three brackets
/// deep (`[lindex $ids 0]`), or a quoted or braced list. A macro, so that both option
/// lists below spell it once and stay `&str` constants.
macro_rules! option_value {
    () => {
        r#"(?:\[(?:[^\[\]]|\[(?:[^\[\]]|\[[^\[\]]*\])*\])*\]|\{[^{}]*\}|"[^"]*"|\S+)"#
    };
}

/// expect's options before its pattern: `-re`, `-timeout N` (`-1`, `$t`), `-i ID` (`$id`,
/// a command's result, `[lindex $ids 0]`, brackets three deep, or a quoted or braced
/// list), and `--`.
const EXPECT_OPTIONS: &str = concat!(
    r"(?:-(?:i|timeout)\s+",
    option_value!(),
    r"\s+|-[a-z]+\s+)*(?:--\s+)?"
);

/// expect's `send` and its options (`-i $spawn_id`, `-i [lindex [list a b] 0]`, `-s`,
/// `--`), as a group's end.
const SEND: &str = concat!(
    r"(?:exp_)?send\s+(?:-i[ \t]+",
    option_value!(),
    r"[ \t]+|-(?:[a-hj-z][a-z]*|i[a-z]+)[ \t]+)*(?:--[ \t]+)?"
);

/// The commands between a prompt and the `send` that answers it (`sleep 1;`, `puts "ok";`,
/// `if {$x} {puts y};`), as the group `between`: each ends with `;`, `{` or a line's end.
/// [`masked_sent`] leaves the `send` as it is where one of them waits for another prompt
/// or starts another program (`expect "$ "`, `spawn`, `interact`), or where a `}` closes
/// the block the prompt's action is in (`expect "Password:" {exit 1}; ... send "yes"`).
const BETWEEN: &str = r#"(?P<between>(?:[^;{\n"]*(?:"(?:[^"\\]|\\.)*"[^;{\n"]*)*[;{\n][\s;{]*)*?)"#;

/// What `send` sends, as the group `sent`: quoted (single quotes inside `sh -c '...'` as
/// `'\''`), braced (braces nested three deep inside), or a bare word, backslashes and all
/// (`\"x\"`). A bare word begins with `-` only after `--`: before it, it is an option
/// (`send -null`), and the rule goes on to the next `send`. Not a command's result
/// (`[exec cat f]`), which is no secret written out.
const SENT: &str = r#"(?P<sent>'\\''[^']*?(?:'\\''|$)|"(?:[^"\\]|\\.)*(?:"|$)|'[^']*(?:'|$)|\{(?:[^{}]|\{(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*\})*(?:\}|$)|--[ \t]+(?:[^\s'";&|{}\[\\]|\\.)+|(?:[^\s'";&|{}\[\\-]|\\.)(?:[^\s'";&|{}\[\\]|\\.)*)"#;

/// A command among those before a `send` that makes it answer something else: another
/// expect, or another program, at a command's start. Read with the quoted strings taken
/// out (`puts "now expect it"` is no such command); a braced word is read as it is, so
/// `puts {expect x}` is none either, and `if {$x} {expect "$ "}` may leave the `send`
/// after it masked, which is the side to err on.
static ANOTHER_PROMPT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:^|[;\n])\s*(?:exp_)?(?:expect|spawn|interact)\b").expect("a valid pattern")
});

/// A double-quoted string, to take out of the commands before a `send`.
static QUOTED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#""(?:[^"\\]|\\.)*""#).expect("a valid pattern"));

/// Whether the commands before a `send` leave the block the prompt's action is in by an
/// `exit`, `return` or `error` of its own: the `send` is then no answer to the prompt
/// (`expect "Password:" {puts "bad"; exit 1}; ... send "yes\r"`, helper-83). An action
/// that goes on (`{}`, `{ puts "got it" }`, an `exit` only under an `if`) leads to the
/// `send`, which answers the prompt (helper-84, helper-85). Comments are passed over: a
/// `}` in one closes nothing. One pass, each character once: a check that read back over
/// the command so far took 11 s on 100K spaces (helper-85).
fn leaves_its_block(between: &str) -> bool {
    // Blocks opened since the prompt's action, which are not its own commands.
    let mut depth = 0usize;
    // A command of the action's own, not under an `if`, ends it.
    let mut ends = false;
    let mut at_start = true;
    let mut chars = between.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '#' if at_start => {
                for (_, c) in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '{' => {
                depth += 1;
                at_start = true;
            }
            '}' if depth > 0 => {
                depth -= 1;
                at_start = true;
            }
            // The action's own end: what follows is another pattern (a bare `error` or
            // `exit` is one, helper-86) or the script after the expect.
            '}' => return ends,
            ';' | '\n' => at_start = true,
            c if c.is_whitespace() => {}
            _ if at_start => {
                at_start = false;
                if depth == 0 {
                    let word = between[i..]
                        .split(|c: char| c.is_whitespace() || ";{}".contains(c))
                        .next()
                        .unwrap_or("");
                    ends |= matches!(word, "exit" | "return" | "error");
                }
            }
            _ => {}
        }
    }
    false
}

/// The value an expect rule matched, masked in its own quotes or braces.
fn masked_sent(c: &Captures) -> String {
    let elsewhere = c.name("between").is_some_and(|b| {
        let unquoted = QUOTED.replace_all(b.as_str(), "\"\"");
        ANOTHER_PROMPT.is_match(&unquoted) || leaves_its_block(&unquoted)
    });
    if elsewhere {
        return c[0].to_string();
    }
    let sent = &c["sent"];
    if sent.starts_with("--") {
        return format!("{}-- {MASK}", &c[1]);
    }
    let value = match sent.chars().next() {
        Some('\'') if sent.starts_with(r"'\''") => format!(r"'\''{MASK}'\''"),
        Some('"') => format!("\"{MASK}\""),
        Some('\'') => format!("'{MASK}'"),
        Some('{') => format!("{{{MASK}}}"),
        _ => MASK.to_string(),
    };
    format!("{}{value}", &c[1])
}

/// curl's or wget's name as a word of its own (a path before it allowed), then its
/// arguments up to the flag, as a group: elsewhere `-u`/`--user` take `UID:GID` (`docker run
/// -u 1000:1000`) and `-u` a URL (`redis-cli -u redis://h:6379`), which are no passwords
/// (helper-73).
const CURL_ARGS: &str =
    r"(?i)((?:^|[\s;&|(`'\x22])(?:[^\s;&|'\x22:]*/)?(?:curl|wget)(?:\s+[^\s;&|]+)*?\s+)";

/// A single-quoted shell word, as a group: inside another single-quoted word (`sh -c
/// '...'`) it runs between two `'\''`; on its own, to the closing quote, through each
/// `'\''` that stands for a quote inside it (`'it'\''s'`).
const SINGLE_QUOTED: &str = r"('\\''[^']*?(?:'\\''|$)|'(?:[^']|'\\'')*(?:'|$))";

/// A value as a shell word: single-quoted (through `'\''`), double-quoted, or bare; a quote
/// the kernel's cut left open runs to the end.
const VALUE: &str = r#"(?:'(?:[^'\\]|\\[^']|'\\'')*(?:'|$)|"(?:[^"\\]|\\.)*(?:"|$)|[^\s'";&|]+)"#;

/// Whether the quote after a name's bare `:` (group `sep`) closes the quoted word the name
/// is in rather than opening a value: `"Enter password:" --verbose` had the rest of the
/// line masked (helper-75). Where the name is the phrase's first word (`read -p
/// "Password:" -s`), a space, a sign that ends a command or the end follows the quote;
/// where it is a later word, a space or the end: `{password:"&x"}` and `{user:"a",
/// password:" x"}` are values (helper-77, helper-78).
fn closes_its_word(c: &Captures, sep: usize) -> bool {
    let (Some(whole), Some(sep_match)) = (c.get(0), c.get(sep)) else {
        return false;
    };
    if sep_match.as_str().trim_end() != ":" {
        return false;
    }
    let quote = &whole.as_str()[sep_match.end() - whole.start()..][..1];
    let after = &whole.as_str()[sep_match.end() - whole.start() + 1..];
    // expect's prompt, `"Password: "; send "x\r"`: the rule for expect masks what is sent.
    if SENT_NEXT.is_match(after) {
        return true;
    }
    if sep_match.as_str() != ":" {
        return false;
    }
    if whole.as_str().starts_with(quote) {
        // The name is the first word of the quoted phrase: `"Password:" -s`.
        after.is_empty() || after.starts_with(|c: char| c.is_whitespace() || ";)&|".contains(c))
    } else {
        // A later word of it: `"Enter password:" --verbose`, but not a value after a
        // comma, `{user:"a", password:"&x"}`.
        whole.as_str().starts_with(char::is_whitespace)
            && (after.is_empty() || after.starts_with(char::is_whitespace))
    }
}

/// After the quote that closes expect's prompt, the command that answers it: `"Enter
/// password:"; send "x\r"`, or `{send "x\r"}`.
static SENT_NEXT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?:\\'')?\s*[;{]\s*(?:exp_)?send\b").expect("a valid pattern"));

/// The masked form of a word [`SINGLE_QUOTED`] matched, in the same quotes.
fn masked_quoted(word: &str) -> String {
    if word.starts_with(r"'\''") {
        format!(r"'\''{MASK}'\''")
    } else {
        format!("'{MASK}'")
    }
}

struct Rule {
    re: Regex,
    /// Whether the rule masks the value of a name from [`SECRET_NAMES`], which
    /// [`names_no_secret`] may then say is no secret.
    named: bool,
    /// Builds the replacement from the match: the parts that are not secret, then MASK.
    keep: fn(&Captures) -> String,
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    let rule = |re: &str, keep: fn(&Captures) -> String| Rule {
        re: Regex::new(re).expect("a valid pattern"),
        named: re.contains(SECRET_NAMES),
        keep,
    };
    vec![
        // PEM private keys, whole.
        rule(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
            |_| MASK.to_string(),
        ),
        // `Authorization: Bearer x`, `X-Api-Key: x`, `Cookie: x` headers. A command's
        // output in the value (`Bearer $(cat t)x`) is the value's too: cut at its space,
        // the rest was in clear (helper-92).
        rule(
            r"(?i)\b((?:proxy-)?authorization|x-api-key|x-auth-token|cookie|set-cookie)(\s*[:=]\s*)(?:(bearer|basic|token|digest)\s+)?(?:\$\([^)]*\)?|[^\s'\x22,;])+",
            |c| {
                let scheme = c
                    .get(3)
                    .map_or(String::new(), |s| format!("{} ", s.as_str()));
                format!("{}{}{scheme}{MASK}", &c[1], &c[2])
            },
        ),
        // Credentials in URLs: scheme://user:password@host. The password runs to the last
        // `@` before the path, as URL parsers read one that holds an `@` (helper-75); and
        // before a `?` or `#` where an `@` comes before them, which is then the query's
        // (`?notify=ops@example.com`, helper-77), not the password's (`Tr0ub?dor@db`,
        // helper-78). A port before the `?` is no password (`host:8443?to=a@b`).
        rule(
            r"([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@'\x22]*):(?:[^/?#\s'\x22]+|[^/?#\s'\x22]*[^0-9/?#\s'\x22][^/\s'\x22]*)@",
            |c| format!("{}:{MASK}@", &c[1]),
        ),
        // The same cut short before its `@`, as the recorder cuts long arguments: a
        // password runs to the end. A port (digits only) is not one.
        rule(
            r"([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@'\x22]+):[^/\s@'\x22]*[^0-9/\s@'\x22][^/\s@'\x22]*$",
            |c| format!("{}:{MASK}", &c[1]),
        ),
        // expect's answer to a password prompt: `expect "Password:"; send "x\r"`, `expect
        // -re "(P|p)assword" {send -- "x\r"}`. Only the prompt before it says the value is a
        // secret; it was in clear, and the quoted-value rules below took `"; send "` for
        // the prompt's value and masked that instead.
        rule(
            &format!(
                r"(?i)((?:^|[\s;{{])(?:exp_)?expect\s+(?:\{{\s*)?{EXPECT_OPTIONS}{prompt}(?:\\'')?[\s;{{]*{BETWEEN}{SEND}){SENT}",
                prompt = *PROMPT_WORD
            ),
            masked_sent,
        ),
        // The same as one pattern and its action among several in an expect block: `expect
        // { "yes/no" { send "yes\r" } "password:" { send "x\r" } }` (helper-80).
        rule(
            &format!(
                r"(?i)((?:^|[\s{{}}]){prompt}\s*\{{\s*{BETWEEN}{SEND}){SENT}",
                prompt = *PROMPT_WORD
            ),
            masked_sent,
        ),
        // The prompt as a block's last pattern, with no action: `expect { "yes/no" { send
        // "yes\r"; exp_continue } "assword:" }` and the `send` after the block, the common
        // form for ssh (helper-84). Only a pattern where a pattern stands, at a line's start
        // or after a block's `{` or `}` (a bare one after a space): `${PASSWORD}` and `puts
        // "the password" }` are none, and masked what a later `send` sent (helper-86).
        rule(
            &format!(
                r#"(?i)((?:(?:^|[{{}}\n])[ \t]*(?:-[a-z]+[ \t]+)*(?:"[^"\n]*{PROMPT}[^"\n]*"|\{{[^{{}}\n]*{PROMPT}[^{{}}\n]*\}})|(?:(?:^|\n)[ \t]*|[{{}}][ \t]+)(?:-[a-z]+[ \t]+)*[^\s;{{}}"']*{PROMPT}[^\s;{{}}"']*)(?:[ \t]*;?[ \t]*#[^\n]*)?\s*\}}[\s;]*{BETWEEN}{SEND}){SENT}"#
            ),
            masked_sent,
        ),
        // A quoted value: JSON and dicts (`"password": "x"`, `{'token': 'x'}`), shells
        // (`--password='x'`, `PGPASSWORD="x y"`). Double and single quotes each have a
        // rule, the name quoted or not.
        rule(
            &format!(
                r#"(?i)(^|[\s'"/,;&?{{(])(--?)?({SECRET_NAMES})("?\]?\s*[:=]\s*)"(?:[^"\\]|\\.)*(?:"|$)"#
            ),
            |c| {
                if closes_its_word(c, 4) {
                    return c[0].to_string();
                }
                let dashes = c.get(2).map_or("", |m| m.as_str());
                format!("{}{dashes}{}{}\"{MASK}\"", &c[1], &c[3], &c[4])
            },
        ),
        rule(
            &format!(
                r#"(?i)(^|[\s'"/,;&?{{(])(--?)?({SECRET_NAMES})('?\]?\s*[:=]\s*){SINGLE_QUOTED}"#
            ),
            |c| {
                if closes_its_word(c, 4) {
                    return c[0].to_string();
                }
                let dashes = c.get(2).map_or("", |m| m.as_str());
                format!(
                    "{}{dashes}{}{}{}",
                    &c[1],
                    &c[3],
                    &c[4],
                    masked_quoted(&c[5])
                )
            },
        ),
        // A tuple or list value: `auth=('admin', 'x')`. The value rules below took its
        // opening bracket for the value, masked that and left the password (helper-71).
        rule(
            &format!(
                r#"(?i)(^|[\s'"/,;&?{{(])({SECRET_NAMES})(\s*=\s*)(\((?:[^()]|\([^()]*\))*\)?|\[[^\]]*\]?)"#
            ),
            |c| {
                let close = if c[4].starts_with('(') { ")" } else { "]" };
                let open = &c[4][..1];
                format!("{}{}{}{open}{MASK}{close}", &c[1], &c[2], &c[3])
            },
        ),
        // A quoted name with a bare value: `"password": 12345`.
        rule(
            &format!(r#"(?i)(["']{SECRET_NAMES}["']\]?\s*[:=]\s*)([^\s,}}'"{{\[(][^\s,}}]*)"#),
            |c| format!("{}{MASK}", &c[1]),
        ),
        // A shell word quoted whole, name and all (`'--password=x y'`, `"-token x"`): the
        // value runs to the closing quote.
        // Inside a single-quoted word (`sh -c '...'`) each quote is `'\''`.
        rule(
            &format!(r"(?i)(^|[\s,;&(])'\\''(--?{SECRET_NAMES})(=|\s+)[^']*?'\\''"),
            |c| format!("{}'\\''{}{}{MASK}'\\''", &c[1], &c[2], &c[3]),
        ),
        rule(
            &format!(r"(?i)(^|[\s,;&(])'(--?{SECRET_NAMES})(=|\s+)(?:[^']|'\\'')*'"),
            |c| format!("{}'{}{}{MASK}'", &c[1], &c[2], &c[3]),
        ),
        rule(
            &format!(r#"(?i)(^|[\s,;&(])"(--?{SECRET_NAMES})(=|\s+)(?:[^"\\]|\\.)*(?:"|$)"#),
            |c| format!("{}\"{}{}{MASK}\"", &c[1], &c[2], &c[3]),
        ),
        // A flag, then its value as a quoted word of its own: `--token 'x y'`.
        rule(
            &format!(r"(?i)(^|[\s'\x22/,;&?])(--?{SECRET_NAMES})(\s+){SINGLE_QUOTED}"),
            |c| format!("{}{}{}{}", &c[1], &c[2], &c[3], masked_quoted(&c[4])),
        ),
        rule(
            &format!(r#"(?i)(^|[\s'"/,;&?])(--?{SECRET_NAMES})(\s+)"(?:[^"\\]|\\.)*(?:"|$)"#),
            |c| format!("{}{}{}\"{MASK}\"", &c[1], &c[2], &c[3]),
        ),
        // --password=x, --api-key x, -token x; also right after a substitution's close or
        // `${X:+`, where the shell glues it to the flag (`$(a)--password=x`, helper-94).
        rule(
            &format!(r"(?i)(^|[\s'\x22/,;&?)}}+\x60])(--?{SECRET_NAMES})(=|\s+)([^\s'\x22&;]+)"),
            |c| format!("{}{}{}{MASK}", &c[1], &c[2], &c[3]),
        ),
        // curl's and wget's `USER:PASSWORD` (`curl -u admin:x`, `--proxy-user a:x`): the
        // password is what follows the first colon (helper-70).
        rule(
            &format!(
                r"{CURL_ARGS}(-u|-U|--user|--proxy-user|--http-user)(\s+|=)([^\s:'\x22]+):([^\s'\x22]+)"
            ),
            |c| format!("{}{}{}{}:{MASK}", &c[1], &c[2], &c[3], &c[4]),
        ),
        // The same glued to its flag, as curl takes it: `-uadmin:x`, `-kuadmin:x`, `-Ua:x`
        // (helper-71, helper-73).
        rule(
            &format!(r"{CURL_ARGS}(-[A-Za-z]*[uU])([^\s:'\x22]+):([^\s'\x22]+)"),
            |c| format!("{}{}{}:{MASK}", &c[1], &c[2], &c[3]),
        ),
        // A MySQL or MariaDB client's password glued to `-p` (`mysql -u root -pSECRET`),
        // bare or quoted whole as a shell (and `cmdline`) writes a word with spaces or
        // signs (`'-pS3c$ret!'`). Only after the program's own word (`mysql`,
        // `/usr/bin/mysqldump`, not `/var/lib/mysql:/data`): elsewhere `-p` is a port or
        // a pid, and a spaced `-p NAME` is the database.
        // Inside a single-quoted word (`sh -c '...'`), where each quote is `'\''`.
        rule(&format!(r"{MYSQL_ARGS}'\\''(?-i:-p)[^']*?'\\''"), |c| {
            format!("{}'\\''-p{MASK}'\\''", &c[1])
        }),
        rule(&format!(r"{MYSQL_ARGS}'(?-i:-p)(?:[^']|'\\'')+'"), |c| {
            format!("{}'-p{MASK}'", &c[1])
        }),
        // Not where `mysql` names a container and `-p` publishes its port (`docker run
        // --name mysql -p3306:3306`, helper-74); a client's `-p12:34` is a password.
        rule(&format!(r"{MYSQL_ARGS}(?-i:-p)([^\s'\x22;&|]+)"), |c| {
            if names_a_container(&c[1]) && PORT_MAPPING.is_match(&c[2]) {
                return c[0].to_string();
            }
            format!("{}-p{MASK}", &c[1])
        }),
        // The same with the password alone quoted (`-p'x y'`, `-p"x"`), as read from an
        // `sh -c` script (helper-71); inside that script's own quotes as `-p'\''x'\''`.
        rule(
            &format!(r"{MYSQL_ARGS}(?-i:-p)'\\''[^']*?(?:'\\''|$)"),
            |c| format!("{}-p'\\''{MASK}'\\''", &c[1]),
        ),
        rule(
            &format!(r"{MYSQL_ARGS}(?-i:-p)'(?:[^'\\]|\\[^']|'\\'')*(?:'|$)"),
            |c| format!("{}-p'{MASK}'", &c[1]),
        ),
        rule(
            &format!(r#"{MYSQL_ARGS}(?-i:-p)"(?:[^"\\]|\\.)*(?:"|$)"#),
            |c| format!("{}-p\"{MASK}\"", &c[1]),
        ),
        // Other clients' password flags: `sshpass -p x`, `redis-cli -a x`, `docker login
        // -p x`, `aws configure set aws_secret_access_key x` (helper-71).
        rule(
            &format!(
                r#"(?i)((?:^|[\s;&|(`'"])(?:[^\s;&|'":]*/)?(?:sshpass(?:\s+(?-i:-[fdP])\s*(?:'[^']*'|"[^"]*"|[^\s;&|'"]+)|\s+(?-i:-[ev]+)|\s+\\)*\s+(?-i:-[ev]*p)\s*|redis-cli(?:\s+[^\s;&|]+)*?\s+(?-i:-a)\s*|docker(?:\s+[^\s;&|]+)*?\s+login(?:\s+[^\s;&|]+)*?\s+(?-i:-p)\s*|aws(?:\s+[^\s;&|]+)*?\s+configure(?:\s+[^\s;&|]+)*?\s+set\s+[A-Za-z0-9_.-]*(?:secret|token)[A-Za-z0-9_.-]*\s+)){VALUE}"#
            ),
            |c| format!("{}{MASK}", &c[1]),
        ),
        // A variable set by a call: `os.putenv('DB_PASSWORD', 'x')` (helper-73).
        rule(
            &format!(
                r#"(?i)((?:putenv|setenv|setdefault)\(\s*["']{SECRET_NAMES}["']\s*,\s*){VALUE}"#
            ),
            |c| format!("{}'{MASK}'", &c[1]),
        ),
        // A path's segment (`fleet/token=x/host=web-2/c`): the value ends at the next `/`,
        // so that what follows still says which capture a row is from.
        rule(
            &format!(r"(?i)(/)({SECRET_NAMES})(=)([^/\s'\x22&;]+)"),
            |c| format!("{}{}{}{MASK}", &c[1], &c[2], &c[3]),
        ),
        // PASSWORD=x, DB_PASSWORD: x, ?token=x in a query string, and a name that is a
        // value itself (`kubectl ... --from-literal=password=x`, helper-75). Not such a
        // value with structure (`--set=credentials={"token": "x"}`): the JSON rules mask
        // inside it, and masked whole here it hid the token from them (helper-78).
        rule(
            &format!(r"(?i)(^|[\s'\x22,;&?=(`)}}+])({SECRET_NAMES})(\s*=\s*|:\s*)([^\s'\x22&;]+)"),
            |c| {
                if &c[1] == "=" && c[4].starts_with(['{', '[', '(']) {
                    return c[0].to_string();
                }
                format!("{}{}{}{MASK}", &c[1], &c[2], &c[3])
            },
        ),
        // The same after a `/` (`/run/secret = x`, `.../password:x`), but for a path's
        // `name=x/` segment, which the rule above ends at its `/`.
        rule(
            &format!(r"(?i)(/)({SECRET_NAMES})(\s*:\s*|\s+=\s*|=\s+)([^\s'\x22&;]+)"),
            |c| format!("{}{}{}{MASK}", &c[1], &c[2], &c[3]),
        ),
        // Well-known key shapes, wherever they are.
        rule(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b", |_| {
            MASK.to_string()
        }),
        rule(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b", |_| MASK.to_string()),
        rule(r"\bgithub_pat_[A-Za-z0-9_]{30,}\b", |_| MASK.to_string()),
        rule(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b", |_| MASK.to_string()),
        rule(r"\bAIza[0-9A-Za-z_-]{35}\b", |_| MASK.to_string()),
        rule(r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}\b", |_| {
            MASK.to_string()
        }),
        rule(r"\bglpat-[0-9A-Za-z_-]{20,}\b", |_| MASK.to_string()),
        // JSON web tokens.
        rule(
            r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
            |_| MASK.to_string(),
        ),
        // A bearer token anywhere else.
        rule(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/-]{8,}=*", |c| {
            format!("{} {MASK}", &c[1])
        }),
    ]
});

/// `text` with every secret the rules know masked. The mark of a command line the kernel
/// cut is kept out of the rules, which took it for the value of the flag before it
/// (`--password …`) and so hid that the line was cut.
pub fn text(text: &str) -> Cow<'_, str> {
    LOOKED_AT_AGAIN.with(|left| left.set(MATCHES_LOOKED_AT_AGAIN));
    MASKS_READ_ON.with(|left| left.set(MATCHES_LOOKED_AT_AGAIN));
    match text.strip_suffix(CMDLINE_CUT) {
        Some(head) => match by_words(head, WORD_DEPTH, true) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            Cow::Owned(masked) => Cow::Owned(masked + CMDLINE_CUT),
        },
        None => by_words(text, WORD_DEPTH, false),
    }
}

/// A word that is a secret's name and its value, whole (`--password=x`, `PGPASSWORD=x`,
/// `token:x`, and after a flag's `=`: `--from-literal=password=x y`, helper-77): as the
/// shell split it, the value runs to the word's end, whatever signs it holds.
static SECRET_ASSIGNED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        "(?is)^(-{{0,2}}(?:[A-Za-z0-9_.-]+=)?)({SECRET_NAMES}[=:])(.+)$"
    ))
    .expect("a valid pattern")
});

/// A word that is a flag named like a secret, whole: the next word is its value.
static SECRET_FLAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("(?i)^--?{SECRET_NAMES}$")).expect("a valid pattern"));

/// curl's and wget's flags whose next word is `USER:PASSWORD`.
static USER_FLAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new("^(-u|-U|--user|--proxy-user|--http-user)$").expect("a valid pattern")
});

/// The same flag glued to its `USER:PASSWORD` (`-uadmin:x`, `-kuadmin:x`), as group 1 up to
/// the colon.
static USER_GLUED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("^(-[A-Za-z]*[uU][^:]+):").expect("a valid pattern"));

/// Whether a word names curl or wget, whose `-u` takes `USER:PASSWORD`.
fn is_curl(word: &str) -> bool {
    matches!(word.rsplit('/').next(), Some("curl" | "wget"))
}

/// Whether a word names a MySQL or MariaDB client (`mysql`, `/usr/bin/mysqldump`), whose
/// glued `-p` is a password. `after` is the word before it: after docker's `--name` it
/// names a container.
fn is_mysql_client(word: &str, after: &str) -> bool {
    let program = word.rsplit('/').next().unwrap_or(word).to_ascii_lowercase();
    // A program's name: not `MYSQL_ROOT_PASSWORD=x`, a variable docker passes (helper-89).
    let a_name = program
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    (program.starts_with("mysql") || program.starts_with("mariadb"))
        && a_name
        && !word.contains(':')
        && !matches!(
            after,
            "--name" | "--hostname" | "--link" | "--network-alias"
        )
}

/// Whether a MySQL client's word is its password, glued to `-p` and written with quotes,
/// backslashes or a substitution (`-p"x"y`, `-px'y'`, `-p$(c d)y`): the rules read a value
/// only to its first quote or space, and left what was glued after it in clear (helper-82,
/// helper-94).
fn a_quoted_mysql_password(raw: &str, value: &str) -> bool {
    value.len() > 2
        && value.starts_with("-p")
        && (raw.contains(['\'', '"', '\\']) || substitutes(raw))
        && !QUOTED_ONCE.is_match(raw)
}

/// `-p` and its password in the forms the rules mask in their own quotes: `'-px y'`,
/// `-p'x y'`, `-p"x y"`, or one of them that the kernel's cut left open.
static QUOTED_ONCE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^(?:'-p[^']*(?:'|$)|"-p(?:[^"\\]|\\.)*(?:"|$)|-p'[^']*(?:'|$)|-p"(?:[^"\\]|\\.)*(?:"|$))$"#)
        .expect("a valid pattern")
});

/// How many levels of quoting are read through: a command line, the `sh -c` script in
/// it, and a `python -c` program in that.
const WORD_DEPTH: usize = 3;

/// Each shell word of the text masked as the shell reads it, then the rules on the whole
/// (for what spans words: `mysql -u root -pX`, `Authorization: Bearer x`). The rules alone
/// read quoted text as text: a dict argument `{'password': 'x'}` is written
/// `'{'\''password'\'': '\''x'\''}'`, and a value with an escaped or quoted sign
/// (`--password=a\&b`, `--token=a"b c"`) was cut at the sign, leaving the rest in clear
/// and a backslash eaten (helper-69, helper-70). In a line the kernel `cut`, every word is
/// read on its own: each argument is cut at 127 bytes, not only the last, and a rule that
/// knows a value cut at the end of the text missed one cut in the middle (helper-71).
fn by_words(text: &str, depth: usize, cut: bool) -> Cow<'_, str> {
    // curl's and wget's credentials are read word by word too: the rules see only the
    // first flag after the program's name (helper-74: `curl -U a:x -u b:y`).
    let mentions_curl = text.contains("curl") || text.contains("wget");
    if depth == 0
        || (!cut && !mentions_curl && !substitutes(text) && !text.contains(['\'', '"', '\\']))
    {
        return by_rules(text);
    }
    let mut rebuilt = String::new();
    let mut last = 0;
    let mut after_flag = false;
    let mut after_user = false;
    let mut curl = false;
    let mut mysql = false;
    let mut previous = String::new();
    let mut previous_end = 0;
    let words = shell_words(text);
    // One word, as written: reading it again as words finds itself, and each level of
    // that quoted the last one's answer (`v=$(PGPASSWORD=x psql)` came back wrapped in
    // quote after quote).
    if let [(span, value)] = words.as_slice()
        && *span == (0..text.len())
        && value == text
    {
        return by_rules(text);
    }
    for (span, value) in words {
        let raw = &text[span.clone()];
        // A MySQL client's words end with its command: `mysql -e x; ssh -p"22"00 h` had
        // ssh's port masked (helper-89).
        if text[previous_end..span.start].contains([';', '&', '|', '(', ')', '\n']) {
            mysql = false;
        }
        previous_end = span.end;
        let glued = USER_GLUED.captures(&value).filter(|_| curl);
        let masked = if after_user && value.contains(':') && !value.ends_with(MASK) {
            // curl's `-u "user:pass word"`: the rule reads only an unquoted pair.
            let (user, _) = value.split_once(':').unwrap_or_default();
            Some(shown_quoted(&format!("{user}:{MASK}")).into_owned())
        } else if let Some(flag) = glued.filter(|_| !value.ends_with(MASK)) {
            // `'-uadmin:pass word'`, likewise (helper-73).
            Some(shown_quoted(&format!("{}:{MASK}", &flag[1])).into_owned())
        } else if mysql && a_quoted_mysql_password(raw, &value) {
            Some(format!("-p{MASK}"))
        } else if after_flag && value != MASK {
            // The value of a secret's flag, either of them quoted (`'--pwd' x`), in the
            // value's own quotes.
            Some(match raw.chars().next() {
                Some(q @ ('\'' | '"')) => format!("{q}{MASK}{q}"),
                _ => MASK.to_string(),
            })
        } else {
            masked_word(raw, &value, depth)
        };
        curl |= is_curl(&value);
        mysql |= is_mysql_client(&value, &previous);
        after_flag = SECRET_FLAG.is_match(&value) && !names_no_secret(&value);
        after_user = curl && USER_FLAG.is_match(&value);
        previous = value;
        if let Some(masked) = masked {
            rebuilt.push_str(&text[last..span.start]);
            rebuilt.push_str(&masked);
            last = span.end;
        }
    }
    if last == 0 {
        return by_rules(text);
    }
    rebuilt.push_str(&text[last..]);
    Cow::Owned(by_rules(&rebuilt).into_owned())
}

/// Whether `text` holds a substitution (`$(...)`, `${...}`, backquotes), which keeps its
/// spaces in the word: the rules cut `PASSWORD=$(c d)LEAK` at the space and left `d)LEAK`
/// in clear, so such text is read word by word.
fn substitutes(text: &str) -> bool {
    text.contains("$(") || text.contains("${") || text.contains('`')
}

/// How much of a masked text is shown: its length without its masks.
fn in_clear(text: &str) -> usize {
    text.len() - MASK.len() * text.matches(MASK).count()
}

/// One shell word, `raw` as written and `value` as the shell reads it, masked; `None`
/// where it holds no secret. The rules on the word as written keep its quotes
/// (`{"password":"***"}`), and are taken where the word has no escapes and what they
/// leave reads as one word with nothing left to mask; otherwise the value is masked and
/// written back quoted.
fn masked_word(raw: &str, value: &str, depth: usize) -> Option<String> {
    let whole = |v: &str| -> Option<String> {
        let c = SECRET_ASSIGNED.captures(v)?;
        let (name, separator) = c[2].split_at(c[2].len() - 1);
        let value = c.get(3)?.as_str();
        // After a flag's `=`, a value with structure (`--set=credentials={"token": "x"}`)
        // is left to the rules, which mask inside it (helper-78).
        let structured =
            c[1].starts_with('-') && c[1].contains('=') && value.starts_with(['{', '[', '(']);
        // A value of spaces only is no secret: `"Password: "` is expect's prompt, and
        // masked it hid the prompt from the rule for what expect sends (helper-80).
        let secret = value != MASK
            && !value.trim().is_empty()
            && !names_no_secret(name)
            && !a_credential_url(name, separator, value)
            && !structured;
        secret.then(|| format!("{}{}{MASK}", &c[1], &c[2]))
    };
    let by_value = whole(value).unwrap_or_else(|| by_words(value, depth - 1, false).into_owned());
    if by_value == value {
        return None;
    }
    // Not where a backslash escapes a sign: the rules cut a value at `\&` and ate the
    // backslash, which turned the rest into a command of its own (helper-70). Where a
    // substitution ties the rest of a word to its secret, the rules may leave that rest:
    // they masked `$(c` of `sh -c 'mysql -p$(c d)LEAK'`, and what they left read as clean
    // (helper-94). There the word as written is kept only if it shows no more in clear
    // than the value masked word by word.
    if !raw.contains('\\')
        && let Cow::Owned(kept) = by_rules(raw)
        && let [(_, v)] = shell_words(&kept).as_slice()
        && whole(v).is_none()
        && by_words(v, depth - 1, false) == v.as_str()
        && (!substitutes(raw) || in_clear(v) <= in_clear(&by_value))
    {
        return Some(kept);
    }
    // In the quotes the word had, where it had them.
    let quoted_value = raw.contains("='") || raw.contains("=\"");
    Some(match SECRET_ASSIGNED.captures(&by_value) {
        _ if raw.starts_with(['\'', '"']) => format!("'{}'", by_value.replace('\'', r"'\''")),
        Some(c) if quoted_value => format!("{}{}'{MASK}'", &c[1], &c[2]),
        _ => shown_quoted(&by_value).into_owned(),
    })
}

/// A masked word written as the recorder writes words ([`shell_words`] reads it back),
/// with the mask's `*` taken as plain: `--password=***`, `'a b=***'`.
fn shown_quoted(word: &str) -> Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,@%+*".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        return Cow::Borrowed(word);
    }
    Cow::Owned(format!("'{}'", word.replace('\'', r"'\''")))
}

/// The words of `text` as a POSIX shell splits them: each one's byte range and its value,
/// quotes and backslashes taken off. A quote left open (a command line the kernel cut)
/// runs to the end.
fn shell_words(text: &str) -> Vec<(std::ops::Range<usize>, String)> {
    let mut words = Vec::new();
    let mut chars = text.char_indices().peekable();
    // Unquoted, these end a word as spaces do: `--token 'x';` is a word and a `;`.
    let ends = |c: char| c.is_whitespace() || ";&|<>()".contains(c);
    while let Some(&(start, c)) = chars.peek() {
        if ends(c) {
            chars.next();
            continue;
        }
        let mut value = String::new();
        let mut end = text.len();
        while let Some(&(i, c)) = chars.peek() {
            if ends(c) {
                end = i;
                break;
            }
            chars.next();
            match c {
                '\'' => {
                    for (_, c) in chars.by_ref() {
                        if c == '\'' {
                            break;
                        }
                        value.push(c);
                    }
                }
                '"' => {
                    while let Some((_, c)) = chars.next() {
                        match c {
                            '"' => break,
                            '\\' => match chars.peek() {
                                Some(&(_, n)) if "\"\\$`\n".contains(n) => {
                                    value.push(n);
                                    chars.next();
                                }
                                _ => value.push('\\'),
                            },
                            c => value.push(c),
                        }
                    }
                }
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(n);
                    }
                }
                '$' if matches!(chars.peek(), Some((_, '(' | '{'))) => {
                    value.push(c);
                    substitution(&mut chars, &mut value);
                }
                '`' => {
                    value.push(c);
                    for (_, c) in chars.by_ref() {
                        value.push(c);
                        if c == '`' {
                            break;
                        }
                    }
                }
                c => value.push(c),
            }
        }
        words.push((start..end, value));
    }
    words
}

/// A `$(command)`, `$((sum))` or `${name...}` inside a word, as written: the shell keeps
/// what it gives in the word, spaces and `;` included. Split at them, `mysql
/// -p"a"$(c)LEAK` left `(c)LEAK` of its password in clear. Only the opening bracket's own
/// kind is counted (`$(c})LEAK` is one word to the shell); quotes are not. One left open (a
/// command line the kernel cut) runs to the end.
fn substitution(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>, value: &mut String) {
    let Some((_, open)) = chars.next() else {
        return;
    };
    value.push(open);
    let close = if open == '(' { ')' } else { '}' };
    let mut depth = 1usize;
    for (_, c) in chars.by_ref() {
        value.push(c);
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                break;
            }
        }
    }
}

/// A capture's name (a path or URL) with every secret masked, each path segment on its
/// own: a relative `token=x/host=web-1/c` kept its `/host=web-1/c`, which tells two
/// hosts' captures apart, only where a `/` came before the secret.
pub fn capture_name(name: &str) -> Cow<'_, str> {
    if name.starts_with('/') || name.contains("://") {
        return text(name);
    }
    match text(&format!("/{name}")) {
        Cow::Owned(masked) if masked[1..] != *name => Cow::Owned(masked[1..].to_string()),
        _ => Cow::Borrowed(name),
    }
}

fn by_rules(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    for rule in RULES.iter() {
        if rule.re.is_match(&out)
            && let Some(replaced) = replaced(rule, &out)
        {
            out = Cow::Owned(replaced);
        }
    }
    out
}

/// `text` with each match of `rule` replaced; `None` where nothing changed. A match that a
/// rule for a secret's name leaves as it is (a name that says where a secret is kept,
/// `--password-stdin`) gives up only its first character: what the rule took for its value
/// can be a secret of its own (`--password-stdin --token x`,
/// `auth.type=basic,auth.password=x`), which a replacement of every match, resumed after
/// each, skipped (helper-75). Other rules resume after the match: a shorter match inside
/// it would lose what made it be left (`--name mysql -p3306` read again as `mysql -p3306`).
fn replaced(rule: &Rule, text: &str) -> Option<String> {
    let mut out = String::new();
    let mut copied = 0;
    let mut at = 0;
    // Where the character at `i` ends: a search resumed inside a match moves on by one.
    let after_char = |i: usize| i + text[i..].chars().next().map_or(1, char::len_utf8);
    while at <= text.len() {
        let Some(c) = rule.re.captures_at(text, at) else {
            break;
        };
        let m = c.get(0).expect("a match");
        let exempt = rule.named && LOOKED_AT_AGAIN.with(Cell::get) > 0;
        let replacement = masked_once(&c, (rule.keep)(&c), exempt);
        if replacement == m.as_str() {
            // An expect rule whose `send` answers another prompt: the commands between are
            // read again, or a real prompt among them was passed over with the match
            // (helper-86), on the budget of matches read again.
            if let Some(between) = c.name("between")
                && between.start() > m.start()
                && spend(&LOOKED_AT_AGAIN)
            {
                at = between.start();
                continue;
            }
            if exempt && spend(&LOOKED_AT_AGAIN) {
                at = after_char(m.start());
                continue;
            }
            // A value masked already: what follows the mask is read again
            // (`-Dsession.cookie=***,db.password=x`, helper-78), on a budget of its own:
            // a line of many masks took each one's search to its end (helper-79: 46 s).
            if let Some(mask) = m.as_str().find(MASK)
                && spend(&MASKS_READ_ON)
            {
                at = m.start() + mask + MASK.len();
                continue;
            }
            at = if m.is_empty() {
                after_char(m.end())
            } else {
                m.end()
            };
            continue;
        }
        out.push_str(&text[copied..m.start()]);
        out.push_str(&replacement);
        copied = m.end();
        at = if m.is_empty() {
            after_char(m.end())
        } else {
            m.end()
        };
    }
    if copied == 0 && out.is_empty() {
        return None;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

/// Takes one from `budget` if any is left; whether there was.
fn spend(budget: &'static std::thread::LocalKey<Cell<usize>>) -> bool {
    budget.with(|left| {
        let had = left.get();
        left.set(had.saturating_sub(1));
        had > 0
    })
}

/// How many matches are looked at again inside, in all, for one [`text`]: see
/// [`replaced`]. Each costs a search to the end of its value, in every rule and at every
/// level of quoting: past this many, names are masked as secrets and each match is taken
/// whole again. A budget per rule and per text still let a 68 KB line take 2 s, and more
/// grow as its square (helper-77: 30 s for 100 KB of `auth.type=x,`; helper-79).
const MATCHES_LOOKED_AT_AGAIN: usize = 64;

thread_local! {
    /// What is left of [`MATCHES_LOOKED_AT_AGAIN`] for the text being masked.
    static LOOKED_AT_AGAIN: Cell<usize> = const { Cell::new(MATCHES_LOOKED_AT_AGAIN) };
    /// The same for values masked already that are read on after their mask.
    static MASKS_READ_ON: Cell<usize> = const { Cell::new(MATCHES_LOOKED_AT_AGAIN) };
}

/// A rule's replacement, unless the value it would mask is masked already: a value
/// rule runs to the next space, and took `***}` of `{password:***}` for a value, eating
/// what followed the mask. Where `exempt`, the value of a name that says where a secret
/// is kept is left too, and so is a URL after a name's bare `:`
/// (`credential.https://host.helper=store`).
fn masked_once(c: &Captures, replacement: String, exempt: bool) -> String {
    let matched = c.get(0).map_or("", |m| m.as_str());
    let Some(at) = mask_at(matched, &replacement) else {
        return replacement;
    };
    let kept = &replacement[..at];
    let (name, separator) = name_before_mask(kept);
    let url = matched
        .strip_prefix(kept)
        .is_some_and(|value| a_credential_url(name, separator, value));
    if exempt && (url || names_no_secret(name)) {
        return matched.to_string();
    }
    match matched.strip_prefix(kept) {
        Some(rest)
            if rest
                .trim_start_matches(['\'', '"', '\\', '(', '['])
                .starts_with(MASK) =>
        {
            matched.to_string()
        }
        _ => replacement,
    }
}

/// Where the mask a rule put in its replacement begins: the first that the match did not
/// hold already in the same place. One before it is an earlier rule's: expect's prompt
/// `'Password:***'`, masked as a word, was taken for the value `send` sends, and that value
/// was left in clear (helper-81). Where every mask was there already, the first.
fn mask_at(matched: &str, replacement: &str) -> Option<usize> {
    let mut first = None;
    for (at, _) in replacement.match_indices(MASK) {
        let through = at + MASK.len();
        if matched.get(..through) != replacement.get(..through) {
            return Some(at);
        }
        first.get_or_insert(at);
    }
    first
}

/// `Null`, or a nested type of `Null`s (`List(Null)`): a type the plan gives before it
/// knows the values'.
fn holds_null(t: &DataType) -> bool {
    match t {
        DataType::Null => true,
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            holds_null(f.data_type())
        }
        _ => false,
    }
}

/// Whether a column of this type can hold text: a string or bytes (`arrow_cast(cmdline,
/// 'Binary')` holds the command line as much as `cmdline` does), or a list, struct, map or
/// dictionary with either inside.
fn holds_text(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => true,
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _)
        | DataType::Map(f, _) => holds_text(f.data_type()),
        DataType::Struct(fields) => fields.iter().any(|f| holds_text(f.data_type())),
        DataType::Dictionary(_, v) => holds_text(v),
        DataType::RunEndEncoded(_, v) => holds_text(v.data_type()),
        _ => false,
    }
}

/// `array` with every string inside it masked, of the same type: `array_agg(cmdline)` or a
/// struct holds a command line as much as a plain column does.
fn mask(array: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    let t = array.data_type();
    if !holds_text(t) {
        return Ok(array.clone());
    }
    Ok(match t {
        // Masked as Utf8, then given back its own string type.
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let plain = cast(array, &DataType::Utf8)?;
            let masked: StringArray = plain
                .as_string::<i32>()
                .iter()
                .map(|v| v.map(text))
                .collect();
            cast(&masked, t)?
        }
        // Bytes that are text are masked as text; other bytes are left as they are.
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            let plain = cast(array, &DataType::Binary)?;
            let masked: datafusion::arrow::array::BinaryArray = plain
                .as_binary::<i32>()
                .iter()
                .map(|v| {
                    v.map(|bytes| match std::str::from_utf8(bytes) {
                        Ok(s) => text(s).into_owned().into_bytes(),
                        Err(_) => bytes.to_vec(),
                    })
                })
                .collect();
            cast(&masked, t)?
        }
        DataType::List(f) => {
            let l = array.as_list::<i32>();
            Arc::new(ListArray::try_new(
                f.clone(),
                l.offsets().clone(),
                mask(l.values())?,
                l.nulls().cloned(),
            )?)
        }
        DataType::LargeList(f) => {
            let l = array.as_list::<i64>();
            Arc::new(LargeListArray::try_new(
                f.clone(),
                l.offsets().clone(),
                mask(l.values())?,
                l.nulls().cloned(),
            )?)
        }
        DataType::FixedSizeList(f, n) => {
            let l = array.as_fixed_size_list();
            Arc::new(FixedSizeListArray::try_new(
                f.clone(),
                *n,
                mask(l.values())?,
                l.nulls().cloned(),
            )?)
        }
        DataType::Struct(fields) => {
            let st = array.as_struct();
            let columns = st
                .columns()
                .iter()
                .map(mask)
                .collect::<Result<Vec<_>, _>>()?;
            Arc::new(StructArray::try_new(
                fields.clone(),
                columns,
                st.nulls().cloned(),
            )?)
        }
        DataType::Map(f, sorted) => {
            let m = array.as_map();
            let entries = mask(&(Arc::new(m.entries().clone()) as ArrayRef))?;
            Arc::new(MapArray::try_new(
                f.clone(),
                m.offsets().clone(),
                entries.as_struct().clone(),
                m.nulls().cloned(),
                *sorted,
            )?)
        }
        DataType::Dictionary(_, _) => {
            let d = array.as_any_dictionary();
            d.with_values(mask(d.values())?)
        }
        // List views and run-ends do not come out of a query here: refused rather than
        // shown unmasked.
        _ => {
            return Err(ArrowError::NotYetImplemented(format!(
                "masking secrets inside a {t} column; cast it to text"
            )));
        }
    })
}

/// A column named like a secret: a `key=value` directory of a capture's path becomes a
/// column of that name (`.../token=abc/capture` gives `token`), and its bare values match
/// no rule.
static SECRET_COLUMN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("(?i)^(?:{SECRET_NAMES})$")).expect("a valid pattern"));

/// `array`, the `capture` column as text, each name masked as [`capture_name`] masks it.
fn mask_capture_names(array: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    let masked: StringArray = array
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(capture_name))
        .collect();
    Ok(Arc::new(masked))
}

/// `array`, a string or dictionary-of-strings column, with every value masked whole.
fn mask_whole(array: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    let t = array.data_type();
    let plain = cast(array, &DataType::Utf8)?;
    let masked: StringArray = plain
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(|_| MASK))
        .collect();
    cast(&masked, t)
}

/// The batches with every string masked, wherever it is, and every value of a string
/// column named like a secret. A plain string column becomes `Utf8`; nested ones keep
/// their types. Other columns are left as they are.
///
/// A column is typed by its values where the plan's schema says `Null` and the batches
/// hold more (`SELECT NULL AS x UNION ALL SELECT path ...`: DataFusion's schema says
/// `Null`, its batches `Utf8View`), and batches whose column is `Null` are cast to that
/// type: the answer shown unmasked must be shown masked.
pub fn batches(
    schema: &Schema,
    batches: &[RecordBatch],
) -> Result<(Schema, Vec<RecordBatch>), ArrowError> {
    let is_text =
        |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let valued = batches
                .iter()
                .filter_map(|b| b.columns().get(i).map(|c| c.data_type()))
                .find(|t| !holds_null(t));
            let t = match valued {
                Some(t) if holds_null(f.data_type()) => t,
                _ => f.data_type(),
            };
            let t = if is_text(t) { &DataType::Utf8 } else { t };
            f.as_ref().clone().with_data_type(t.clone())
        })
        .collect();
    let out_schema = Schema::new_with_metadata(fields, schema.metadata().clone());
    let shared = Arc::new(out_schema.clone());
    let mut out = Vec::with_capacity(batches.len());
    for b in batches {
        let columns = b
            .columns()
            .iter()
            .zip(out_schema.fields())
            .map(|(c, f)| -> Result<ArrayRef, ArrowError> {
                let named_secret = SECRET_COLUMN.is_match(f.name()) && !names_no_secret(f.name());
                let masked = if named_secret && is_text(c.data_type()) {
                    mask_whole(&cast(c, &DataType::Utf8)?)?
                } else if named_secret
                    && matches!(c.data_type(), DataType::Dictionary(_, v) if is_text(v))
                {
                    mask_whole(c)?
                } else if is_text(c.data_type()) && f.name() == "capture" {
                    mask_capture_names(&cast(c, &DataType::Utf8)?)?
                } else if is_text(c.data_type()) {
                    mask(&cast(c, &DataType::Utf8)?)?
                } else {
                    mask(c)?
                };
                match masked.data_type() == f.data_type() {
                    true => Ok(masked),
                    false => cast(&masked, f.data_type()),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.push(RecordBatch::try_new(shared.clone(), columns)?);
    }
    Ok((out_schema, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_name_is_masked_segment_by_segment() {
        for (name, masked) in [
            ("token=s3cr3t/host=web-1/c", "token=***/host=web-1/c"),
            (
                "/m/fleet/token=s3cr3t/host=web-2/c",
                "/m/fleet/token=***/host=web-2/c",
            ),
            ("s3://b/token=x/host=h", "s3://b/token=***/host=h"),
            ("https://u:pw@h/c", "https://u:***@h/c"),
            ("inc-42", "inc-42"),
            ("token=s3cr3t", "token=***"),
        ] {
            assert_eq!(capture_name(name), masked, "{name}");
        }
    }

    #[test]
    fn what_expect_sends_to_a_password_prompt_is_masked() {
        for (input, want) in [
            (
                r#"spawn ssh h; expect "Enter password:"; send "LEAK1\r"; interact"#,
                r#"spawn ssh h; expect "Enter password:"; send "***"; interact"#,
            ),
            (
                r#"expect "assword" {send "LEAK2\r"}"#,
                r#"expect "assword" {send "***"}"#,
            ),
            (
                r#"expect { "password:" { send -- "LEAK3\r" } }"#,
                r#"expect { "password:" { send -- "***" } }"#,
            ),
            (
                r#"expect -re "(P|p)assword: " ; exp_send LEAK4\r"#,
                r#"expect -re "(P|p)assword: " ; exp_send ***"#,
            ),
            (
                r#"expect -timeout 10 "passphrase for key" {send {LEAK5}}"#,
                r#"expect -timeout 10 "passphrase for key" {send {***}}"#,
            ),
            (
                r#"expect -c 'spawn su; expect "Password:"; send "LEAK6\r"; interact'"#,
                r#"expect -c 'spawn su; expect "Password:"; send "***"; interact'"#,
            ),
            (
                r#"expect Password: ; send 'LEAK7'"#,
                r#"expect Password: ; send '***'"#,
            ),
        ] {
            assert_eq!(text(input), want, "{input}");
        }
        // helper-80: a prompt with a space after its colon, a pattern among several in a
        // block, send's `-i`, braces inside the value.
        for (input, want) in [
            (
                r#"expect "Password: "; send "LEAK8\r""#,
                r#"expect "Password: "; send "***""#,
            ),
            (
                r#"spawn ssh h; expect "password: " {send "LEAK9\r"}"#,
                r#"spawn ssh h; expect "password: " {send "***"}"#,
            ),
            (
                r#"expect { "yes/no" { send "yes\r"; exp_continue } "password:" { send "LEAK10\r" } }"#,
                r#"expect { "yes/no" { send "yes\r"; exp_continue } "password:" { send "***" } }"#,
            ),
            (
                r#"expect -i $id "Password:"; send -i $spawn_id "LEAK11""#,
                r#"expect -i $id "Password:"; send -i $spawn_id "***""#,
            ),
            (
                r#"expect "Password:"; send {LEAK12 {nested} more}"#,
                r#"expect "Password:"; send {***}"#,
            ),
            (
                r#"expect -c 'spawn ssh h; expect "password: "; send "LEAK13\r"'"#,
                r#"expect -c 'spawn ssh h; expect "password: "; send "***"'"#,
            ),
        ] {
            assert_eq!(text(input), want, "{input}");
        }
        // helper-81: expect's options (`-timeout -1`, `--`), commands between the prompt
        // and the answer, braces two deep, a command's result for `send -i`, the prompt
        // masked as a word, and single quotes inside `sh -c '...'`.
        for (input, want) in [
            (
                r#"expect -timeout -1 "Password:"; send "LEAK14\r""#,
                r#"expect -timeout -1 "Password:"; send "***""#,
            ),
            (
                r#"expect -i $id -- "Password:"; send "LEAK15\r""#,
                r#"expect -i $id -- "Password:"; send "***""#,
            ),
            (
                r#"expect "Password:"; sleep 1; puts "a; b"; send "LEAK16\r""#,
                r#"expect "Password:"; sleep 1; puts "a; b"; send "***""#,
            ),
            (
                "expect \"Password:\"\nlog_user 0\nsend \"LEAK17\\r\"",
                "expect \"Password:\"\nlog_user 0\nsend \"***\"",
            ),
            (
                r#"expect { "yes/no" {send "yes\r"} "Password:" {sleep 1; send "LEAK18\r"} }"#,
                r#"expect { "yes/no" {send "yes\r"} "Password:" {sleep 1; send "***"} }"#,
            ),
            (
                r#"expect "Password:"; send -- {LEAK19 {a} {b {c}} d}"#,
                r#"expect "Password:"; send -- {***}"#,
            ),
            (
                r#"expect "assword"; send -i [lindex $ids 0] "LEAK20\r""#,
                r#"expect "assword"; send -i [lindex $ids 0] "***""#,
            ),
            (
                r"expect 'Password:;' send 'LEAK21\r'",
                r"expect 'Password:***' send '***'",
            ),
            (
                r"sh -c 'expect '\''Password:'\''; send '\''LEAK22'\'''",
                r"sh -c 'expect '\''Password:'\''; send '\''***'\'''",
            ),
        ] {
            assert_eq!(text(input), want, "{input}");
        }
        // helper-82: a value after `--` that begins with `-`, `send -i ID --`, a command's
        // result inside `-i [...]`, the word expect quoted, braces and escaped quotes
        // between, braces three deep.
        for (input, want) in [
            (
                r#"expect "Password:"; send -- -LEAK23"#,
                r#"expect "Password:"; send -- ***"#,
            ),
            (
                r#"expect "Password:"; send -i $sid -- -LEAK24"#,
                r#"expect "Password:"; send -i $sid -- ***"#,
            ),
            (
                r#"expect "Password:"; send -i [lindex [list a b] 0] "LEAK25""#,
                r#"expect "Password:"; send -i [lindex [list a b] 0] "***""#,
            ),
            (
                r#"expect "Password:"; puts "now expect it"; send "LEAK26""#,
                r#"expect "Password:"; puts "now expect it"; send "***""#,
            ),
            (
                r#"expect "Password:"; if {$x} {puts y}; puts "a\"; b"; send "LEAK27""#,
                r#"expect "Password:"; if {$x} {puts y}; puts "a\"; b"; send "***""#,
            ),
            (
                r#"expect "Password:"; send {LEAK28 {a {b {c}}}}"#,
                r#"expect "Password:"; send {***}"#,
            ),
        ] {
            assert_eq!(text(input), want, "{input}");
        }
        // helper-83: an id three brackets deep or braced, a `send -null` before the answer,
        // escaped quotes, a braced `expect` word; and what is sent outside the prompt's
        // action block is no answer to it.
        for (input, want) in [
            (
                r#"expect "Password:"; send -i [lindex [list [a] b] 0] "LEAK29""#,
                r#"expect "Password:"; send -i [lindex [list [a] b] 0] "***""#,
            ),
            (
                r#"expect "Password:"; send -i {a b} "LEAK30""#,
                r#"expect "Password:"; send -i {a b} "***""#,
            ),
            (
                r#"expect "Password:"; send -null; send "LEAK31\r""#,
                r#"expect "Password:"; send -null; send "***""#,
            ),
            (
                r#"expect "Password:"; send \"LEAK32\""#,
                r#"expect "Password:"; send ***"#,
            ),
            (
                r#"expect "Password:"; puts {expect x}; send "LEAK33""#,
                r#"expect "Password:"; puts {expect x}; send "***""#,
            ),
        ] {
            assert_eq!(text(input), want, "{input}");
        }
        // helper-84: after an action that goes on, the send answers the prompt; `send
        // -null` on a line of its own; the prompt as a block's last pattern; a comment.
        for (input, want) in [
            (
                r#"spawn ssh u@h; expect "assword:" {} timeout {exit 1}; send "LEAK34\r""#,
                r#"spawn ssh u@h; expect "assword:" {} timeout {exit 1}; send "***""#,
            ),
            (
                "expect \"assword:\" { puts \"got prompt\" }\nsend \"LEAK35\\r\"",
                "expect \"assword:\" { puts \"got prompt\" }\nsend \"***\"",
            ),
            (
                "expect \"Password:\"\n# handle } here\nsend \"LEAK36\\r\"",
                "expect \"Password:\"\n# handle } here\nsend \"***\"",
            ),
            (
                "expect \"Password:\"\nsend -null\nsend \"LEAK37\\r\"",
                "expect \"Password:\"\nsend -null\nsend \"***\"",
            ),
            (
                "expect {\n \"yes/no\" { send \"yes\\r\"; exp_continue }\n \"assword:\"\n}\nsend \"LEAK38\\r\"",
                "expect {\n \"yes/no\" { send \"yes\\r\"; exp_continue }\n \"assword:\"\n}\nsend \"***\"",
            ),
        ] {
            assert_eq!(text(input), want, "{input}");
        }
        // helper-85: an exit only under an `if`, the prompt as a block's last pattern on
        // one line or before a comment, `-i` before `-null`.
        for (input, want) in [
            (
                r#"expect "assword:" { if {$tries > 3} {exit 1} }; send "LEAK39\r""#,
                r#"expect "assword:" { if {$tries > 3} {exit 1} }; send "***""#,
            ),
            (
                r#"expect { "yes/no" {send "yes\r"; exp_continue} "assword:" }; send "LEAK40\r""#,
                r#"expect { "yes/no" {send "yes\r"; exp_continue} "assword:" }; send "***""#,
            ),
            (
                "expect {\n \"assword:\" ;# the prompt\n}\nsend \"LEAK41\\r\"",
                "expect {\n \"assword:\" ;# the prompt\n}\nsend \"***\"",
            ),
            (
                "expect \"Password:\"; send -i $id -null\nsend \"LEAK42\"",
                "expect \"Password:\"; send -i $id -null\nsend \"***\"",
            ),
        ] {
            assert_eq!(text(input), want, "{input}");
        }
        // helper-86: a word like a prompt before the real one, and a bare `error` pattern
        // after the prompt's action.
        for (input, want) in [
            (
                "if {![info exists env(SSH_PASSWORD)]} { puts \"set it\"; exit 1 }\nspawn ssh h\nexpect {\n  timeout { exit 1 }\n  \"assword:\"\n}\nsend \"LEAK43\\r\"",
                "if {![info exists env(SSH_PASSWORD)]} { puts \"set it\"; exit 1 }\nspawn ssh h\nexpect {\n  timeout { exit 1 }\n  \"assword:\"\n}\nsend \"***\"",
            ),
            (
                r#"expect "old password"; spawn ssh h; expect "assword:"; send "LEAK44\r""#,
                r#"expect "old password"; spawn ssh h; expect "assword:"; send "***""#,
            ),
            (
                r#"expect { "assword:" {puts ok} error {puts failed} }; send "LEAK45\r""#,
                r#"expect { "assword:" {puts ok} error {puts failed} }; send "***""#,
            ),
            (
                r#"expect { timeout {exit 1} assword: }; send LEAK46\r"#,
                r#"expect { timeout {exit 1} assword: }; send ***"#,
            ),
        ] {
            assert_eq!(text(input), want, "{input}");
        }
        for plain in [
            "echo ${PASSWORD}\nsend report.txt",
            r#"awk '{print $password}' f; send "x""#,
            r#"expect "$ " { puts "login ok, password accepted" }; send "uptime\r""#,
            r#"expect "assword:" { puts "bad"; exit 1; }; send "yes\r""#,
            "expect \"assword:\" {\n  puts \"wrong host\"\n  exit 1\n}\nsend \"yes\\r\"",
            r#"expect { "assword:" { exit 1 } "yes/no" { send "yes\r" } }"#,
            r#"expect "Password:" {exit 1}; proc greet {} {send "hello world\r"}"#,
        ] {
            assert_eq!(text(plain), plain);
        }
        // What answers another prompt is no secret, nor a command's result, nor an option.
        for plain in [
            r#"expect "login:"; send "admin\r""#,
            r#"expect "Continue? (yes/no)" {send "yes\r"}"#,
            r#"expect "Password:"; send [exec cat /run/pw]"#,
            r#"expect "Password:"; expect "$ "; send "ls\r""#,
            r#"expect "Password:"; send -null"#,
            r#"expect "Password:"; spawn ssh b; send "yes\r""#,
            r#"expect "Password:"; interact; send "q""#,
        ] {
            assert_eq!(text(plain), plain);
        }
    }

    #[test]
    fn masks_each_kind_and_keeps_what_says_where() {
        let cases = [
            ("app --password=hunter2 -v", "app --password=*** -v"),
            ("app --token abc123def", "app --token ***"),
            // Words with spaces, quoted as a shell (and the recorder's `cmdline`) writes
            // them: whole, or after the name, or a flag's own quoted word.
            ("a '--password=correct horse' -v", "a '--password=***' -v"),
            (
                "a \"--password=correct horse\" -v",
                "a \"--password=***\" -v",
            ),
            ("a --password='correct horse' -v", "a --password='***' -v"),
            ("a --token 'two words' -v", "a --token '***' -v"),
            ("a --token \"two words\" -v", "a --token \"***\" -v"),
            (
                r"sh -c 'a '\''--password=x y'\'' --token '\''p q'\''; exit 0'",
                r"sh -c 'a '\''--password=***'\'' --token '\''***'\''; exit 0'",
            ),
            // A quote inside the value, written `'\''` in a single-quoted word.
            (
                r"a --password='it'\''s S1' --token 'a'\''b S2' '--password=c'\''d S3' -v",
                "a --password='***' --token '***' '--password=***' -v",
            ),
            (r"PGPASSWORD='x'\''y S4' psql", "PGPASSWORD='***' psql"),
            (
                "mysql -u root --db-password s3cr3t",
                "mysql -u root --db-password ***",
            ),
            ("PGPASSWORD=hunter2 psql", "PGPASSWORD=*** psql"),
            // A secret-named path segment ends at its `/`: the rest says which capture.
            (
                "s3://b/fleet/token=s3cr3t/host=web-2/c",
                "s3://b/fleet/token=***/host=web-2/c",
            ),
            ("GET /api?token=a/b+c== HTTP", "GET /api?token=*** HTTP"),
            // After a `/` in other spellings, to the end as before.
            ("cat /run/secret = topsecret", "cat /run/secret = ***"),
            (
                "curl https://h/x/password:hunter2",
                "curl https://h/x/password:***",
            ),
            // A MySQL client's `-pSECRET`; a spaced `-p NAME` is its database, and other
            // programs' `-p` is a port or a pid.
            (
                "/usr/bin/mysqldump -u root -pS3cr3t -p orders",
                "/usr/bin/mysqldump -u root -p*** -p orders",
            ),
            ("mariadb -pS3cr3t", "mariadb -p***"),
            ("mysql -p orders", "mysql -p orders"),
            (
                "ssh -p2222 host; record -p1234",
                "ssh -p2222 host; record -p1234",
            ),
            (
                r"mysql -u root '-pS3c$ret B!' db",
                r"mysql -u root '-p***' db",
            ),
            (
                r"sh -c 'mysql '\''-pS3c$ret B!'\''; exit 0'",
                r"sh -c 'mysql '\''-p***'\''; exit 0'",
            ),
            (
                "docker run -v /var/lib/mysql:/var/lib/mysql -p3306:3306 mysql:8",
                "docker run -v /var/lib/mysql:/var/lib/mysql -p3306:3306 mysql:8",
            ),
            ("sudo mysql -pS3cr3t", "sudo mysql -p***"),
            // A line the kernel cut: the mark stays, whether or not a value came before it.
            ("app --password \u{2026}", "app --password \u{2026}"),
            ("app --password= \u{2026}", "app --password= \u{2026}"),
            ("app --password=abc \u{2026}", "app --password=*** \u{2026}"),
            (
                "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG",
                "AWS_SECRET_ACCESS_KEY=***",
            ),
            (
                "git clone https://deploy:tok3n@git.example.com/x.git",
                "git clone https://deploy:***@git.example.com/x.git",
            ),
            (
                "/data/postgres://app:pw@db:5432/x",
                "/data/postgres://app:***@db:5432/x",
            ),
            (
                "curl -H Authorization: Bearer abc.def.ghi https://x",
                "curl -H Authorization: Bearer *** https://x",
            ),
            ("X-Api-Key: 1234567890abcdef", "X-Api-Key: ***"),
            ("DB_PASSWORD: hunter2", "DB_PASSWORD: ***"),
            (
                "GET /api?user=a&token=abc123&x=1",
                "GET /api?user=a&token=***&x=1",
            ),
            ("/tmp/AKIAIOSFODNN7EXAMPLE.csv", "/tmp/***.csv"),
            (
                "SECRET_KEY=djangosecret3 ./manage.py",
                "SECRET_KEY=*** ./manage.py",
            ),
            (
                "GET /b/o?X-Amz-Credential=a&X-Amz-Signature=f00d",
                "GET /b/o?X-Amz-Credential=***&X-Amz-Signature=***",
            ),
            (
                "https://a.blob.core.windows.net/c?sv=1&sig=abc%3D",
                "https://a.blob.core.windows.net/c?sv=1&sig=***",
            ),
            // Cut at 127 bytes before the `@`; a port stays.
            ("https://deploy:TOPSECRETSSSS", "https://deploy:***"),
            ("curl http://localhost:8080", "curl http://localhost:8080"),
            ("push ghp_0123456789abcdefghijABCDEFGHIJ012345", "push ***"),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
                "jwt ***",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), want, "{input}");
        }
        // Quoted values, as JSON, dicts and shells write them (a red-team pass found each
        // of these in a report, unmasked).
        let quoted = [
            (
                r#"curl -d {"user":"a","password":"hunter2"} http://x/login"#,
                r#"curl -d {"user":"a","password":"***"} http://x/login"#,
            ),
            (
                r#"echo --password='hunter2' PGPASSWORD="pg pw" done"#,
                r#"echo --password='***' PGPASSWORD="***" done"#,
            ),
            (r#"password:"YPW12""#, r#"password:"***""#),
            ("{'token': 'PYTOK11'}", "{'token': '***'}"),
            // The capture's command_line, quoted for a shell.
            (
                r#"sh -c 'echo --password='\''hunter2'\'' done'"#,
                r#"sh -c 'echo --password='\''***'\'' done'"#,
            ),
            ("password = SPACEDPW8", "password = ***"),
            (r#"{"api_key": 12345}"#, r#"{"api_key": ***}"#),
            (
                r#"{"password": "a \"quoted\" pw"}"#,
                r#"{"password": "***"}"#,
            ),
        ];
        for (input, want) in quoted {
            assert_eq!(text(input), want, "{input}");
        }
        // Arguments quoted for a shell, each read as the shell reads it (helper-69: a
        // dict's password was in the report in clear).
        let words = [
            (
                r"python3 -c 'cfg={'\''password'\'': '\''Hunter2Real'\''}; print(1)'",
                r"python3 -c 'cfg={'\''password'\'': '\''***'\''}; print(1)'",
            ),
            (
                r"/bin/true '{'\''token'\'': '\''DICTTOK3'\''}' x",
                r"/bin/true '{'\''token'\'': '\''***'\''}' x",
            ),
            (
                r"sh -c '/bin/true '\''--pwd'\'' '\''PWD1'\'''",
                r"sh -c '/bin/true '\''--pwd'\'' '\''***'\'''",
            ),
        ];
        for (input, want) in words {
            assert_eq!(text(input), want, "{input}");
        }
        // Three levels: a dict in a `python -c` in an `sh -c`.
        let nested = r#"sh -c "python3 -c \"c={'password': 'x y'}\"" done"#;
        let masked = text(nested);
        assert!(!masked.contains("x y"), "{masked}");
        let words: Vec<_> = shell_words(&masked).into_iter().map(|(_, w)| w).collect();
        assert_eq!(
            words[2], r#"python3 -c "c={'password': '***'}""#,
            "{masked}"
        );
        // Ordinary text is left alone.
        for plain in [
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            "sh -c ls /nonexistent",
            "127.0.0.1:8080",
            "--passes=3",
            "/etc/passwd",
            "https://example.com/path?q=1",
            "the token is valid",
            r#"{"user":"a","mode":"fast"}"#,
            r"sh -c 'echo '\''it'\''s here'\'''",
            "/tmp/it's here",
        ] {
            assert_eq!(text(plain), plain);
        }
    }

    /// `array_agg(cmdline)`, a struct, a map or a dictionary hold a command line as much as
    /// a plain column: every string inside is masked, and the types stay.
    #[test]
    fn a_column_named_like_a_secret_is_masked_whole() {
        use datafusion::arrow::array::{DictionaryArray, Int32Array};
        use datafusion::arrow::datatypes::Int32Type;
        // `analyze .../token=LEAK31/cap`: the directory becomes a column `token`.
        let dict: ArrayRef = Arc::new(DictionaryArray::<Int32Type>::new(
            Int32Array::from(vec![Some(0), None]),
            Arc::new(StringArray::from(vec!["LEAK31"])),
        ));
        let plain: ArrayRef = Arc::new(StringArray::from(vec![Some("LEAK32"), Some("x")]));
        let host: ArrayRef = Arc::new(StringArray::from(vec![Some("web-1"), None]));
        let schema = Schema::new(vec![
            Field::new("token", dict.data_type().clone(), true),
            Field::new("DB_PASSWORD", DataType::Utf8, true),
            Field::new("host", DataType::Utf8, true),
        ]);
        let batch =
            RecordBatch::try_new(Arc::new(schema.clone()), vec![dict, plain, host]).unwrap();
        let (_, out) = batches(&schema, &[batch]).unwrap();
        let shown = datafusion::arrow::util::pretty::pretty_format_batches(&out)
            .unwrap()
            .to_string();
        assert!(!shown.contains("LEAK"), "{shown}");
        assert_eq!(shown.matches("***").count(), 3, "{shown}");
        assert!(shown.contains("web-1"), "{shown}");
    }

    /// A plan that types a column `Null` while its batches hold strings (a union of
    /// `NULL` and a string column) was refused masked and answered unmasked.
    #[test]
    fn a_column_the_plan_types_null_is_typed_by_its_values() {
        use datafusion::arrow::array::{ListBuilder, NullArray, StringBuilder, StringViewArray};
        let schema = Schema::new(vec![
            Field::new("x", DataType::Null, true),
            Field::new_list("a", Field::new_list_field(DataType::Null, true), true),
        ]);
        let mut list = ListBuilder::new(StringBuilder::new());
        list.values().append_value("--password=hunter2");
        list.append(true);
        let strings: ArrayRef = Arc::new(list.finish());
        let valued = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("x", DataType::Utf8View, true),
                Field::new("a", strings.data_type().clone(), true),
            ])),
            vec![
                Arc::new(StringViewArray::from(vec!["--token=s3cr3t"])),
                strings.clone(),
            ],
        )
        .unwrap();
        let nulls = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![
                Arc::new(NullArray::new(1)),
                datafusion::arrow::array::new_null_array(schema.field(1).data_type(), 1),
            ],
        )
        .unwrap();
        let (out_schema, out) = batches(&schema, &[nulls, valued]).unwrap();
        assert_eq!(out_schema.field(0).data_type(), &DataType::Utf8);
        assert_eq!(out_schema.field(1).data_type(), strings.data_type());
        let shown = datafusion::arrow::util::pretty::pretty_format_batches(&out)
            .unwrap()
            .to_string();
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert_eq!(shown.matches("***").count(), 2, "{shown}");
    }

    #[test]
    fn strings_inside_lists_structs_maps_and_dictionaries_are_masked() {
        use datafusion::arrow::array::{
            DictionaryArray, Int32Array, ListBuilder, MapBuilder, StringBuilder,
        };
        use datafusion::arrow::datatypes::Int32Type;
        let secret = "app --password=hunter2";
        let mut list = ListBuilder::new(StringBuilder::new());
        list.values().append_value(secret);
        list.append(true);
        let list: ArrayRef = Arc::new(list.finish());
        let st: ArrayRef = Arc::new(StructArray::from(vec![(
            Arc::new(Field::new("c", DataType::Utf8, true)),
            Arc::new(StringArray::from(vec![secret])) as ArrayRef,
        )]));
        let mut map = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        map.keys().append_value("cmd");
        map.values().append_value(secret);
        map.append(true).unwrap();
        let map: ArrayRef = Arc::new(map.finish());
        let dict: ArrayRef = Arc::new(DictionaryArray::<Int32Type>::new(
            Int32Array::from(vec![0]),
            Arc::new(StringArray::from(vec![secret])),
        ));
        let columns = [list, st, map, dict];
        let schema = Schema::new(
            columns
                .iter()
                .enumerate()
                .map(|(i, c)| Field::new(format!("c{i}"), c.data_type().clone(), true))
                .collect::<Vec<_>>(),
        );
        let batch = RecordBatch::try_new(Arc::new(schema.clone()), columns.to_vec()).unwrap();
        let (out_schema, out) = batches(&schema, &[batch]).unwrap();
        assert_eq!(out_schema, schema, "the types stay");
        let shown = datafusion::arrow::util::pretty::pretty_format_batches(&out)
            .unwrap()
            .to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(shown.matches("--password=***").count(), 4, "{shown}");
    }

    /// `arrow_cast(cmdline, 'Binary')` showed the secret as hex that any reader decodes.
    #[test]
    fn bytes_that_are_text_are_masked_and_other_bytes_kept() {
        use datafusion::arrow::array::BinaryArray;
        let column: ArrayRef = Arc::new(BinaryArray::from(vec![
            Some(&b"app --password=hunter2"[..]),
            Some(&[0xff, b'-', b'p'][..]),
            None,
        ]));
        let schema = Schema::new(vec![Field::new("b", DataType::Binary, true)]);
        let batch = RecordBatch::try_new(Arc::new(schema.clone()), vec![column]).unwrap();
        let (out_schema, out) = batches(&schema, &[batch]).unwrap();
        assert_eq!(out_schema, schema, "the type stays");
        let b = out[0].column(0).as_binary::<i32>();
        assert_eq!(b.value(0), b"app --password=***");
        assert_eq!(b.value(1), &[0xff, b'-', b'p']);
        assert!(b.is_null(2));
    }

    /// helper-70: a value with an escaped or quoted sign was cut at the sign, its rest in
    /// clear; a flag quoted apart from a bare value was not paired with it.
    #[test]
    fn escaped_and_glued_values_are_masked_to_the_end_of_their_word() {
        for (input, want) in [
            (
                r"sh -c '/bin/true --password=Tr0ub\&3xLEAK1'",
                r"sh -c '/bin/true --password=***'",
            ),
            (
                r"sh -c '/bin/true --password=abc\ LEAK2'",
                r"sh -c '/bin/true --password=***'",
            ),
            (
                r#"sh -c '/bin/true "--password" LEAK3'"#,
                r#"sh -c '/bin/true "--password" ***'"#,
            ),
            (
                r#"sh -c '/bin/true --token=abc"LEAK4 more"'"#,
                r"sh -c '/bin/true --token=***'",
            ),
            (
                r"sh -c '/bin/true PGPASSWORD=ab\;LEAK5'",
                r"sh -c '/bin/true PGPASSWORD=***'",
            ),
            (
                r"sh -c '/bin/true --password=ab'\''LEAK6'\'''",
                r"sh -c '/bin/true --password=***'",
            ),
            (
                r#"sh -c '/bin/true DB_PASS="a"LEAK7'"#,
                r"sh -c '/bin/true DB_PASS='\''***'\'''",
            ),
            (
                r"sh -c '/bin/true '\''--password'\'' LEAK8'",
                r"sh -c '/bin/true '\''--password'\'' ***'",
            ),
            (
                r#"sh -c "x '--password' LEAK9""#,
                r"sh -c 'x '\''--password'\'' ***'",
            ),
            (
                r"/bin/true --password=ab\&LEAK10",
                r"/bin/true --password=***",
            ),
            (
                r"sh -c 'a --token '\''p q'\''; exit 0'",
                r"sh -c 'a --token '\''***'\''; exit 0'",
            ),
        ] {
            assert_eq!(text(input), want, "{input}");
        }
        let plain = r"ls -la /tmp/it\'s (here) && echo ok";
        assert_eq!(text(plain), plain);
        // curl's user and password.
        for (input, want) in [
            (
                "curl -u admin:hunterJ1 http://x",
                "curl -u admin:*** http://x",
            ),
            (
                "curl --user=admin:p@ss:x http://x",
                "curl --user=admin:*** http://x",
            ),
            (
                "curl --proxy-user a:b http://x",
                "curl --proxy-user a:*** http://x",
            ),
            (
                "sh -c 'curl --user \"ops:pa ss;x\" http://x'",
                "sh -c 'curl --user ops:*** http://x'",
            ),
            ("curl -u 'ops:pa ss' http://x", "curl -u ops:*** http://x"),
        ] {
            assert_eq!(text(input), want, "{input}");
        }
        // A user without a password, and others' `-u`, stay.
        for plain in [
            "curl -u admin http://x",
            "mysql -u root db",
            "sort -u a.txt",
        ] {
            assert_eq!(text(plain), plain);
        }
    }

    /// A value the kernel cut inside its quotes: the quote never closes, and the rules that
    /// wanted a closing quote left the value in clear.
    #[test]
    fn a_value_cut_inside_its_quotes_is_masked_to_the_cut() {
        for (input, want) in [
            (
                r"python3 -c 'a={'\''token'\'': '\''abcLEAK …",
                r"python3 -c 'a={'\''token'\'': '\''***'\''' …",
            ),
            (
                r#"python3 -c "a={'token': 'abcLEAK …"#,
                r#"python3 -c "a={'token': '***' …"#,
            ),
            (r#"x {"password": "abcLEAK …"#, r#"x {"password": "***" …"#),
            (r#"x --password "abcLEAK …"#, r#"x --password "***" …"#),
            ("x --password='abcLEAK …", "x --password='***' …"),
        ] {
            assert_eq!(text(input), want, "{input}");
        }
    }

    /// helper-71's forms, each in clear before: a URL cut in the middle of a line, quoted
    /// `-p` values, a glued `-u`, Python's environ and tuples, camelCase names, and the
    /// password flags of sshpass, redis-cli, docker login and aws configure.
    #[test]
    fn more_forms_of_secrets_are_masked() {
        let long = format!(
            "/bin/true git clone https://oauth2:LEAK41{} dir …",
            "p".repeat(100)
        );
        for (input, want) in [
            (
                long.as_str(),
                "/bin/true git clone https://oauth2:*** dir …",
            ),
            (
                r#"/bin/true sh -c "mysql -uroot -p'LEAK95' db""#,
                r#"/bin/true sh -c "mysql -uroot -p'***' db""#,
            ),
            (
                r#"/bin/true sh -c 'mysql -uroot -p"LEAK96" db'"#,
                r#"/bin/true sh -c 'mysql -uroot -p"***" db'"#,
            ),
            (
                r"sh -c 'mysql -uroot -p'\''LEAK97'\'' db'",
                r"sh -c 'mysql -uroot -p'\''***'\'' db'",
            ),
            (
                "/bin/true curl -uadmin:LEAK82 http://h/",
                "/bin/true curl -uadmin:*** http://h/",
            ),
            (
                r#"python3 -c "os.environ['DB_PASSWORD'] = 'LEAK90'""#,
                r#"python3 -c "os.environ['DB_PASSWORD'] = '***'""#,
            ),
            (
                r#"python3 -c 'os.environ["PGPASSWORD"]="LEAK91"'"#,
                r#"python3 -c 'os.environ["PGPASSWORD"]="***"'"#,
            ),
            ("f(auth=('admin', 'LEAK16'))", "f(auth=(***))"),
            (
                r#"x '{"auth": {"password": "LEAK92"}}'"#,
                r#"x '{"auth": {"password": "***"}}'"#,
            ),
            (
                "x --secretKey=LEAK93 --passphrase LEAK94 SECRETKEY=LEAK99 authToken=LEAK88",
                "x --secretKey=*** --passphrase *** SECRETKEY=*** authToken=***",
            ),
            (
                "sshpass -p LEAK81 ssh h; sshpass -pLEAK80 ssh h",
                "sshpass -p *** ssh h; sshpass -p*** ssh h",
            ),
            (
                "redis-cli -h x -a LEAK79 ping",
                "redis-cli -h x -a *** ping",
            ),
            (
                "docker login -u me -p LEAK78 reg",
                "docker login -u me -p *** reg",
            ),
            (
                "aws configure set aws_secret_access_key LEAK77",
                "aws configure set aws_secret_access_key ***",
            ),
        ] {
            assert_eq!(text(input), want, "{input}");
        }
        let masked = text(r#"python3 -c "requests.post('h', auth=('admin', 'LEAK16'))""#);
        assert!(!masked.contains("LEAK16"), "{masked}");
        // helper-73: the same cut inside the value's quotes, other spellings, and words
        // that only look like secrets.
        for (input, want) in [
            (
                r"sh -c 'mysql -uroot -p'\''LEAKabc …",
                r"sh -c 'mysql -uroot -p'\''***'\''' …",
            ),
            (
                r#"sh -c 'mysql -uroot -p"LEAKabc …"#,
                r#"sh -c 'mysql -uroot -p"***" …"#,
            ),
            (
                r#"sh -c 'docker login -u me -p "LEAKabc …"#,
                r#"sh -c 'docker login -u me -p *** …"#,
            ),
            (
                "aws --profile p configure set aws_secret_access_key LEAK",
                "aws --profile p configure set aws_secret_access_key ***",
            ),
            (
                "aws configure --profile p set aws_secret_access_key LEAK",
                "aws configure --profile p set aws_secret_access_key ***",
            ),
            ("docker login -pLEAK reg", "docker login -p*** reg"),
            (
                "docker --config /x login -p LEAK reg",
                "docker --config /x login -p *** reg",
            ),
            ("redis-cli -aLEAK ping", "redis-cli -a*** ping"),
            ("curl -Uproxy:LEAK http://h", "curl -Uproxy:*** http://h"),
            ("curl -kuadmin:LEAK http://h", "curl -kuadmin:*** http://h"),
            (
                "curl '-uadmin:LEAK x' http://h",
                "curl -uadmin:*** http://h",
            ),
            ("f(auth=(get_user(), 'LEAKC1'))", "f(auth=(***))"),
        ] {
            assert_eq!(text(input), want, "{input}");
        }
        for (input, want) in [
            (
                r#"python3 -c "os.putenv('DB_PASSWORD','LEAK')""#,
                r#"python3 -c "os.putenv('DB_PASSWORD','***')""#,
            ),
            // The tuple masked stays a tuple, and the code after it stays.
            (
                r#"python3 -c "requests.get(u, auth=('admin','LEAK')); print('done')""#,
                r#"python3 -c "requests.get(u, auth=(***)); print('done')""#,
            ),
        ] {
            assert_eq!(text(input), want, "{input}");
        }
        // helper-74: a second credential on the line, and flags that differ only in case.
        for (input, want) in [
            (
                "curl -U px:PROXYPASS1 -u bob:USERPASS1 http://h",
                "curl -U px:*** -u bob:*** http://h",
            ),
            (
                "curl -u bob:USERPASS2 -U px:PROXYPASS2 http://h",
                "curl -u bob:*** -U px:*** http://h",
            ),
            (
                "sshpass -P assword -p SSHPASS5 ssh h",
                "sshpass -P assword -p *** ssh h",
            ),
            (
                "mysql -h db -P3306 -pMYSQLPASS3",
                "mysql -h db -P3306 -p***",
            ),
            (
                "mysql -P3306 -u root -p'x y'",
                "mysql -P3306 -u root -p'***'",
            ),
        ] {
            assert_eq!(text(input), want, "{input}");
        }
        for plain in [
            "ssh -o PasswordAuthentication=no host",
            "tool --bypassCache=true --passThrough=yes --authMethod=basic --signatureVersion=v4",
            "x --passCount=3 --tokenTtl=60 --secretName=web-tls --cookieDomain=example.com",
            "docker run -u1000:1000 img",
            "docker run -u 1000:1000 img",
            "docker run --user=1000:1000 img",
            "redis-cli -u redis://host:6379",
        ] {
            assert_eq!(text(plain), plain);
        }
        // helper-74: names that say where or how a secret is kept, another program's
        // port, and a program's name as another's argument.
        for plain in [
            "docker run --sig-proxy=false img",
            "git -c credential.helper=store push",
            "kubectl --auth-provider=oidc get pods",
            "rsync --password-file=/etc/rsync.pw a b",
            "PASSWORD_FILE=/run/secrets/db app",
            "docker run --name mysql -p3306:3306 mysql:8",
            "docker run --name mysql -p127.0.0.1:3306:3306/tcp mysql:8",
            "sshpass -f /etc/pw ssh -p 2222 host",
            "docker login --password-stdin -u bob reg",
        ] {
            assert_eq!(text(plain), plain);
        }
        for (input, want) in [
            ("x --password-file-key=LEAK", "x --password-file-key=***"),
            ("PATH_TOKEN=LEAK app", "PATH_TOKEN=*** app"),
            (
                "sshpass -f /etc/pw -p LEAK ssh h",
                "sshpass -f /etc/pw -p *** ssh h",
            ),
            ("mysql -u root -p3306abc db", "mysql -u root -p*** db"),
            ("mysql -u root -p12:ab db", "mysql -u root -p*** db"),
        ] {
            assert_eq!(text(input), want, "{input}");
        }
        // helper-75: a secret after a name left in clear, in the value the rule took for
        // it; a URL's password holding an `@`; sshpass's quoted prompt and glued flags; a
        // name that is itself a value; a quote that closes the word a name is in.
        for (input, want) in [
            (
                "x --set auth.type=basic,auth.password=LEAKB y",
                "x --set auth.type=basic,auth.password=*** y",
            ),
            (
                "x -o auth_method=x,password=LEAKF",
                "x -o auth_method=x,password=***",
            ),
            (
                "x --token-url=https://idp/oauth/token?client_secret=LEAKE",
                "x --token-url=https://idp/oauth/token?client_secret=***",
            ),
            (
                "x --password-stdin --token LEAK1",
                "x --password-stdin --token ***",
            ),
            (
                "x --sig-proxy --api-key LEAK2",
                "x --sig-proxy --api-key ***",
            ),
            (
                "PASSWORD_FILE= PASSWORD=LEAKG",
                "PASSWORD_FILE= PASSWORD=***",
            ),
            (
                "x --token-url=https://user:p@ssLEAKH@host/x",
                "x --token-url=https://user:***@host/x",
            ),
            (
                r#"sshpass -P "Password for x:" -p LEAKC ssh h"#,
                r#"sshpass -P "Password for x:" -p *** ssh h"#,
            ),
            ("sshpass -vp LEAK3 ssh h", "sshpass -vp *** ssh h"),
            ("mysql -uroot -p12:34 db", "mysql -uroot -p*** db"),
            (
                "kubectl create secret generic x --from-literal=password=LEAK4",
                "kubectl create secret generic x --from-literal=password=***",
            ),
        ] {
            assert_eq!(text(input), want, "{input}");
        }
        for plain in [
            r#"/bin/true x "Enter password:" --verbose y"#,
            "git -c credential.https://example.com.helper=store push",
            "docker run --name mysql -p3306 mysql:8",
            "docker run --name mysql -p127.0.0.1::3306 mysql:8",
            "docker run --name=mysql -p[::1]:3306:3306 mysql:8",
        ] {
            assert_eq!(text(plain), plain);
        }
        // helper-77, on the fixes for helper-75: values that begin with `//` or a sign,
        // a quoted value after a name behind a flag's `=`, a client after a container of
        // its name, and URLs whose query holds an `@`.
        for (input, want) in [
            ("x --password=//hunter2", "x --password=***"),
            ("PGPASSWORD=//hunter2 psql", "PGPASSWORD=*** psql"),
            ("x DB_PASSWORD: //abc", "x DB_PASSWORD: ***"),
            (r#"x {password:"&Tr0ub4dor"}"#, r#"x {password:"***"}"#),
            (
                r#"x {password:" hunter2", user:"bob"}"#,
                r#"x {password:"***", user:"bob"}"#,
            ),
            (
                "kubectl create secret generic s '--from-literal=password=correct horse'",
                "kubectl create secret generic s '--from-literal=password=***'",
            ),
            (
                "helm install x '--set=auth.password=p w'",
                "helm install x '--set=auth.password=***'",
            ),
            (
                "docker run --rm --name mysql mysql mysql -uroot -p123456",
                "docker run --rm --name mysql mysql mysql -uroot -p***",
            ),
            (
                "docker run --name mysql -p3306:3306 mysql:8 mysql -uroot -p20240101",
                "docker run --name mysql -p3306:3306 mysql:8 mysql -uroot -p***",
            ),
            (
                "curl https://u:pw@api.example.com?notify=ops@example.com",
                "curl https://u:***@api.example.com?notify=ops@example.com",
            ),
            // A password glued to `-p` and quoted in part: what follows a quote was in
            // clear (helper-82).
            (r#"mysql -p"abc"LEAK1 db"#, "mysql -p*** db"),
            ("mysql -p'abc'LEAK2", "mysql -p***"),
            (r#"mysql -pabc"LEAK3""#, "mysql -p***"),
            (
                r"/usr/bin/mysqldump -pab\ LEAK4 db",
                "/usr/bin/mysqldump -p*** db",
            ),
            (
                r#"sh -c 'mariadb -u root -p"abc"LEAK5 -e "select 1"'"#,
                r#"sh -c 'mariadb -u root -p*** -e "select 1"'"#,
            ),
            // The client's command ends at `;`: ssh's port after it is kept (helper-89).
            (
                r#"mysql -p"ab"c; ssh -p"22"00 h"#,
                r#"mysql -p***; ssh -p"22"00 h"#,
            ),
            // A command's output in the word is the password's too: it was split at the
            // `(`, and what followed left in clear (helper-89).
            (r#"mysql -p"ab"$(c)LEAK6 db"#, "mysql -p*** db"),
            (r#"mysql -p"ab"$(cat /p; echo)LEAK7"#, "mysql -p***"),
            (r#"mysql -p"ab"`cat /p`LEAK8 db"#, "mysql -p*** db"),
            (r#"mysql -p"a"${X:-b c}LEAK9"#, "mysql -p***"),
            // A secret inside a command's output, and a header's value that holds one
            // (helper-92).
            (
                "v=$(PGPASSWORD=sekret3 psql -h db)",
                "v=$(PGPASSWORD=*** psql -h db)",
            ),
            (
                r#"curl -H "Authorization: Bearer $(cat t)abcdefSECRET" http://x"#,
                r#"curl -H "Authorization: Bearer ***" http://x"#,
            ),
            // Unquoted, with a space in the substitution, and a bracket of the other kind
            // inside it: each left the rest of the word in clear.
            ("PASSWORD=$(c d)LEAK10 run", "PASSWORD=*** run"),
            ("run --password=$(c d)LEAK11", "run --password=***"),
            ("run --password $(c d)LEAK12 -v", "run --password *** -v"),
            ("x token=`a b`LEAK13", "x token=***"),
            ("x --token=${a:-b c}LEAK14", "x --token=***"),
            (r#"mysql -p"ab"$(c})LEAK15 db"#, "mysql -p*** db"),
            ("x --password=${a)}LEAK16 y", "x --password=*** y"),
            // Glued after a substitution (helper-94).
            ("echo $(a)--password=LEAK20 b", "echo $(a)--password=*** b"),
            ("cmd ${VAR:+--password=LEAK21}", "cmd ${VAR:+--password=***"),
            ("env ${P}_PASSWORD=LEAK22 run", "env ${P}_PASSWORD=*** run"),
            // One quoting level down (helper-94).
            ("sh -c 'mysql -p$(c d)LEAK17 db'", "sh -c 'mysql -p*** db'"),
            (
                "sh -c 'run --password $(c d)LEAK18 -v'",
                "sh -c 'run --password *** -v'",
            ),
            (
                r#"bash -c "export PASSWORD=$(cat f | head -1)LEAK19; run""#,
                "bash -c 'export PASSWORD=***; run'",
            ),
        ] {
            assert_eq!(text(input), want, "{input}");
        }
        for plain in [
            "curl https://api.example.com:8443?notify=ops@example.com",
            "docker run --link mysql -p8080:80 wordpress",
            "docker run --network-alias mysql -p3306:3306 mysql:8",
            r#"docker run -v /var/lib/mysql:/data -p"3306:3306" x"#,
            r#"echo mysql && ssh -p"22"00 h"#,
            r#"env MYSQL_HOST=db ssh -p"22"00 h"#,
        ] {
            assert_eq!(text(plain), plain);
        }
        // Past the budget of matches looked at again, a long line of names left in clear
        // is masked whole rather than read again and again (helper-77: 30 s for 100 KB).
        let long = "auth.type=x,".repeat(100) + "auth.password=LEAK";
        assert_eq!(
            text(&long),
            format!("{}***", "auth.type=x,".repeat(64) + "auth.type=")
        );
        // helper-78, on the fixes for helper-77.
        for (input, want) in [
            (
                "mysql8 -h mysql -uroot -p123456",
                "mysql8 -h mysql -uroot -p***",
            ),
            (
                "mycli -h mysql -u root -p123456 app",
                "mycli -h mysql -u root -p*** app",
            ),
            (
                "psql postgresql://u:Tr0ub?dor@db:5432/app",
                "psql postgresql://u:***@db:5432/app",
            ),
            (
                "git clone https://u:ghp#tok@host/r",
                "git clone https://u:***@host/r",
            ),
            ("x password://hunter2 y", "x password:*** y"),
            // docker's `-h` is a client's host too: its port is masked, the safe way.
            (
                "docker run -h mysql -p3306:3306 mysql:8",
                "docker run -h mysql -p*** mysql:8",
            ),
            ("x ſpassword=hunter2", "x ſpassword=***"),
        ] {
            assert_eq!(text(input), want, "{input}");
        }
        // Past the budget of matches looked at again, a value masked already is read on
        // after its mask.
        let long = format!(
            "java {}-Dsession.cookie=abc,db.password=LEAK",
            "-Dapp.auth.type=x ".repeat(65)
        );
        assert!(text(&long).ends_with("-Dsession.cookie=***,db.password=***"));
        // helper-79: a line continued before sshpass's -p, and a variable's value that
        // holds a name and a brace.
        for (input, want) in [
            (
                "sshpass \\\n  -p LEAK01 ssh u@h",
                "sshpass \\\n  -p *** ssh u@h",
            ),
            (
                "sshpass -v \\\n -p LEAK01 ssh h",
                "sshpass -v \\\n -p *** ssh h",
            ),
        ] {
            assert_eq!(text(input), want, "{input}");
        }
        let brace = text("PGPASSWORD=password={\\\n//LEAK94 psql");
        assert!(!brace.contains("LEAK94"), "{brace}");
        let json = text(r#"helm install x --set=credentials={"token": "s3cr3t"}"#);
        assert!(!json.contains("s3cr3t"), "{json}");
        for plain in [
            r#"read -p "Password:" -s PW; echo done"#,
            r#"ssh-askpass "Password:" && echo ok"#,
            r#"git clone --config=credential.https://github.com.helper=store "https://github.com/o/r""#,
            "env GIT_CONFIG_PARAMETERS='credential.https://h.helper=store' git push",
            "x --ſecret-file=x",
        ] {
            assert_eq!(text(plain), plain);
        }
        // Names that only begin like a secret's, and others' flags, stay.
        for plain in [
            "x --signal=TERM --author=bob --passes=3",
            "aws configure set region us-east-1",
            "tar -uf a:b",
            "redis-cli -h x ping",
        ] {
            assert_eq!(text(plain), plain);
        }
    }
}
