//! The static site behind `--root`, and the answer types every site gives
//! the event loop ([`SiteResponse`], [`SiteBody`], [`FileBody`]).
//!
//! The event loop calls a site only after the guard let the request through,
//! with the guard's normalised path ([`portcullis_core::guard::Access::path`]):
//! decoded text that starts with `/`, has no `.` or `..` segment, no empty
//! segment, no `\`, no NUL or control byte, no encoded `/`. The site serves
//! *that* path, never the raw target, so the file served is the one the
//! guard's public/protected decision was made on.
//!
//! ## Policy
//!
//! - **GET and HEAD only**; anything else is 405 with `Allow: GET, HEAD`. A
//!   HEAD answer is the GET answer's head (same `Content-Length`) with no
//!   body: the connection sends no body bytes for HEAD.
//! - **Nothing outside the root**, symlinks included: the joined path is
//!   canonicalised (every symlink resolved) and must stay under the
//!   canonical root. A symlink that leads out is a 404, not a 403, so a
//!   visitor learns nothing about what lies outside. Symlinks that stay
//!   inside are followed.
//! - **No dotfiles**: a segment starting with `.` is a 404, in the request
//!   and in the resolved path alike (so a symlink to `.git` does not expose
//!   it). This keeps `.git`, `.env`, `.htpasswd` and editors' swap files
//!   private. The one exception is a first segment `.well-known` (RFC 8615:
//!   well-known URIs live at the root only, e.g. `security.txt`, ACME).
//! - **Directories**: without a trailing `/`, a 301 to the same path with
//!   `/` (query kept; the `Location` is always a path, percent-encoded,
//!   never `//host`); with it, the directory's `index.html`, else 404. No
//!   directory listings.
//! - **Only regular files** are served: fifos, sockets and devices are 404.
//!   The type is checked before opening (opening a fifo would block the
//!   event loop until a writer came) and again on the opened file, whose
//!   metadata alone gives the length, `ETag` and `Last-Modified`.
//! - **Caching**: `Cache-Control: private, no-cache`. The files sit behind a
//!   login: `private` keeps them out of shared caches (a proxy or CDN would
//!   otherwise keep a copy of protected content, keyed by URL only, since
//!   the guard's cookie is not in the cache key), and `no-cache` lets the
//!   browser keep its copy but revalidate every time, so a logged-out
//!   browser cannot show it again without the guard deciding. Revalidation
//!   is cheap: a strong `ETag` (inode, size, modification time in
//!   nanoseconds) and `Last-Modified`; `If-None-Match` (weak comparison,
//!   RFC 9110 §13.1.2) takes precedence over `If-Modified-Since`, and a
//!   match is a 304 without a body.
//! - **No ranges**: `Accept-Ranges: none`, and `Range` is ignored (a full
//!   200). Ranges would need multipart bodies and If-Range; the files
//!   served here are pages and their assets, not resumable downloads.
//! - **Types** from the file name (`mime_guess`), text types with
//!   `; charset=utf-8`, `application/octet-stream` when unknown, and
//!   `X-Content-Type-Options: nosniff` so a browser never guesses HTML
//!   from an upload.
//! - **Errors** (404, 405, 500 for a file that exists but cannot be read)
//!   are short HTML pages that echo nothing from the request.
//!
//! ## Races
//!
//! Between the checks (canonical path under the root, regular file) and
//! the `open`, someone who can write inside the root could swap the file for
//! a symlink leading out, or for a fifo. The opened file is checked again
//! (a fifo swapped in would already have blocked the `open`, though); the
//! symlink swap is not detectable without `O_NOFOLLOW`/`openat2`, which std
//! does not offer portably. The root is assumed to be written by the site's
//! owner only, as with any web server (nginx follows symlinks anywhere by
//! default); a root writable by untrusted users needs a server that opens
//! files beneath a directory handle.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use portcullis_core::guard::pages::CONTENT_SECURITY_POLICY;
use portcullis_core::guard::paths::encode_path;
use portcullis_core::http::reason_phrase;
use portcullis_core::{Request, ResponseBody, ResponseHead};

/// What a site answers: a head (framing already set:
/// [`ResponseBody::Length`] or [`ResponseBody::Empty`]) and where the body
/// comes from.
#[derive(Debug)]
pub struct SiteResponse {
    /// The status line and header fields, with the body's framing.
    pub head: ResponseHead,
    /// The body's bytes, to send after the head.
    pub body: SiteBody,
}

/// The guard's own answers go out like the site's.
impl From<portcullis_core::guard::Reply> for SiteResponse {
    fn from(reply: portcullis_core::guard::Reply) -> SiteResponse {
        SiteResponse {
            head: reply.head,
            body: SiteBody::Bytes(reply.body),
        }
    }
}

impl SiteResponse {
    /// The status code, for the access log.
    #[must_use]
    pub fn status(&self) -> u16 {
        self.head.status()
    }
}

/// Where a response body comes from.
#[derive(Debug)]
pub enum SiteBody {
    /// Nothing after the head (HEAD requests, 304, redirects, empty files).
    None,
    /// Bytes in memory (small pages, errors).
    Bytes(Vec<u8>),
    /// A file streamed in chunks.
    File(FileBody),
}

/// An opened file to stream: exactly [`remaining`](Self::remaining) bytes
/// still to read, the `Content-Length` the head declared.
#[derive(Debug)]
pub struct FileBody {
    file: File,
    remaining: u64,
}

