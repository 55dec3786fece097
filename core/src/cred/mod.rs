//! Credentials: who may log in, and how a password is checked without
//! blocking anything. The shape is twisted.cred's.
//!
//! - [`Credentials`] are what a visitor presents: a username and a
//!   [`Password`], or [`Credentials::Anonymous`].
//! - A [`Checker`] handles some [`CredentialKind`]s and turns credentials
//!   into an [`AvatarId`]: [`AllowAnonymous`], [`PasswordFileChecker`], and
//!   [`InMemoryCheckerDontUse`] for tests and examples.
//! - A [`Realm`] turns an avatar id into an avatar (what the guard serves:
//!   the login page or the site) and a [`LogoutHook`].
//! - The [`Portal`] ties them: [`Portal::login`] dispatches credentials to
//!   the checker registered for their kind (none: [`LoginFailure::UnhandledCredentials`]).
//!
//! ## Verification is a job
//!
//! An argon2id check costs ~15 ms and 19 MiB, far too much for an event
//! loop, so the portal never hashes. [`Portal::login`] answers at once
//! ([`Login::Done`]) or hands back a [`VerifyJob`] that owns everything the
//! check needs (the stored hash, the password). The caller runs
//! [`VerifyJob::run`] wherever slow work goes (a worker pool in the server,
//! inline in tests) and gives the [`Verdict`] to [`Portal::complete`], which
//! asks the checker whether the user still stands and the realm for the
//! avatar. Only a job makes a verdict, so a success cannot be forged.
//!
//! The checks follow OWASP: an unknown user is checked against a dummy hash
//! with the same parameters (same time as a wrong password); a password over
//! [`MAX_PASSWORD_BYTES`] is refused before hashing; comparisons are
//! constant-time; passwords are never truncated or normalised, and never
//! shown by `Debug`.
//!
//! ## The password file
//!
//! [`PasswordFile`] parses and edits `user:hash` files (argon2id written,
//! bcrypt from `htpasswd -B` also read and upgraded at the next login);
//! the adapter does the reading and the atomic writing.

mod bcrypt;
mod checkers;
mod credentials;
mod hash;
mod job;
pub mod password_file;
mod portal;

#[cfg(test)]
mod tests;

pub use checkers::{
    AddUserError, AllowAnonymous, Check, Checker, InMemoryCheckerDontUse, PasswordFileChecker,
};
pub use credentials::{CredentialKind, Credentials, Password, UsernamePassword};
pub use hash::{
    hash_password, HashError, HashParams, HashRefusal, InvalidParams, Scheme, StoredHash,
    MAX_PASSWORD_BYTES, SALT_BYTES,
};
pub use job::{JobId, Verdict, VerifyJob};
pub use password_file::{
    validate_username, EditError, LineError, ParseError, ParseErrors, PasswordFile, ReloadDiff,
    UsernameError,
};
pub use portal::{
    AvatarId, LoggedIn, Login, LoginFailure, LoginOutcome, LogoutHook, PasswordUpgrade, Portal,
    Realm,
};
