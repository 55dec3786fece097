//! The guard's own pages (the login form, the logout confirmation) and the
//! headers every guard page carries.
//!
//! ## Policy
//!
//! - Plain, accessible HTML5: `lang`, a `<title>`, one `<main>` with an
//!   `<h1>`, labels bound to their inputs (`for`/`id`), `autocomplete`
//!   hints so password managers fill the form, `autofocus` on the first
//!   empty field, and a `role="alert"` region that exists only when there is
//!   an error (a screen reader announces it; without an error there is
//!   nothing to announce).
//! - No script at all, and no `style=""` attribute: the only style is one
//!   `<style>` element whose SHA-256 hash is in the page's
//!   Content-Security-Policy, so the CSP can forbid everything else
//!   (`default-src 'none'`) without `'unsafe-inline'`. A test recomputes
//!   the hash, so [`STYLE`] cannot drift from [`CONTENT_SECURITY_POLICY`].
//! - Every interpolated value is HTML-escaped (`&`, `<`, `>`, `"`, `'`), in
//!   text and in double-quoted attributes alike.
//! - `Referrer-Policy: same-origin`, not `no-referrer`: with `no-referrer`
//!   browsers send `Origin: null` on form posts, which would defeat the
//!   guard's Origin check.
//! - HSTS (`max-age=31536000`, one year) only over TLS; without
//!   `includeSubDomains`, because the guard knows nothing of sibling hosts.

use html_escape::encode_quoted_attribute as escape;

/// The pages' only style sheet, inline; its hash is in
/// [`CONTENT_SECURITY_POLICY`]. Light and dark schemes, visible focus.
pub const STYLE: &str = "\
:root{color-scheme:light dark;--bg:#f3f4f6;--card:#fff;--text:#1c2230;--muted:#566072;\
--line:#b9c0cc;--accent:#1f4fbf;--on-accent:#fff;--err-bg:#fdecec;--err:#8b1a1a}\
@media (prefers-color-scheme:dark){:root{--bg:#121418;--card:#1d2128;--text:#e7eaf0;\
--muted:#a4adbb;--line:#475061;--accent:#8fb0ff;--on-accent:#0b1020;--err-bg:#3b1c1f;--err:#ffb8b8}}\
*{box-sizing:border-box}\
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;\
padding:1.5rem;background:var(--bg);color:var(--text);\
font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif}\
main{width:100%;max-width:23rem;background:var(--card);padding:2rem;border-radius:.75rem;\
box-shadow:0 1px 3px rgba(0,0,0,.12),0 10px 30px rgba(0,0,0,.08)}\
h1{margin:0 0 1.5rem;font-size:1.375rem;line-height:1.3}\
p{margin:0 0 1.5rem;color:var(--muted)}\
label{display:block;margin:0 0 .3rem;font-weight:600}\
input{display:block;width:100%;margin:0 0 1.1rem;padding:.6rem .75rem;font:inherit;\
color:inherit;background:var(--card);border:1px solid var(--line);border-radius:.4rem}\
button{display:block;width:100%;margin-top:.4rem;padding:.65rem;font:inherit;font-weight:600;\
color:var(--on-accent);background:var(--accent);border:0;border-radius:.4rem;cursor:pointer}\
:focus-visible{outline:3px solid var(--accent);outline-offset:2px}\
.error{margin:0 0 1.5rem;padding:.75rem 1rem;border-radius:.4rem;background:var(--err-bg);\
color:var(--err);font-weight:600}\
.alt{display:block;margin-top:1.1rem;text-align:center;color:var(--accent)}";

/// The Content-Security-Policy of every guard page: nothing may load but
/// the one inline style sheet ([`STYLE`], by hash) and same-origin images
/// (the site's favicon); forms post only to this origin; no framing; no
/// `<base>`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; \
style-src 'sha256-3kdvYrQhty8tvqn6lqojYrgW0hSezjRTNxQSDCTNURE='; img-src 'self'; \
form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `Strict-Transport-Security` over TLS: one year.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