impl FileBody {
    /// Reads the next chunk into `buf` (at most [`remaining`](Self::remaining)
    /// bytes); `Ok(0)` when the body is complete.
    ///
    /// A file that shrank under us is an error of kind
    /// [`io::ErrorKind::UnexpectedEof`]: the declared `Content-Length` can no
    /// longer be honoured, so the caller must abort the connection (the
    /// client then sees a truncated body, not a wrong one). An empty `buf`
    /// while bytes remain is [`io::ErrorKind::InvalidInput`], so that
    /// `Ok(0)` always means "done". A file that grew is cut at the declared
    /// length.
    pub fn read_chunk(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        if buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "read_chunk needs room for at least one byte",
            ));
        }
        let want = usize::try_from(self.remaining).map_or(buf.len(), |r| r.min(buf.len()));
        loop {
            match self.file.read(&mut buf[..want]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file shrank while it was being sent",
                    ))
                }
                Ok(n) => {
                    self.remaining -= n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// How many bytes are still to be read.
    #[must_use]
    pub fn remaining(&self) -> u64 {
        self.remaining
    }
}

/// `Cache-Control` of files and redirects (see the module docs).
const FILE_CACHE_CONTROL: &str = "private, no-cache";

/// The static site: the files under one directory.
#[derive(Clone, Debug)]
pub struct StaticSite {
    /// Canonical: absolute, no symlink, no `..`.
    root: PathBuf,
}

/// Where a path leads.
enum Target<'p> {
    /// This regular file, named `name` in the request (its content type
    /// goes by that name, also when a symlink leads elsewhere).
    File {
        path: PathBuf,
        name: &'p str,
    },
    /// A directory asked for without its trailing `/`: redirect here.
    Redirect(String),
    NotFound,
}

impl StaticSite {
    /// The site serving the files under `root`, canonicalised now (so a
    /// symlinked root is resolved once). Fails if `root` does not exist or
    /// is not a directory.
    pub fn new(root: &Path) -> io::Result<StaticSite> {
        let root = root.canonicalize()?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(StaticSite { root })
    }

    /// The canonical root directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The answer to `request` for `path`, the guard's normalised path
    /// (`Access::path`); `request` gives the method, the query (kept on a
    /// directory redirect) and the conditional headers. See the module docs
    /// for the policy.
    #[must_use]
    pub fn respond(&self, request: &Request, path: &str) -> SiteResponse {
        if !is_get_or_head(request) {
            return method_not_allowed(request);
        }
        match self.target(path) {
            Target::File { path, name } => self.serve_file(request, &path, name),
            Target::Redirect(location) => redirect(request, &location),
            Target::NotFound => error_page(request, 404),
        }
    }

