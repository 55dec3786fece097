//! What the server writes on stderr: one access-log line per request, the
//! guard's auth events, and notices. Never a password, a session id or a
//! cookie; text a client chose (user names typed at the login form, paths)
//! is quoted with control characters escaped, so no client can forge a
//! log line.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use portcullis_core::guard::{AuthEvent, LoginFailureReason, SessionEndReason};

/// One finished request, for the access log.
pub struct AccessRecord<'a> {
    /// When the request's head was complete.
    pub time: SystemTime,
    /// The client address.
    pub client: IpAddr,
    /// The logged-in user, if the site was served to one.
    pub user: Option<&'a str>,
    /// The method, or `None` when the request never parsed.
    pub method: Option<&'a str>,
    /// The request path without its query (queries may carry tokens).
    pub path: Option<&'a str>,
    /// The response status.
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
    /// From the complete head to the response's last byte handed over.
    pub duration: Duration,
}

/// Writes one line to stderr (a single write, so lines from one process
/// never interleave).
pub fn line(args: fmt::Arguments<'_>) {
    let mut text = String::with_capacity(128);
    let _ = text.write_fmt(args);
    text.push('\n');
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// A notice: start-up, reloads, refusals worth an operator's attention.
pub fn notice(args: fmt::Arguments<'_>) {
    line(format_args!("{} {args}", Timestamp(SystemTime::now())));
}

/// The access-log line for `record`:
/// `TIME CLIENT USER METHOD PATH STATUS BYTES DURATION`.
pub fn access(record: &AccessRecord<'_>) {
    line(format_args!(
        "{} {} {} {} {} {} {} {:.3}ms",
        Timestamp(record.time),
        record.client,
        Field(record.user),
        Field(record.method),
        Field(record.path),
        record.status,
        record.bytes,
        record.duration.as_secs_f64() * 1000.0,
    ));
}

/// The log line for a guard event.
pub fn auth_event(now: SystemTime, event: &AuthEvent) {
    let time = Timestamp(now);
    match event {
        AuthEvent::LoginSucceeded { user, client } => line(format_args!(
            "{time} auth login-ok user={} client={client}",
            Quoted(user)
        )),
        AuthEvent::LoginFailed {
            user,
            client,
            reason,
        } => line(format_args!(
            "{time} auth login-failed user={} client={client} reason={}",
            Field(user.as_deref()),
            failure_reason(*reason)
        )),
        AuthEvent::Throttled {
            user,
            client,
            retry_after,
        } => line(format_args!(
            "{time} auth throttled user={} client={client} retry-after={}s",
            Quoted(user),
            retry_after.as_secs().max(1)
        )),
        AuthEvent::SessionEnded { user, reason } => line(format_args!(
            "{time} auth session-ended user={} reason={}",
            Quoted(user),
            end_reason(*reason)
        )),
        AuthEvent::BasicVerified { user, client } => line(format_args!(
            "{time} auth basic-ok user={} client={client}",
            Quoted(user)
        )),
        other => line(format_args!("{time} auth {other:?}")),
    }
}

fn failure_reason(reason: LoginFailureReason) -> &'static str {
    match reason {
        LoginFailureReason::BadCredentials => "bad-credentials",
        LoginFailureReason::PasswordTooLong => "password-too-long",
        LoginFailureReason::BadForm => "bad-form",
        LoginFailureReason::Csrf => "csrf",
        LoginFailureReason::CrossSite => "cross-site",
    }
}

fn end_reason(reason: SessionEndReason) -> &'static str {
    match reason {
        SessionEndReason::Logout => "logout",
        SessionEndReason::Idle => "idle",
        SessionEndReason::Absolute => "absolute",
        SessionEndReason::Evicted => "evicted",
        SessionEndReason::UserEnded => "user-ended",
    }
}

/// RFC 3339 UTC, to the millisecond.
struct Timestamp(SystemTime);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_rfc3339_millis(self.0))
    }
}

/// `-` when absent, the text when it is plain, quoted otherwise.
struct Field<'a>(Option<&'a str>);

impl fmt::Display for Field<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("-"),
            Some(text) => Quoted(text).fmt(f),
        }
    }
}

/// Text a client chose: as is when it is printable without spaces or
/// quotes, else quoted with escapes.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // "-" stands for "none" in the access log: a name "-" is quoted.
        let plain = !self.0.is_empty()
            && self.0 != "-"
            && self
                .0
                .chars()
                .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\');
        if plain {
            f.write_str(self.0)
        } else {
            write!(f, "{:?}", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_chosen_text_cannot_forge_a_line() {
        assert_eq!(Quoted("fred").to_string(), "fred");
        assert_eq!(
            Quoted("fred\n2026 auth login-ok").to_string(),
            "\"fred\\n2026 auth login-ok\""
        );
        assert_eq!(Quoted("a b").to_string(), "\"a b\"");
        assert_eq!(Quoted("").to_string(), "\"\"");
        assert_eq!(Field(None).to_string(), "-");
    }
}