/// The headers of every guard page (login, logout, the guard's own error
/// pages): `Content-Type` (HTML, UTF-8), `Cache-Control: no-store` (a
/// login form or a personal page must not be kept by any cache or
/// back/forward), the CSP, `X-Content-Type-Options: nosniff`,
/// `X-Frame-Options: DENY` (older browsers' version of `frame-ancestors`),
/// `Referrer-Policy: same-origin`, and HSTS when `tls`.
#[must_use]
pub fn guard_headers(tls: bool) -> Vec<(&'static str, &'static str)> {
    let mut headers = vec![
        ("Content-Type", "text/html; charset=utf-8"),
        ("Cache-Control", "no-store"),
        ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "same-origin"),
    ];
    if tls {
        headers.push(("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY));
    }
    headers
}

/// What the login page shows. Every field is escaped when rendered.
#[derive(Clone, Copy, Debug)]
pub struct LoginPageParams<'a> {
    /// The site's name, in the title and heading.
    pub site_name: &'a str,
    /// Where the form posts, e.g. `/__login__`.
    pub action: &'a str,
    /// The CSRF token for the login form (hidden field `csrf`).
    pub csrf: &'a str,
    /// The checked return path (hidden field `return_to`), from
    /// [`super::paths::safe_return_path`].
    pub return_to: &'a str,
    /// The username to show again after a failure ("" for none).
    pub username: &'a str,
    /// The error to show, if any (a generic "wrong username or password",
    /// never which of the two).
    pub error: Option<&'a str>,
}

/// What the logout confirmation page shows.
#[derive(Clone, Copy, Debug)]
pub struct LogoutPageParams<'a> {
    /// The site's name, in the title and heading.
    pub site_name: &'a str,
    /// Where the form posts, e.g. `/__logout__`.
    pub action: &'a str,
    /// The CSRF token for the logout form (hidden field `csrf`).
    pub csrf: &'a str,
    /// Who is logged in, if the page should say so.
    pub username: Option<&'a str>,
    /// Where "Stay logged in" leads (a checked path, usually `/`).
    pub cancel: &'a str,
}

/// The document around a page's `<main>` content.
/// An HTML5 page around `main` (already escaped) with the guard's style
/// sheet, which [`guard_headers`]' Content-Security-Policy allows by its
/// hash: for the guard's pages and for sites that want to look like them.
pub fn document(title: &str, main: &str) -> String {
    format!(
        "<!DOCTYPE html>\n\
<html lang=\"en\">\n\
<head>\n\
<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<meta name=\"robots\" content=\"noindex\">\n\
<title>{title}</title>\n\
<style>{STYLE}</style>\n\
</head>\n\
<body>\n\
<main>\n\
{main}\
</main>\n\
</body>\n\
</html>\n"
    )
}

/// The login page: a form posting `username`, `password`, `csrf` and
/// `return_to` to `action`. After a failure it shows the error in an alert
/// region, keeps the username and puts the focus on the password.
#[must_use]
pub fn login_page(params: &LoginPageParams<'_>) -> String {
    let site = escape(params.site_name);
    let (username_focus, password_focus) = if params.username.is_empty() {
        (" autofocus", "")
    } else {
        ("", " autofocus")
    };
    let (error, described) = match params.error {
        Some(message) => (
            format!(
                "<div class=\"error\" role=\"alert\" id=\"login-error\">{}</div>\n",
                escape(message)
            ),
            " aria-describedby=\"login-error\"",
        ),
        None => (String::new(), ""),
    };
    let main = format!(
        "<h1>Log in to {site}</h1>\n\
{error}\
<form method=\"post\" action=\"{action}\">\n\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
<input type=\"hidden\" name=\"return_to\" value=\"{return_to}\">\n\
<label for=\"username\">Username</label>\n\
<input id=\"username\" name=\"username\" type=\"text\" value=\"{username}\" \
autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\" required{username_focus}{described}>\n\
<label for=\"password\">Password</label>\n\
<input id=\"password\" name=\"password\" type=\"password\" \
autocomplete=\"current-password\" required{password_focus}{described}>\n\
<button type=\"submit\">Log in</button>\n\
</form>\n",
        action = escape(params.action),
        csrf = escape(params.csrf),
        return_to = escape(params.return_to),
        username = escape(params.username),
    );
    document(&format!("Log in \u{2013} {site}"), &main)
}