    /// Maps `path` to a file under the root (see the module docs).
    fn target<'p>(&self, path: &'p str) -> Target<'p> {
        let Some(rest) = path.strip_prefix('/') else {
            return Target::NotFound;
        };
        // Empty segments only come from a final '/' in a normalised path;
        // skipping them anywhere also keeps "//host" out of a Location.
        let segments = || rest.split('/').filter(|s| !s.is_empty());
        if segments()
            .enumerate()
            .any(|(i, s)| !allowed_segment(i, s) || s.contains(['\\', '\0']))
        {
            return Target::NotFound;
        }
        let wants_directory = path.ends_with('/');
        let mut joined = PathBuf::with_capacity(self.root.as_os_str().len() + path.len());
        joined.push(&self.root);
        segments().for_each(|segment| joined.push(segment));
        let Some((canonical, meta)) = self.resolve(joined) else {
            return Target::NotFound;
        };
        if meta.is_dir() {
            if !wants_directory {
                let mut location = String::with_capacity(path.len() + 1);
                for segment in segments() {
                    location.push('/');
                    location.push_str(segment);
                }
                location.push('/');
                return Target::Redirect(encode_path(&location));
            }
            return match self.resolve(canonical.join("index.html")) {
                Some((index, meta)) if meta.is_file() => Target::File {
                    path: index,
                    name: "index.html",
                },
                _ => Target::NotFound,
            };
        }
        if !meta.is_file() || wants_directory {
            // A fifo, a socket, a device; or "file.txt/".
            return Target::NotFound;
        }
        Target::File {
            path: canonical,
            name: segments().next_back().unwrap_or_default(),
        }
    }

    /// The canonical form of `path` and its metadata, if it exists, stays
    /// under the root and has no dot segment below the root.
    fn resolve(&self, path: PathBuf) -> Option<(PathBuf, Metadata)> {
        if let Some(found) = self.resolve_plain(&path) {
            return found.map(|meta| (path, meta));
        }
        let canonical = path.canonicalize().ok()?;
        let relative = canonical.strip_prefix(&self.root).ok()?;
        for (i, component) in relative.components().enumerate() {
            let Component::Normal(name) = component else {
                return None;
            };
            if !allowed_segment(i, &name.to_string_lossy()) {
                return None;
            }
        }
        // The canonical path has no symlink left: this is the file's type.
        let meta = std::fs::metadata(&canonical).ok()?;
        Some((canonical, meta))
    }

    /// The common case in one `lstat` per segment below the root (not one
    /// `readlink` per component of the whole path, as canonicalising
    /// costs): when no segment is a symlink, `path` is canonical already,
    /// since the root is and the segments are plain names. `None` when a
    /// segment is a symlink (then [`StaticSite::resolve`] canonicalises);
    /// `Some(None)` when the path does not exist. Each prefix is looked at
    /// in place, as a slice of `path`: no copy per segment.
    #[allow(clippy::option_option)]
    fn resolve_plain(&self, path: &Path) -> Option<Option<Metadata>> {
        let bytes = path.as_os_str().as_bytes();
        let root = self.root.as_os_str().as_bytes();
        // The root is canonical: "/" or a path without a final '/'.
        let start = if root == b"/" { 1 } else { root.len() + 1 };
        if !bytes.starts_with(root) || bytes.len() <= start || bytes[start - 1] != b'/' {
            return None; // the root itself, or not laid out as expected
        }
        let mut found = None;
        let mut end = start - 1;
        for name in bytes[start..].split(|&b| b == b'/') {
            if matches!(name, b"" | b"." | b"..") {
                return None; // not a plain path: canonicalise instead
            }
            end += 1 + name.len();
            match std::fs::symlink_metadata(OsStr::from_bytes(&bytes[..end])) {
                Ok(meta) if meta.file_type().is_symlink() => return None,
                Ok(meta) => found = Some(meta),
                Err(_) => return Some(None),
            }
        }
        Some(found)
    }

    fn serve_file(&self, request: &Request, path: &Path, name: &str) -> SiteResponse {
        let file = match File::open(path) {
            Ok(file) => file,
            // Gone between the checks and the open.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return error_page(request, 404)
            }
            Err(_) => return error_page(request, 500),
        };
        let meta = match file.metadata() {
            Ok(meta) => meta,
            Err(_) => return error_page(request, 500),
        };
        if !meta.is_file() {
            // Swapped for something else after the check.
            return error_page(request, 404);
        }
        let size = meta.len();
        let modified = meta.modified().ok();
        let etag = entity_tag(&meta, modified);
        let last_modified = modified.map(httpdate::fmt_http_date);

        let not_modified = match if_none_match(request) {
            Some(values) => any_tag_matches(&values, &etag),
            None => match (modified, if_modified_since(request)) {
                (Some(modified), Some(since)) => unix_seconds(modified) <= unix_seconds(since),
                _ => false,
            },
        };
        if not_modified {
            let mut head = ResponseHead::new(304)
                .header("ETag", etag)
                .header("Cache-Control", FILE_CACHE_CONTROL);
            if let Some(date) = last_modified {
                head = head.header("Last-Modified", date);
            }
            return SiteResponse {
                head: head.body(ResponseBody::Empty),
                body: SiteBody::None,
            };
        }

        let mut head = ResponseHead::new(200)
            .header("Content-Type", content_type(name))
            .header("ETag", etag);
        if let Some(date) = last_modified {
            head = head.header("Last-Modified", date);
        }
        let head = head
            .header("Cache-Control", FILE_CACHE_CONTROL)
            // We never answer 206: see the module docs.
            .header("Accept-Ranges", "none")
            .header("X-Content-Type-Options", "nosniff")
            .body(ResponseBody::Length(size));
        let body = if is_head(request) || size == 0 {
            SiteBody::None
        } else {
            SiteBody::File(FileBody {
                file,
                remaining: size,
            })
        };
        SiteResponse { head, body }
    }
}

/// Whether a path segment (the `index`th below the root) may be served:
/// no dotfiles, except `.well-known` at the root.
fn allowed_segment(index: usize, segment: &str) -> bool {
    !segment.starts_with('.') || (index == 0 && segment == ".well-known")
}

/// A strong validator from the opened file's identity, size and
/// modification time (nanoseconds): any write changes one of them.
fn entity_tag(meta: &Metadata, modified: Option<SystemTime>) -> String {
    let nanos = modified
        .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let mut tag = String::with_capacity(2 + 16 + 1 + 16 + 1 + 32);
    tag.push('"');
    push_hex(&mut tag, u128::from(inode(meta)));
    tag.push('-');
    push_hex(&mut tag, u128::from(meta.len()));
    tag.push('-');
    push_hex(&mut tag, nanos);
    tag.push('"');
    tag
}

/// `value` in lowercase hex, as `{:x}` writes it, without the formatting
/// machinery (this runs for every file served).
fn push_hex(out: &mut String, value: u128) {
    let digits = (128 - value.leading_zeros()).div_ceil(4).max(1);
    for shift in (0..digits).rev() {
        let nibble = (value >> (shift * 4)) as usize & 0xf;
        out.push(char::from(b"0123456789abcdef"[nibble]));
    }
}

#[cfg(unix)]
fn inode(meta: &Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_meta: &Metadata) -> u64 {
    0
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The `If-None-Match` field values, if the request has any.
fn if_none_match(request: &Request) -> Option<Vec<&[u8]>> {
    let values: Vec<&[u8]> = request.headers_named("if-none-match").collect();
    (!values.is_empty()).then_some(values)
}

/// Whether an `If-None-Match` list matches `etag` (our quoted strong tag)
/// by weak comparison (RFC 9110 §13.1.2: the opaque tags are equal, `W/`
/// or not). `*` matches any file. A malformed list matches nothing from
/// the point where it breaks, which only costs a full response.
fn any_tag_matches(values: &[&[u8]], etag: &str) -> bool {
    values.iter().any(|value| {
        if value.trim_ascii() == b"*" {
            return true;
        }
        let mut rest = *value;
        loop {
            rest = trim_list_separators(rest);
            if rest.is_empty() {
                return false;
            }
            if let Some(strong) = rest.strip_prefix(b"W/") {
                rest = strong;
            }
            if rest.first() != Some(&b'"') {
                return false;
            }
            let Some(close) = rest[1..].iter().position(|&b| b == b'"') else {
                return false;
            };
            let (tag, after) = rest.split_at(close + 2);
            if tag == etag.as_bytes() {
                return true;
            }
            if !matches!(after.first(), None | Some(b',' | b' ' | b'\t')) {
                return false;
            }
            rest = after;
        }
    })
}

fn trim_list_separators(mut bytes: &[u8]) -> &[u8] {
    while let Some((b' ' | b'\t' | b',', rest)) = bytes.split_first() {
        bytes = rest;
    }
    bytes
}

/// The `If-Modified-Since` date; `None` when absent, repeated or not an
/// HTTP date (RFC 9110 §13.1.3: then it is ignored).
fn if_modified_since(request: &Request) -> Option<SystemTime> {
    let mut values = request.headers_named("if-modified-since");
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    httpdate::parse_http_date(std::str::from_utf8(value).ok()?).ok()
}

/// The `Content-Type` for a file called `name`.
fn content_type(name: &str) -> Cow<'static, str> {
    let extension = name.rsplit_once('.').map(|(_, extension)| extension);
    match extension.and_then(common_content_type) {
        Some(common) => Cow::Borrowed(common),
        None => guessed_content_type(name),
    }
}

