//! Paths: the normalised path the site will see, which paths are public,
//! and which return paths are safe to redirect to.
//!
//! The guard decides "public or protected" on the *same* path the site
//! serves, so a trick that changes the path between the two (`..`,
//! `%2e%2e`, `//`, `;`, an encoded `/`, a backslash, a NUL) cannot cross from
//! a public path into a protected one. [`normalize_path`] gives that path;
//! the site (a static file server, a proxy) must serve exactly what it
//! returns, not the raw target.
//!
//! ## Policy
//!
//! - The result is **decoded text** (UTF-8, no percent escapes left), the
//!   form a file server maps to a file and a person writes in the
//!   configuration (`/static/`). [`encode_path`] turns it back into a
//!   canonical request target for a proxy or a `Location` header.
//! - After decoding, `/` is the only separator. Anything some server or
//!   framework treats as a separator, terminator or second layer of encoding
//!   is refused rather than guessed at: an encoded `/` (`%2F`), `\` in any
//!   form, `;` (path parameters, in any form), `?` and `#` (encoded, or a raw
//!   `#`), `%` from `%25` (double encoding), NUL and other control bytes,
//!   invalid UTF-8, a malformed escape.
//! - `.` segments go, `..` removes the segment before it, `//` collapses to
//!   `/`. A `..` that would climb above the root is refused, not clamped. A
//!   segment of dots and spaces other than `.` and `..` (`...`, `.. `) is
//!   refused: Windows file systems read some of them as `..`.
//! - A path that ends in `/`, `/.` or `/..` keeps a trailing `/` (it names a
//!   directory): `/static/x/..` is `/static/`.
//! - Paths are **case-sensitive**: `/STATIC/app.js` is not under `/static/`.
//!   On a case-insensitive file system that only makes the guard ask for a
//!   login where it need not; it can never make a protected path public.
//!
//! Any [`PathError`] should be answered 400 by the guard.

use std::fmt;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

/// Why a request path was refused (the guard answers 400).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    /// The path does not begin with `/` (asterisk-form, empty...).
    NotAbsolute,
    /// A `%` not followed by two hex digits.
    BadPercent,
    /// `%2F`: a `/` that some servers decode into a separator and some not.
    EncodedSlash,
    /// `\` (raw or `%5C`): a separator on Windows and for some frameworks.
    Backslash,
    /// NUL or another control byte (raw or encoded): truncates paths in C
    /// code, splits headers.
    Control,
    /// `;` (raw or `%3B`): path parameters, stripped by some servers.
    Semicolon,
    /// `?` or `#` inside the path (encoded, or a raw `#`): a server that
    /// decodes and re-parses would cut the path there.
    Delimiter,
    /// `%25`: a `%` after decoding, the first half of a double encoding.
    EncodedPercent,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
    /// A `..` that would climb above the root.
    AboveRoot,
    /// A segment of dots and spaces other than `.` and `..` (`...`, `.. `).
    AmbiguousDots,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::NotAbsolute => "the path does not begin with '/'",
            PathError::BadPercent => "a '%' is not followed by two hex digits",
            PathError::EncodedSlash => "the path has an encoded '/' (%2F)",
            PathError::Backslash => "the path has a backslash",
            PathError::Control => "the path has a control byte",
            PathError::Semicolon => "the path has a ';' (path parameters)",
            PathError::Delimiter => "the path has a '?' or '#' after decoding",
            PathError::EncodedPercent => "the path has an encoded '%' (%25)",
            PathError::NotUtf8 => "the decoded path is not UTF-8",
            PathError::AboveRoot => "a '..' climbs above the root",
            PathError::AmbiguousDots => "a segment is made only of dots and spaces",
        })
    }
}

impl std::error::Error for PathError {}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// The byte a `%XX` escape at `bytes[i]` (the `%`) stands for.
fn escaped_byte(bytes: &[u8], i: usize) -> Option<u8> {
    let high = hex_value(*bytes.get(i + 1)?)?;
    let low = hex_value(*bytes.get(i + 2)?)?;
    Some(high << 4 | low)
}

