//! Credentials: what a client presents to the [`Portal`](super::Portal).

use std::fmt;

use zeroize::Zeroizing;

/// The kinds of credentials (Twisted's credential interfaces). A checker
/// declares the kinds it handles, and the portal dispatches on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum CredentialKind {
    /// A username and a password ([`UsernamePassword`]).
    UsernamePassword,
    /// Nobody in particular: a visitor who has not logged in.
    Anonymous,
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CredentialKind::UsernamePassword => "username and password",
            CredentialKind::Anonymous => "anonymous",
        })
    }
}

/// What a client presents to log in.
#[derive(Debug)]
#[non_exhaustive]
pub enum Credentials {
    /// A username and a password, from the login form or Basic auth.
    UsernamePassword(UsernamePassword),
    /// No credentials: the anonymous visitor.
    Anonymous,
}

impl Credentials {
    /// Username and password credentials.
    pub fn username_password(username: impl Into<String>, password: impl Into<Password>) -> Self {
        Credentials::UsernamePassword(UsernamePassword {
            username: username.into(),
            password: password.into(),
        })
    }

    /// The kind of these credentials, which picks the checker.
    #[must_use]
    pub fn kind(&self) -> CredentialKind {
        match self {
            Credentials::UsernamePassword(_) => CredentialKind::UsernamePassword,
            Credentials::Anonymous => CredentialKind::Anonymous,
        }
    }
}

/// A username and a password, as the client sent them.
#[derive(Debug)]
pub struct UsernamePassword {
    /// The name as typed; not trusted, not normalised.
    pub username: String,
    /// The password as typed.
    pub password: Password,
}

/// A password: the bytes as typed, never truncated or normalised, wiped from
/// memory when dropped, and never shown by `Debug`.
///
/// It is not `Clone`, so that each copy in memory is a deliberate one.
pub struct Password(Zeroizing<Vec<u8>>);

impl Password {
    /// Takes ownership of `bytes` (no copy is left behind).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Password(Zeroizing::new(bytes.into()))
    }

    /// The password's bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the password is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl From<String> for Password {
    fn from(s: String) -> Self {
        Password::new(s.into_bytes())
    }
}

impl From<&str> for Password {
    fn from(s: &str) -> Self {
        Password::new(s.as_bytes())
    }
}

impl From<Vec<u8>> for Password {
    fn from(bytes: Vec<u8>) -> Self {
        Password::new(bytes)
    }
}

impl From<&[u8]> for Password {
    fn from(bytes: &[u8]) -> Self {
        Password::new(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_contains_the_password() {
        let credentials = Credentials::username_password("alice", "hunter2-secret");
        let shown = format!("{credentials:?} {credentials:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("alice"),
            "the username is not secret: {shown}"
        );
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn passwords_keep_their_bytes_exactly() {
        // No trimming, no Unicode normalisation: "e\u{301}" and "\u{e9}"
        // look alike but are different passwords.
        let decomposed = Password::from(" e\u{301} ");
        let composed = Password::from(" \u{e9} ");
        assert_eq!(decomposed.as_bytes(), " e\u{301} ".as_bytes());
        assert_ne!(decomposed.as_bytes(), composed.as_bytes());
    }

    #[test]
    fn each_kind_of_credentials_names_its_kind() {
        assert_eq!(
            Credentials::username_password("a", "b").kind(),
            CredentialKind::UsernamePassword
        );
        assert_eq!(Credentials::Anonymous.kind(), CredentialKind::Anonymous);
    }
}
