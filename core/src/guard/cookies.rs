//! Reading the `Cookie` field and writing `Set-Cookie` values.

use crate::http::Request;

/// The values of every cookie called `name` in the request's `Cookie`
/// fields (RFC 6265 §5.4: `name=value` pairs separated by `; `).
pub(crate) fn cookie_values<'r, 'n>(
    request: &'r Request,
    name: &'n str,
) -> impl Iterator<Item = &'r str> + use<'r, 'n> {
    // Bytes until a name matches: only the values asked for are checked
    // as text (this runs on every request).
    request
        .headers_named("cookie")
        .flat_map(|line| line.split(|&b| b == b';'))
        .filter_map(|pair| {
            let pair = pair.trim_ascii();
            let equals = pair.iter().position(|&b| b == b'=')?;
            Some((&pair[..equals], &pair[equals + 1..]))
        })
        .filter(move |(n, _)| *n == name.as_bytes())
        .filter_map(|(_, v)| std::str::from_utf8(v).ok())
        .map(|v| v.trim().trim_matches('"'))
}

/// The one value of cookie `name`, or `None` when it is absent or sent more
/// than once: a duplicate means another cookie was planted beside ours (a
/// sibling domain, a path trick), so neither is trusted.
pub(crate) fn single_cookie<'r>(request: &'r Request, name: &str) -> Option<&'r str> {
    let mut values = cookie_values(request, name);
    let one = values.next()?;
    values.next().is_none().then_some(one)
}

/// How long a cookie lives in the browser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lifetime {
    /// Until the browser session ends (no `Expires`, no `Max-Age`).
    Browser,
    /// This many seconds.
    Seconds(u64),
    /// Delete it now.
    Delete,
}

/// A `Set-Cookie` value with the guard's attributes: `Path=/`, `HttpOnly`,
/// the given `SameSite`, and `Secure` over TLS (which the `__Host-` prefix
/// also requires).
pub(crate) fn set_cookie(
    name: &str,
    value: &str,
    lifetime: Lifetime,
    same_site: &str,
    tls: bool,
) -> String {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}");
    match lifetime {
        Lifetime::Browser => {}
        Lifetime::Seconds(secs) => cookie.push_str(&format!("; Max-Age={secs}")),
        Lifetime::Delete => cookie.push_str("; Max-Age=0"),
    }
    if tls {
        cookie.push_str("; Secure");
    }
    cookie
}