/// The path the site will see for `raw_path` (the request path without its
/// query, as [`crate::Request::path`] gives it): percent-decoded, dot
/// segments resolved, `//` collapsed, or refused. See the module docs for
/// the policy; the result is decoded text and the function is idempotent.
///
/// ```
/// use portcullis_core::guard::paths::{normalize_path, PathError};
/// assert_eq!(normalize_path("/static/%2e%2e/admin"), Ok("/admin".to_string()));
/// assert_eq!(normalize_path("/a//b/./c/"), Ok("/a/b/c/".to_string()));
/// assert_eq!(normalize_path("/static/..%2fadmin"), Err(PathError::EncodedSlash));
/// ```
pub fn normalize_path(raw_path: &str) -> Result<String, PathError> {
    if is_already_normal(raw_path) {
        return Ok(raw_path.to_string());
    }
    normalize_in_full(raw_path)
}

/// Whether [`normalize_in_full`] would return `raw` unchanged, as it does
/// for most request paths: absolute, no byte it decodes or refuses, no
/// empty or dot segment (a final `/` aside). One pass and no allocation
/// instead of three.
fn is_already_normal(raw: &str) -> bool {
    let Some(inner) = raw.strip_prefix('/') else {
        return false;
    };
    if raw
        .bytes()
        .any(|b| matches!(b, b'%' | b'\\' | b';' | b'?' | b'#' | 0..=0x1f | 0x7f))
    {
        return false;
    }
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    if inner.is_empty() {
        return raw == "/";
    }
    inner
        .split('/')
        .all(|segment| !segment.bytes().all(|b| b == b'.' || b == b' '))
}

/// [`normalize_path`] for any path.
fn normalize_in_full(raw_path: &str) -> Result<String, PathError> {
    let raw = raw_path.as_bytes();
    if raw.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    let mut decoded = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let (byte, encoded) = if raw[i] == b'%' {
            let byte = escaped_byte(raw, i).ok_or(PathError::BadPercent)?;
            i += 3;
            (byte, true)
        } else {
            i += 1;
            (raw[i - 1], false)
        };
        match byte {
            b'/' if encoded => return Err(PathError::EncodedSlash),
            b'\\' => return Err(PathError::Backslash),
            0..=0x1f | 0x7f => return Err(PathError::Control),
            b';' => return Err(PathError::Semicolon),
            b'?' | b'#' => return Err(PathError::Delimiter),
            b'%' => return Err(PathError::EncodedPercent),
            _ => decoded.push(byte),
        }
    }
    let text = String::from_utf8(decoded).map_err(|_| PathError::NotUtf8)?;

    let mut segments: Vec<&str> = Vec::new();
    // Whether the path names a directory: it ends in "/", "/." or "/..".
    let mut trailing_slash = false;
    // The first piece is the empty string before the leading '/'.
    for segment in text.split('/').skip(1) {
        match segment {
            // Empty: "//" in the middle (collapsed) or a final '/'.
            "" | "." => trailing_slash = true,
            ".." => {
                segments.pop().ok_or(PathError::AboveRoot)?;
                trailing_slash = true;
            }
            s if s.bytes().all(|b| b == b'.' || b == b' ') => return Err(PathError::AmbiguousDots),
            s => {
                segments.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut normal = String::with_capacity(text.len());
    for segment in &segments {
        normal.push('/');
        normal.push_str(segment);
    }
    if segments.is_empty() || trailing_slash {
        normal.push('/');
    }
    Ok(normal)
}

/// Bytes [`encode_path`] escapes: everything but RFC 3986's unreserved
/// characters, its sub-delimiters other than `;`, and `:`, `@`, `/`.
const PATH_ESCAPES: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b';')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// A normalised path (from [`normalize_path`]) as a canonical request
/// target or `Location` path: visible ASCII, non-ASCII and reserved bytes
/// percent-encoded. `normalize_path(&encode_path(p)) == Ok(p)` for every
/// normalised `p`.
#[must_use]
pub fn encode_path(normalized: &str) -> String {
    utf8_percent_encode(normalized, PATH_ESCAPES).to_string()
}

/// A problem with a configured public path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicPathError {
    /// The entry is not a valid path.
    Invalid {
        /// The entry as configured.
        entry: String,
        /// What is wrong with it.
        error: PathError,
    },
    /// The entry is valid but not in normal form, so it could never match
    /// (for example `/static/../img/`): write `canonical` instead.
    NotCanonical {
        /// The entry as configured.
        entry: String,
        /// Its normal form.
        canonical: String,
    },
}