/// The content type `mime_guess` gives `name`, with a charset for text.
fn guessed_content_type(name: &str) -> Cow<'static, str> {
    let Some(essence) = mime_guess::from_path(name).first_raw() else {
        return Cow::Borrowed("application/octet-stream");
    };
    // The common text types never get here (see `common_content_type`).
    if essence.starts_with("text/") || essence == "application/javascript" {
        Cow::Owned(format!("{essence}; charset=utf-8"))
    } else {
        Cow::Borrowed(essence)
    }
}

/// The content types of the commonest extensions, as [`content_type`]
/// derives them from `mime_guess`, without its search of a thousand
/// entries (a test keeps the two in step).
fn common_content_type(extension: &str) -> Option<&'static str> {
    Some(match extension {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        _ => return None,
    })
}

/// A 301 to `location` (an encoded path ending in `/`), query kept.
fn redirect(request: &Request, location: &str) -> SiteResponse {
    let mut target = location.to_string();
    if let Some(query) = request.query().filter(|q| !q.is_empty()) {
        target.push('?');
        encode_query(query, &mut target);
    }
    SiteResponse {
        head: ResponseHead::new(301)
            .header("Location", target)
            .header("Cache-Control", FILE_CACHE_CONTROL)
            .body(ResponseBody::Empty),
        body: SiteBody::None,
    }
}