/// The logout confirmation page: a form posting `csrf` to `action`, and a
/// link back for a person who came here by mistake. Logging out is a POST
/// so that a link or an image elsewhere cannot log anyone out.
#[must_use]
pub fn logout_page(params: &LogoutPageParams<'_>) -> String {
    let site = escape(params.site_name);
    let who = match params.username {
        Some(user) => format!(
            "<p>You are logged in as <strong>{}</strong>.</p>\n",
            escape(user)
        ),
        None => String::new(),
    };
    let main = format!(
        "<h1>Log out of {site}?</h1>\n\
{who}\
<form method=\"post\" action=\"{action}\">\n\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
<button type=\"submit\" autofocus>Log out</button>\n\
</form>\n\
<a class=\"alt\" href=\"{cancel}\">Stay logged in</a>\n",
        action = escape(params.action),
        csrf = escape(params.csrf),
        cancel = escape(params.cancel),
    );
    document(&format!("Log out \u{2013} {site}"), &main)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use sha2::{Digest, Sha256};

    fn login(error: Option<&'static str>, username: &'static str) -> String {
        login_page(&LoginPageParams {
            site_name: "Example Wiki",
            action: "/__login__",
            csrf: "tok-123_abc",
            return_to: "/wiki/Home",
            username,
            error,
        })
    }

    fn logout() -> String {
        logout_page(&LogoutPageParams {
            site_name: "Example Wiki",
            action: "/__logout__",
            csrf: "tok-456",
            username: Some("alice"),
            cancel: "/",
        })
    }

    /// The text between `open` and the next `close`, each occurrence.
    fn between<'a>(page: &'a str, open: &str, close: &str) -> Vec<&'a str> {
        page.split(open)
            .skip(1)
            .map(|rest| rest.split(close).next().unwrap_or_default())
            .collect()
    }

    fn csp_style_hashes() -> Vec<&'static str> {
        let style_src = CONTENT_SECURITY_POLICY
            .split(';')
            .map(str::trim)
            .find_map(|d| d.strip_prefix("style-src "))
            .expect("a style-src directive");
        style_src.split(' ').collect()
    }

    #[test]
    fn the_csp_allows_exactly_the_page_style_by_hash() {
        let expected = format!(
            "'sha256-{}'",
            STANDARD.encode(Sha256::digest(STYLE.as_bytes()))
        );
        assert_eq!(
            csp_style_hashes(),
            vec![expected.as_str()],
            "update CONTENT_SECURITY_POLICY"
        );
        // And the pages embed exactly that text: hash what they carry.
        for page in [login(None, ""), login(Some("Wrong"), "bob"), logout()] {
            let styles = between(&page, "<style>", "</style>");
            assert_eq!(styles.len(), 1);
            let carried = format!(
                "'sha256-{}'",
                STANDARD.encode(Sha256::digest(styles[0].as_bytes()))
            );
            assert_eq!(carried, expected);
        }
    }

    #[test]
    fn the_pages_need_nothing_the_csp_forbids() {
        for page in [login(None, ""), login(Some("Wrong"), "bob"), logout()] {
            // No script, no inline style attribute or handler, nothing
            // loaded from anywhere (default-src 'none').
            for forbidden in [
                "<script",
                " style=",
                " onclick",
                " onload",
                "<link",
                "<img",
                "<iframe",
                "javascript:",
                "http:",
                "https:",
            ] {
                assert!(!page.contains(forbidden), "{forbidden} in\n{page}");
            }
            // Forms post to this origin (form-action 'self'): relative paths.
            for action in between(&page, "action=\"", "\"") {
                assert!(
                    action.starts_with('/') && !action.starts_with("//"),
                    "{action}"
                );
            }
        }
        let csp = CONTENT_SECURITY_POLICY;
        for directive in [
            "default-src 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(directive), "{directive}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("script-src"));
    }

    #[test]
    fn the_login_page_is_accessible() {
        let page = login(None, "");
        assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert!(page.contains("<meta charset=\"utf-8\">"));
        assert_eq!(
            between(&page, "<title>", "</title>"),
            vec!["Log in \u{2013} Example Wiki"]
        );
        assert_eq!(between(&page, "<main>", "</main>").len(), 1);
        assert_eq!(
            between(&page, "<h1>", "</h1>"),
            vec!["Log in to Example Wiki"]
        );
        // Each visible input has a label bound to its id.
        for id in ["username", "password"] {
            assert!(page.contains(&format!("<label for=\"{id}\">")), "{id}");
            assert!(
                page.contains(&format!("<input id=\"{id}\" name=\"{id}\"")),
                "{id}"
            );
        }
        assert!(page.contains("type=\"password\" autocomplete=\"current-password\""));
        assert!(page.contains("autocomplete=\"username\""));
        assert!(page.contains("<input type=\"hidden\" name=\"csrf\" value=\"tok-123_abc\">"));
        assert!(page.contains("<input type=\"hidden\" name=\"return_to\" value=\"/wiki/Home\">"));
        assert!(page.contains("<form method=\"post\" action=\"/__login__\">"));
        // One autofocus, on the empty username.
        assert_eq!(page.matches("autofocus").count(), 1);
        assert!(between(&page, "<input id=\"username\"", ">")[0].contains("autofocus"));
        // Without an error there is no alert region at all.
        assert!(!page.contains("role=\"alert\"") && !page.contains("aria-describedby"));
    }

    #[test]
    fn after_a_failure_the_error_is_announced_and_the_username_kept() {
        let page = login(Some("Wrong username or password."), "alice");
        assert_eq!(
            between(
                &page,
                "<div class=\"error\" role=\"alert\" id=\"login-error\">",
                "</div>"
            ),
            vec!["Wrong username or password."]
        );
        // The alert comes before the form, so it is read first.
        assert!(page.find("role=\"alert\"") < page.find("<form"));
        assert!(page.contains("name=\"username\" type=\"text\" value=\"alice\""));
        // The password field is never filled in, and has the focus.
        let password_input = between(&page, "<input id=\"password\"", ">")[0];
        assert!(!password_input.contains("value="));
        assert!(password_input.contains("autofocus"));
        assert_eq!(page.matches("autofocus").count(), 1);
        assert_eq!(page.matches("aria-describedby=\"login-error\"").count(), 2);
    }

    #[test]
    fn every_interpolated_value_is_escaped() {
        let evil = "<script>alert('x')</script>\" onfocus=\"alert(1)\" &amp;";
        let escaped = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&quot; onfocus=&quot;alert(1)&quot; &amp;amp;";
        let page = login_page(&LoginPageParams {
            site_name: evil,
            action: evil,
            csrf: evil,
            return_to: evil,
            username: evil,
            error: Some(evil),
        });
        assert!(
            !page.contains("<script") && !page.contains("\" onfocus"),
            "{page}"
        );
        // Title, heading, action, two hidden fields, username, error.
        assert_eq!(page.matches(escaped).count(), 7, "{page}");
        let page = logout_page(&LogoutPageParams {
            site_name: evil,
            action: evil,
            csrf: evil,
            username: Some(evil),
            cancel: evil,
        });
        assert!(
            !page.contains("<script") && !page.contains("\" onfocus"),
            "{page}"
        );
        // Title, heading, user, action, csrf, cancel link.
        assert_eq!(page.matches(escaped).count(), 6, "{page}");
    }

    #[test]
    fn the_logout_page_confirms_with_a_post_form() {
        let page = logout();
        assert_eq!(
            between(&page, "<h1>", "</h1>"),
            vec!["Log out of Example Wiki?"]
        );
        assert!(page.contains("<form method=\"post\" action=\"/__logout__\">"));
        assert!(page.contains("<input type=\"hidden\" name=\"csrf\" value=\"tok-456\">"));
        assert!(page.contains("<button type=\"submit\" autofocus>Log out</button>"));
        assert!(page.contains("<strong>alice</strong>"));
        assert!(page.contains("<a class=\"alt\" href=\"/\">Stay logged in</a>"));
        let anonymous = logout_page(&LogoutPageParams {
            username: None,
            ..params_of_logout()
        });
        assert!(!anonymous.contains("logged in as"));
    }

    fn params_of_logout() -> LogoutPageParams<'static> {
        LogoutPageParams {
            site_name: "S",
            action: "/__logout__",
            csrf: "t",
            username: Some("u"),
            cancel: "/",
        }
    }

    #[test]
    fn guard_headers_are_strict_and_hsts_only_over_tls() {
        let plain = guard_headers(false);
        let value = |headers: &[(&str, &'static str)], name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        };
        assert_eq!(value(&plain, "Cache-Control"), Some("no-store"));
        assert_eq!(
            value(&plain, "Content-Type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(
            value(&plain, "Content-Security-Policy"),
            Some(CONTENT_SECURITY_POLICY)
        );
        assert_eq!(value(&plain, "X-Content-Type-Options"), Some("nosniff"));
        assert_eq!(value(&plain, "X-Frame-Options"), Some("DENY"));
        assert_eq!(value(&plain, "Referrer-Policy"), Some("same-origin"));
        assert_eq!(value(&plain, "Strict-Transport-Security"), None);
        let tls = guard_headers(true);
        assert_eq!(
            value(&tls, "Strict-Transport-Security"),
            Some("max-age=31536000")
        );
        assert_eq!(tls.len(), plain.len() + 1);
        // Every value is header-safe: visible ASCII and spaces only.
        for (name, v) in &tls {
            assert!(v.bytes().all(|b| (b' '..0x7f).contains(&b)), "{name}");
        }
    }
}