impl fmt::Display for PublicPathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublicPathError::Invalid { entry, error } => {
                write!(f, "public path {entry:?}: {error}")
            }
            PublicPathError::NotCanonical { entry, canonical } => {
                write!(
                    f,
                    "public path {entry:?} is not in normal form: write {canonical:?}"
                )
            }
        }
    }
}

impl std::error::Error for PublicPathError {}

/// The paths anonymous visitors may see (e.g. `/favicon.ico`, `/static/`).
///
/// An entry ending in `/` is a prefix: `/static/` makes `/static/` and
/// everything under it public, but not `/static` itself (the site usually
/// redirects that to `/static/`, which is public). Any other entry is exact.
/// Matching is case-sensitive and byte-for-byte on normalised paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublicPaths {
    exact: Vec<String>,
    prefixes: Vec<String>,
}

impl PublicPaths {
    /// The public paths from configuration. Each entry must already be in
    /// the normal form [`normalize_path`] gives (decoded text): an entry that
    /// is not could never match, so it is refused rather than ignored.
    pub fn new<S: AsRef<str>>(entries: &[S]) -> Result<Self, PublicPathError> {
        let mut public = PublicPaths::default();
        for entry in entries {
            let entry = entry.as_ref();
            let canonical = normalize_path(entry).map_err(|error| PublicPathError::Invalid {
                entry: entry.to_string(),
                error,
            })?;
            if canonical != entry {
                return Err(PublicPathError::NotCanonical {
                    entry: entry.to_string(),
                    canonical,
                });
            }
            if entry.ends_with('/') {
                public.prefixes.push(canonical);
            } else {
                public.exact.push(canonical);
            }
        }
        Ok(public)
    }

    /// No public path: every path needs a login.
    #[must_use]
    pub fn none() -> Self {
        PublicPaths::default()
    }

    /// Whether `normalized` (a result of [`normalize_path`], never a raw
    /// path) is public.
    #[must_use]
    pub fn is_public(&self, normalized: &str) -> bool {
        self.exact.iter().any(|e| e == normalized)
            || self
                .prefixes
                .iter()
                .any(|p| normalized.starts_with(p.as_str()))
    }
}

/// The longest return path kept; a longer one falls back to `/`.
pub const MAX_RETURN_PATH: usize = 2048;

/// Bytes escaped in a return path's query: non-ASCII (always) and the
/// visible ASCII that is not allowed in a URI. `%` stays: escapes there have
/// been checked.
const QUERY_ESCAPES: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// A return path (the page asked for before the login) that is safe to
/// redirect to and to put in a `Location` header; `/` when `raw` is not one.
///
/// Kept only: a path that begins with exactly one `/` (not `//x`, `/\x`,
/// not a scheme or host), with no raw control byte, space or backslash
/// anywhere, whose path part passes [`normalize_path`] (so no `%2F`, `%5C`,
/// `%0d%0a`, `..` above the root...) and whose query has only well-formed
/// escapes of non-control bytes, at most [`MAX_RETURN_PATH`] bytes. The
/// result is the normalised path re-encoded ([`encode_path`]) plus the
/// query; a fragment is dropped. It is visible ASCII and begins with `/`
/// followed by neither `/` nor `\`.
#[must_use]
pub fn safe_return_path(raw: &str) -> String {
    checked_return_path(raw).unwrap_or_else(|| "/".to_string())
}

