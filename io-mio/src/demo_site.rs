//! The built-in demo site, served when no `--root` is given: the seed's
//! `Root`, a page that says hello, now to the logged-in user by name and
//! with a one-click logout button.
//!
//! The page is plain HTML5 without scripts, styled like the guard's own
//! pages with the same style sheet and the same Content-Security-Policy
//! (which allows exactly that sheet by its hash). It names the user, so it
//! is `Cache-Control: no-store`. Everything but `/` is a 404 page, and only
//! GET and HEAD are served (405 otherwise).

use portcullis_core::guard::{LOGIN_PATH, LOGOUT_PATH};
use portcullis_core::Request;

use crate::static_files::{
    bytes_response, error_page, escape_html, html_document, html_head, is_get_or_head,
    method_not_allowed, SiteResponse,
};

/// The demo site's answer to `request` for `path` (the guard's normalised
/// path), shown to `user` (`None` if `/` is public and nobody is logged
/// in). `logout_csrf` is the token for the guard's logout form (its field
/// `csrf`): with it the page has a one-click logout button, without it a
/// link to the guard's logout confirmation page.
#[must_use]
pub fn respond(
    request: &Request,
    path: &str,
    user: Option<&str>,
    logout_csrf: Option<&str>,
) -> SiteResponse {
    if !is_get_or_head(request) {
        return method_not_allowed(request);
    }
    if path != "/" {
        return error_page(request, 404);
    }
    let html = hello_page(user, logout_csrf);
    bytes_response(request, html_head(200, "no-store"), html.into_bytes())
}

/// The hello page.
fn hello_page(user: Option<&str>, logout_csrf: Option<&str>) -> String {
    let main = match user {
        Some(user) => {
            let logout = match logout_csrf {
                Some(csrf) => format!(
                    "<form method=\"post\" action=\"{LOGOUT_PATH}\">\n\
<input type=\"hidden\" name=\"csrf\" value=\"{}\">\n\
<button type=\"submit\">Log out</button>\n\
</form>\n",
                    escape_html(csrf)
                ),
                None => format!("<a class=\"alt\" href=\"{LOGOUT_PATH}\">Log out</a>\n"),
            };
            format!(
                "<h1>Hello, {}!</h1>\n\
<p>You are logged in to the Portcullis demo site. \
To guard your own files, start Portcullis with <code>--root DIR</code>.</p>\n\
{logout}",
                escape_html(user)
            )
        }
        None => format!(
            "<h1>Hello, World!</h1>\n\
<p>This is the Portcullis demo site. You are not logged in.</p>\n\
<a class=\"alt\" href=\"{LOGIN_PATH}\">Log in</a>\n"
        ),
    };
    html_document("Hello \u{2013} Portcullis demo", &main)
}

#[cfg(test)]
mod tests {
    use portcullis_core::guard::pages::{CONTENT_SECURITY_POLICY, STYLE};
    use portcullis_core::ResponseBody;

    use super::*;
    use crate::static_files::test_support::{get, header, request, text};
    use crate::static_files::SiteBody;

    /// The text between `open` and the next `close`, each occurrence.
    fn between<'a>(page: &'a str, open: &str, close: &str) -> Vec<&'a str> {
        page.split(open)
            .skip(1)
            .map(|rest| rest.split(close).next().unwrap_or_default())
            .collect()
    }

    #[test]
    fn the_root_greets_the_user_with_a_one_click_logout() {
        let response = respond(&get("/"), "/", Some("fred"), Some("tok-123_abc"));
        assert_eq!(response.status(), 200);
        assert_eq!(
            header(&response, "Content-Type"),
            Some("text/html; charset=utf-8")
        );
        // The page names the user: no cache may keep it.
        assert_eq!(header(&response, "Cache-Control"), Some("no-store"));
        let page = text(response);
        assert!(
            page.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"),
            "{page}"
        );
        assert_eq!(between(&page, "<h1>", "</h1>"), vec!["Hello, fred!"]);
        assert!(page.contains(
            "<form method=\"post\" action=\"/__logout__\">\n\
<input type=\"hidden\" name=\"csrf\" value=\"tok-123_abc\">\n\
<button type=\"submit\">Log out</button>\n</form>"
        ));
    }

    #[test]
    fn without_a_token_the_page_links_to_the_logout_confirmation() {
        let page = text(respond(&get("/"), "/", Some("fred"), None));
        assert!(!page.contains("<form"));
        assert!(page.contains("<a class=\"alt\" href=\"/__logout__\">Log out</a>"));
    }

    #[test]
    fn an_anonymous_visitor_is_greeted_and_offered_the_login() {
        // "/" made public: there is no session to log out of.
        let page = text(respond(&get("/"), "/", None, None));
        assert_eq!(between(&page, "<h1>", "</h1>"), vec!["Hello, World!"]);
        assert!(page.contains("href=\"/__login__\""));
        assert!(!page.contains("__logout__"));
    }

    #[test]
    fn the_user_and_the_token_are_escaped() {
        let evil = "<script>alert('x')</script>\" onfocus=\"alert(1)\"";
        let page = text(respond(&get("/"), "/", Some(evil), Some(evil)));
        assert!(
            !page.contains("<script") && !page.contains("\" onfocus"),
            "{page}"
        );
        let escaped =
            "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&quot; onfocus=&quot;alert(1)&quot;";
        assert_eq!(page.matches(escaped).count(), 2, "{page}");
    }

    #[test]
    fn the_page_needs_nothing_its_csp_forbids() {
        let response = respond(&get("/"), "/", Some("fred"), Some("t"));
        // The guard pages' policy, whose style hash the core's tests check
        // against STYLE; the page carries exactly that sheet.
        assert_eq!(
            header(&response, "Content-Security-Policy"),
            Some(CONTENT_SECURITY_POLICY)
        );
        assert_eq!(header(&response, "X-Frame-Options"), Some("DENY"));
        let page = text(response);
        assert_eq!(between(&page, "<style>", "</style>"), vec![STYLE]);
        for forbidden in [
            "<script", " style=", " onclick", "<link", "<img", "http:", "https:",
        ] {
            assert!(!page.contains(forbidden), "{forbidden} in\n{page}");
        }
    }

    #[test]
    fn head_has_the_same_head_and_no_body() {
        let get_response = respond(&get("/"), "/", Some("fred"), Some("t"));
        let head_response = respond(&request("HEAD", "/", &[]), "/", Some("fred"), Some("t"));
        assert_eq!(head_response.head, get_response.head);
        assert!(matches!(
            head_response.head.body_framing(),
            ResponseBody::Length(n) if n > 0
        ));
        assert!(matches!(head_response.body, SiteBody::None));
    }

    #[test]
    fn anything_but_the_root_is_not_found() {
        for path in ["/index.html", "/favicon.ico", "/a/", "/__logout__"] {
            let response = respond(&get(path), path, Some("fred"), Some("t"));
            assert_eq!(response.status(), 404, "{path}");
            let page = text(response);
            assert!(!page.contains("fred"), "{path}");
        }
    }

    #[test]
    fn only_get_and_head_are_served() {
        for method in ["POST", "PUT", "DELETE"] {
            let response = respond(&request(method, "/", &[]), "/", Some("fred"), None);
            assert_eq!(response.status(), 405, "{method}");
            assert_eq!(header(&response, "Allow"), Some("GET, HEAD"));
        }
    }
}
