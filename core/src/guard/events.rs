//! What the guard tells the server to log. Events name users and client
//! addresses, never a password or a raw session id.

use core::net::IpAddr;
use std::time::Duration;

/// Why a login was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LoginFailureReason {
    /// Unknown user or wrong password (never told apart).
    BadCredentials,
    /// The password was longer than the portal accepts.
    PasswordTooLong,
    /// The form lacked a field or repeated one.
    BadForm,
    /// The CSRF token or the pre-login cookie was missing or wrong.
    Csrf,
    /// The request came from another site (Origin / Sec-Fetch-Site).
    CrossSite,
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionEndReason {
    /// The user logged out.
    Logout,
    /// Idle for longer than the idle timeout.
    Idle,
    /// Older than the absolute timeout.
    Absolute,
    /// Evicted to make room (per-user cap or a full store).
    Evicted,
    /// The user was removed or changed (password-file reload, log out
    /// everywhere).
    UserEnded,
}

/// One thing worth a log line.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthEvent {
    /// A user logged in (a new session was created).
    LoginSucceeded {
        /// Who.
        user: String,
        /// From where.
        client: IpAddr,
    },
    /// A login attempt failed. `user` is what was typed (it may not exist).
    LoginFailed {
        /// The username given, if any.
        user: Option<String>,
        /// From where.
        client: IpAddr,
        /// Why.
        reason: LoginFailureReason,
    },
    /// A login attempt was refused by the brute-force defence.
    Throttled {
        /// The username given.
        user: String,
        /// From where.
        client: IpAddr,
        /// How long the client was told to wait.
        retry_after: Duration,
    },
    /// A session ended.
    SessionEnded {
        /// Whose.
        user: String,
        /// Why.
        reason: SessionEndReason,
    },
    /// An API client authenticated with HTTP Basic (verified, not cached).
    BasicVerified {
        /// Who.
        user: String,
        /// From where.
        client: IpAddr,
    },
}