/// Appends `query` with every byte outside visible ASCII (raw UTF-8 the
/// client sent) and `#` percent-encoded; existing escapes stay as they are.
fn encode_query(query: &str, out: &mut String) {
    for byte in query.bytes() {
        if byte.is_ascii_graphic() && byte != b'#' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

// ----- helpers shared with the demo site -------------------------------------

/// Whether the method is GET or HEAD, the only ones the sites serve.
pub(crate) fn is_get_or_head(request: &Request) -> bool {
    matches!(request.method(), "GET" | "HEAD")
}

fn is_head(request: &Request) -> bool {
    request.method() == "HEAD"
}

/// An in-memory body behind `head`: its length in the head, and the bytes
/// only for a GET (a HEAD answer has the same head and no body).
pub(crate) fn bytes_response(request: &Request, head: ResponseHead, body: Vec<u8>) -> SiteResponse {
    let head = head.body(ResponseBody::Length(body.len() as u64));
    let body = if is_head(request) {
        SiteBody::None
    } else {
        SiteBody::Bytes(body)
    };
    SiteResponse { head, body }
}

/// The header fields of the sites' own HTML pages: no caching, the guard
/// pages' CSP (the one inline style sheet, by hash), no sniffing, no framing.
pub(crate) fn html_head(status: u16, cache_control: &'static str) -> ResponseHead {
    ResponseHead::new(status)
        .header("Content-Type", "text/html; charset=utf-8")
        .header("Cache-Control", cache_control)
        .header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        .header("X-Content-Type-Options", "nosniff")
        .header("X-Frame-Options", "DENY")
        .header("Referrer-Policy", "same-origin")
}

/// An HTML5 page around `main` (already escaped), styled like the guard's
/// pages: the guard's style sheet, allowed by the CSP of [`html_head`].
pub(crate) use portcullis_core::guard::pages::document as html_document;

/// `text` for HTML text and double- or single-quoted attributes.
pub(crate) fn escape_html(text: &str) -> String {
    html_escape::encode_quoted_attribute(text).into_owned()
}

/// A short error page for `status` (404, 405, 500...). It echoes nothing
/// from the request.
pub(crate) fn error_page(request: &Request, status: u16) -> SiteResponse {
    let explanation = match status {
        404 => "There is nothing at this address.",
        405 => "This address can only be read (GET or HEAD).",
        500 => "This page could not be read. Please try again later.",
        _ => "The request could not be served.",
    };
    let title = format!("{status} {}", reason_phrase(status));
    let main =
        format!("<h1>{title}</h1>\n<p>{explanation}</p>\n<a class=\"alt\" href=\"/\">Home</a>\n");
    let html = html_document(&title, &main);
    bytes_response(request, html_head(status, "no-store"), html.into_bytes())
}

/// 405 for anything but GET and HEAD.
pub(crate) fn method_not_allowed(request: &Request) -> SiteResponse {
    let mut response = error_page(request, 405);
    response.head = response.head.header("Allow", "GET, HEAD");
    response
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Requests made by a real core connection, and response inspection.

    use std::time::{Instant, SystemTime};

    use portcullis_core::{Connection, Event, Limits, Now, Request};

    use super::{SiteBody, SiteResponse};

    /// The request a core connection hands out for these raw bytes.
    pub(crate) fn parse(raw: &str) -> Request {
        let now = Now::new(Instant::now(), SystemTime::now());
        let mut conn = Connection::new(now, Limits::default());
        assert_eq!(conn.receive(now, raw.as_bytes()), raw.len());
        while let Some(event) = conn.poll_event() {
            if let Event::Request(request) = event {
                return request;
            }
        }
        panic!("no request in {raw:?}");
    }

    /// `method target` with a Host and these extra header lines.
    pub(crate) fn request(method: &str, target: &str, headers: &[&str]) -> Request {
        let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: site.example\r\n");
        for line in headers {
            raw.push_str(line);
            raw.push_str("\r\n");
        }
        raw.push_str("\r\n");
        parse(&raw)
    }

    pub(crate) fn get(target: &str) -> Request {
        request("GET", target, &[])
    }

    /// The value of the first header field called `name`.
    pub(crate) fn header<'a>(response: &'a SiteResponse, name: &str) -> Option<&'a str> {
        response
            .head
            .headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The whole body, read the way the event loop reads it.
    pub(crate) fn body(response: SiteResponse) -> Vec<u8> {
        match response.body {
            SiteBody::None => Vec::new(),
            SiteBody::Bytes(bytes) => bytes,
            SiteBody::File(mut file) => {
                let mut out = Vec::new();
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = file.read_chunk(&mut buf).expect("the file reads");
                    if n == 0 {
                        break;
                    }
                    out.extend_from_slice(&buf[..n]);
                }
                out
            }
        }
    }

    pub(crate) fn text(response: SiteResponse) -> String {
        String::from_utf8(body(response)).expect("UTF-8")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_common_content_types_are_the_ones_mime_guess_gives() {
        for extension in [
            "html", "htm", "css", "js", "txt", "json", "svg", "png", "jpg", "jpeg", "gif", "webp",
            "ico", "woff2",
        ] {
            let name = format!("file.{extension}");
            assert_eq!(
                super::common_content_type(extension),
                Some(&*super::guessed_content_type(&name)),
                "{name}"
            );
        }
        // Anything else still goes by mime_guess, any case.
        assert_eq!(super::content_type("a.PDF"), "application/pdf");
        assert_eq!(super::content_type("a.HTML"), "text/html; charset=utf-8");
        assert_eq!(super::content_type("README"), "application/octet-stream");
    }

    use std::fs;
    use std::os::unix::fs::symlink;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use portcullis_core::{Connection, Event, Limits, Now};

    use super::test_support::{body, get, header, request, text};
    use super::*;

    /// A root with a page, a stylesheet, a docs directory with an index and
    /// an empty directory; and a second directory outside it with a secret.
    struct Fixture {
        root: tempfile::TempDir,
        outside: tempfile::TempDir,
        site: StaticSite,
    }

    fn fixture() -> Fixture {
        let root = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        let r = root.path();
        fs::write(r.join("hello.txt"), "hello, world\n").unwrap();
        fs::write(r.join("style.css"), "body{}").unwrap();
        fs::create_dir(r.join("docs")).unwrap();
        fs::write(r.join("docs/index.html"), "<h1>Docs</h1>").unwrap();
        fs::write(r.join("docs/guide.html"), "<h1>Guide</h1>").unwrap();
        fs::create_dir(r.join("empty")).unwrap();
        fs::write(outside.path().join("secret.txt"), "top secret").unwrap();
        let site = StaticSite::new(r).expect("a directory");
        Fixture {
            root,
            outside,
            site,
        }
    }

    impl Fixture {
        fn path(&self, relative: &str) -> PathBuf {
            self.root.path().join(relative)
        }

        fn get(&self, path: &str) -> SiteResponse {
            self.site.respond(&get(path), path)
        }
    }

    #[test]
    fn the_root_must_be_an_existing_directory() {
        let f = fixture();
        assert!(StaticSite::new(&f.path("hello.txt")).is_err());
        assert!(StaticSite::new(&f.path("missing")).is_err());
        // A symlinked root is resolved once, at start.
        let link = f.outside.path().join("www");
        symlink(f.root.path(), &link).unwrap();
        let site = StaticSite::new(&link).unwrap();
        assert_eq!(site.root(), f.root.path().canonicalize().unwrap());
        assert_eq!(site.respond(&get("/hello.txt"), "/hello.txt").status(), 200);
    }

    #[test]
    fn a_file_is_served_with_its_type_validators_and_length() {
        let f = fixture();
        let response = f.get("/hello.txt");
        assert_eq!(response.status(), 200);
        assert_eq!(
            header(&response, "Content-Type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(
            header(&response, "Cache-Control"),
            Some("private, no-cache")
        );
        assert_eq!(header(&response, "Accept-Ranges"), Some("none"));
        assert_eq!(header(&response, "X-Content-Type-Options"), Some("nosniff"));
        let etag = header(&response, "ETag").unwrap();
        assert!(etag.starts_with('"') && etag.ends_with('"') && !etag.starts_with("W/"));
        let modified = fs::metadata(f.path("hello.txt"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(
            header(&response, "Last-Modified"),
            Some(httpdate::fmt_http_date(modified).as_str())
        );
        assert_eq!(response.head.body_framing(), ResponseBody::Length(13));
        assert_eq!(body(response), b"hello, world\n");
    }

    #[test]
    fn head_has_the_same_head_as_get_and_no_body() {
        let f = fixture();
        let get = f.get("/docs/guide.html");
        let head = f.site.respond(
            &request("HEAD", "/docs/guide.html", &[]),
            "/docs/guide.html",
        );
        assert_eq!(head.head, get.head);
        assert_eq!(head.head.body_framing(), ResponseBody::Length(14));
        assert!(matches!(head.body, SiteBody::None));
        // Error pages too: same length, no bytes.
        let missing = f.site.respond(&request("HEAD", "/nope", &[]), "/nope");
        assert_eq!(missing.status(), 404);
        assert_eq!(missing.head, f.get("/nope").head);
        assert!(matches!(missing.body, SiteBody::None));
    }

    #[test]
    fn the_engine_finishes_a_head_exchange_with_a_length_and_no_bytes() {
        // The contract the event loop relies on: HEAD gets Length(n) in the
        // head, SiteBody::None, and finish_response accepts zero bytes sent.
        let f = fixture();
        let now = Now::new(Instant::now(), SystemTime::now());
        let mut conn = Connection::new(now, Limits::default());
        let raw = b"HEAD /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n";
        conn.receive(now, raw);
        let Some(Event::Request(req)) = conn.poll_event() else {
            panic!("a request");
        };
        let response = f.site.respond(&req, "/hello.txt");
        assert!(matches!(response.body, SiteBody::None));
        conn.send_response(now, response.head).unwrap();
        conn.finish_response(now).unwrap();
        let out = String::from_utf8(conn.pending_output().to_vec()).unwrap();
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.contains("\r\nContent-Length: 13\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\n"), "{out}");
        assert!(!conn.is_closing(), "keep-alive survives the HEAD");
    }

    #[test]
    fn types_come_from_the_name() {
        let f = fixture();
        let cases = [
            ("page.html", "text/html; charset=utf-8"),
            ("site.css", "text/css; charset=utf-8"),
            ("app.js", "text/javascript; charset=utf-8"),
            ("data.json", "application/json"),
            ("logo.png", "image/png"),
            ("icon.svg", "image/svg+xml"),
            ("archive.unknown-ext", "application/octet-stream"),
            ("README", "application/octet-stream"),
        ];
        for (name, expected) in cases {
            fs::write(f.path(name), "x").unwrap();
            let response = f.get(&format!("/{name}"));
            assert_eq!(response.status(), 200, "{name}");
            assert_eq!(header(&response, "Content-Type"), Some(expected), "{name}");
        }
    }

    #[test]
    fn a_symlink_out_of_the_root_is_not_found() {
        let f = fixture();
        symlink(f.outside.path().join("secret.txt"), f.path("leak.txt")).unwrap();
        symlink(f.outside.path(), f.path("leakdir")).unwrap();
        symlink("/", f.path("slash")).unwrap();
        // A loop resolves to nothing.
        symlink("loop-b", f.path("loop-a")).unwrap();
        symlink("loop-a", f.path("loop-b")).unwrap();
        assert_eq!(f.get("/loop-a").status(), 404);
        for path in [
            "/leak.txt",
            "/leakdir/secret.txt",
            "/leakdir/",
            "/slash/etc/passwd",
        ] {
            let response = f.get(path);
            assert_eq!(response.status(), 404, "{path}");
            assert!(!text(response).contains("secret"), "{path}");
        }
    }

    #[test]
    fn a_symlink_that_stays_inside_the_root_is_followed() {
        let f = fixture();
        symlink(f.path("docs/guide.html"), f.path("guide.html")).unwrap();
        symlink("docs", f.path("manual")).unwrap();
        assert_eq!(text(f.get("/guide.html")), "<h1>Guide</h1>");
        assert_eq!(text(f.get("/manual/guide.html")), "<h1>Guide</h1>");
        assert_eq!(text(f.get("/manual/")), "<h1>Docs</h1>");
    }

    #[test]
    fn dotfiles_are_private_except_well_known_at_the_root() {
        let f = fixture();
        fs::write(f.path(".env"), "PASSWORD=x").unwrap();
        fs::write(f.path(".htpasswd"), "fred:x").unwrap();
        fs::create_dir(f.path(".git")).unwrap();
        fs::write(f.path(".git/config"), "[core]").unwrap();
        fs::write(f.path("docs/.secret"), "x").unwrap();
        fs::create_dir(f.path(".well-known")).unwrap();
        fs::write(f.path(".well-known/security.txt"), "Contact: x").unwrap();
        fs::create_dir(f.path("docs/.well-known")).unwrap();
        fs::write(f.path("docs/.well-known/security.txt"), "x").unwrap();
        // A symlink with an innocent name into a dot directory.
        symlink(".git", f.path("repo")).unwrap();
        for path in [
            "/.env",
            "/.htpasswd",
            "/.git/config",
            "/.git/",
            "/.git",
            "/docs/.secret",
            "/docs/.well-known/security.txt",
            "/repo/config",
        ] {
            assert_eq!(f.get(path).status(), 404, "{path}");
        }
        let response = f.get("/.well-known/security.txt");
        assert_eq!(response.status(), 200);
        assert_eq!(text(response), "Contact: x");
    }

    #[test]
    fn a_directory_serves_its_index_or_nothing() {
        let f = fixture();
        let response = f.get("/docs/");
        assert_eq!(response.status(), 200);
        assert_eq!(
            header(&response, "Content-Type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(text(response), "<h1>Docs</h1>");
        // No listing.
        assert_eq!(f.get("/empty/").status(), 404);
        assert_eq!(f.get("/").status(), 404);
        fs::write(f.path("index.html"), "home").unwrap();
        assert_eq!(text(f.get("/")), "home");
        // A file is not a directory.
        assert_eq!(f.get("/hello.txt/").status(), 404);
        // An index.html that is itself a directory is not served.
        fs::create_dir(f.path("empty/index.html")).unwrap();
        assert_eq!(f.get("/empty/").status(), 404);
    }

    #[test]
    fn a_directory_without_its_slash_is_redirected_to_a_local_path() {
        let f = fixture();
        let response = f.get("/docs");
        assert_eq!(response.status(), 301);
        assert_eq!(header(&response, "Location"), Some("/docs/"));
        assert_eq!(response.head.body_framing(), ResponseBody::Empty);
        // The query is kept; raw UTF-8 in it is encoded.
        let query = f.site.respond(&get("/docs?page=2&q=caf\u{e9}"), "/docs");
        assert_eq!(
            header(&query, "Location"),
            Some("/docs/?page=2&q=caf%C3%A9")
        );
        // Names that need encoding are encoded.
        fs::create_dir(f.path("a b\u{e9}")).unwrap();
        let encoded = f.site.respond(&get("/a%20b%C3%A9"), "/a b\u{e9}");
        assert_eq!(header(&encoded, "Location"), Some("/a%20b%C3%A9/"));
        // Even a path the guard never gives cannot make a scheme-relative
        // Location (//evil.example would leave the site).
        fs::create_dir(f.path("evil.example")).unwrap();
        let evil = f.site.respond(&get("/evil.example"), "//evil.example");
        assert_eq!(header(&evil, "Location"), Some("/evil.example/"));
    }

    #[test]
    fn only_get_and_head_are_served() {
        let f = fixture();
        for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
            let response = f
                .site
                .respond(&request(method, "/hello.txt", &[]), "/hello.txt");
            assert_eq!(response.status(), 405, "{method}");
            assert_eq!(header(&response, "Allow"), Some("GET, HEAD"));
            assert!(text(response).contains("405 Method Not Allowed"));
        }
    }

    #[test]
    fn error_pages_echo_nothing_from_the_request() {
        let f = fixture();
        let path = "/<script>alert(1)</script>";
        let response = f.site.respond(&get("/%3Cscript%3E"), path);
        assert_eq!(response.status(), 404);
        assert_eq!(header(&response, "Cache-Control"), Some("no-store"));
        assert_eq!(
            header(&response, "Content-Security-Policy"),
            Some(CONTENT_SECURITY_POLICY)
        );
        let page = text(response);
        assert!(page.contains("<h1>404 Not Found</h1>"), "{page}");
        assert!(
            !page.contains("script") && !page.contains("alert"),
            "{page}"
        );
    }

    /// The validators of the fixture's hello.txt, from a first response.
    fn validators(f: &Fixture) -> (String, String) {
        let first = f.get("/hello.txt");
        (
            header(&first, "ETag").unwrap().to_string(),
            header(&first, "Last-Modified").unwrap().to_string(),
        )
    }

    fn conditional(f: &Fixture, headers: &[&str]) -> SiteResponse {
        f.site
            .respond(&request("GET", "/hello.txt", headers), "/hello.txt")
    }

    #[test]
    fn a_matching_if_none_match_gets_304_with_validators_and_no_body() {
        let f = fixture();
        let (etag, last_modified) = validators(&f);
        let weak = format!("W/{etag}");
        let listed = format!("\"other\", {weak} , \"more\"");
        for value in [etag.as_str(), weak.as_str(), listed.as_str(), "*"] {
            let response = conditional(&f, &[&format!("If-None-Match: {value}")]);
            assert_eq!(response.status(), 304, "{value}");
            assert_eq!(header(&response, "ETag"), Some(etag.as_str()));
            assert_eq!(
                header(&response, "Last-Modified"),
                Some(last_modified.as_str())
            );
            assert_eq!(
                header(&response, "Cache-Control"),
                Some("private, no-cache")
            );
            assert_eq!(response.head.body_framing(), ResponseBody::Empty);
            assert!(matches!(response.body, SiteBody::None));
        }
        // Spread over two field lines.
        let split = conditional(
            &f,
            &[
                "If-None-Match: \"other\"",
                &format!("If-None-Match: {etag}"),
            ],
        );
        assert_eq!(split.status(), 304);
    }

    #[test]
    fn a_different_or_malformed_if_none_match_gets_the_file() {
        let f = fixture();
        let (etag, _) = validators(&f);
        let unquoted = etag.trim_matches('"').to_string();
        let glued = format!("\"x\"{etag}");
        for value in [
            "\"other\"",
            "W/\"other\", \"x\"",
            &unquoted,
            &glued,
            "\"x\", *",
        ] {
            let response = conditional(&f, &[&format!("If-None-Match: {value}")]);
            assert_eq!(response.status(), 200, "{value}");
            assert_eq!(body(response), b"hello, world\n");
        }
    }

    #[test]
    fn if_modified_since_gets_304_unless_the_file_is_newer() {
        let f = fixture();
        let mtime = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let file = File::options()
            .write(true)
            .open(f.path("hello.txt"))
            .unwrap();
        file.set_modified(mtime).unwrap();
        let at = httpdate::fmt_http_date(mtime);
        let later = httpdate::fmt_http_date(mtime + Duration::from_secs(60));
        let earlier = httpdate::fmt_http_date(mtime - Duration::from_secs(1));
        assert_eq!(
            conditional(&f, &[&format!("If-Modified-Since: {at}")]).status(),
            304
        );
        assert_eq!(
            conditional(&f, &[&format!("If-Modified-Since: {later}")]).status(),
            304
        );
        // The file changed after the client's copy.
        let newer = conditional(&f, &[&format!("If-Modified-Since: {earlier}")]);
        assert_eq!(newer.status(), 200);
        assert_eq!(body(newer), b"hello, world\n");
        // Not a date, or two of them: ignored.
        assert_eq!(
            conditional(&f, &["If-Modified-Since: yesterday"]).status(),
            200
        );
        let twice = [
            format!("If-Modified-Since: {at}"),
            format!("If-Modified-Since: {later}"),
        ];
        let twice: Vec<&str> = twice.iter().map(String::as_str).collect();
        assert_eq!(conditional(&f, &twice).status(), 200);
        // If-None-Match takes precedence: a stale tag means 200 even with a
        // matching date.
        let both = conditional(
            &f,
            &[
                "If-None-Match: \"stale\"",
                &format!("If-Modified-Since: {later}"),
            ],
        );
        assert_eq!(both.status(), 200);
    }

    #[test]
    fn a_rewritten_file_gets_a_new_etag() {
        let f = fixture();
        let (etag, _) = validators(&f);
        let file = File::options()
            .write(true)
            .open(f.path("hello.txt"))
            .unwrap();
        let old = file.metadata().unwrap().modified().unwrap();
        fs::write(f.path("hello.txt"), "HELLO, WORLD\n").unwrap();
        // Same size; make sure the time moved even on a coarse clock.
        file.set_modified(old + Duration::from_millis(1)).unwrap();
        let response = conditional(&f, &[&format!("If-None-Match: {etag}")]);
        assert_eq!(response.status(), 200);
        assert_ne!(header(&response, "ETag"), Some(etag.as_str()));
        assert_eq!(body(response), b"HELLO, WORLD\n");
    }

    #[test]
    fn a_fifo_is_not_found_and_never_opened() {
        let f = fixture();
        let status = std::process::Command::new("mkfifo")
            .arg(f.path("pipe"))
            .status()
            .expect("mkfifo runs");
        assert!(status.success());
        // Opening a fifo blocks until a writer comes: run the request on a
        // thread so a regression fails the test instead of hanging it.
        let site = f.site.clone();
        let (done, result) = mpsc::channel();
        std::thread::spawn(move || {
            let response = site.respond(&get("/pipe"), "/pipe");
            let _ = done.send(response.status());
        });
        assert_eq!(result.recv_timeout(Duration::from_secs(10)), Ok(404));
    }

    #[test]
    fn a_large_file_streams_in_chunks_to_the_exact_length() {
        let f = fixture();
        let content: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        fs::write(f.path("big.bin"), &content).unwrap();
        let response = f.get("/big.bin");
        assert_eq!(
            response.head.body_framing(),
            ResponseBody::Length(content.len() as u64)
        );
        let SiteBody::File(mut file) = response.body else {
            panic!("a streamed body");
        };
        let mut received = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut chunks = 0;
        loop {
            let n = file.read_chunk(&mut buf).expect("the file reads");
            if n == 0 {
                break;
            }
            received.extend_from_slice(&buf[..n]);
            chunks += 1;
            assert_eq!(file.remaining(), (content.len() - received.len()) as u64);
        }
        assert!(chunks >= 48, "{chunks} chunks");
        assert_eq!(received.len(), content.len());
        assert!(received == content);
        // Done stays done.
        assert_eq!(file.read_chunk(&mut buf).unwrap(), 0);
    }

    #[test]
    fn a_file_truncated_while_streaming_is_an_error() {
        let f = fixture();
        fs::write(f.path("big.bin"), vec![7u8; 64 * 1024]).unwrap();
        let response = f.get("/big.bin");
        let SiteBody::File(mut file) = response.body else {
            panic!("a streamed body");
        };
        File::options()
            .write(true)
            .open(f.path("big.bin"))
            .unwrap()
            .set_len(1000)
            .unwrap();
        let mut buf = vec![0u8; 8192];
        let mut read = 0;
        let error = loop {
            match file.read_chunk(&mut buf) {
                Ok(0) => panic!("a shrunk file must not look complete"),
                Ok(n) => read += n,
                Err(e) => break e,
            }
        };
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(read, 1000);
    }

    #[test]
    fn an_empty_buffer_never_looks_like_the_end() {
        let f = fixture();
        let SiteBody::File(mut file) = f.get("/hello.txt").body else {
            panic!("a streamed body");
        };
        let error = file.read_chunk(&mut []).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(file.remaining(), 13);
    }

    #[test]
    fn an_empty_file_has_no_body_to_stream() {
        let f = fixture();
        fs::write(f.path("empty.txt"), "").unwrap();
        let response = f.get("/empty.txt");
        assert_eq!(response.status(), 200);
        assert_eq!(response.head.body_framing(), ResponseBody::Length(0));
        assert!(matches!(response.body, SiteBody::None));
    }

    #[test]
    fn an_unreadable_file_is_a_server_error() {
        use std::os::unix::fs::PermissionsExt;
        let f = fixture();
        let path = f.path("locked.txt");
        fs::write(&path, "x").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
        if File::open(&path).is_ok() {
            // Running as root: permissions do not apply, nothing to test.
            return;
        }
        let response = f.get("/locked.txt");
        assert_eq!(response.status(), 500);
        assert!(!text(response).contains("locked"));
    }
}