fn checked_return_path(raw: &str) -> Option<String> {
    if raw.len() > MAX_RETURN_PATH || raw.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'\\') {
        return None;
    }
    // Exactly one leading '/': "//host" and "/\host" are other origins to a
    // browser (the backslash is already refused above).
    if !raw.starts_with('/') || raw[1..].starts_with('/') {
        return None;
    }
    // Browsers never send a fragment; drop one rather than carry it.
    let without_fragment = raw.split('#').next().unwrap_or_default();
    let (path, query) = match without_fragment.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (without_fragment, None),
    };
    let mut safe = encode_path(&normalize_path(path).ok()?);
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        let bytes = query.as_bytes();
        for (i, _) in bytes.iter().enumerate().filter(|(_, &b)| b == b'%') {
            match escaped_byte(bytes, i) {
                Some(byte) if byte >= 0x20 && byte != 0x7f => {}
                // A malformed escape, or an encoded control byte: a site
                // that decodes the query into a header could be split.
                _ => return None,
            }
        }
        safe.push('?');
        safe.extend(utf8_percent_encode(query, QUERY_ESCAPES));
    }
    Some(safe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn public() -> PublicPaths {
        PublicPaths::new(&["/favicon.ico", "/static/"]).expect("valid public paths")
    }

    /// Whether `raw` is public as the guard decides it: refused paths are
    /// never public (the guard answers 400).
    fn public_decision(raw: &str) -> bool {
        normalize_path(raw).is_ok_and(|p| public().is_public(&p))
    }

    #[test]
    fn ordinary_paths_come_out_as_they_went_in() {
        for path in [
            "/",
            "/a",
            "/a/",
            "/static/app.js",
            "/caf\u{e9}/men\u{fc}",
            "/a.b/c-d_e~f",
        ] {
            assert_eq!(normalize_path(path).as_deref(), Ok(path));
        }
    }

    #[test]
    fn escapes_are_decoded_to_the_text_the_site_serves() {
        assert_eq!(
            normalize_path("/st%61tic/a%20b").as_deref(),
            Ok("/static/a b")
        );
        assert_eq!(normalize_path("/caf%C3%A9").as_deref(), Ok("/caf\u{e9}"));
        // A public decision on the decoded text: the site sees /static/.
        assert!(public_decision("/st%61tic/app.js"));
    }

    #[test]
    fn dot_segments_and_double_slashes_resolve() {
        let cases = [
            ("/a/./b", "/a/b"),
            ("/a/b/../c", "/a/c"),
            ("/a//b///c", "/a/b/c"),
            ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/a/%2e/b/%2E%2e/c", "/a/c"),
            ("/a/.%2e/b", "/b"),
            ("//", "/"),
            ("/.", "/"),
        ];
        for (raw, normal) in cases {
            assert_eq!(normalize_path(raw).as_deref(), Ok(normal), "{raw}");
        }
    }

    #[test]
    fn separators_encodings_and_controls_are_refused_not_guessed() {
        let cases = [
            ("", PathError::NotAbsolute),
            ("*", PathError::NotAbsolute),
            ("static/x", PathError::NotAbsolute),
            ("/a%2Fb", PathError::EncodedSlash),
            ("/a%2fb", PathError::EncodedSlash),
            ("/a\\b", PathError::Backslash),
            ("/a%5Cb", PathError::Backslash),
            ("/a%00b", PathError::Control),
            ("/a\0b", PathError::Control),
            ("/a%0d%0ab", PathError::Control),
            ("/a%7f", PathError::Control),
            ("/a;jsessionid=1", PathError::Semicolon),
            ("/a%3Bb", PathError::Semicolon),
            ("/a%3Fb", PathError::Delimiter),
            ("/a#b", PathError::Delimiter),
            ("/a%23b", PathError::Delimiter),
            ("/a%252e%252e/b", PathError::EncodedPercent),
            ("/a%", PathError::BadPercent),
            ("/a%2", PathError::BadPercent),
            ("/a%zz", PathError::BadPercent),
            ("/a%ff", PathError::NotUtf8),
            ("/..", PathError::AboveRoot),
            ("/a/../..", PathError::AboveRoot),
            ("/%2e%2e/etc/passwd", PathError::AboveRoot),
            ("/a/...", PathError::AmbiguousDots),
            ("/a/.. /b", PathError::AmbiguousDots),
            ("/a/%2e%2e%20/b", PathError::AmbiguousDots),
        ];
        for (raw, error) in cases {
            assert_eq!(normalize_path(raw), Err(error), "{raw:?}");
        }
    }

    #[test]
    fn tricks_cannot_cross_from_a_public_path_into_a_protected_one() {
        // Each either resolves outside /static/ (protected: login needed)
        // or is refused (400); none is public.
        let tricks = [
            "/static/../admin",
            "/static/%2e%2e/admin",
            "/static/%2E%2E/admin",
            "/static/.%2e/admin",
            "/static/..%2fadmin",
            "/static/..%2Fadmin",
            "/static//../admin",
            "/static/./../admin",
            "/static;/../admin",
            "/static/..;/admin",
            "/static/..%3b/admin",
            "/static/..\\admin",
            "/static/..%5cadmin",
            "/static/..%00/admin",
            "/static/..%23/admin",
            "/static/.. /admin",
            "/static/%252e%252e/admin",
            "/favicon.ico/..",
            "/favicon.ico/../admin",
            "/favicon.ico;x",
            "/favicon.ico%00.html",
            "/favicon.ico/",
            "/static",
        ];
        for raw in tricks {
            assert!(!public_decision(raw), "{raw} must not be public");
        }
        assert_eq!(normalize_path("/static/../admin").as_deref(), Ok("/admin"));
        assert_eq!(normalize_path("/static//../admin").as_deref(), Ok("/admin"));
        assert_eq!(normalize_path("/favicon.ico/..").as_deref(), Ok("/"));
    }

    #[test]
    fn public_paths_are_exact_or_prefix_and_case_sensitive() {
        let public = public();
        assert!(public.is_public("/favicon.ico"));
        assert!(public.is_public("/static/"));
        assert!(public.is_public("/static/css/site.css"));
        assert!(!public.is_public("/favicon.ico2"));
        assert!(!public.is_public("/staticfoo"));
        assert!(!public.is_public("/"));
        // Case-sensitive: a case-insensitive site would serve /static/ here,
        // but asking for a login for it is the safe mistake.
        assert!(!public.is_public("/STATIC/app.js"));
        assert!(!public.is_public("/Favicon.ico"));
        // Still public after harmless detours that resolve inside.
        assert!(public_decision("/static/css/../app.js"));
        assert!(public_decision("/admin/../static/app.js"));
        assert!(!PublicPaths::none().is_public("/favicon.ico"));
    }

    #[test]
    fn configured_public_paths_must_be_normal() {
        assert_eq!(
            PublicPaths::new(&["static/"]),
            Err(PublicPathError::Invalid {
                entry: "static/".into(),
                error: PathError::NotAbsolute
            })
        );
        assert_eq!(
            PublicPaths::new(&["/static/../img/"]),
            Err(PublicPathError::NotCanonical {
                entry: "/static/../img/".into(),
                canonical: "/img/".into()
            })
        );
        assert!(matches!(
            PublicPaths::new(&["/st%61tic/"]),
            Err(PublicPathError::NotCanonical { .. })
        ));
        let empty: [&str; 0] = [];
        assert_eq!(PublicPaths::new(&empty), Ok(PublicPaths::none()));
    }

    #[test]
    fn encode_path_gives_a_target_that_normalises_back() {
        let path = "/caf\u{e9}/a b/\"<x>\"/[1]";
        let encoded = encode_path(path);
        assert_eq!(encoded, "/caf%C3%A9/a%20b/%22%3Cx%3E%22/%5B1%5D");
        assert_eq!(normalize_path(&encoded).as_deref(), Ok(path));
    }

    fn assert_safe(output: &str) {
        let bytes = output.as_bytes();
        assert!(
            output == "/"
                || (bytes[0] == b'/' && bytes.len() > 1 && bytes[1] != b'/' && bytes[1] != b'\\'),
            "{output:?}"
        );
        assert!(bytes.iter().all(|&b| b > b' ' && b < 0x7f), "{output:?}");
    }

    #[test]
    fn open_redirects_fall_back_to_the_root_or_stay_on_the_site() {
        let attempts = [
            "//evil.com",
            "/\\evil.com",
            "/\\/evil.com",
            "https://evil.com",
            "http:/evil.com",
            "javascript:alert(1)",
            "%2F%2Fevil.com",
            "/%2F/evil.com",
            "/%2f%2fevil.com",
            "/%5Cevil.com",
            "/%5C%5Cevil.com",
            "/foo%0d%0aSet-Cookie:x",
            "/foo\r\nSet-Cookie:x",
            "/x?a=%0d%0aSet-Cookie:x",
            "\t//evil.com",
            " /x",
            "/x\r\n",
            "",
            ".",
            "/..//evil.com",
            "///evil.com",
            "/%09/evil.com",
            "/\t/evil.com",
            "/%2e%2e//evil.com",
            "/./%2F/evil.com",
        ];
        for raw in attempts {
            let safe = safe_return_path(raw);
            assert_safe(&safe);
            assert_eq!(safe, "/", "{raw:?}");
        }
    }

    #[test]
    fn same_origin_return_paths_are_kept() {
        let cases = [
            ("/", "/"),
            ("/admin/report", "/admin/report"),
            ("/search?q=a+b&page=2", "/search?q=a+b&page=2"),
            ("/search?q=%C3%A9", "/search?q=%C3%A9"),
            ("/caf\u{e9}?q=\u{e9}", "/caf%C3%A9?q=%C3%A9"),
            ("/a/./b/../c", "/a/c"),
            ("/evil.com", "/evil.com"),
            ("/page#section", "/page"),
            ("/page?", "/page"),
            ("/q?x=\"<y>\"", "/q?x=%22%3Cy%3E%22"),
        ];
        for (raw, safe) in cases {
            assert_eq!(safe_return_path(raw), safe, "{raw:?}");
        }
    }

    #[test]
    fn an_overlong_return_path_falls_back() {
        let long = format!("/{}", "a".repeat(MAX_RETURN_PATH));
        assert_eq!(safe_return_path(&long), "/");
        let fits = format!("/{}", "a".repeat(MAX_RETURN_PATH - 1));
        assert_eq!(safe_return_path(&fits), fits);
    }

    /// A path piece that is likely to be interesting.
    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("".to_string()),
            Just(".".to_string()),
            Just("..".to_string()),
            Just("%2e".to_string()),
            Just("%2E%2e".to_string()),
            Just(".%2e".to_string()),
            Just("%2F".to_string()),
            Just("%5C".to_string()),
            Just("\\".to_string()),
            Just(";".to_string()),
            Just("%00".to_string()),
            Just("%0d%0a".to_string()),
            Just("%25".to_string()),
            Just("%".to_string()),
            Just("?".to_string()),
            Just("#".to_string()),
            Just("static".to_string()),
            Just("evil.com".to_string()),
            Just(":".to_string()),
            Just("%C3%A9".to_string()),
            Just(" ".to_string()),
            "[a-z]{1,3}",
            "\\PC{1,3}",
        ]
    }

    fn raw_path() -> impl Strategy<Value = String> {
        prop::collection::vec((piece(), prop::bool::ANY), 0..8).prop_map(|pieces| {
            let mut s = String::new();
            for (p, slash) in pieces {
                if slash {
                    s.push('/');
                }
                s.push_str(&p);
            }
            s
        })
    }

    /// A segment under the /static/ prefix: names, dots (plain or
    /// encoded) and empty segments.
    fn dot_segment() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "",
            ".",
            "..",
            "%2e",
            "%2E%2e",
            ".%2E",
            "static",
            "admin",
            "x",
            "favicon.ico",
        ])
    }

    /// The model: decode the dot escapes, then resolve segment by segment.
    /// None when a '..' climbs above the root.
    fn model_resolve(segments: &[&str]) -> Option<String> {
        let mut stack: Vec<&str> = Vec::new();
        let mut directory = true;
        for raw in segments {
            let segment = raw.replace("%2e", ".").replace("%2E", ".");
            match segment.as_str() {
                "" | "." => directory = true,
                ".." => {
                    stack.pop()?;
                    directory = true;
                }
                _ => {
                    stack.push(raw);
                    directory = false;
                }
            }
        }
        let mut path: String = stack.iter().map(|s| format!("/{s}")).collect();
        if stack.is_empty() || directory {
            path.push('/');
        }
        Some(path)
    }

    proptest! {
        #[test]
        fn the_fast_path_takes_exactly_the_paths_that_stay_unchanged(raw in raw_path()) {
            let unchanged = normalize_in_full(&raw) == Ok(raw.clone());
            prop_assert_eq!(is_already_normal(&raw), unchanged, "{:?}", raw);
        }

        #[test]
        fn normalising_twice_changes_nothing(raw in raw_path()) {
            if let Ok(once) = normalize_path(&raw) {
                prop_assert_eq!(normalize_path(&once), Ok(once.clone()));
                prop_assert_eq!(normalize_path(&encode_path(&once)), Ok(once));
            }
        }

        #[test]
        fn normal_paths_have_no_dot_segments_or_empty_segments(raw in raw_path()) {
            if let Ok(normal) = normalize_path(&raw) {
                prop_assert!(normal.starts_with('/'));
                for bad in ["/../", "/./", "//", "\\", "%", ";", "?", "#"] {
                    prop_assert!(!normal.contains(bad), "{:?} -> {:?}", raw, normal);
                }
                prop_assert!(!normal.ends_with("/..") && !normal.ends_with("/."), "{:?}", normal);
                prop_assert!(!normal.chars().any(char::is_control), "{:?}", normal);
            }
        }

        #[test]
        fn the_public_decision_is_the_prefix_check_of_the_resolved_path(
            under_static in prop::bool::ANY,
            tail in prop::collection::vec(dot_segment(), 0..8),
        ) {
            let mut segments = if under_static { vec!["static"] } else { vec![] };
            segments.extend(tail);
            let raw = format!("/{}", segments.join("/"));
            match model_resolve(&segments) {
                None => prop_assert_eq!(normalize_path(&raw), Err(PathError::AboveRoot)),
                Some(resolved) => {
                    let normal = normalize_path(&raw);
                    prop_assert_eq!(normal.as_deref(), Ok(resolved.as_str()), "{}", raw);
                    let expected = resolved.starts_with("/static/") || resolved == "/favicon.ico";
                    prop_assert_eq!(public().is_public(&normal.unwrap()), expected, "{}", raw);
                }
            }
        }

        #[test]
        fn return_paths_are_always_safe(raw in prop_oneof![raw_path(), "\\PC*", any::<String>()]) {
            let safe = safe_return_path(&raw);
            assert_safe(&safe);
            prop_assert!(safe.len() <= 3 * MAX_RETURN_PATH);
        }

        #[test]
        fn plain_paths_survive_as_return_paths(raw in "(/[a-z0-9._-]{1,8}){1,5}/?(\\?[a-z0-9=&]{0,10})?") {
            let path = raw.split('?').next().unwrap();
            // Dot-only segments resolve away; compare with the normal form.
            if let Ok(normal) = normalize_path(path) {
                let expected = match raw.split_once('?') {
                    Some((_, q)) if !q.is_empty() => format!("{normal}?{q}"),
                    _ => normal,
                };
                prop_assert_eq!(safe_return_path(&raw), expected);
            }
        }
    }
}
