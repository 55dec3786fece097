//! The responses the guard gives itself: pages, redirects and refusals.

use std::borrow::Cow;

use crate::http::{reason_phrase, ResponseBody, ResponseHead};

use super::pages::guard_headers;

/// A complete response from the guard: head and body. Send the head with
/// [`Connection::send_response`](crate::Connection::send_response) and the
/// body with `send_body`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Status and fields (framing is set to the body's length).
    pub head: ResponseHead,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// A guard page: HTML with the guard's security headers.
    pub(crate) fn page(status: u16, html: String, tls: bool) -> Reply {
        let mut head = ResponseHead::new(status);
        for (name, value) in guard_headers(tls) {
            head = head.header(name, value);
        }
        Reply::with_body(head, html.into_bytes())
    }

    /// A short plain-text answer (`<status> <reason>`), never cached.
    pub(crate) fn plain(status: u16, tls: bool) -> Reply {
        let body = format!("{status} {}\n", reason_phrase(status));
        let mut head = ResponseHead::new(status);
        for (name, value) in guard_headers(tls) {
            head = match name {
                "Content-Type" => head.header(name, "text/plain; charset=utf-8"),
                _ => head.header(name, value),
            };
        }
        Reply::with_body(head, body.into_bytes())
    }

    /// A 303 to `location` (a checked same-origin path).
    pub(crate) fn see_other(location: &str, tls: bool) -> Reply {
        let mut reply = Reply::plain(303, tls);
        reply.head = reply.head.header("Location", location.to_string());
        reply
    }

    /// Adds a field.
    pub(crate) fn with(mut self, name: &'static str, value: impl Into<Cow<'static, str>>) -> Reply {
        self.head = self.head.header(name, value);
        self
    }

    fn with_body(head: ResponseHead, body: Vec<u8>) -> Reply {
        Reply {
            head: head.body(ResponseBody::Length(body.len() as u64)),
            body,
        }
    }
}
